"""A fake MercadoPago API on 127.0.0.1, for tests and the demo without an account.

It speaks the endpoints the official SDK calls for us (PIX payments, cancel, refunds, Point
payment intents) and enforces what MercadoPago documents for them: each rule below cites the
page it comes from, and a request the real API would refuse is refused here with the real
API's status code and error JSON (`{"message", "error", "status", "cause": [...]}`), so the
suite fails where production would (tests/test_mercadopago_contract.py sends one violating
request per rule). When asked to approve or refuse a payment (the demo's "simular pagamento"
and "simular recusa", payments/demo.py) it sends the app a notification shaped and signed as
the notifications page documents.

Tests drive it directly (`FakeMercadoPago.start()`, `fail_next`, `delay_next`, `approve`,
`reject`, `send_webhook`); the demo runs it with `manage.py run_fake_mercadopago`.
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
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler
from typing import Any

import requests

from payments.brcode import build_brcode
from payments.fake_mercadopago_orders import FakePointOrders
from tenants.loopback import FakeServer

log = logging.getLogger(__name__)


# The pages each rule follows (read December 2026).
CREATE_DOC = "https://www.mercadopago.com.br/developers/en/reference/payments/_payments/post"
PIX_DOC = (
    "https://www.mercadopago.com.br/developers/en/docs/checkout-api/integration-configuration/"
    "integrate-pix"
)
IDEMPOTENCY_DOC = (
    "https://www.mercadopago.com.br/developers/en/news/2023/01/04/"
    "Idempotency-key-usage-will-be-mandatory"
)
GET_DOC = "https://www.mercadopago.com.br/developers/en/reference/payments/_payments_id/get"
STATUS_DOC = (
    "https://www.mercadopago.com.br/developers/en/docs/checkout-api/response-handling/query-results"
)
INTENT_STATES_DOC = (
    "https://www.mercadopago.com.br/developers/en/docs/mp-point/integration-api/glossary"
)
CANCEL_DOC = (
    "https://www.mercadopago.com.br/developers/en/reference/chargebacks/_payments_payment_id/put"
)
REFUND_DOC = (
    "https://www.mercadopago.com.br/developers/en/reference/chargebacks/_payments_id_refunds/post"
)
NOTIFICATIONS_DOC = (
    "https://www.mercadopago.com.br/developers/en/docs/your-integrations/notifications/webhooks"
)
ERROR_SHAPE_DOC = "https://www.mercadopago.com.mx/developers/en/support/37025"

# The owner of every access token the fake accepts: the collector, who receives the money.
COLLECTOR_EMAIL = "conta-mercadopago@studio.test"
COLLECTOR_ID = 1_234_567_890

# "yyyy-MM-dd'T'HH:mm:ss.SSSZ" with the offset written as in the docs' example
# "2022-11-17T09:37:52.000-04:00" (CREATE_DOC, error 1001; PIX_DOC).
EXPIRY_FORMAT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}[+-]\d{2}:?\d{2}")
# PIX_DOC: a PIX's date_of_expiration must fall between 30 minutes and 30 days from the
# creation (the minimum was raised from 5 to 30 minutes; default 24 hours when absent).
PIX_SHORTEST, PIX_LONGEST = timedelta(minutes=30), timedelta(days=30)
# The states a payment can be cancelled from (CANCEL_DOC: "in_process, pending or authorized").
CANCELLABLE = ("pending", "in_process", "authorized")
# The states a payment still waits in, from which the customer's bank decides (STATUS_DOC:
# pending and in_process end approved or rejected).
UNDECIDED = ("pending", "in_process")
# The creates and refunds that must carry an X-Idempotency-Key (IDEMPOTENCY_DOC).
PAYMENT_POSTS = re.compile(r"/v1/payments(/\d+/refunds)?")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def manifest(data_id: str, request_id: str, ts: int | str) -> str:
    """The text MercadoPago signs (NOTIFICATIONS_DOC): `id:[data.id_url];request-id:
    [x-request-id_header];ts:[ts_header];`, an alphanumeric data.id lower-cased, absent parts
    left out."""
    parts = []
    if data_id:
        parts.append(f"id:{data_id.lower() if data_id.isalnum() else data_id}")
    if request_id:
        parts.append(f"request-id:{request_id}")
    parts.append(f"ts:{ts}")
    return ";".join(parts) + ";"


def sign(secret: str, data_id: str, request_id: str, ts: int | str) -> str:
    """The `x-signature` header MercadoPago would send for this notification."""
    text = manifest(data_id, request_id, ts)
    digest = hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()
    return f"ts={ts},v1={digest}"


def refusal(status: int, message: str, code: int | str, description: str = ""):
    """(status, body) in the real API's error shape (ERROR_SHAPE_DOC): message, error, status
    and the list of causes, each with its code from the endpoint's reference page."""
    error = {400: "bad_request", 401: "unauthorized", 404: "not_found"}.get(status, "error")
    cause = {"code": code, "description": description or message, "data": _now()}
    return status, {"message": message, "error": error, "status": status, "cause": [cause]}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class FakeMercadoPago(FakeServer):
    """The fake's state and its HTTP server. Thread-safe; every handler takes `self.lock`."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        webhook_url: str = "",
        secret: str = "",
        webhook_delay: float = 0.0,
        collector_email: str = COLLECTOR_EMAIL,
        ts_in_milliseconds: bool = True,
    ) -> None:
        self.webhook_url = webhook_url
        self.secret = secret
        self.webhook_delay = webhook_delay
        self.collector_email = collector_email
        # The notifications page's current example signs `ts=1742505638683` (milliseconds);
        # its older example and the SDKs use seconds. The fake sends milliseconds unless told.
        self.ts_in_milliseconds = ts_in_milliseconds
        self.lock = threading.Lock()
        self.payments: dict[str, dict[str, Any]] = {}
        self.intents: dict[str, dict[str, Any]] = {}
        self.by_key: dict[str, tuple[int, dict[str, Any]]] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        # Faults for the next API calls, in order: ("status", 503) or ("delay", seconds).
        self.faults: list[tuple[str, float]] = []
        self.ids = itertools.count(1_000_000_001)
        self.point = FakePointOrders(self)
        self.listen(self._handler(), host, port)

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
            if payment["status"] in UNDECIDED:
                payment.update(status="approved", status_detail="accredited", date_approved=_now())
        if notify:
            self.notify_later(payment_id)
        return payment

    def reject(self, payment_id: str, *, notify: bool = True) -> dict[str, Any]:
        """The customer's bank refused the payment and, by default, notify the app.

        STATUS_DOC: a bank-transfer payment (PIX is one: payment_type_id `bank_transfer`) ends
        `rejected` with `bank_error` when the payment "was rejected due to an error with the
        bank". Only a payment still undecided can be; a decided one keeps its status.
        """
        with self.lock:
            payment = self.payments[payment_id]
            if payment["status"] in UNDECIDED:
                payment.update(
                    status="rejected", status_detail="bank_error", date_last_updated=_now()
                )
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

    def reject_intent(self, intent_id: str, *, notify: bool = True) -> dict[str, Any]:
        """The terminal's transaction failed: INTENT_STATES_DOC, `Error` is the "final status of
        a payment intent when a transaction error occurs". No payment is made, so the app is
        told about the intent itself (topic `point_integration_wh`)."""
        with self.lock:
            intent = self.intents[intent_id]
            if intent["state"] in ("OPEN", "ON_TERMINAL"):
                intent["state"] = "ERROR"
        if notify:
            self.notify_later(intent_id, kind="point_integration_wh")
        return intent

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
        """POST a notification to the app as NOTIFICATIONS_DOC shows one: `data.id` and `type`
        in the query string, the body with `action`, `api_version`, `data.id`, `date_created`,
        `id`, `live_mode`, `type` and `user_id`, and the headers `x-request-id` and
        `x-signature: ts=…,v1=…` (or a signature of the test's, or none)."""
        request_id = request_id or str(uuid.uuid4())
        if ts is None:
            ts = int(time.time() * 1000) if self.ts_in_milliseconds else int(time.time())
        if signature is None:
            signature = sign(self.secret if secret is None else secret, data_id, request_id, ts)
        body = {
            "action": action or f"{kind}.updated",
            "api_version": "v1",
            "data": {"id": data_id},
            "date_created": _now(),
            "id": next(self.ids),
            "live_mode": False,
            "type": kind,
            "user_id": COLLECTOR_ID,
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
            "collector_id": COLLECTOR_ID,
            **extra,
        }
        self.payments[payment_id] = payment
        return payment

    def _create_payment(self, body: Any):
        """POST /v1/payments for a PIX, refused where the real API refuses (CREATE_DOC, PIX_DOC)."""
        if not isinstance(body, dict):
            return refusal(400, "Params Error", 1, "the body must be a JSON object")
        method = body.get("payment_method_id")
        # CREATE_DOC: payment_method_id is required ("Params Error"); an unknown one is error
        # 3011 "Not found payment_method". The fake speaks only PIX, all Totem sends here.
        if not method:
            return refusal(400, "Params Error", 1, "payment_method_id is required")
        if method != "pix":
            return refusal(400, "Not found payment_method", 3011)
        amount = body.get("transaction_amount")
        # CREATE_DOC, error 2072 "Invalid value for transaction_amount": a number above zero,
        # in centavos at most (BRL has two decimal places).
        if (
            isinstance(amount, bool)
            or not isinstance(amount, int | float)
            or amount <= 0
            or Decimal(str(amount)).as_tuple().exponent < -2
        ):
            return refusal(400, "Invalid value for transaction_amount", 2072)
        # The collector's site is Brazil (MLB): its payments are in BRL (GET_DOC, currency_id);
        # a create that names another currency is a parameter error (CREATE_DOC, error 1).
        if body.get("currency_id", "BRL") != "BRL":
            return refusal(400, "Params Error", 1, "currency_id must be BRL for this collector")
        payer = body.get("payer") if isinstance(body.get("payer"), dict) else {}
        email = payer.get("email")
        # PIX_DOC: the payer's e-mail is required for a PIX.
        if not isinstance(email, str) or not EMAIL.fullmatch(email):
            return refusal(400, "Params Error", 1, "payer.email is required and must be valid")
        # CREATE_DOC, errors 2034 "Invalid users involved" and 2060 "The customer can't be
        # equal to the collector": the payer's e-mail may not be the account's own.
        if email.casefold() == self.collector_email.casefold():
            return refusal(
                400, "Invalid users involved", 2060, "The customer can't be equal to the collector"
            )
        expiry = body.get("date_of_expiration")
        if expiry is not None:
            # CREATE_DOC, error 1001 "Date format must be yyyy-MM-dd'T'HH:mm:ss.SSSZ".
            try:
                if not isinstance(expiry, str) or not EXPIRY_FORMAT.fullmatch(expiry):
                    raise ValueError(expiry)
                ahead = datetime.fromisoformat(expiry) - datetime.now(UTC)
            except ValueError:
                return refusal(400, "Date format must be yyyy-MM-dd'T'HH:mm:ss.SSSZ", 1001)
            # PIX_DOC: between 30 minutes and 30 days from now.
            if not PIX_SHORTEST <= ahead <= PIX_LONGEST:
                return refusal(
                    400,
                    "Params Error",
                    1,
                    "date_of_expiration must be between 30 minutes and 30 days from now",
                )
        payment = self._new_payment(
            amount=amount,
            method="pix",
            reference=body.get("external_reference", ""),
            date_of_expiration=expiry,
            description=body.get("description", ""),
            payer={"email": email, "first_name": payer.get("first_name", "")},
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

    def _cancel_payment(self, payment: dict[str, Any], body: Any):
        """PUT /v1/payments/{id} `{"status": "cancelled"}` (CANCEL_DOC): the only update the
        endpoint takes for a payment, and only while it is in_process, pending or authorized."""
        status = body.get("status") if isinstance(body, dict) else None
        if status is None:
            return refusal(400, "Status attribute can't be null", 4017)
        if status != "cancelled":
            return refusal(400, "Invalid Status for Update", 2016)
        if payment["status"] not in CANCELLABLE:
            return refusal(
                400, "The action requested is not valid for the current payment state", 2018
            )
        payment.update(status="cancelled", status_detail="by_collector", date_last_updated=_now())
        return 200, payment

    def _refund(self, payment: dict[str, Any], body: Any):
        """POST /v1/payments/{id}/refunds (REFUND_DOC): no body refunds what is left, `amount`
        refunds part of it; only an approved payment can be refunded."""
        amount = body.get("amount") if isinstance(body, dict) else None
        if amount is not None:
            if isinstance(amount, bool) or not isinstance(amount, int | float):
                return refusal(400, "amount attribute must be numeric", 4041)
            if amount <= 0:
                return refusal(400, "amount attribute must be positive", 4040)
        if payment["status"] != "approved":
            return refusal(
                400, "The action requested is not valid for the current payment state", 2063
            )
        paid = Decimal(str(payment["transaction_amount"]))
        left = paid - Decimal(str(payment.get("transaction_amount_refunded", 0)))
        value = left if amount is None else Decimal(str(amount))
        if value > left:
            return refusal(400, "Params Error", 1, "amount is more than what is left to refund")
        refund = {
            "id": next(self.ids),
            "payment_id": payment["id"],
            "amount": float(value),
            "metadata": {},
            "source": {"id": str(COLLECTOR_ID), "name": "Studio", "type": "collector"},
            "date_created": _now(),
            "unique_sequence_number": None,
            "refund_mode": "standard",
            "adjustment_amount": 0,
            "status": "approved",
            "reason": None,
        }
        left -= value
        payment.setdefault("refunds", []).append(refund)
        payment["transaction_amount_refunded"] = float(paid - left)
        if left:
            payment.update(status_detail="partially_refunded")
        else:
            payment.update(status="refunded", status_detail="refunded")
        return 201, refund

    def handle(self, method: str, path: str, headers: dict[str, str], body: Any):
        """(status, json) for one API call. Called with the lock held."""
        if self.point.serves(path):  # the Point Orders API: fake_mercadopago_orders.py
            return self.point.handle(method, path, headers, body)
        if not headers.get("authorization", "").startswith("Bearer "):
            return refusal(401, "Must provide your access_token to proceed", 5)
        key = headers.get("x-idempotency-key", "")
        # IDEMPOTENCY_DOC: the header is mandatory on every payment create and refund
        # (REFUND_DOC, error 4292 "Header X-Idempotency-Key can't be null").
        if method == "POST" and not key and PAYMENT_POSTS.fullmatch(path):
            return refusal(400, "Header X-Idempotency-Key can't be null", 4292)
        if method == "POST" and key in self.by_key:
            return self.by_key[key]
        answer = self._route(method, path, body)
        if method == "POST" and key and answer[0] < 300:
            self.by_key[key] = answer
        return answer

    def _route(self, method: str, path: str, body: Any):
        if method == "POST" and path == "/v1/payments":
            return self._create_payment(body)
        if match := re.fullmatch(r"/v1/payments/(\d+)", path):
            payment = self.payments.get(match[1])
            if payment is None:
                # GET_DOC, CANCEL_DOC: an unknown id is a 404.
                return refusal(404, "Payment not found", 2000)
            if method == "GET":
                return 200, payment
            if method == "PUT":
                return self._cancel_payment(payment, body)
        if method == "POST" and (match := re.fullmatch(r"/v1/payments/(\d+)/refunds", path)):
            payment = self.payments.get(match[1])
            if payment is None:
                return refusal(404, "Payment not found", 2000)  # REFUND_DOC, 404 error 2000
            return self._refund(payment, body)
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
                    if match := re.fullmatch(r"/_fake/payments/(\d+)/reject", path):
                        return self._answer(200, fake.reject(match[1]))
                    if match := re.fullmatch(r"/_fake/intents/([^/]+)/approve", path):
                        return self._answer(200, fake.approve_intent(match[1]))
                    if match := re.fullmatch(r"/_fake/intents/([^/]+)/reject", path):
                        return self._answer(200, fake.reject_intent(match[1]))
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
