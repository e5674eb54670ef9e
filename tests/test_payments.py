"""Payments: the real MercadoPago SDK against a fake API on 127.0.0.1, static PIX, cash.

Every provider call in these tests goes through the official SDK over HTTP to the fake
server (payments/fake_mercadopago.py); webhooks are signed the way MercadoPago signs them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from payments.brcode import build_brcode, crc16
from payments.models import Notification, PaymentSession, PaymentSettings, Receipt
from payments.receipts import brl, render_receipt_text
from payments.sessions import (
    PaymentError,
    PaymentRetry,
    abandon,
    cancel_session,
    confirm_cash,
    confirm_static_pix,
    expire_pending_sessions,
    issue_free_ticket,
    refresh_status,
    refund,
    start_payment,
)
from tenants.models import AuditLog
from tests.conftest import MP_SECRET as SECRET
from tests.conftest import PIX_PAYER_DOMAIN, make_service, make_ticket
from tickets.models import Extra, Ticket


@pytest.fixture
def ticket(tenant, cryo, towel):
    """R$ 120 of cryotherapy + a R$ 5 towel (stock 2 → 1)."""
    return make_ticket(tenant, [cryo], extras={towel.id: 1})


def sign(
    secret: str, data_id: str, request_id: str, ts: int | str, *, id_as_received: bool = False
) -> str:
    """An `x-signature` made here from MercadoPago's notifications page alone, not by the
    product's code nor the fake's: the template `id:[data.id_url];request-id:
    [x-request-id_header];ts:[ts_header];` filled in, an alphanumeric data.id in lower case
    (or as received, as the SDKs sign it), HMAC-SHA256 of it with the secret, in hex."""
    lower = data_id.isalnum() and not id_as_received
    filled = (
        "id:[data.id_url];request-id:[x-request-id_header];ts:[ts_header];".replace(
            "[data.id_url]", data_id.lower() if lower else data_id
        )
        .replace("[x-request-id_header]", request_id)
        .replace("[ts_header]", str(ts))
    )
    return f"ts={ts},v1={hmac.new(secret.encode(), filled.encode(), hashlib.sha256).hexdigest()}"


def webhook(client, tenant, data_id, *, secret=SECRET, ts=None, request_id="req-1", sig=None):
    ts = int(time.time()) if ts is None else ts
    headers = {"x-request-id": request_id}
    signature = sign(secret, str(data_id), request_id, ts) if sig is None else sig
    if signature:
        headers["x-signature"] = signature
    return client.post(
        f"/t/{tenant.slug}/pagamentos/webhook/mercadopago/?data.id={data_id}&type=payment",
        data=json.dumps({"type": "payment", "action": "payment.updated", "data": {"id": data_id}}),
        content_type="application/json",
        headers=headers,
    )


def reload(obj):
    obj.refresh_from_db()
    return obj


# --- BR Code --------------------------------------------------------------------------------


def test_the_br_code_reproduces_the_central_bank_manual_example_byte_for_byte():
    # "Manual de Padrões para Iniciação do Pix", static QR example: random key, no amount.
    expected = (
        "00020126580014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-426655440000"
        "5204000053039865802BR5913Fulano de Tal6008BRASILIA62070503***63041D3D"
    )
    code = build_brcode(
        key="123e4567-e12b-12d1-a456-426655440000", name="Fulano de Tal", city="BRASILIA"
    )
    assert code == expected


def test_a_br_code_with_amount_and_txid_carries_them_and_a_valid_crc():
    code = build_brcode(
        key="+5511999998888",
        name="Studio Ália Recuperação e Bem-estar",
        city="São Paulo",
        amount=Decimal("125.00"),
        txid="TOTEM-42",
    )
    assert "540612" + "5.00" in code
    assert "5925Studio Alia Recuperacao e" in code  # accents dropped, cut at 25
    assert "6009Sao Paulo" in code
    assert "62110507TOTEM42" in code
    assert code[-4:] == crc16(code[:-4])


# --- MercadoPago PIX ------------------------------------------------------------------------


def test_pix_through_mercadopago_sends_our_idempotency_key_and_session_reference(fake, mp, ticket):
    session = start_payment(ticket, "pix")
    assert session.status == "pending" and session.provider == "mercadopago"
    assert session.amount == Decimal("125.00")
    assert session.qr_code.startswith("000201") and session.external_id
    payment = fake.payments[session.external_id]
    assert payment["external_reference"] == str(session.pk)
    assert payment["transaction_amount"] == 125.0
    ((_method, _path, headers),) = fake.created("/v1/payments")
    assert headers["x-idempotency-key"] == session.idempotency_key
    # Asking again (a double tap) resumes the same session, no second payment.
    assert start_payment(ticket, "pix").pk == session.pk
    assert len(fake.payments) == 1


def test_the_pix_expires_at_mercadopago_no_sooner_than_it_accepts_while_the_kiosk_waits_less(
    fake, mp, ticket
):
    before = timezone.now()
    session = start_payment(ticket, "pix")
    sent = fake.payments[session.external_id]["date_of_expiration"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d", sent)
    assert datetime.fromisoformat(sent) - before >= timedelta(minutes=30)
    assert session.expires_at - before < timedelta(minutes=16)  # the kiosk's own wait: 15


def test_a_payment_timeout_longer_than_mercadopagos_minimum_is_the_pix_expiry(fake, mp, ticket):
    ticket.tenant.payment_timeout_minutes = 45
    ticket.tenant.save(update_fields=["payment_timeout_minutes"])
    session = start_payment(ticket, "pix")
    sent = datetime.fromisoformat(fake.payments[session.external_id]["date_of_expiration"])
    assert abs(sent - session.expires_at) < timedelta(milliseconds=1)


def test_a_customer_leaving_cancels_the_pix_at_mercadopago_and_a_later_payment_is_refunded(
    fake, mp, ticket, client
):
    session = start_payment(ticket, "pix")
    abandon(ticket.tenant, ticket.pk, reason="desistiu")
    puts = [(method, path) for method, path, _headers in fake.requests if method == "PUT"]
    assert puts == [("PUT", f"/v1/payments/{session.external_id}")]
    assert fake.payments[session.external_id]["status"] == "cancelled"
    assert reload(session).status == "canceled" and reload(ticket).status == "cancelled"
    fake.payments[session.external_id]["status"] = "approved"  # paid as it was cancelled
    assert webhook(client, ticket.tenant, session.external_id).status_code == 200
    assert reload(session).status == "refunded"
    assert fake.payments[session.external_id]["status"] == "refunded"
    assert reload(ticket).status == "cancelled"


def test_the_pix_payer_is_the_tickets_address_on_the_platforms_domain_never_the_collector(
    fake, mp, ticket
):
    session = start_payment(ticket, "pix")
    payer = fake.payments[session.external_id]["payer"]["email"]
    assert payer == f"senha-{ticket.pk}@{PIX_PAYER_DOMAIN}"
    assert ticket.tenant.contact_email == fake.collector_email != payer


def test_a_studios_own_payer_email_is_used_unless_it_is_its_contact_email(
    fake, mp, ticket, tenant, cryo
):
    mp.payer_email = "caixa@studio.test"
    mp.save()
    session = start_payment(ticket, "pix")
    assert fake.payments[session.external_id]["payer"]["email"] == "caixa@studio.test"
    mp.payer_email = f" {tenant.contact_email.upper()} "  # the account's own: never sent
    mp.save()
    other = make_ticket(tenant, [cryo])
    session = start_payment(other, "pix")
    assert session.status == "pending"
    assert (
        fake.payments[session.external_id]["payer"]["email"]
        == f"senha-{other.pk}@{PIX_PAYER_DOMAIN}"
    )


def test_with_no_payer_domain_nor_email_a_pix_is_refused_before_mercadopago_is_called(
    fake, mp, ticket, settings
):
    settings.PIX_PAYER_EMAIL_DOMAIN = ""
    with pytest.raises(PaymentError):
        start_payment(ticket, "pix")
    assert PaymentSession.objects.get().status == "failed"
    assert not fake.created("/v1/payments")


def test_a_signed_webhook_for_an_approved_payment_moves_session_and_ticket_together(
    fake, mp, ticket, client
):
    session = start_payment(ticket, "pix")
    fake.approve(session.external_id, notify=False)
    response = webhook(client, ticket.tenant, session.external_id)
    assert response.status_code == 200
    session, ticket = reload(session), reload(ticket)
    assert session.status == "paid" and session.paid_at
    assert session.provider_payment_id == session.external_id
    assert ticket.status == "in_queue" and ticket.paid_at
    assert Receipt.objects.get(session=session).content["total"] == "125.00"
    note = Notification.objects.get()
    assert (note.outcome, note.session, note.data_id) == ("confirmed", session, session.external_id)


def test_a_duplicate_webhook_is_recorded_and_changes_nothing(fake, mp, ticket, client):
    session = start_payment(ticket, "pix")
    fake.approve(session.external_id, notify=False)
    webhook(client, ticket.tenant, session.external_id, request_id="a")
    history = ticket.history.count()
    response = webhook(client, ticket.tenant, session.external_id, request_id="b")
    assert response.status_code == 200
    assert ticket.history.count() == history
    assert Receipt.objects.count() == 1
    assert list(Notification.objects.order_by("received_at").values_list("outcome", flat=True)) == [
        "confirmed",
        "duplicate",
    ]


@pytest.mark.parametrize(
    "how",
    ["missing", "wrong secret", "stale", "signed for another payment", "garbage"],
)
def test_forged_missing_and_stale_signatures_get_401_and_change_nothing(
    fake, mp, ticket, client, how
):
    session = start_payment(ticket, "pix")
    fake.approve(session.external_id, notify=False)
    kwargs = {
        "missing": {"sig": ""},
        "wrong secret": {"secret": "not-the-secret"},
        "stale": {"ts": int(time.time()) - 3600},
        "signed for another payment": {"sig": sign(SECRET, "999", "req-1", int(time.time()))},
        "garbage": {"sig": "v1=abc"},
    }[how]
    response = webhook(client, ticket.tenant, session.external_id, **kwargs)
    assert response.status_code == 401
    assert reload(session).status == "pending"
    assert reload(ticket).status == "pending_payment"
    assert not Notification.objects.exists()
    assert not [r for r in fake.requests if r[0] == "GET"]  # not even looked up


@pytest.mark.parametrize("unit", [1, 1000], ids=["ts in seconds", "ts in milliseconds"])
def test_a_fresh_signature_is_accepted_with_ts_in_seconds_or_milliseconds(
    fake, mp, ticket, client, unit
):
    session = start_payment(ticket, "pix")
    fake.approve(session.external_id, notify=False)
    ts = int(time.time() * unit)
    assert webhook(client, ticket.tenant, session.external_id, ts=ts).status_code == 200
    assert reload(session).status == "paid"


@pytest.mark.parametrize("unit", [1, 1000], ids=["seconds", "milliseconds"])
@pytest.mark.parametrize("drift", [-301, 301], ids=["stale", "future"])
def test_a_ts_outside_the_tolerance_is_refused_in_either_unit(
    fake, mp, ticket, client, settings, unit, drift
):
    assert settings.MERCADOPAGO_WEBHOOK_TOLERANCE == 300
    session = start_payment(ticket, "pix")
    fake.approve(session.external_id, notify=False)
    ts = int((time.time() + drift) * unit)
    assert webhook(client, ticket.tenant, session.external_id, ts=ts).status_code == 401
    assert reload(session).status == "pending" and not Notification.objects.exists()


ORDER_ID = "ORDTST01JQ4S4KY8HWQ6NA5PXB65B3D3"  # an alphanumeric data.id (Orders API ids)


@pytest.mark.parametrize("as_received", [False, True], ids=["lower-cased (docs)", "as sent (SDK)"])
def test_an_alphanumeric_data_id_is_verified_lower_cased_as_the_docs_say_or_as_sent(
    fake, mp, client, tenant, as_received
):
    ts = int(time.time())
    signature = sign(SECRET, ORDER_ID, "req-1", ts, id_as_received=as_received)
    response = webhook(client, tenant, ORDER_ID, sig=signature)
    assert response.status_code == 200  # verified; then looked up (unknown here) and ignored
    assert Notification.objects.get().data_id == ORDER_ID


def test_a_signature_for_another_alphanumeric_id_is_refused(fake, mp, client, tenant):
    signature = sign(SECRET, ORDER_ID[:-1] + "4", "req-1", int(time.time()))
    assert webhook(client, tenant, ORDER_ID, sig=signature).status_code == 401
    assert not Notification.objects.exists()


def test_a_webhook_for_another_tenant_cannot_confirm_this_tenants_payment(
    fake, mp, ticket, client, other_tenant
):
    PaymentSettings.objects.create(
        tenant=other_tenant, mercadopago_access_token="T2", mercadopago_webhook_secret="other"
    )
    session = start_payment(ticket, "pix")
    fake.approve(session.external_id, notify=False)
    response = webhook(client, other_tenant, session.external_id, secret="other")
    assert response.status_code == 200
    assert Notification.objects.get().outcome == "ignored"
    assert reload(session).status == "pending"


def test_a_wrong_amount_is_flagged_for_a_manager_and_never_confirmed(fake, mp, ticket, client):
    session = start_payment(ticket, "pix")
    fake.approve(session.external_id, notify=False)
    fake.payments[session.external_id]["transaction_amount"] = 1.25
    assert webhook(client, ticket.tenant, session.external_id).status_code == 200
    session = reload(session)
    assert session.status == "pending" and session.needs_attention
    assert "1.25" in session.attention_note
    assert reload(ticket).status == "pending_payment"
    assert Notification.objects.get().outcome == "mismatch"


def test_out_of_order_a_late_pending_or_rejected_never_undoes_paid(fake, mp, ticket, client):
    session = start_payment(ticket, "pix")
    fake.approve(session.external_id, notify=False)
    webhook(client, ticket.tenant, session.external_id, request_id="paid")
    for late in ("pending", "rejected", "cancelled"):
        fake.payments[session.external_id]["status"] = late
        assert (
            webhook(client, ticket.tenant, session.external_id, request_id=late).status_code == 200
        )
        assert reload(session).status == "paid"
    assert reload(ticket).status == "in_queue"


def test_a_rejected_payment_fails_the_session_and_the_customer_can_try_again(
    fake, mp, ticket, client
):
    session = start_payment(ticket, "pix")
    fake.payments[session.external_id]["status"] = "rejected"
    webhook(client, ticket.tenant, session.external_id)
    assert reload(session).status == "failed"
    retry = start_payment(ticket, "pix")
    assert retry.pk != session.pk and retry.external_id != session.external_id


# --- the provider down ----------------------------------------------------------------------


def test_a_provider_5xx_on_create_keeps_the_session_pending_and_the_retry_reuses_the_key(
    fake, mp, ticket
):
    fake.fail_next(500)
    with pytest.raises(PaymentRetry):
        start_payment(ticket, "pix")
    session = PaymentSession.objects.get()
    assert session.status == "pending" and not session.external_id
    again = start_payment(ticket, "pix")
    assert again.pk == session.pk and again.external_id
    keys = [headers["x-idempotency-key"] for _m, _p, headers in fake.created("/v1/payments")]
    assert keys == [session.idempotency_key] * 2
    assert len(fake.payments) == 1


def test_a_timeout_on_create_then_a_retry_never_charges_twice(fake, mp, ticket, settings):
    settings.MERCADOPAGO_TIMEOUT = 0.3
    fake.delay_next(0.8)  # the fake creates the payment after we stopped waiting
    with pytest.raises(PaymentRetry):
        start_payment(ticket, "pix")
    deadline = time.monotonic() + 3
    while not fake.payments and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(fake.payments) == 1  # the provider did create it
    session = start_payment(ticket, "pix")
    assert session.external_id == next(iter(fake.payments))
    assert len(fake.payments) == 1


def test_the_webhook_answers_503_when_the_api_is_down_and_the_retry_confirms(
    fake, mp, ticket, client
):
    session = start_payment(ticket, "pix")
    fake.approve(session.external_id, notify=False)
    fake.fail_next(503)
    assert webhook(client, ticket.tenant, session.external_id, request_id="1").status_code == 503
    assert reload(session).status == "pending"
    assert webhook(client, ticket.tenant, session.external_id, request_id="2").status_code == 200
    assert reload(session).status == "paid"
    outcomes = Notification.objects.order_by("received_at").values_list("outcome", flat=True)
    assert list(outcomes) == ["retry", "confirmed"]


def test_refresh_status_asks_the_api_and_confirms_a_paid_session(fake, mp, ticket):
    session = start_payment(ticket, "pix")
    assert refresh_status(session).status == "pending"
    fake.approve(session.external_id, notify=False)
    assert refresh_status(session).status == "paid"
    assert reload(ticket).status == "in_queue"


# --- refunds --------------------------------------------------------------------------------


def paid_pix(fake, ticket, client):
    session = start_payment(ticket, "pix")
    fake.approve(session.external_id, notify=False)
    webhook(client, ticket.tenant, session.external_id)
    return reload(session)


def test_a_manager_refunds_at_mercadopago_and_the_unserved_ticket_is_cancelled(
    fake, mp, ticket, client, bob, alice, towel
):
    session = paid_pix(fake, ticket, client)
    with pytest.raises(PaymentError):
        refund(ticket.tenant, session.pk, alice, "não pode")  # operators cannot
    with pytest.raises(PaymentError):
        refund(ticket.tenant, session.pk, bob, "  ")  # the reason is required
    refund(ticket.tenant, session.pk, bob, "cliente desistiu")
    session = reload(session)
    assert session.status == "refunded" and session.refunded_by == bob
    assert session.refund_reason == "cliente desistiu" and session.refund_external_id
    assert fake.payments[session.external_id]["status"] == "refunded"
    assert reload(ticket).status == "cancelled"
    assert reload(towel).stock == 2
    assert session.history.first().history_user == bob
    with pytest.raises(PaymentError):
        refund(ticket.tenant, session.pk, bob, "de novo")


def test_a_refund_the_provider_cannot_reach_changes_nothing(fake, mp, ticket, client, bob):
    session = paid_pix(fake, ticket, client)
    fake.fail_next(502)
    with pytest.raises(PaymentRetry):
        refund(ticket.tenant, session.pk, bob, "cliente desistiu")
    assert reload(session).status == "paid"
    assert reload(ticket).status == "in_queue"


def test_an_outsider_cannot_refund(fake, mp, ticket, client, charlie):
    session = paid_pix(fake, ticket, client)
    with pytest.raises(PaymentError):
        refund(ticket.tenant, session.pk, charlie, "x")
    assert reload(session).status == "paid"


# --- expiry ---------------------------------------------------------------------------------


def test_expiry_cancels_the_session_at_the_provider_and_the_ticket_giving_stock_back(
    fake, mp, ticket, towel
):
    session = start_payment(ticket, "pix")
    assert reload(towel).stock == 1
    assert expire_pending_sessions(timezone.now() + timedelta(minutes=14)) == 0
    assert expire_pending_sessions(timezone.now() + timedelta(minutes=16)) == 1
    assert reload(session).status == "canceled"
    assert fake.payments[session.external_id]["status"] == "cancelled"
    assert reload(ticket).status == "cancelled"
    assert reload(towel).stock == 2


def test_expiry_confirms_a_payment_made_at_the_last_second(fake, mp, ticket):
    session = start_payment(ticket, "pix")
    fake.approve(session.external_id, notify=False)
    expire_pending_sessions(timezone.now() + timedelta(minutes=16))
    assert reload(session).status == "paid"
    assert reload(ticket).status == "in_queue"


def test_money_arriving_after_expiry_is_refunded_and_never_revives_the_ticket(
    fake, mp, ticket, client
):
    session = start_payment(ticket, "pix")
    expire_pending_sessions(timezone.now() + timedelta(minutes=16))
    fake.payments[session.external_id]["status"] = "approved"  # paid as it was cancelled
    assert webhook(client, ticket.tenant, session.external_id).status_code == 200
    session = reload(session)
    assert session.status == "refunded" and session.needs_attention
    assert "closed session" in session.attention_note
    assert fake.payments[session.external_id]["status"] == "refunded"
    assert reload(ticket).status == "cancelled"
    assert Notification.objects.get().outcome == "late"


def test_a_ticket_left_unpaid_without_a_session_is_cancelled_by_expiry(tenant, ticket, towel):
    assert expire_pending_sessions(timezone.now() + timedelta(minutes=16)) == 1
    assert reload(ticket).status == "cancelled" and reload(towel).stock == 2


# --- card on the Point terminal, legacy payment intents (tests/test_point_orders.py: orders) --


@pytest.fixture
def legacy(mp):
    mp.point_api = "legacy_intents"
    mp.save()
    return mp


def test_legacy_card_goes_to_the_point_terminal_in_cents_and_its_payment_confirms(
    fake, legacy, ticket, client
):
    session = start_payment(ticket, "card")
    intent = fake.intents[session.external_id]
    assert intent["amount"] == 12500 and intent["device_id"] == legacy.mercadopago_point_device
    assert intent["additional_info"]["external_reference"] == str(session.pk)
    payment = fake.approve_intent(session.external_id, notify=False)
    assert webhook(client, ticket.tenant, payment["id"]).status_code == 200
    session = reload(session)
    assert session.status == "paid" and session.provider_payment_id == str(payment["id"])
    assert reload(ticket).status == "in_queue"


def test_cancelling_a_legacy_card_session_cancels_the_intent_on_the_terminal(
    fake, legacy, ticket, tenant
):
    session = start_payment(ticket, "card")
    cancel_session(tenant, session.pk, reason="desistiu")
    assert reload(session).status == "canceled"
    assert fake.intents[session.external_id]["state"] == "CANCELED"


# --- nothing to pay --------------------------------------------------------------------------


def test_a_ticket_with_nothing_to_pay_goes_to_the_queue_audited_and_no_provider_is_called(
    fake, mp, tenant
):
    free = make_service(tenant, "Avaliação", "A", "0.00")
    ticket = make_ticket(tenant, [free])
    assert ticket.total == 0
    with pytest.raises(PaymentError):
        start_payment(ticket, "pix")  # nothing to collect: never a R$ 0,00 QR
    issue_free_ticket(ticket)
    assert reload(ticket).status == "in_queue" and ticket.paid_at
    assert ticket.history.filter(status="paid").count() == 1
    entry = AuditLog.objects.get(action="free_ticket")
    assert (entry.tenant, entry.entity_id, entry.data["ticket"]) == (
        tenant,
        str(ticket.pk),
        ticket.number,
    )
    issue_free_ticket(ticket)  # twice (a double tap): nothing more
    assert AuditLog.objects.filter(action="free_ticket").count() == 1
    assert not PaymentSession.objects.exists()
    assert fake.requests == []


def test_a_ticket_with_something_to_pay_never_goes_through_free(tenant, ticket):
    with pytest.raises(PaymentError):
        issue_free_ticket(ticket)
    assert reload(ticket).status == "pending_payment"
    assert not AuditLog.objects.filter(action="free_ticket").exists()


# --- cash and static PIX ------------------------------------------------------------------


def test_cash_is_confirmed_by_an_operator_with_the_change_on_the_receipt(
    tenant, ticket, alice, charlie
):
    session = start_payment(ticket, "cash")
    assert session.provider == "manual" and session.status == "pending"
    with pytest.raises(PaymentError):
        confirm_cash(tenant, session.pk, charlie, "200")
    with pytest.raises(PaymentError):
        confirm_cash(tenant, session.pk, alice, "100")  # less than due
    confirm_cash(tenant, session.pk, alice, "150")
    session = reload(session)
    assert session.status == "paid" and session.confirmed_by == alice
    assert session.amount_received == Decimal("150.00")
    assert reload(ticket).status == "in_queue"
    text = render_receipt_text(session.receipt)
    assert "R$ 125,00" in text and "R$ 25,00" in text and ticket.number in text
    assert all(len(line) <= 42 for line in text.splitlines())
    with pytest.raises(PaymentError, match="already|já está"):
        confirm_cash(tenant, session.pk, alice, "150")


def test_static_pix_shows_a_br_code_for_the_amount_and_an_operator_confirms_it(
    tenant, ticket, alice
):
    PaymentSettings.objects.create(
        tenant=tenant,
        pix_key="pix@studio.test",
        merchant_name="Studio Alfa",
        merchant_city="Recife",
    )
    session = start_payment(ticket, "pix")
    assert session.provider == "pix_static"
    assert "0115pix@studio.test" in session.qr_code and "5406125.00" in session.qr_code
    assert f"TOTEM{session.pk}" in session.qr_code
    confirm_static_pix(tenant, session.pk, alice)
    assert reload(session).status == "paid" and reload(ticket).status == "in_queue"


def test_a_method_that_is_not_enabled_is_refused(tenant, ticket):
    with pytest.raises(PaymentError):
        start_payment(ticket, "card")


def test_choosing_another_method_cancels_the_pending_one(fake, mp, ticket):
    pix = start_payment(ticket, "pix")
    cash = start_payment(ticket, "cash")
    assert reload(pix).status == "canceled" and cash.status == "pending"
    assert fake.payments[pix.external_id]["status"] == "cancelled"


def test_cash_confirmation_after_expiry_is_refused_clearly(tenant, ticket, alice):
    session = start_payment(ticket, "cash")
    expire_pending_sessions(timezone.now() + timedelta(minutes=16))
    with pytest.raises(PaymentError, match="already canceled|cancelad"):
        confirm_cash(tenant, session.pk, alice, "125")
    assert reload(ticket).status == "cancelled"


# --- receipt page -------------------------------------------------------------------------


def test_the_receipt_page_is_reached_by_the_tickets_token_only(tenant, ticket, alice, client):
    session = start_payment(ticket, "cash")
    confirm_cash(tenant, session.pk, alice, "125")
    response = client.get(f"/t/{tenant.slug}/pagamentos/recibo/{ticket.token}/")
    assert response.status_code == 200
    assert reload(session).receipt.code in response.content.decode()
    assert client.get(f"/t/{tenant.slug}/pagamentos/recibo/wrong-token/").status_code == 404
    assert client.get(f"/t/outro/pagamentos/recibo/{ticket.token}/").status_code == 404


def test_brl_groups_thousands_the_brazilian_way():
    assert brl(Decimal("1234.5")) == "R$ 1.234,50"
    assert brl("0") == "R$ 0,00"


# --- PostgreSQL races -----------------------------------------------------------------------


def run_in_threads(n, target):
    barrier = threading.Barrier(n)
    results, errors = [], []

    def run(i):
        try:
            barrier.wait()
            results.append(target(i))
        except Exception as error:  # noqa: BLE001 — collected and asserted below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results, errors


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_fifty_identical_webhooks_in_parallel_confirm_exactly_once(fake, mp, ticket):
    session = start_payment(ticket, "pix")
    fake.approve(session.external_id, notify=False)
    ts = int(time.time())
    signature = sign(SECRET, session.external_id, "same", ts)

    def post(_i):
        return webhook(
            Client(), ticket.tenant, session.external_id, request_id="same", sig=signature
        )

    results, errors = run_in_threads(50, post)
    assert not errors
    assert [r.status_code for r in results] == [200] * 50
    outcomes = list(Notification.objects.values_list("outcome", flat=True))
    assert outcomes.count("confirmed") == 1 and outcomes.count("duplicate") == 49
    assert reload(session).status == "paid"
    assert Receipt.objects.count() == 1
    assert reload(ticket).history.filter(status="paid").count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_confirm_cash_racing_expiry_exactly_one_wins(tenant, cryo, alice):
    robe = Extra.objects.create(tenant=tenant, name="Roupão", price=Decimal("5.00"), stock=10)
    for _round in range(5):
        ticket = make_ticket(tenant, [cryo], extras={robe.id: 1})
        session = start_payment(ticket, "cash")
        later = timezone.now() + timedelta(minutes=16)

        def act(i, session=session, later=later):
            if i == 0:
                return ("cash", confirm_cash(tenant, session.pk, alice, "125").status)
            return ("expiry", expire_pending_sessions(later))

        results, errors = run_in_threads(2, act)
        session, ticket = reload(session), reload(ticket)
        if session.status == "paid":  # the cashier won; expiry found nothing to do
            assert not errors and ("expiry", 0) in results
            assert ticket.status == "in_queue"
        else:  # expiry won; the cashier got a clear refusal
            assert session.status == "canceled" and ticket.status == "cancelled"
            assert len(errors) == 1 and isinstance(errors[0], PaymentError)
            assert results == [("expiry", 1)]
    # Stock follows exactly: taken by each paid ticket, given back by each expired one.
    paid = Ticket.objects.filter(status="in_queue").count()
    assert reload(robe).stock == 10 - paid
