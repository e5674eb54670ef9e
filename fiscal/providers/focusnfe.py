"""Focus NFe's API for the national NFS-e (Padrão Nacional, DPS): `/v2/nfsen`.

From its API documentation (https://focusnfe.com.br/doc/, source FocusNFe/api-doc):
- "Autenticação": HTTP Basic with the token as user name and an empty password; 403
  `permissao_negada` when the token is refused.
- "Ambiente": https://homologacao.focusnfe.com.br (sandbox, no fiscal value) and
  https://api.focusnfe.com.br (production); each has its own token.
- "Referência": our `ref`, unique per token, letters and digits only; may be sent again after
  `erro_autorizacao`, never after an authorization.
- "NFSe Nacional": POST /v2/nfsen?ref=REF (asynchronous: 201 `processando_autorizacao`), GET
  /v2/nfsen/REF (`processando_autorizacao` → `autorizado` | `erro_autorizacao`, later
  `cancelado`), DELETE /v2/nfsen/REF with a `justificativa` of 15–255 characters
  (synchronous: `cancelado` or `erro_cancelamento` with `erros`).
- "Erros": 4xx bodies are `{"codigo", "mensagem", "erros"?}`; 429 is the rate limit, 5xx ours
  to retry.
"""

from __future__ import annotations

from typing import Any

import requests
from django.conf import settings
from django.utils.translation import gettext as _

from fiscal.models import Environment, InvoiceStatus
from fiscal.providers.base import (
    FiscalProviderError,
    FiscalProviderUnavailable,
    InvoiceProvider,
    RemoteInvoice,
)

HOSTS = {
    Environment.SANDBOX: "https://homologacao.focusnfe.com.br",
    Environment.PRODUCTION: "https://api.focusnfe.com.br",
}
STATUSES = {
    "processando_autorizacao": "",
    "autorizado": InvoiceStatus.AUTHORIZED,
    "erro_autorizacao": InvoiceStatus.ERROR,
    "cancelado": InvoiceStatus.CANCELLED,
}


def errors_text(body: dict[str, Any]) -> str:
    """The provider's explanation: `mensagem`, and each of `erros` as "code: message"."""
    parts = [str(body["mensagem"])] if body.get("mensagem") else []
    for error in body.get("erros") or []:
        if isinstance(error, dict):
            parts.append(f"{error.get('codigo', '')}: {error.get('mensagem', '')}".strip(": "))
    return " | ".join(parts)[:2000]


class FocusNFeProvider(InvoiceProvider):
    name = "focusnfe"

    @property
    def base_url(self) -> str:
        # FOCUSNFE_BASE_URL points every tenant at the fake server in tests and the demo.
        return (settings.FOCUSNFE_BASE_URL or HOSTS[self.config.environment]).rstrip("/")

    def _call(self, method: str, path: str, **kwargs) -> tuple[int, dict[str, Any]]:
        try:
            response = requests.request(
                method,
                self.base_url + path,
                auth=(self.config.api_token, ""),
                timeout=settings.FOCUSNFE_TIMEOUT,
                allow_redirects=False,
                **kwargs,
            )
        except requests.RequestException as error:
            raise FiscalProviderUnavailable(
                _("Focus NFe did not answer (%(error)s).") % {"error": type(error).__name__}
            ) from error
        if response.status_code == 429 or response.status_code >= 500:
            raise FiscalProviderUnavailable(
                _("Focus NFe answered HTTP %(status)s; trying again later.")
                % {"status": response.status_code}
            )
        try:
            body = response.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        if response.status_code == 403:
            raise FiscalProviderError(
                _(
                    "Focus NFe refused the token (%(code)s): check that the token is the one "
                    "of the chosen environment (sandbox or production). %(message)s"
                )
                % {"code": body.get("codigo", "403"), "message": errors_text(body)}
            )
        return response.status_code, body

    def _remote(self, body: dict[str, Any]) -> RemoteInvoice:
        state = str(body.get("status", ""))
        if state not in STATUSES:
            raise FiscalProviderError(
                _("Focus NFe answered an unknown status: %(status)s") % {"status": state or "-"}
            )
        xml_path = str(body.get("caminho_xml_nota_fiscal") or "")
        return RemoteInvoice(
            status=STATUSES[state],
            provider_status=state,
            number=str(body.get("numero") or ""),
            verification_code=str(body.get("codigo_verificacao") or ""),
            public_url=str(body.get("url") or ""),
            pdf_url=str(body.get("url_danfse") or ""),
            # A path on the API's host ("Download do XML" in the NFSe Nacional section).
            xml_url=self.base_url + xml_path if xml_path.startswith("/") else xml_path,
            message=errors_text(body) if state == "erro_autorizacao" else "",
            raw=body,
        )

    def send(self, invoice, payload: dict[str, Any]) -> RemoteInvoice:
        status, body = self._call(
            "POST", "/v2/nfsen", params={"ref": invoice.reference}, json=payload
        )
        if status in (200, 201, 202):
            return self._remote(body)
        code = body.get("codigo", "")
        if code in ("em_processamento", "nfe_autorizada"):
            # Sent before (a timeout hid the answer): ask how it stands.
            return self.fetch(invoice)
        raise FiscalProviderError(
            _("Focus NFe refused the NFS-e (%(code)s): %(message)s")
            % {"code": code or status, "message": errors_text(body)}
        )

    def fetch(self, invoice) -> RemoteInvoice:
        status, body = self._call("GET", f"/v2/nfsen/{invoice.reference}")
        if status == 404:
            # Never received (the send was lost): queued again, same reference.
            return RemoteInvoice(status=InvoiceStatus.QUEUED, provider_status="nao_encontrado")
        if status != 200:
            raise FiscalProviderError(
                _("Focus NFe refused the query (%(code)s): %(message)s")
                % {"code": body.get("codigo", status), "message": errors_text(body)}
            )
        return self._remote(body)

    def cancel(self, invoice, reason: str) -> RemoteInvoice:
        # "justificativa: deverá conter de 15 a 255 caracteres".
        reason = reason.strip()[:255].ljust(15, ".")
        status, body = self._call(
            "DELETE", f"/v2/nfsen/{invoice.reference}", json={"justificativa": reason}
        )
        if body.get("codigo") == "nfe_cancelada" or body.get("status") == "cancelado":
            return RemoteInvoice(
                status=InvoiceStatus.CANCELLED, provider_status="cancelado", raw=body
            )
        raise FiscalProviderError(
            _("Focus NFe did not cancel the NFS-e (%(code)s): %(message)s")
            % {
                "code": body.get("codigo") or body.get("status") or status,
                "message": errors_text(body),
            }
        )
