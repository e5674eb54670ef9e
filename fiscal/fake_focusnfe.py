"""A fake Focus NFe (NFS-e Nacional) on 127.0.0.1, for tests and the demo without an account.

It enforces what Focus NFe documents for `/v2/nfsen` (https://focusnfe.com.br/doc/, whose
source is the FocusNFe/api-doc repository: `source/index.html.md` for authentication,
references, HTTP codes and the error shape; `source/includes/_nfsen.md` for the NFS-e
Nacional endpoints, states and answers; `source/includes/_webhooks.md` for the gatilhos),
and refuses what the real API refuses with its status code and `{"codigo", "mensagem"}`.
A request is answered from the fake's state, never echoed, so the suite fails where
production would.

Tests drive it: `FakeFocusNFe.start()`, `authorize(ref)`, `reject(ref, code, message)`,
`fail_next(n)` (HTTP 500), `cancel_refused(ref)`; `authorize` and `reject` post the webhook
to `webhook_url` with `webhook_authorization` in the Authorization header, as a gatilho
created with `authorization` does.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from tenants.loopback import FakeServer

AUTH_DOC = "https://focusnfe.com.br/doc/#introducao_autenticacao"
REFERENCE_DOC = "https://focusnfe.com.br/doc/#introducao_referencia"
ERRORS_DOC = "https://focusnfe.com.br/doc/#introducao_erros"
NFSEN_DOC = "https://focusnfe.com.br/doc/#nfse-nacional"
WEBHOOKS_DOC = "https://focusnfe.com.br/doc/#gatilhos-webhooks"

# REFERENCE_DOC: "A referência pode ser alfanumérica, contudo, não são permitidos caracteres
# especiais."
REFERENCE = re.compile(r"^[A-Za-z0-9]+\Z")
# NFSEN_DOC, "Campos": the fields of the NFSe Nacional example a DPS cannot go without
# (issuer, place, the service's code, description and value); a missing one is refused as the
# page's example does: 400 requisicao_invalida, 'Parâmetro "x" não informado'.
REQUIRED = (
    "data_emissao",
    "codigo_municipio_emissora",
    "cnpj_prestador",
    "codigo_municipio_prestacao",
    "codigo_tributacao_nacional_iss",
    "descricao_servico",
    "valor_servico",
)
NATIONAL_CODE = re.compile(r"^\d{6}\Z")
# https://campos.focusnfe.com.br/nfse_nacional/EmissaoDPSXml.html: the ISS rate is
# `percentual_aliquota_relativa_municipio` (DPS tag tribMun/pAliq), a percentage. The national
# system requires it of a taxable service (tributacao_iss 1) by a company outside the Simples
# Nacional (codigo_opcao_simples_nacional 1) and refuses it from a Simples ME/EPP without
# withholding (tipo_retencao_iss 1; SEFIN rule E0625). LC 116/2003 bounds ISS to 2 %–5 %.
ISS_RATE = "percentual_aliquota_relativa_municipio"


class FakeFocusNFe(FakeServer):
    """State and HTTP server. Thread-safe: every handler takes `self.lock`."""

    def __init__(
        self,
        token: str = "focus-test-token",
        *,
        cnpj: str = "",
        webhook_url: str = "",
        webhook_authorization: str = "",
    ) -> None:
        self.token = token
        # A token belongs to one company (its "empresa"): a DPS for another CNPJ is refused.
        self.cnpj = cnpj
        self.webhook_url = webhook_url
        self.webhook_authorization = webhook_authorization
        self.notes: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str, dict[str, Any]]] = []
        self.lock = threading.Lock()
        self._failures = 0
        self._refuse_cancel: set[str] = set()
        self._number = 1000
        self.listen(self._handler(), "127.0.0.1", 0)

    # --- test controls ----------------------------------------------------------------------

    def fail_next(self, count: int = 1) -> None:
        """The next `count` requests get HTTP 500 ("Erro interno do servidor", ERRORS_DOC)."""
        with self.lock:
            self._failures = count

    def refuse_cancel(self, ref: str) -> None:
        """The national system refuses this NFS-e's cancellation (out of its window)."""
        with self.lock:
            self._refuse_cancel.add(ref)

    def authorize(self, ref: str) -> dict[str, Any]:
        """The national system authorized the DPS: processando_autorizacao → autorizado."""
        with self.lock:
            note = self.notes[ref]
            assert note["status"] == "processando_autorizacao", note["status"]
            self._number += 1
            key = f"{note['cnpj_prestador']}{self._number:036d}"[:50]
            note.update(
                status="autorizado",
                numero=str(self._number),
                codigo_verificacao=key,
                data_emissao=note["payload"]["data_emissao"],
                url=f"https://www.nfse.gov.br/consultapublica/?tpc=1&chave={key}",
                caminho_xml_nota_fiscal=f"/arquivos/{note['cnpj_prestador']}/{key}-nfse.xml",
                url_danfse=f"{self.url}/danfse/{key}.pdf",
            )
            body = self._public(note)
        self._notify(body)
        return body

    def reject(self, ref: str, code: str = "E0014", message: str = "DPS recusada") -> None:
        """The national system refused the DPS: processando_autorizacao → erro_autorizacao."""
        with self.lock:
            note = self.notes[ref]
            assert note["status"] == "processando_autorizacao", note["status"]
            note.update(
                status="erro_autorizacao",
                erros=[{"codigo": code, "mensagem": message, "correcao": None}],
            )
            body = self._public(note)
        self._notify(body)

    def _notify(self, body: dict[str, Any]) -> None:
        # WEBHOOKS_DOC: the note's data as JSON, POSTed to the URL, with the hook's
        # `authorization` in the "Authorization" header.
        if not self.webhook_url:
            return
        secret = self.webhook_authorization
        headers = {"Authorization": secret} if secret else {}
        requests.post(self.webhook_url, json=body, headers=headers, timeout=10)

    # --- the API ----------------------------------------------------------------------------

    @staticmethod
    def _public(note: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in note.items() if k != "payload"}

    def _authorized(self, handler: BaseHTTPRequestHandler) -> bool:
        # AUTH_DOC: HTTP Basic, the token as the user name, the password blank (or ?token=).
        header = handler.headers.get("Authorization", "")
        if header.startswith("Basic "):
            try:
                user, _sep, password = base64.b64decode(header[6:]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return False
            return user == self.token and password == ""
        query = parse_qs(urlsplit(handler.path).query)
        return query.get("token", [""])[0] == self.token

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet in tests
                pass

            def do_POST(self) -> None:
                fake._handle(self, "POST")

            def do_GET(self) -> None:
                fake._handle(self, "GET")

            def do_DELETE(self) -> None:
                fake._handle(self, "DELETE")

        return Handler

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        split = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        with self.lock:
            if self._failures:
                self._failures -= 1
                status, body = 500, {"codigo": "erro_interno", "mensagem": "Erro interno"}
            elif not self._authorized(handler):
                # ERRORS_DOC: 403 permissao_negada.
                status, body = (
                    403,
                    {
                        "codigo": "permissao_negada",
                        "mensagem": "Acesso negado: token inválido",
                    },
                )
            else:
                status, body = self._route(method, split.path, parse_qs(split.query), raw)
        payload = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json; charset=utf-8")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    def _route(self, method: str, path: str, query: dict, raw: bytes) -> tuple[int, dict]:
        if raw:
            try:
                data = json.loads(raw)
            except ValueError:
                # ERRORS_DOC: 415 when the JSON cannot be read.
                return 415, {"codigo": "midia_invalida", "mensagem": "JSON inválido"}
        else:
            data = {}
        if path == "/v2/nfsen" and method == "POST":
            return self._create(query.get("ref", [""])[0], data)
        match = re.fullmatch(r"/v2/nfsen/([^/]+)", path)
        if match and method == "GET":
            note = self.notes.get(match.group(1))
            if note is None:
                return 404, {"codigo": "nao_encontrado", "mensagem": "Nota fiscal não encontrada"}
            return 200, self._public(note)
        if match and method == "DELETE":
            return self._cancel(match.group(1), data)
        # NFSEN_DOC, "Status API": 404 nao_encontrado for another method.
        return 404, {"codigo": "nao_encontrado", "mensagem": "Utilize o método POST"}

    def _invalid(self, message: str) -> tuple[int, dict]:
        return 400, {"codigo": "requisicao_invalida", "mensagem": message}

    @staticmethod
    def _iss_rate_refusal(data: dict[str, Any]) -> str:
        rate = data.get(ISS_RATE)
        taxable = str(data.get("tributacao_iss")) == "1"
        option = str(data.get("codigo_opcao_simples_nacional", "1"))
        if rate is None:
            if taxable and option == "1":
                return f'Parâmetro "{ISS_RATE}" não informado'
            return ""
        if option == "3" and str(data.get("tipo_retencao_iss")) == "1":
            return f'Parâmetro "{ISS_RATE}" não deve ser informado (E0625)'
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 2 <= rate <= 5:
            return f'Parâmetro "{ISS_RATE}" inválido'
        return ""

    def _create(self, ref: str, data: Any) -> tuple[int, dict]:
        if not REFERENCE.match(ref):
            return self._invalid('Parâmetro "ref" inválido')
        if not isinstance(data, dict):
            return self._invalid("Requisição inválida")
        for name in REQUIRED:
            if data.get(name) in (None, ""):
                return self._invalid(f'Parâmetro "{name}" não informado')
        if self.cnpj and data["cnpj_prestador"] != self.cnpj:
            # NFSEN_DOC: "Emitente ainda não habilitado para emissão de NFSe Nacional".
            return 400, {
                "codigo": "empresa_nao_habilitada",
                "mensagem": "Emitente ainda não habilitado para emissão de NFSe Nacional",
            }
        if not NATIONAL_CODE.match(str(data["codigo_tributacao_nacional_iss"])):
            return self._invalid('Parâmetro "codigo_tributacao_nacional_iss" inválido')
        refusal = self._iss_rate_refusal(data)
        if refusal:
            return self._invalid(refusal)
        if "cpf_tomador" in data and not re.fullmatch(r"\d{11}", str(data["cpf_tomador"])):
            return self._invalid('Parâmetro "cpf_tomador" inválido')
        existing = self.notes.get(ref)
        if existing is not None:
            # NFSEN_DOC, "Status API": 422 em_processamento / nfe_autorizada; REFERENCE_DOC:
            # a reference may be reused after an authorization error only.
            if existing["status"] == "processando_autorizacao":
                return 422, {
                    "codigo": "em_processamento",
                    "mensagem": "Nota fiscal em processamento",
                }
            if existing["status"] in ("autorizado", "cancelado"):
                return 422, {"codigo": "nfe_autorizada", "mensagem": "Nota fiscal já autorizada"}
        self.notes[ref] = {
            "cnpj_prestador": data["cnpj_prestador"],
            "ref": ref,
            "status": "processando_autorizacao",
            "payload": data,
        }
        self.requests.append(("POST", ref, data))
        # NFSEN_DOC, "Envio": accepted for processing.
        return 201, {
            "cnpj_prestador": data["cnpj_prestador"],
            "ref": ref,
            "status": "processando_autorizacao",
        }

    def _cancel(self, ref: str, data: Any) -> tuple[int, dict]:
        note = self.notes.get(ref)
        if note is None:
            return 404, {"codigo": "nao_encontrado", "mensagem": "Nota fiscal não encontrada"}
        reason = data.get("justificativa") if isinstance(data, dict) else None
        # NFSEN_DOC, "Cancelamento": justificativa "deverá conter de 15 a 255 caracteres".
        if not isinstance(reason, str) or not 15 <= len(reason) <= 255:
            return self._invalid('Parâmetro "justificativa" deve ter entre 15 e 255 caracteres')
        if note["status"] == "cancelado":
            return 400, {"codigo": "nfe_cancelada", "mensagem": "Nota Fiscal já cancelada"}
        if note["status"] != "autorizado":
            return 400, {
                "codigo": "nfe_nao_autorizada",
                "mensagem": "Nota fiscal não autorizada não pode ser cancelada",
            }
        self.requests.append(("DELETE", ref, data))
        if ref in self._refuse_cancel:
            # NFSEN_DOC: the synchronous answer `erro_cancelamento` with the national
            # system's `erros` (its example: E523, out of the allowed period). The page gives
            # the body only; 422 is the API's code for a semantic refusal (ERRORS_DOC).
            return 422, {
                "status": "erro_cancelamento",
                "erros": [
                    {
                        "codigo": "E523",
                        "mensagem": "nota que você está tentando cancelar está fora do prazo "
                        "permitido para cancelamento",
                        "correcao": None,
                    }
                ],
            }
        note["status"] = "cancelado"
        note["caminho_xml_cancelamento"] = f"/arquivos/{note['cnpj_prestador']}/{ref}-can.xml"
        return 200, {"status": "cancelado"}
