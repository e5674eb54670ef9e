"""Card at the counter through MercadoPago's Orders API: the real SDK against the fake API.

A card sale creates a Point order for the tenant's terminal; the fake moves it as the
terminal would (payments/fake_mercadopago_orders.py) and MercadoPago's `order` notification,
signed, reaches the webhook, which looks the order up and applies it.
"""

from __future__ import annotations

import importlib
import json
import re
import time
from datetime import timedelta
from decimal import Decimal

import pytest
import requests
from django.apps import apps
from django.test import Client
from django.utils import timezone

from equipment.models import Kind
from payments.fake_mercadopago import sign
from payments.fake_mercadopago_orders import DEMO_TERMINAL
from payments.models import Notification, PaymentSession, PaymentSettings, Receipt
from payments.providers.mercadopago_orders import remote_from_order, waiting_message
from payments.sessions import (
    PaymentError,
    PaymentRetry,
    abandon,
    cancel_session,
    expire_pending_sessions,
    refresh_status,
    refund,
    start_payment,
)
from tests.conftest import MP_SECRET, make_device, make_ticket
from tests.test_kiosk import buy, fill_cart, pair, url
from tests.test_panel import panel_url, pick_station

ORDER_ID_SHAPE = r"ORD[0-9A-Z]{26}"


@pytest.fixture
def ticket(tenant, cryo, towel):
    """R$ 120 of cryotherapy + a R$ 5 towel."""
    return make_ticket(tenant, [cryo], extras={towel.id: 1})


def reload(obj):
    obj.refresh_from_db()
    return obj


def wait_for(check, seconds=5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return False


def order_webhook(client, tenant, order_id: str, action: str, *, request_id="req-1"):
    """MercadoPago's `order` notification as the Point notifications page shows it."""
    ts = int(time.time())
    return client.post(
        f"/t/{tenant.slug}/pagamentos/webhook/mercadopago/?data.id={order_id}&type=order",
        data=json.dumps(
            {
                "action": action,
                "api_version": "v1",
                "application_id": "76506430185983",
                "date_created": "2026-12-01T12:00:00Z",
                "id": "123456",
                "live_mode": False,
                "type": "order",
                "user_id": 2025701502,
                "data": {"id": order_id},
            }
        ),
        content_type="application/json",
        headers={
            "x-request-id": request_id,
            "x-signature": sign(MP_SECRET, order_id, request_id, ts),
        },
    )


@pytest.fixture
def crio_1(tenant, cryo):
    """The device that runs cryotherapy, and the operator's station."""
    return make_device(tenant, "Crio 1", [cryo])


@pytest.fixture
def kiosk(tenant, crio_1) -> Client:
    client = Client()
    pair(client, tenant, make_device(tenant, "Totem 1", kind=Kind.KIOSK))
    return client


def card_sale(ticket):
    """A card session whose order the terminal has on screen."""
    return start_payment(ticket, "card")


# --- the sale ---------------------------------------------------------------------------------


def test_a_card_sale_creates_a_point_order_with_the_documented_body_and_our_idempotency_key(
    fake, mp, ticket
):
    session = card_sale(ticket)
    assert session.status == "pending" and session.provider == "mercadopago"
    assert re.fullmatch(ORDER_ID_SHAPE, session.external_id)
    ((_method, path, body),) = fake.point.bodies
    assert path == "/v1/orders"
    assert body == {
        "type": "point",
        "external_reference": str(session.pk),
        "expiration_time": "PT15M",  # the kiosk's own wait (tenant.payment_timeout_minutes)
        "description": f"{ticket.tenant.name} · {ticket.number}",
        "transactions": {"payments": [{"amount": "125.00"}]},
        "config": {"point": {"terminal_id": DEMO_TERMINAL}},
    }
    ((_m, _p, headers),) = fake.created("/v1/orders")
    assert headers["x-idempotency-key"] == session.idempotency_key
    assert session.provider_status == "created/created"
    # A double tap resumes the same session: no second order for the terminal.
    assert start_payment(ticket, "card").pk == session.pk
    assert len(fake.point.orders) == 1


def test_a_create_that_failed_in_transit_is_retried_with_the_same_key_and_makes_one_order(
    fake, mp, ticket
):
    fake.fail_next(503)
    with pytest.raises(PaymentRetry):
        start_payment(ticket, "card")
    session = PaymentSession.objects.get(ticket=ticket)
    assert session.status == "pending" and not session.external_id
    again = start_payment(ticket, "card")
    assert again.pk == session.pk and again.external_id
    keys = [h["x-idempotency-key"] for _m, _p, h in fake.created("/v1/orders")]
    assert keys == [session.idempotency_key] * 2 and len(fake.point.orders) == 1


def test_a_terminal_busy_with_another_order_refuses_the_sale_clearly(fake, mp, tenant, cryo):
    first = card_sale(make_ticket(tenant, [cryo]))
    second = make_ticket(tenant, [cryo])
    with pytest.raises(PaymentError, match="another|outro|outra"):
        start_payment(second, "card")
    failed = PaymentSession.objects.get(ticket=second)
    assert failed.status == "failed" and reload(first).status == "pending"


def test_a_terminal_id_that_is_not_mercadopagos_format_fails_before_any_call(fake, mp, ticket):
    PaymentSettings.objects.filter(pk=mp.pk).update(mercadopago_point_device="pax a910")
    with pytest.raises(PaymentError):
        start_payment(ticket, "card")
    assert fake.point.bodies == [] and PaymentSession.objects.get().status == "failed"


# --- paid, declined, cancelled at the terminal ---------------------------------------------


def test_paid_at_the_terminal_and_notified_the_session_is_paid_and_the_ticket_queued(
    fake, mp, ticket, client
):
    session = card_sale(ticket)
    fake.point.pick_up(session.external_id)
    order = fake.point.finish(session.external_id, "processed", notify=False)
    response = order_webhook(client, ticket.tenant, session.external_id, "order.processed")
    assert response.status_code == 200 and response.content == b"confirmed"
    session, ticket = reload(session), reload(ticket)
    assert session.status == "paid" and session.paid_at
    assert session.provider_payment_id == order["transactions"]["payments"][0]["id"]
    assert session.provider_status == "processed/accredited"
    assert ticket.status == "in_queue"
    assert Receipt.objects.get(session=session).content["total"] == "125.00"
    note = Notification.objects.get()
    assert (note.kind, note.data_id, note.outcome) == ("order", session.external_id, "confirmed")
    # The same notification again changes nothing.
    order_webhook(client, ticket.tenant, session.external_id, "order.processed", request_id="2")
    assert Notification.objects.latest("received_at").outcome == "duplicate"


def test_the_fake_notifies_the_app_by_itself_when_the_terminal_is_paid(
    fake, mp, ticket, live_server
):
    fake.webhook_url = f"{live_server.url}/t/{ticket.tenant.slug}/pagamentos/webhook/mercadopago/"
    session = card_sale(ticket)
    fake.point.finish(session.external_id, "processed")
    assert wait_for(lambda: reload(ticket).status == "in_queue")


def test_an_unsigned_order_notification_is_refused_and_looks_nothing_up(fake, mp, ticket, client):
    session = card_sale(ticket)
    fake.point.finish(session.external_id, "processed", notify=False)
    response = client.post(
        f"/t/{ticket.tenant.slug}/pagamentos/webhook/mercadopago/"
        f"?data.id={session.external_id}&type=order",
        data="{}",
        content_type="application/json",
    )
    assert response.status_code == 401 and reload(session).status == "pending"


def test_cancelled_on_the_terminal_the_session_ends_and_the_kiosk_offers_another_method(
    fake, mp, tenant, cryo, kiosk
):
    fill_cart(kiosk, tenant, [cryo])
    assert buy(kiosk, tenant, "card").status_code == 302
    session = PaymentSession.objects.get()
    assert session.method == "card" and session.external_id
    fake.point.finish(session.external_id, "canceled", notify=False)
    refresh_status(session)
    session = reload(session)
    assert session.status == "canceled"
    assert session.provider_status == "canceled/canceled_on_terminal"
    assert session.ticket.status == "pending_payment"
    page = kiosk.get(url(tenant, "kiosk_payment")).content.decode()
    assert 'data-testid="pay-cash"' in page and 'data-testid="pay-card"' in page
    # The customer pays another way: the ticket goes on.
    kiosk.post(url(tenant, "kiosk_payment"), {"method": "cash"})
    assert PaymentSession.objects.filter(method="cash", status="pending").exists()


def test_declined_at_the_terminal_the_session_fails_with_the_issuers_reason(
    fake, mp, ticket, client
):
    session = card_sale(ticket)
    fake.point.finish(session.external_id, "failed", "rejected_by_issuer", notify=False)
    assert order_webhook(client, ticket.tenant, session.external_id, "order.failed").content == (
        b"updated"
    )
    session = reload(session)
    assert session.status == "failed" and session.provider_status == "failed/rejected_by_issuer"
    assert reload(ticket).status == "pending_payment"


def test_the_kiosk_and_the_panel_say_what_the_terminal_waits_for(
    fake, mp, tenant, cryo, kiosk, crio_1, client, alice
):
    fill_cart(kiosk, tenant, [cryo])
    buy(kiosk, tenant, "card")
    session = PaymentSession.objects.get()
    fake.point.pick_up(session.external_id)
    refresh_status(session)
    assert reload(session).provider_status == "at_terminal/at_terminal"
    page = kiosk.get(url(tenant, "kiosk_payment")).content.decode()
    assert "Insira, aproxime ou passe o cartão na maquininha." in page
    client.force_login(alice)
    pick_station(client, tenant, crio_1)
    panel = client.get(panel_url(tenant)).content.decode()
    assert "Insira, aproxime ou passe o cartão na maquininha." in panel


def test_action_required_keeps_the_session_pending_flags_it_once_and_asks_for_staff(
    fake, mp, ticket, client
):
    session = card_sale(ticket)
    fake.point.finish(session.external_id, "action_required", notify=False)
    for n in range(2):
        response = order_webhook(
            client, ticket.tenant, session.external_id, "order.action_required", request_id=str(n)
        )
        assert response.status_code == 200
    session = reload(session)
    assert session.status == "pending"
    assert session.provider_status == "action_required/check_on_terminal"
    assert session.needs_attention and session.attention_note.count("action_required") == 1
    assert waiting_message(session.provider_status) == (
        "A maquininha pede que um atendente verifique o pagamento."
    )
    # The API cannot cancel it: the customer leaving ends our session, the flag stays.
    abandon(ticket.tenant, ticket.pk, reason="desistiu")
    assert not [b for b in fake.point.bodies if b[1].endswith("/cancel")]
    session = reload(session)
    assert session.status == "canceled" and session.needs_attention


# --- cancel and refund ------------------------------------------------------------------------


def test_cancelling_from_the_kiosk_cancels_the_order_through_the_api(fake, mp, ticket, tenant):
    session = card_sale(ticket)
    cancel_session(tenant, session.pk, reason="desistiu")
    assert reload(session).status == "canceled"
    order = fake.point.orders[session.external_id]
    assert (order["status"], order["transactions"]["payments"][0]["status_detail"]) == (
        "canceled",
        "canceled_by_api",
    )
    ((_m, path, headers),) = [r for r in fake.created("/v1/orders/") if r[1].endswith("/cancel")]
    assert path == f"/v1/orders/{session.external_id}/cancel"
    assert headers["x-idempotency-key"] == f"cancel-{session.idempotency_key}"


def test_an_order_on_the_terminals_screen_is_cancelled_there_on_request(fake, mp, ticket, tenant):
    session = card_sale(ticket)
    fake.point.pick_up(session.external_id)
    abandon(tenant, ticket.pk, reason="foi embora")
    assert reload(session).status == "canceled" and reload(ticket).status == "cancelled"
    cancels = [r for r in fake.created("/v1/orders/") if r[1].endswith("/cancel")]
    assert cancels[0][2]["x-allow-cancelable-status"] == "at_terminal"
    # 202: the terminal drops it a moment later, and the terminal is free for the next sale.
    assert wait_for(lambda: fake.point.orders[session.external_id]["status"] == "canceled")


def test_money_taken_after_the_kiosk_gave_up_is_refunded_through_the_orders_api(
    fake, mp, ticket, tenant, client
):
    fake.point.cancels_at_terminal = False  # older terminal software: 409 cannot_cancel_order
    session = card_sale(ticket)
    fake.point.pick_up(session.external_id)
    cancel_session(tenant, session.pk, reason="desistiu")
    assert reload(session).status == "canceled"
    fake.point.finish(session.external_id, "processed", notify=False)
    assert order_webhook(client, tenant, session.external_id, "order.processed").content == (
        b"late"
    )
    session = reload(session)
    assert session.status == "refunded" and session.needs_attention
    assert session.refund_external_id.startswith("REF")
    assert fake.point.orders[session.external_id]["status"] == "refunded"
    assert reload(ticket).status == "pending_payment"


def test_a_manager_refunds_a_card_sale_with_a_total_refund_of_the_order(
    fake, mp, ticket, tenant, client, bob, alice
):
    session = card_sale(ticket)
    fake.point.finish(session.external_id, "processed", notify=False)
    order_webhook(client, tenant, session.external_id, "order.processed")
    with pytest.raises(PaymentError):
        refund(tenant, session.pk, alice, "operador não pode")
    refund(tenant, session.pk, bob, "cliente desistiu")
    session = reload(session)
    assert session.status == "refunded" and session.refunded_by == bob
    assert session.refund_external_id.startswith("REF")
    ((method, path, body),) = [b for b in fake.point.bodies if b[1].endswith("/refund")]
    assert (method, path, body) == ("POST", f"/v1/orders/{session.external_id}/refund", {})
    ((_m, _p, headers),) = [r for r in fake.created("/v1/orders/") if r[1].endswith("/refund")]
    assert headers["x-idempotency-key"] == f"refund-{session.idempotency_key}"
    assert reload(ticket).status == "cancelled"
    with pytest.raises(PaymentError):
        refund(tenant, session.pk, bob, "de novo")


def test_an_order_left_on_the_terminal_past_the_kiosks_wait_is_cancelled_by_expiry(
    fake, mp, ticket
):
    session = card_sale(ticket)
    fake.point.pick_up(session.external_id)
    assert expire_pending_sessions(timezone.now() + timedelta(minutes=16)) == 1
    assert reload(session).status == "canceled" and reload(ticket).status == "cancelled"
    assert wait_for(lambda: fake.point.orders[session.external_id]["status"] == "canceled")


def test_the_demo_button_pays_the_order_through_the_sandbox_events_endpoint(
    fake, mp, ticket, client
):
    session = card_sale(ticket)
    response = client.post(f"/t/{ticket.tenant.slug}/pagamentos/{session.pk}/simular/")
    assert response.status_code == 202
    order = fake.point.orders[session.external_id]
    assert (order["status"], order["transactions"]["payments"][0]["status_detail"]) == (
        "processed",
        "accredited",
    )


# --- every documented state -------------------------------------------------------------------

# (order status, order status_detail, transaction status_detail) from the Point state page,
# https://www.mercadopago.com.br/developers/en/docs/mp-point/resources/status-order-transaction
# → our session status ("" = still pending) and whether the kiosk gets a sentence.
STATES = [
    ("created", "created", "created", "", True),
    ("at_terminal", "at_terminal", "at_terminal", "", True),
    ("at_terminal", "at_terminal", "cancellation_requested", "", True),
    ("action_required", "action_required", "check_on_terminal", "", True),
    ("action_required", "action_required", "waiting_payment", "", True),
    ("processed", "processed", "accredited", "paid", False),
    ("processed", "accredited", "accredited", "paid", False),  # the notification's form
    ("processed", "partially_refunded", "accredited", "refunded", False),
    ("refunded", "refunded", "refunded", "refunded", False),
    ("canceled", "canceled", "canceled", "canceled", False),
    ("canceled", "canceled", "canceled_by_api", "canceled", False),
    ("canceled", "canceled", "canceled_on_terminal", "canceled", False),
    ("expired", "expired", "expired", "canceled", False),
    *[
        ("failed", "failed", detail, "failed", False)
        for detail in (
            "failed",
            "bad_filled_card_data",
            "high_risk",
            "rejected_by_issuer",
            "required_call_for_authorize",
            "max_attempts_exceeded",
            "card_disabled",
            "insufficient_amount",
            "amount_limit_exceeded",
            "processing_error",
            "invalid_installments",
            "in_review",
        )
    ],
]


@pytest.mark.parametrize(("status", "own", "detail", "expected", "says"), STATES)
def test_every_documented_order_state_maps_to_a_session_state(status, own, detail, expected, says):
    order = {
        "id": "ORD01JQ4S4KY8HWQ6NA5PXB65B3D3",
        "status": status,
        "status_detail": own,
        "external_reference": "42",
        "currency": "BRL",
        "transactions": {
            "payments": [
                {"id": "PAY01", "amount": "10.00", "status": status, "status_detail": detail}
            ]
        },
    }
    remote = remote_from_order(order)
    assert remote.status == expected
    assert remote.amount == Decimal("10.00") and remote.external_reference == "42"
    assert bool(waiting_message(remote.provider_status)) is says
    # Only a state that waits on a person asks for a manager's attention.
    assert bool(remote.attention) is (status == "action_required")


def test_an_order_state_mercadopago_adds_later_waits_and_asks_for_attention():
    remote = remote_from_order({"id": "ORD1", "status": "on_hold", "transactions": {}})
    assert remote.status == "" and "on_hold" in remote.attention


# --- the fake's rules, each broken once -------------------------------------------------------


def good_body(**changes) -> dict:
    body = {
        "type": "point",
        "external_reference": "ref_1",
        "expiration_time": "PT15M",
        "description": "Studio · C001",
        "transactions": {"payments": [{"amount": "125.00"}]},
        "config": {"point": {"terminal_id": DEMO_TERMINAL}},
    }
    body.update(changes)
    return body


class Api:
    """Plain HTTP to the fake, headers and all, so every rule can be broken."""

    def __init__(self, fake) -> None:
        self.fake = fake
        self.n = 0

    def __call__(self, method, path, body=None, *, key: str | None = "", token=True, **headers):
        self.n += 1
        sent = {"Content-Type": "application/json", **headers}
        if token:
            sent["Authorization"] = "Bearer TEST-token"
        if key is not None:
            sent["X-Idempotency-Key"] = key or f"key-{self.n}"
        data = None if body is None else json.dumps(body)
        return requests.request(method, self.fake.url + path, data=data, headers=sent, timeout=5)

    def order(self, status="created", **body) -> str:
        """A fresh order in `status` (the terminal is freed first)."""
        for other in self.fake.point.orders.values():
            if other["status"] in ("created", "at_terminal"):
                self.fake.point.finish(other["id"], "expired", notify=False)
        order_id = self("POST", "/v1/orders", good_body(**body)).json()["id"]
        if status == "at_terminal":
            self.fake.point.pick_up(order_id)
        elif status == "refunded":
            self.fake.point.finish(order_id, "processed", notify=False)
            self("POST", f"/v1/orders/{order_id}/refund")
        elif status != "created":
            self.fake.point.finish(order_id, status, notify=False)
        return order_id


def two_payments(api):
    payments = {"payments": [{"amount": "1.00"}, {"amount": "2.00"}]}
    return api("POST", "/v1/orders", good_body(transactions=payments))


def same_key_other_body(api):
    first = api("POST", "/v1/orders", good_body(external_reference="a"), key="k-1").json()
    api.fake.point.finish(first["id"], "expired", notify=False)  # the terminal is free again
    return api("POST", "/v1/orders", good_body(external_reference="b"), key="k-1")


def busy_terminal(api):
    api.order()
    return api("POST", "/v1/orders", good_body(external_reference="second"))


RULES = [
    # (rule, request that breaks it, status, code)
    ("a token is required", lambda a: a("GET", "/v1/orders/X", token=False), 401, "unauthorized"),
    (
        "create needs X-Idempotency-Key",
        lambda a: a("POST", "/v1/orders", good_body(), key=None),
        400,
        "empty_required_header",
    ),
    (
        "no property the API does not know",
        lambda a: a("POST", "/v1/orders", good_body(notification_url="https://x")),
        400,
        "unsupported_properties",
    ),
    (
        "the terminal is required",
        lambda a: a("POST", "/v1/orders", good_body(config={"point": {}})),
        400,
        "required_properties",
    ),
    (
        "the amount is a string",
        lambda a: a("POST", "/v1/orders", good_body(transactions={"payments": [{"amount": 125}]})),
        400,
        "property_type",
    ),
    (
        "the amount has 2 decimals at most",
        lambda a: a(
            "POST", "/v1/orders", good_body(transactions={"payments": [{"amount": "1.255"}]})
        ),
        400,
        "property_value",
    ),
    (
        "the amount is not zero",
        lambda a: a(
            "POST", "/v1/orders", good_body(transactions={"payments": [{"amount": "0.00"}]})
        ),
        400,
        "property_value",
    ),
    (
        "type is point",
        lambda a: a("POST", "/v1/orders", good_body(type="qr")),
        400,
        "property_value",
    ),
    (
        "external_reference: letters, digits, - and _",
        lambda a: a("POST", "/v1/orders", good_body(external_reference="ticket 1")),
        400,
        "property_value",
    ),
    (
        "description: 150 characters at most",
        lambda a: a("POST", "/v1/orders", good_body(description="x" * 151)),
        400,
        "property_value",
    ),
    (
        "expiration_time: PT30S at least",
        lambda a: a("POST", "/v1/orders", good_body(expiration_time="PT10S")),
        400,
        "property_value",
    ),
    (
        "expiration_time: PT3H at most",
        lambda a: a("POST", "/v1/orders", good_body(expiration_time="PT3H1M")),
        400,
        "property_value",
    ),
    (
        "terminal_id: type__serial",
        lambda a: a("POST", "/v1/orders", good_body(config={"point": {"terminal_id": "pax a910"}})),
        400,
        "property_value",
    ),
    (
        "print_on_terminal: seller_ticket or no_ticket",
        lambda a: a(
            "POST",
            "/v1/orders",
            good_body(config={"point": {"terminal_id": DEMO_TERMINAL, "print_on_terminal": "x"}}),
        ),
        400,
        "property_value",
    ),
    ("one payment per point order", two_payments, 400, "maximum_items"),
    (
        "at least one payment",
        lambda a: a("POST", "/v1/orders", good_body(transactions={"payments": []})),
        400,
        "minimum_items",
    ),
    (
        "a terminal of this account only",
        lambda a: a(
            "POST",
            "/v1/orders",
            good_body(config={"point": {"terminal_id": "PAX_A910__SMARTPOS1234567890"}}),
        ),
        403,
        "forbidden_checking_terminal_owner",
    ),
    ("one waiting order per terminal", busy_terminal, 409, "already_queued_order_for_terminal"),
    ("a key is bound to its request", same_key_other_body, 409, "idempotency_key_already_used"),
    ("an order id is ORD + 26", lambda a: a("GET", "/v1/orders/123"), 400, "bad_request"),
    (
        "an unknown order",
        lambda a: a("GET", "/v1/orders/ORD" + "0" * 26),
        404,
        "order_not_found",
    ),
    (
        "cancel needs X-Idempotency-Key",
        lambda a: a("POST", f"/v1/orders/{a.order()}/cancel", key=None),
        400,
        "empty_required_header",
    ),
    (
        "a paid order cannot be cancelled",
        lambda a: a("POST", f"/v1/orders/{a.order('processed')}/cancel"),
        409,
        "cannot_cancel_order",
    ),
    (
        "at_terminal is cancelled only when asked with the header",
        lambda a: a("POST", f"/v1/orders/{a.order('at_terminal')}/cancel"),
        409,
        "cannot_cancel_order",
    ),
    (
        "a cancelled order is not cancelled again",
        lambda a: a("POST", f"/v1/orders/{a.order('canceled')}/cancel"),
        409,
        "order_already_canceled",
    ),
    (
        "refund needs X-Idempotency-Key",
        lambda a: a("POST", f"/v1/orders/{a.order('processed')}/refund", key=None),
        400,
        "empty_required_header",
    ),
    (
        "only a processed order is refunded",
        lambda a: a("POST", f"/v1/orders/{a.order()}/refund"),
        409,
        "cannot_refund_order",
    ),
    (
        "a refunded order is not refunded again",
        lambda a: a("POST", f"/v1/orders/{a.order('refunded')}/refund"),
        409,
        "order_already_refunded",
    ),
    (
        "the fake refunds in full only",
        lambda a: a(
            "POST",
            f"/v1/orders/{a.order('processed')}/refund",
            {"transactions": [{"id": "PAY1", "amount": "1.00"}]},
        ),
        400,
        "unsupported_partially_refunds",
    ),
    (
        "the sandbox follows the state diagram",
        lambda a: a("POST", f"/v1/orders/{a.order()}/events", {"status": "refunded"}),
        400,
        "bad_request",
    ),
    (
        "the sandbox takes a status_detail for processed or failed only",
        lambda a: a(
            "POST",
            f"/v1/orders/{a.order()}/events",
            {"status": "canceled", "status_detail": "accredited"},
        ),
        400,
        "bad_request",
    ),
]


@pytest.mark.parametrize(("rule", "request_", "status", "code"), RULES, ids=[r[0] for r in RULES])
def test_the_fake_refuses_what_the_orders_api_refuses(fake, rule, request_, status, code):
    answer = request_(Api(fake))
    body = answer.json()
    found = body["errors"][0]["code"] if "errors" in body else body["code"]
    assert (answer.status_code, found) == (status, code), body


def test_the_same_key_and_body_answer_the_same_order_without_making_another(fake):
    api = Api(fake)
    first = api("POST", "/v1/orders", good_body(), key="k")
    again = api("POST", "/v1/orders", good_body(), key="k")
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"] and len(fake.point.orders) == 1


# --- settings and admin -----------------------------------------------------------------------


def test_settings_with_a_terminal_keep_the_legacy_intents_and_new_ones_use_orders(
    tenant, other_tenant
):
    with_terminal = PaymentSettings.objects.create(
        tenant=tenant, mercadopago_point_device="PAX_A910__SMARTPOS1234567890"
    )
    without = PaymentSettings.objects.create(tenant=other_tenant)
    assert with_terminal.point_api == without.point_api == "orders"
    migration = importlib.import_module("payments.migrations.0004_point_api")
    migration.keep_legacy_where_a_terminal_works(apps, None)
    assert reload(with_terminal).point_api == "legacy_intents"
    assert reload(without).point_api == "orders"


def admin_form(tenant, **changes) -> dict:
    return {
        "tenant": tenant.pk,
        "pix_enabled": "on",
        "cash_enabled": "on",
        "card_enabled": "on",
        "pix_provider": "pix_static",
        "mercadopago_access_token": "",
        "mercadopago_webhook_secret": "",
        "mercadopago_point_device": DEMO_TERMINAL,
        "point_api": "orders",
        "payer_email": "",
        "pix_key": "pix@studio.test",
        "merchant_name": "Studio",
        "merchant_city": "Recife",
        **changes,
    }


def test_the_admin_refuses_a_terminal_id_mercadopago_would_not_know(client, bob, mp, tenant):
    client.force_login(bob)
    change = f"/admin/payments/paymentsettings/{mp.pk}/change/"
    page = client.post(change, admin_form(tenant, mercadopago_point_device="pax-a910 123"))
    assert page.status_code == 200
    assert "dois sublinhados" in page.content.decode()
    assert client.post(change, admin_form(tenant)).status_code == 302


def test_the_admin_marks_legacy_settings_and_checks_the_terminals_mode(client, bob, fake, mp):
    client.force_login(bob)
    mp.point_api = "legacy_intents"
    mp.save()
    listing = client.get("/admin/payments/paymentsettings/").content.decode()
    assert "legado" in listing
    check = {"action": "check_point_terminal", "_selected_action": [mp.pk]}
    page = client.post("/admin/payments/paymentsettings/", check, follow=True).content.decode()
    assert "está em modo PDV" in page
    fake.point.terminals[DEMO_TERMINAL] = "STANDALONE"
    page = client.post("/admin/payments/paymentsettings/", check, follow=True).content.decode()
    assert "está em modo STANDALONE" in page and "reinicie" in page
    del fake.point.terminals[DEMO_TERMINAL]
    page = client.post("/admin/payments/paymentsettings/", check, follow=True).content.decode()
    assert "não é uma maquininha desta conta" in page
