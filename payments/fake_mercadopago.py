"""A fake MercadoPago API on 127.0.0.1, for tests and the demo without an account.

It speaks the few endpoints the official SDK calls for us (PIX payments, refunds, Point
payment intents), honours `x-idempotency-key` on creates like the real API, and, when asked
to approve a payment ("simular pagamento"), sends the app a webhook signed exactly as
MercadoPago signs them (`x-signature: ts=…,v1=HMAC-SHA256("id:…;request-id:…;ts:…;")`).

Tests drive it directly (`FakeMercadoPago.start()`, `fail_next`, `delay_next`, `approve`,
`send_webhook`); the demo runs it with `manage.py run_fake_mercadopago`.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import logging
import re
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

from payments.brcode import build_brcode
from payments.fake_mercadopago_orders import FakePointOrders

log = logging.getLogger(__name__)


def sign(secret: str, data_id: str, request_id: str, ts: int | str) -> str:
    """The `x-signature` header MercadoPago would send for this notification."""
    manifest = f"id:{data_id};request-id:{request_id};ts:{ts};"
    digest = hmac.new(secret.encode(), manifest.encode(), hashlib.sha256).hexdigest()
    return f"ts={ts},v1={digest}"


class _Server(ThreadingHTTPServer):
    # The default backlog of 5 drops connections when 50 webhooks look a payment up at once;
    # the client then waits for TCP's retransmission (seconds) and times out.
    request_queue_size = 128
    daemon_threads = True


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class FakeMercadoPago:
    """The fake's state and its HTTP server. Thread-safe; every handler takes `self.lock`."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        webhook_url: str = "",
        secret: str = "",
        webhook_delay: float = 0.0,
    ) -> None:
        self.webhook_url = webhook_url
        self.secret = secret
        self.webhook_delay = webhook_delay
        self.lock = threading.Lock()
        self.payments: dict[str, dict[str, Any]] = {}
        self.intents: dict[str, dict[str, Any]] = {}
        self.by_key: dict[str, tuple[int, dict[str, Any]]] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        # Faults for the next API calls, in order: ("status", 503) or ("delay", seconds).
        self.faults: list[tuple[str, float]] = []
        self.ids = itertools.count(1_000_000_001)
        self.point = FakePointOrders(self)
        self.server = _Server((host, port), self._handler())
        self.thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeMercadoPago:
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- test controls -----------------------------------------------------------------------

    def fail_next(self, status: int = 503, times: int = 1) -> None:
        with self.lock:
            self.faults += [("status", status)] * times

    def delay_next(self, seconds: float, times: int = 1) -> None:
        with self.lock:
            self.faults += [("delay", seconds)] * times

    def created(self, path_prefix: str) -> list[tuple[str, str, dict[str, str]]]:
        return [r for r in self.requests if r[0] == "POST" and r[1].startswith(path_prefix)]

    def approve(self, payment_id: str, *, notify: bool = True) -> dict[str, Any]:
        """Mark a payment approved (the customer paid) and, by default, notify the app."""
        with self.lock:
            payment = self.payments[payment_id]
            if payment["status"] in ("pending", "in_process"):
                payment.update(status="approved", status_detail="accredited", date_approved=_now())
        if notify:
            self.notify_later(payment_id)
        return payment

    def approve_intent(self, intent_id: str, *, notify: bool = True) -> dict[str, Any]:
        """The customer tapped a card on the Point terminal: the intent ends with a payment."""
        with self.lock:
            intent = self.intents[intent_id]
            if intent["state"] != "FINISHED":
                payment = self._new_payment(
                    amount=intent["amount"] / 100,
                    method="debit_card",
                    reference=intent["additional_info"].get("external_reference", ""),
                    status="approved",
                )
                intent.update(state="FINISHED", payment={"id": int(payment["id"])})
            payment_id = str(intent["payment"]["id"])
        if notify:
            self.notify_later(payment_id)
        return self.payments[payment_id]

    def notify_later(self, payment_id: str, **webhook) -> None:
        # After our own HTTP answer: the app may be the one that asked for the approval.
        def run() -> None:
            time.sleep(self.webhook_delay)
            try:
                self.send_webhook(payment_id, **webhook)
            except requests.RequestException as error:
                log.warning("webhook for %s not delivered: %s", payment_id, error)

        threading.Thread(target=run, daemon=True).start()

    def send_webhook(
        self,
        data_id: str,
        *,
        kind: str = "payment",
        action: str = "",
        url: str = "",
        secret: str | None = None,
        request_id: str | None = None,
        ts: int | None = None,
        signature: str | None = None,
    ) -> requests.Response:
        """POST a notification to the app, signed like MercadoPago (or not, for tests)."""
        request_id = request_id or str(uuid.uuid4())
        ts = int(time.time()) if ts is None else ts
        if signature is None:
            signature = sign(self.secret if secret is None else secret, data_id, request_id, ts)
        body = {
            "action": action or f"{kind}.updated",
            "api_version": "v1",
            "type": kind,
            "data": {"id": data_id},
            "date_created": _now(),
            "live_mode": False,
        }
        headers = {"x-request-id": request_id, "Content-Type": "application/json"}
        if signature:
            headers["x-signature"] = signature
        return requests.post(
            url or self.webhook_url,
            params={"data.id": data_id, "type": kind},
            data=json.dumps(body),
            headers=headers,
            timeout=30,
        )

    # --- the API ------------------------------------------------------------------------------

    def _new_payment(
        self, *, amount: float, method: str, reference: str, status: str = "pending", **extra
    ) -> dict[str, Any]:
        payment_id = str(next(self.ids))
        payment = {
            "id": int(payment_id),
            "status": status,
            "status_detail": "pending_waiting_transfer" if status == "pending" else "accredited",
            "transaction_amount": amount,
            "currency_id": "BRL",
            "payment_method_id": method,
            "external_reference": reference,
            "date_created": _now(),
            "date_approved": _now() if status == "approved" else None,
            "live_mode": False,
            **extra,
        }
        self.payments[payment_id] = payment
        return payment

    def handle(self, method: str, path: str, headers: dict[str, str], body: Any):
        """(status, json) for one API call. Called with the lock held."""
        if self.point.serves(path):  # the Point Orders API: fake_mercadopago_orders.py
            return self.point.handle(method, path, headers, body)
        if not headers.get("authorization", "").startswith("Bearer "):
            return 401, {"message": "unauthorized", "error": "unauthorized", "status": 401}
        key = headers.get("x-idempotency-key", "")
        if method == "POST" and key in self.by_key:
            return self.by_key[key]
        answer = self._route(method, path, body)
        if method == "POST" and key and answer[0] < 300:
            self.by_key[key] = answer
        return answer

    def _route(self, method: str, path: str, body: Any):
        if method == "POST" and path == "/v1/payments":
            amount = body.get("transaction_amount")
            if not isinstance(amount, int | float) or amount <= 0:
                return 400, {"message": "invalid transaction_amount", "status": 400}
            if body.get("payment_method_id") != "pix" or not (body.get("payer") or {}).get("email"):
                return 400, {"message": "pix needs payment_method_id and payer.email"}
            payment = self._new_payment(
                amount=amount,
                method="pix",
                reference=body.get("external_reference", ""),
                date_of_expiration=body.get("date_of_expiration"),
                description=body.get("description", ""),
            )
            code = build_brcode(
                key="fake@mercadopago.test",
                name="MERCADO PAGO FAKE",
                city="SAO PAULO",
                amount=None,
                txid=f"MP{payment['id']}",
            )
            payment["point_of_interaction"] = {
                "type": "PIX",
                "transaction_data": {
                    "qr_code": code,
                    "qr_code_base64": "",
                    "ticket_url": f"{self.url}/checkout/pix/{payment['id']}",
                },
            }
            return 201, payment
        if match := re.fullmatch(r"/v1/payments/(\d+)", path):
            payment = self.payments.get(match[1])
            if payment is None:
                return 404, {"message": "Payment not found", "status": 404}
            if method == "GET":
                return 200, payment
            if method == "PUT" and body.get("status") == "cancelled":
                if payment["status"] not in ("pending", "in_process"):
                    return 400, {"message": f"cannot cancel a payment {payment['status']}"}
                payment.update(status="cancelled", status_detail="by_collector")
                return 200, payment
        if method == "POST" and (match := re.fullmatch(r"/v1/payments/(\d+)/refunds", path)):
            payment = self.payments.get(match[1])
            if payment is None:
                return 404, {"message": "Payment not found", "status": 404}
            if payment["status"] != "approved":
                return 400, {"message": f"cannot refund a payment {payment['status']}"}
            payment.update(status="refunded", status_detail="refunded")
            refund = {"id": next(self.ids), "payment_id": payment["id"], "status": "approved"}
            refund["amount"] = payment["transaction_amount"]
            return 201, refund
        if method == "POST" and (
            match := re.fullmatch(r"/point/integration-api/devices/([^/]+)/payment-intents", path)
        ):
            amount = body.get("amount")
            if not isinstance(amount, int) or amount <= 0:
                return 400, {"message": "amount must be a positive integer (cents)"}
            intent = {
                "id": str(uuid.uuid4()),
                "device_id": match[1],
                "amount": amount,
                "description": body.get("description", ""),
                "additional_info": body.get("additional_info") or {},
                "state": "OPEN",
            }
            self.intents[intent["id"]] = intent
            return 201, intent
        if method == "GET" and (
            match := re.fullmatch(r"/point/integration-api/payment-intents/([^/]+)", path)
        ):
            intent = self.intents.get(match[1])
            return (200, intent) if intent else (404, {"message": "intent not found"})
        if method == "DELETE" and (
            match := re.fullmatch(
                r"/point/integration-api/devices/([^/]+)/payment-intents/([^/]+)", path
            )
        ):
            intent = self.intents.get(match[2])
            if intent is None:
                return 404, {"message": "intent not found"}
            if intent["state"] == "FINISHED":
                return 409, {"message": "intent already finished"}
            intent["state"] = "CANCELED"
            return 200, {"id": intent["id"]}
        return 404, {"message": f"no route {method} {path}"}

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format, *args):  # noqa: A002 — the base class's name
                log.debug("fake MercadoPago: " + format, *args)

            def _answer(self, status: int, body: Any) -> None:
                data = b"" if body is None else json.dumps(body).encode()  # None: 204
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _serve(self, method: str) -> None:
                path = self.path.split("?", 1)[0]
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else {}
                except ValueError:
                    return self._answer(400, {"message": "invalid JSON"})
                if path.startswith("/_fake/"):
                    return self._control(method, path)
                headers = {k.lower(): v for k, v in self.headers.items()}
                with fake.lock:
                    fake.requests.append((method, path, headers))
                    fault = fake.faults.pop(0) if fake.faults else None
                if fault and fault[0] == "status":
                    return self._answer(int(fault[1]), {"message": "fake outage"})
                if fault and fault[0] == "delay":
                    time.sleep(fault[1])
                with fake.lock:
                    status, answer = fake.handle(method, path, headers, body)
                self._answer(status, answer)

            def _control(self, method: str, path: str) -> None:
                if method != "POST":
                    return self._answer(405, {"message": "POST only"})
                try:
                    if match := re.fullmatch(r"/_fake/payments/(\d+)/approve", path):
                        return self._answer(200, fake.approve(match[1]))
                    if match := re.fullmatch(r"/_fake/intents/([^/]+)/approve", path):
                        return self._answer(200, fake.approve_intent(match[1]))
                except KeyError:
                    return self._answer(404, {"message": "unknown payment"})
                return self._answer(404, {"message": "unknown control"})

            def do_GET(self):
                self._serve("GET")

            def do_POST(self):
                self._serve("POST")

            def do_PUT(self):
                self._serve("PUT")

            def do_DELETE(self):
                self._serve("DELETE")

        return Handler
