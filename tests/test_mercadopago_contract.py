"""The fake MercadoPago refuses what the real API documents it refuses (payments part).

One row per rule of payments/fake_mercadopago.py: a request that is valid but for that one
rule, sent over HTTP to the fake, must come back with the documented status, the real API's
error shape and the rule's cause code. A valid request is accepted first, so a fake that
refuses everything fails here too. The notification the fake sends is checked against the
shape the notifications page documents.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import mercadopago
import pytest
import requests
from mercadopago.config import RequestOptions

from payments.fake_mercadopago import (
    CANCEL_DOC,
    COLLECTOR_EMAIL,
    CREATE_DOC,
    GET_DOC,
    IDEMPOTENCY_DOC,
    PIX_DOC,
    REFUND_DOC,
    FakeMercadoPago,
)
from payments.providers.mercadopago import BaseUrlHttpClient


@pytest.fixture
def api():
    server = FakeMercadoPago(secret="s3cret").start()
    yield server
    server.stop()


def expiry(delta: timedelta, fmt: str = "%Y-%m-%dT%H:%M:%S.000-03:00") -> str:
    brasilia = datetime.now(UTC) - timedelta(hours=3) + delta
    return brasilia.strftime(fmt)


def pix(**changes) -> dict:
    """A PIX create the real API accepts; `changes` break one rule (None drops a field)."""
    body = {
        "transaction_amount": 125.5,
        "payment_method_id": "pix",
        "description": "Studio Alfa · C001",
        "external_reference": "42",
        "payer": {"email": "senha-1@pagador.totem.test", "first_name": "Maria"},
        "date_of_expiration": expiry(timedelta(minutes=45)),
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def call(api, method, path, body=None, *, key: str | None = "auto", token="TEST-token"):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if key:
        headers["X-Idempotency-Key"] = uuid.uuid4().hex if key == "auto" else key
    data = None if body is None else json.dumps(body)
    return requests.request(method, api.url + path, data=data, headers=headers, timeout=5)


def created(api, **changes) -> str:
    response = call(api, "POST", "/v1/payments", pix(**changes))
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def approved(api) -> str:
    payment_id = created(api)
    api.approve(payment_id, notify=False)
    return payment_id


# (rule, doc, how to break it, expected status, expected cause code)
RULES = [
    ("an access token is required", CREATE_DOC, "no_token", 401, 5),
    ("a create carries X-Idempotency-Key", IDEMPOTENCY_DOC, "create_no_key", 400, 4292),
    ("a refund carries X-Idempotency-Key", REFUND_DOC, "refund_no_key", 400, 4292),
    ("payment_method_id is required", CREATE_DOC, {"payment_method_id": None}, 400, 1),
    ("payment_method_id must exist", CREATE_DOC, {"payment_method_id": "pixx"}, 400, 3011),
    ("transaction_amount is above zero", CREATE_DOC, {"transaction_amount": 0}, 400, 2072),
    ("transaction_amount is not negative", CREATE_DOC, {"transaction_amount": -5}, 400, 2072),
    ("transaction_amount has 2 decimals", CREATE_DOC, {"transaction_amount": 10.005}, 400, 2072),
    ("transaction_amount is a number", CREATE_DOC, {"transaction_amount": "10.00"}, 400, 2072),
    ("the currency is the collector's", GET_DOC, {"currency_id": "USD"}, 400, 1),
    ("payer.email is required", PIX_DOC, {"payer": {"first_name": "Maria"}}, 400, 1),
    ("payer.email is an address", PIX_DOC, {"payer": {"email": "maria"}}, 400, 1),
    (
        "the payer is not the collector",
        CREATE_DOC,
        {"payer": {"email": COLLECTOR_EMAIL.upper()}},
        400,
        2060,
    ),
    (
        "a PIX expires 30 minutes or more ahead",
        PIX_DOC,
        {"date_of_expiration": expiry(timedelta(minutes=15))},
        400,
        1,
    ),
    (
        "a PIX expires 30 days ahead at most",
        PIX_DOC,
        {"date_of_expiration": expiry(timedelta(days=31))},
        400,
        1,
    ),
    (
        "date_of_expiration has milliseconds",
        CREATE_DOC,
        {"date_of_expiration": expiry(timedelta(hours=1), "%Y-%m-%dT%H:%M:%S-03:00")},
        400,
        1001,
    ),
    (
        "date_of_expiration has an offset",
        CREATE_DOC,
        {"date_of_expiration": expiry(timedelta(hours=1), "%Y-%m-%dT%H:%M:%S.000")},
        400,
        1001,
    ),
    ("GET of an unknown payment is 404", GET_DOC, "get_unknown", 404, 2000),
    ("a cancel names the status", CANCEL_DOC, "cancel_no_status", 400, 4017),
    ("an update only cancels", CANCEL_DOC, "update_to_approved", 400, 2016),
    ("only a pending payment is cancelled", CANCEL_DOC, "cancel_approved", 400, 2018),
    ("an unknown payment is not refunded", REFUND_DOC, "refund_unknown", 404, 2000),
    ("only an approved payment is refunded", REFUND_DOC, "refund_pending", 400, 2063),
    ("a refund amount is a number", REFUND_DOC, "refund_text_amount", 400, 4041),
    ("a refund amount is positive", REFUND_DOC, "refund_negative", 400, 4040),
]


def violate(api, how):
    if isinstance(how, dict):
        return call(api, "POST", "/v1/payments", pix(**how))
    if how == "no_token":
        return call(api, "POST", "/v1/payments", pix(), token="")
    if how == "create_no_key":
        return call(api, "POST", "/v1/payments", pix(), key=None)
    if how == "refund_no_key":
        return call(api, "POST", f"/v1/payments/{approved(api)}/refunds", {}, key=None)
    if how == "get_unknown":
        return call(api, "GET", "/v1/payments/999")
    if how == "cancel_no_status":
        return call(api, "PUT", f"/v1/payments/{created(api)}", {"description": "x"})
    if how == "update_to_approved":
        return call(api, "PUT", f"/v1/payments/{created(api)}", {"status": "approved"})
    if how == "cancel_approved":
        return call(api, "PUT", f"/v1/payments/{approved(api)}", {"status": "cancelled"})
    if how == "refund_unknown":
        return call(api, "POST", "/v1/payments/999/refunds", {})
    if how == "refund_pending":
        return call(api, "POST", f"/v1/payments/{created(api)}/refunds", {})
    if how == "refund_text_amount":
        return call(api, "POST", f"/v1/payments/{approved(api)}/refunds", {"amount": "5"})
    if how == "refund_negative":
        return call(api, "POST", f"/v1/payments/{approved(api)}/refunds", {"amount": -1})
    raise AssertionError(how)


@pytest.mark.parametrize(("rule", "doc", "how", "status", "code"), RULES, ids=[r[0] for r in RULES])
def test_the_fake_refuses_what_mercadopago_documents_it_refuses(api, rule, doc, how, status, code):
    assert doc.startswith("https://www.mercadopago.com")
    response = violate(api, how)
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"message", "error", "status", "cause"}
    assert body["status"] == status and body["message"] and body["error"]
    assert [cause["code"] for cause in body["cause"]] == [code]


def test_the_valid_requests_each_rule_starts_from_are_accepted(api):
    payment_id = created(api)
    assert call(api, "GET", f"/v1/payments/{payment_id}").json()["status"] == "pending"
    cancelled = call(api, "PUT", f"/v1/payments/{payment_id}", {"status": "cancelled"})
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    paid = approved(api)
    part = call(api, "POST", f"/v1/payments/{paid}/refunds", {"amount": 25.5})
    assert part.status_code == 201 and part.json()["status"] == "approved"
    assert api.payments[paid]["status_detail"] == "partially_refunded"
    rest = call(api, "POST", f"/v1/payments/{paid}/refunds", {})
    assert rest.status_code == 201 and rest.json()["amount"] == 100.0
    assert api.payments[paid]["status"] == "refunded"
    # The edges of the PIX window are inside it.
    created(api, date_of_expiration=expiry(timedelta(minutes=31)))
    created(api, date_of_expiration=expiry(timedelta(days=29)), transaction_amount=0.01)


def test_the_official_sdk_meets_the_same_refusals(api):
    """The SDK the product uses, pointed at the fake: its answer carries the refusal."""
    sdk = mercadopago.SDK(
        "TEST-token",
        http_client=BaseUrlHttpClient(api.url),
        request_options=RequestOptions(max_retries=0),
    )
    result = sdk.payment().create(pix(date_of_expiration=expiry(timedelta(minutes=15))))
    assert result["status"] == 400 and result["response"]["cause"][0]["code"] == 1
    assert sdk.payment().create(pix())["status"] == 201


class Capture(BaseHTTPRequestHandler):
    """The app's webhook URL, as far as the fake can tell: keeps what it is sent."""

    received: list[tuple[str, dict[str, str], bytes]] = []

    def do_POST(self):  # noqa: N802 — the base class's name
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        Capture.received.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_the_fake_notifies_with_the_documented_shape_and_signature():
    """NOTIFICATIONS_DOC: query `data.id` and `type`; body with action, api_version, data.id,
    date_created, id, live_mode, type, user_id; `x-request-id`; `x-signature: ts=…,v1=…`
    over `id:…;request-id:…;ts:…;` with the application's secret."""
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Capture)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    Capture.received = []
    api = FakeMercadoPago(secret="s3cret", webhook_url=f"http://127.0.0.1:{receiver.server_port}/")
    try:
        api.send_webhook("1234567890")
    finally:
        receiver.shutdown()
        receiver.server_close()
    ((path, headers, raw),) = Capture.received
    query = parse_qs(urlsplit(path).query)
    assert query == {"data.id": ["1234567890"], "type": ["payment"]}
    body = json.loads(raw)
    assert set(body) == {
        "action",
        "api_version",
        "data",
        "date_created",
        "id",
        "live_mode",
        "type",
        "user_id",
    }
    assert (body["type"], body["action"], body["data"]) == (
        "payment",
        "payment.updated",
        {"id": "1234567890"},
    )
    ts, v1 = re.fullmatch(r"ts=(\d{13}),v1=([0-9a-f]{64})", headers["x-signature"]).groups()
    request_id = headers["x-request-id"]
    text = f"id:1234567890;request-id:{request_id};ts:{ts};"
    assert hmac.compare_digest(v1, hmac.new(b"s3cret", text.encode(), hashlib.sha256).hexdigest())
