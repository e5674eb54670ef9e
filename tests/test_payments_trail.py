"""Money leaves a trail: an audit row and an outgoing webhook for each confirmation and refund."""

from __future__ import annotations

from django.utils import translation

from payments.models import PaymentSettings, Receipt
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


def test_a_paid_session_prints_its_receipt_where_the_studio_has_a_receipt_printer(
    tenant, cryo, alice, fake_printer
):
    from equipment.models import JobKind, PrintJob
    from tests.fake_printer import decode_text
    from tests.test_printing import make_printer, quick_spooler

    make_printer(tenant, port=fake_printer.port, prints_tickets=False, prints_receipts=True)
    tenant.contact_email = "contato@studioalfa.com.br"
    tenant.save()
    PaymentSettings.objects.update_or_create(tenant=tenant, defaults={"cash_enabled": True})
    session = start_payment(make_ticket(tenant, [cryo]), "cash")

    with translation.override("en"):  # an operator who reads the panel in English
        confirm_cash(tenant, session.pk, alice, "150.00")
    job = PrintJob.objects.get(kind=JobKind.RECEIPT)
    assert quick_spooler().run_one()

    job.refresh_from_db()
    assert job.status == "printed"
    printed = decode_text(fake_printer.wait_for(1)[0])
    assert "Crioterapia" in printed and "R$ 150,00" in printed and "R$ 30,00" in printed
    assert "Troco: R$ 30,00" in printed and "contato@studioalfa.com.br" in printed


def test_the_printed_receipt_names_the_providers_transaction(tenant, cryo):
    from payments.receipts import printable, receipt_content

    PaymentSettings.objects.update_or_create(tenant=tenant, defaults={"cash_enabled": True})
    session = start_payment(make_ticket(tenant, [cryo]), "cash")
    session.provider_payment_id = "123456789"
    receipt = Receipt(session=session, code="R-ABC", content=receipt_content(session))
    receipt.created_at = session.created_at
    assert "Transação: 123456789" in printable(receipt).lines_after


def test_a_reprint_is_audited(tenant, cryo, alice, fake_printer):
    from equipment.models import PrintJob
    from tests.test_printing import make_printer, pay
    from tickets.printing import reprint

    make_printer(tenant, port=fake_printer.port)
    ticket = pay(make_ticket(tenant, [cryo]))
    PrintJob.objects.update(status="printed")
    reprint(tenant, ticket.pk, alice)
    entry = AuditLog.objects.get(action="reprint")
    assert (entry.user, entry.data["ticket"]) == (alice, ticket.number)
