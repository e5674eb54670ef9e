"""A fake WhatsApp Cloud API (Meta's Graph API) on 127.0.0.1, for tests and the demo.

It enforces what Meta documents for `POST /{version}/{phone-number-id}/messages`, each rule
with the page it comes from (read December 2026), and refuses what the real API refuses with
the real status and error JSON, so our client fails here where it would fail in production:

- OVERVIEW_DOC: Bearer token, JSON body with `messaging_product: "whatsapp"`, `to`, `type`.
- TEMPLATES_DOC, TEMPLATE_VARIABLES_DOC: a template message names an existing, approved
  template and its language (`template.name`, `template.language.code`) and fills the
  body's variables through `components[].parameters` (`{"type": "text", "text": ...}`).
- ERRORS_DOC: the error shape `{"error": {"message", "type", "code", "error_data":
  {"messaging_product", "details"}, "fbtrace_id"}}` and the codes used below — 190 token,
  100 invalid parameter, 131008 missing parameter, 131047 more than 24 hours since the
  customer last wrote (only free-form messages; templates are how a business starts a
  conversation), 132000 parameter count mismatch, 132001 template missing in that language
  or not approved, 132015 template paused, 132018 parameter text with newlines, tabs or
  more than four spaces in a row, 130429 throughput, 131000 something went wrong.
- THROUGHPUT_DOC: 80 messages per second per business number by default, then 130429.
- WEBHOOK_DOC: notifications signed with `X-Hub-Signature-256` (HMAC-SHA256 of the raw body
  with the app secret); statuses `sent`, `delivered`, `read`, `failed`; inbound messages.

Tests drive it directly (`FakeGraph(...).start()`, `fail_next`, `sent`, `send_status`,
`send_reply`, `templates`).
"""

from __future__ import annotations

import base64
import collections
import itertools
import json
import logging
import re
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import Any

import requests

from messaging.inbound import signature
from tenants.loopback import FakeServer

log = logging.getLogger(__name__)

OVERVIEW_DOC = "https://developers.facebook.com/docs/whatsapp/cloud-api/overview/"
# Meta's own SDK reference for the template object sent, and the templates' variables
# ({{1}}, {{2}}… in the body) as the Business Management API defines them.
TEMPLATES_DOC = "https://whatsapp.github.io/WhatsApp-Nodejs-SDK/api-reference/types/TemplateObject"
TEMPLATE_VARIABLES_DOC = (
    "https://developers.facebook.com/docs/whatsapp/business-management-api/message-templates"
)
ERRORS_DOC = (
    "https://developers.facebook.com/documentation/business-messaging/whatsapp/support/error-codes/"
)
THROUGHPUT_DOC = (
    "https://developers.facebook.com/documentation/business-messaging/whatsapp/throughput"
)
WEBHOOK_DOC = (
    "https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/"
    "create-webhook-endpoint"
)

DEFAULT_MPS = 80  # THROUGHPUT_DOC
PATH = re.compile(r"/(v\d{1,3}\.\d)/(\d+)/messages")
# OVERVIEW_DOC: "to" is the customer's number with its country code, "+" optional.
RECIPIENT = re.compile(r"\+?\d{8,15}")
# ERRORS_DOC 132018: a variable may not hold newlines, tabs or more than 4 spaces in a row.
BAD_PARAMETER_TEXT = re.compile(r"[\n\t]| {5,}")
WINDOW_SECONDS = 24 * 3600  # ERRORS_DOC 131047


def graph_error(status: int, code: int, message: str, details: str = "") -> tuple[int, dict]:
    """(HTTP status, body) in the Graph API's error shape (ERRORS_DOC)."""
    error: dict[str, Any] = {
        "message": f"(#{code}) {message}",
        "type": "OAuthException",
        "code": code,
        "fbtrace_id": base64.b32encode(str(time.time_ns()).encode()).decode()[:22],
    }
    if details:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    return status, {"error": error}


class FakeGraph(FakeServer):
    """One business number, its templates, and what was sent to it. Thread-safe."""

    def __init__(
        self,
        *,
        phone_number_id: str = "106540352242922",
        token: str = "EAAG-test-token",
        app_secret: str = "app-secret-test",
        webhook_url: str = "",
        mps: int = DEFAULT_MPS,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.phone_number_id = phone_number_id
        self.token = token
        self.app_secret = app_secret
        self.webhook_url = webhook_url
        self.mps = mps
        # (name, language) → status and the number of the body's variables ({{1}}, {{2}}…).
        self.templates: dict[tuple[str, str], dict[str, Any]] = {
            ("totem_vez_chegando", "pt_BR"): {"status": "APPROVED", "body_params": 2},
            ("totem_sua_vez", "pt_BR"): {"status": "APPROVED", "body_params": 2},
            ("totem_avaliacao", "pt_BR"): {"status": "APPROVED", "body_params": 2},
        }
        self.lock = threading.Lock()
        # Every accepted message: {"id", "to", "template", "language", "parameters"}.
        self.sent: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self.faults: list[int] = []
        self.recent: collections.deque[float] = collections.deque()
        # Last time each customer wrote to the number (opens the 24-hour window).
        self.last_inbound: dict[str, float] = {}
        self.ids = itertools.count(1)
        self.listen(self._handler(), host, port)

    # --- test controls ---------------------------------------------------------------------

    def fail_next(self, status: int = 500, times: int = 1) -> None:
        with self.lock:
            self.faults += [status] * times

    def sent_templates(self) -> list[tuple[str, str, list[str]]]:
        with self.lock:
            return [(m["to"], m["template"], m["parameters"]) for m in self.sent]

    def _notify(self, value: dict[str, Any]) -> requests.Response:
        """POST one notification to the app, signed as WEBHOOK_DOC says."""
        value = {
            "messaging_product": "whatsapp",
            "metadata": {
                "display_phone_number": "5511999990000",
                "phone_number_id": self.phone_number_id,
            },
            **value,
        }
        payload = {
            "object": "whatsapp_business_account",
            "entry": [
                {"id": "102290129340398", "changes": [{"field": "messages", "value": value}]}
            ],
        }
        body = json.dumps(payload).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": signature(self.app_secret, body),
        }
        return requests.post(self.webhook_url, data=body, headers=headers, timeout=5)

    def send_status(
        self, wamid: str, status: str, error_code: int | None = None
    ) -> requests.Response:
        with self.lock:
            message = next(m for m in self.sent if m["id"] == wamid)
        item: dict[str, Any] = {
            "id": wamid,
            "status": status,
            "timestamp": str(int(time.time())),
            "recipient_id": message["wa_id"],
        }
        if error_code is not None:
            item["errors"] = [{"code": error_code, "title": "error"}]
        return self._notify({"statuses": [item]})

    def send_reply(self, wa_id: str, text: str) -> requests.Response:
        with self.lock:
            self.last_inbound[wa_id] = time.time()
        message = {
            "from": wa_id,
            "id": f"wamid.in{next(self.ids)}",
            "timestamp": str(int(time.time())),
            "type": "text",
            "text": {"body": text},
        }
        return self._notify(
            {"contacts": [{"profile": {"name": "Cliente"}, "wa_id": wa_id}], "messages": [message]}
        )

    # --- the API ---------------------------------------------------------------------------

    def _throttled(self) -> bool:
        """THROUGHPUT_DOC: more than `mps` messages in the last second."""
        now = time.monotonic()
        while self.recent and now - self.recent[0] >= 1.0:
            self.recent.popleft()
        if len(self.recent) >= self.mps:
            return True
        self.recent.append(now)
        return False

    def handle(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict]:
        match = PATH.fullmatch(path)
        if not match:
            return graph_error(400, 2500, "Unknown path components", path)
        if headers.get("authorization", "") != f"Bearer {self.token}":
            return graph_error(401, 190, "Invalid OAuth access token - Cannot parse access token")
        if match[2] != self.phone_number_id:
            return graph_error(
                400, 100, "Unsupported post request. Object does not exist", match[2]
            )
        try:
            body = json.loads(raw)
        except ValueError:
            return graph_error(400, 100, "Invalid parameter", "The body is not JSON")
        if not isinstance(body, dict):
            return graph_error(400, 100, "Invalid parameter", "The body is not a JSON object")
        for field in ("messaging_product", "to", "type"):
            if field not in body:
                return graph_error(400, 131008, "Required parameter is missing", field)
        if body["messaging_product"] != "whatsapp":
            return graph_error(400, 100, "Invalid parameter", "messaging_product")
        to = body["to"]
        if not isinstance(to, str) or not RECIPIENT.fullmatch(to):
            return graph_error(400, 100, "Invalid parameter", "to")
        wa_id = to.lstrip("+")
        if body["type"] == "text":
            opened = self.last_inbound.get(wa_id)
            if opened is None or time.time() - opened > WINDOW_SECONDS:
                return graph_error(
                    400,
                    131047,
                    "Re-engagement message",
                    "More than 24 hours have passed since the recipient last replied.",
                )
            return self._accept(to, wa_id, {"template": "", "language": "", "parameters": []})
        if body["type"] != "template":
            return graph_error(400, 100, "Invalid parameter", "type")
        return self._template(to, wa_id, body.get("template"))

    def _template(self, to: str, wa_id: str, template: Any) -> tuple[int, dict]:
        if not isinstance(template, dict):
            return graph_error(400, 131008, "Required parameter is missing", "template")
        name = template.get("name")
        language = template.get("language")
        code = language.get("code") if isinstance(language, dict) else None
        if not isinstance(name, str) or not isinstance(code, str):
            return graph_error(
                400, 131008, "Required parameter is missing", "template.name/language.code"
            )
        known = self.templates.get((name, code))
        if known is None or known["status"] not in ("APPROVED", "PAUSED"):
            return graph_error(
                404,
                132001,
                "Template name does not exist in the translation",
                f"template name ({name}) does not exist in {code}",
            )
        if known["status"] == "PAUSED":
            return graph_error(400, 132015, "Template is Paused", name)
        texts: list[str] = []
        for component in template.get("components") or []:
            if not isinstance(component, dict) or component.get("type") != "body":
                continue
            for parameter in component.get("parameters") or []:
                if not isinstance(parameter, dict) or parameter.get("type") != "text":
                    return graph_error(400, 100, "Invalid parameter", "parameter type")
                text = parameter.get("text")
                if not isinstance(text, str) or not text:
                    return graph_error(400, 131008, "Required parameter is missing", "text")
                if BAD_PARAMETER_TEXT.search(text):
                    return graph_error(
                        400,
                        132018,
                        "There was an issue with the parameters in your template",
                        "Param text cannot have new-line/tab characters or more than 4 "
                        "consecutive spaces",
                    )
                texts.append(text)
        if len(texts) != known["body_params"]:
            return graph_error(
                400,
                132000,
                "Number of parameters does not match the expected number of params",
                f"body: number of localizable_params ({len(texts)}) does not match the expected "
                f"number of params ({known['body_params']})",
            )
        return self._accept(to, wa_id, {"template": name, "language": code, "parameters": texts})

    def _accept(self, to: str, wa_id: str, what: dict[str, Any]) -> tuple[int, dict]:
        if self._throttled():
            return graph_error(
                429, 130429, "Rate limit hit", "Cloud API message throughput has been reached."
            )
        wamid = "wamid." + base64.b64encode(f"fake-{next(self.ids)}".encode()).decode()
        self.sent.append({"id": wamid, "to": to, "wa_id": wa_id, **what})
        return 200, {
            "messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id": wa_id}],
            "messages": [{"id": wamid, "message_status": "accepted"}],
        }

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format, *args):  # noqa: A002 — the base class's name
                log.debug("fake Graph API: " + format, *args)

            def _answer(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                path = self.path.split("?", 1)[0]
                with fake.lock:
                    fake.requests.append({"path": path, "headers": headers, "body": raw})
                    fault = fake.faults.pop(0) if fake.faults else None
                    if fault is None:
                        status, answer = fake.handle(path, headers, raw)
                if fault is not None:
                    status, answer = graph_error(fault, 131000, "Something went wrong")
                self._answer(status, answer)

            def do_GET(self):
                self._answer(*graph_error(400, 100, "Unsupported get request"))

        return Handler
