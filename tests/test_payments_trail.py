"""Money leaves a trail: an audit row and an outgoing webhook for each confirmation and refund."""

from __future__ import annotations

from payments.models import PaymentSettings
from payments.sessions import confirm_cash, refund, start_payment
from tenants.models import AuditLog, WebhookEndpoint, WebhookOutbox
from tests.conftest import make_ticket


def test_cash_confirmed_and_refunded_are_audited_and_sent_to_the_tenants_webhook(
    tenant, cryo, alice, bob
):
    PaymentSettings.objects.update_or_create(tenant=tenant, defaults={"cash_enabled": True})
    WebhookEndpoint.objects.create(
        tenant=tenant,
        target_url="http://127.0.0.1:9/hook",
        secret="s",
        event_types=["payment.paid", "payment.refunded"],
    )
    ticket = make_ticket(tenant, [cryo])
    session = start_payment(ticket, "cash")

    confirm_cash(tenant, session.pk, alice, "150.00")
    refund(tenant, session.pk, bob, "cliente desistiu")

    trail = list(AuditLog.objects.filter(tenant=tenant).values_list("action", "user__username"))
    assert ("payment_confirmed", "alice") in trail
    assert ("payment_refunded", "bob") in trail
    sent = list(WebhookOutbox.objects.filter(tenant=tenant).values_list("event_type", flat=True))
    assert sorted(sent) == ["payment.paid", "payment.refunded"]
