"""NFS-e for paid sales through Focus NFe (the fake on 127.0.0.1) and by hand."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import close_old_connections
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from equipment.models import Kind
from fiscal import issuing
from fiscal.admin import FiscalSettingsForm
from fiscal.fake_focusnfe import FakeFocusNFe
from fiscal.models import FiscalSettings, Invoice, InvoiceItem, ServiceTaxCode
from payments.sessions import confirm_cash, refund, start_payment
from tests.conftest import make_device, make_service, make_ticket
from tests.test_kiosk import buy, fill_cart, identify, pair, url
from tickets.models import Ticket

CNPJ = "11222333000181"
TOKEN = "focus-token-alfa"
SECRET = "hook-secret-alfa"


@pytest.fixture
def focus(settings):
    server = FakeFocusNFe(TOKEN, cnpj=CNPJ).start()
    settings.FOCUSNFE_BASE_URL = server.url
    settings.FOCUSNFE_TIMEOUT = 2.0
    yield server
    server.stop()


def fiscal_settings(tenant, **extra) -> FiscalSettings:
    values = {
        "enabled": True,
        "provider": "focusnfe",
        "api_token": TOKEN,
        "webhook_secret": SECRET,
        "cnpj": CNPJ,
        "municipal_registration": "12345",
        "municipality_code": "2611606",
        "iss_rate": Decimal("5.00"),
        "lc116_item": "06.02",
        "national_code": "060201",
    }
    values.update(extra)
    return FiscalSettings.objects.create(tenant=tenant, **values)


@pytest.fixture
def config(tenant):
    return fiscal_settings(tenant)


def paid_sale(tenant, services, operator, **ticket_fields):
    ticket = make_ticket(tenant, services, **ticket_fields)
    session = start_payment(ticket, "cash")
    confirm_cash(tenant, session.pk, operator, str(ticket.total))
    session.refresh_from_db()
    return session


def the_invoice(session) -> Invoice:
    return InvoiceItem.objects.get(session=session).invoice


def test_a_paid_sale_gets_its_nfse_from_the_worker_never_on_the_sale_path(
    focus, config, tenant, cryo, alice, client
):
    session = paid_sale(tenant, [cryo], alice)
    assert not InvoiceItem.objects.exists()  # the sale itself wrote nothing fiscal
    call_command("issue_nfse")
    invoice = the_invoice(session)
    assert invoice.status == "processing" and invoice.amount == Decimal("120.00")
    method, ref, sent = focus.requests[-1]
    assert (method, ref) == ("POST", invoice.reference)
    assert sent["cnpj_prestador"] == CNPJ and sent["codigo_tributacao_nacional_iss"] == "060201"
    assert sent["valor_servico"] == 120.0 and "Crioterapia" in sent["descricao_servico"]

    focus.authorize(invoice.reference)
    issuing.poll_processing(timezone.now() + timedelta(minutes=3))
    invoice.refresh_from_db()
    assert invoice.status == "authorized" and invoice.number and invoice.verification_code
    assert invoice.pdf_url.endswith(".pdf") and invoice.xml_url.startswith(focus.url)
    receipt = session.receipt
    receipt.refresh_from_db()
    assert receipt.nfse_number == invoice.number and "nfse.gov.br" in receipt.nfse_url
    page = client.get(reverse("payments_receipt", args=[tenant.slug, session.ticket.token]))
    html = page.content.decode()
    assert invoice.number in html and escape(receipt.nfse_url) in html
    call_command("issue_nfse")
    assert Invoice.objects.count() == 1  # queued once


def test_services_under_two_codes_are_two_nfse(focus, config, tenant, cryo, boots, alice):
    ServiceTaxCode.objects.create(tenant=tenant, service=boots, national_code="040801")
    session = paid_sale(tenant, [cryo, boots], alice)
    issuing.enqueue_paid()
    codes = {item.invoice.national_code: item.amount for item in InvoiceItem.objects.all()}
    assert codes == {"060201": Decimal("120.00"), "040801": Decimal("80.00")}
    assert session.amount == sum(codes.values())


def test_the_webhook_is_a_trigger_checked_by_its_secret(focus, config, tenant, cryo, alice, client):
    session = paid_sale(tenant, [cryo], alice)
    call_command("issue_nfse")
    invoice = the_invoice(session)
    body = focus.authorize(invoice.reference)
    url = reverse("fiscal_webhook_focusnfe", args=[tenant.slug])
    forged = client.post(url, body, content_type="application/json", HTTP_AUTHORIZATION="x")
    assert forged.status_code == 401
    invoice.refresh_from_db()
    assert invoice.status == "processing"
    # A forged body cannot authorize: the number comes from the API, not from the post.
    lie = {**body, "numero": "666"}
    answer = client.post(url, lie, content_type="application/json", HTTP_AUTHORIZATION=SECRET)
    assert answer.status_code == 200
    invoice.refresh_from_db()
    assert invoice.status == "authorized" and invoice.number == body["numero"] != "666"


def test_a_provider_error_500_is_retried_with_back_off_then_alerted(
    focus, config, tenant, cryo, alice
):
    session = paid_sale(tenant, [cryo], alice)
    issuing.enqueue_paid()
    focus.fail_next(1)
    now = timezone.now()
    issuing.send_due(now)
    invoice = the_invoice(session)
    assert invoice.status == "queued" and invoice.attempts == 1
    assert invoice.next_attempt_at == now + issuing.BACKOFF[0] and "500" in invoice.provider_message
    issuing.send_due(now + timedelta(seconds=30))
    assert focus.requests == []  # not before its time
    issuing.send_due(now + timedelta(minutes=2))
    invoice.refresh_from_db()
    assert invoice.status == "processing"

    other = paid_sale(tenant, [cryo], alice)
    issuing.enqueue_paid()
    later = now
    focus.fail_next(100)
    for _ in range(len(issuing.BACKOFF) + 1):
        later += timedelta(hours=7)
        issuing.send_due(later)
    failed = the_invoice(other)
    assert failed.status == "error" and failed.needs_attention


def test_the_provider_rejecting_the_dps_shows_its_message_and_a_person_sends_again(
    focus, config, tenant, cryo, alice
):
    session = paid_sale(tenant, [cryo], alice)
    call_command("issue_nfse")
    invoice = the_invoice(session)
    focus.reject(invoice.reference, "E0310", "Código de tributação nacional inexistente")
    issuing.refresh(invoice)
    assert invoice.status == "error" and invoice.needs_attention
    assert "E0310: Código de tributação nacional inexistente" in invoice.provider_message
    issuing.retry(invoice)
    issuing.send_due()
    invoice.refresh_from_db()
    assert invoice.status == "processing"  # the same reference is accepted again


def test_bad_credentials_are_a_clear_error_not_retried(focus, tenant, cryo, alice):
    fiscal_settings(tenant, api_token="wrong-token")
    session = paid_sale(tenant, [cryo], alice)
    call_command("issue_nfse")
    invoice = the_invoice(session)
    assert invoice.status == "error" and invoice.needs_attention
    assert "permissao_negada" in invoice.provider_message and "token" in invoice.provider_message


def test_a_refund_cancels_the_nfse_at_the_provider(focus, config, tenant, cryo, alice, bob):
    session = paid_sale(tenant, [cryo], alice)
    call_command("issue_nfse")
    invoice = the_invoice(session)
    focus.authorize(invoice.reference)
    issuing.refresh(invoice)
    refund(tenant, session.pk, bob, "cliente desistiu")
    call_command("issue_nfse")
    invoice.refresh_from_db()
    assert invoice.status == "cancelled"
    assert focus.notes[invoice.reference]["status"] == "cancelado"
    method, _ref, data = focus.requests[-1]
    assert method == "DELETE" and 15 <= len(data["justificativa"]) <= 255
    session.receipt.refresh_from_db()
    assert session.receipt.nfse_cancelled


def test_a_refund_out_of_the_window_or_refused_alerts_a_person(
    focus, config, tenant, cryo, alice, bob
):
    late, refused = paid_sale(tenant, [cryo], alice), paid_sale(tenant, [cryo], alice)
    call_command("issue_nfse")
    for session in (late, refused):
        focus.authorize(the_invoice(session).reference)
        issuing.refresh(the_invoice(session))
    Invoice.objects.filter(pk=the_invoice(late).pk).update(
        authorized_at=timezone.now() - timedelta(days=31)
    )
    focus.refuse_cancel(the_invoice(refused).reference)
    refund(tenant, late.pk, bob, "cliente desistiu")
    refund(tenant, refused.pk, bob, "cliente desistiu")
    issuing.settle_refunds()
    late_invoice, refused_invoice = the_invoice(late), the_invoice(refused)
    assert late_invoice.status == refused_invoice.status == "authorized"
    assert late_invoice.needs_attention and "30" in late_invoice.provider_message
    assert refused_invoice.needs_attention and "E523" in refused_invoice.provider_message

    from ops.models import NotificationSettings
    from ops.notifications import current_conditions

    conditions = current_conditions(tenant, NotificationSettings(tenant=tenant), timezone.now())
    kinds = [c for c in conditions if c.kind == "nfse_failed"]
    assert {c.key for c in kinds} == {str(late_invoice.pk), str(refused_invoice.pk)}


def test_a_refund_before_sending_drops_the_request(focus, config, tenant, cryo, alice, bob):
    session = paid_sale(tenant, [cryo], alice)
    issuing.enqueue_paid()
    refund(tenant, session.pk, bob, "cliente desistiu")
    call_command("issue_nfse")
    assert the_invoice(session).status == "dropped" and focus.requests == []


def test_the_cpf_goes_on_the_nfse_only_when_the_customer_asked(focus, config, tenant, cryo, alice):
    quiet = paid_sale(tenant, [cryo], alice, cpf="52998224725")
    at_kiosk = paid_sale(tenant, [cryo], alice, cpf="52998224725", cpf_on_invoice=True)
    at_counter = paid_sale(tenant, [cryo], alice, cpf="52998224725")
    issuing.enqueue_paid()
    issuing.request_cpf(the_invoice(at_counter))
    issuing.send_due()
    sent = {ref: data for _method, ref, data in focus.requests}
    assert "cpf_tomador" not in sent[the_invoice(quiet).reference]
    for asked in (at_kiosk, at_counter):
        assert sent[the_invoice(asked).reference]["cpf_tomador"] == "52998224725"
        assert sent[the_invoice(asked).reference]["razao_social_tomador"] == "Maria Souza"


def test_the_kiosk_asks_cpf_na_nota_only_where_the_studio_issues_nfse(tenant, cryo):
    make_device(tenant, "Crio 1", [cryo])
    kiosk_client = Client()
    pair(kiosk_client, tenant, make_device(tenant, "Totem 1", kind=Kind.KIOSK))
    fill_cart(kiosk_client, tenant, [cryo])
    page = kiosk_client.get(url(tenant, "kiosk_identify"))
    assert 'name="cpf_on_invoice"' not in page.content.decode()
    fiscal_settings(tenant)
    page = kiosk_client.get(url(tenant, "kiosk_identify"))
    assert 'name="cpf_on_invoice"' in page.content.decode()
    refused = identify(kiosk_client, tenant, customer_cpf="", cpf_on_invoice="on")
    assert "customer_cpf" in refused.context["form"].errors
    assert identify(kiosk_client, tenant, cpf_on_invoice="on").status_code == 302
    buy(kiosk_client, tenant, "cash")
    ticket = Ticket.objects.get()
    assert ticket.cpf_on_invoice and ticket.customer_cpf == "52998224725"


def test_daily_mode_sends_one_nfse_per_code_after_the_local_day(focus, tenant, cryo, alice):
    fiscal_settings(tenant, issue_mode="daily")
    first, second = paid_sale(tenant, [cryo], alice), paid_sale(tenant, [cryo], alice)
    issuing.enqueue_paid()
    invoice = the_invoice(first)
    assert the_invoice(second) == invoice and invoice.amount == Decimal("240.00")
    issuing.send_due()
    assert focus.requests == []  # the day is not over
    issuing.send_due(invoice.next_attempt_at)
    invoice.refresh_from_db()
    assert invoice.status == "processing" and len(focus.requests) == 1


def test_a_sale_queued_after_its_days_midnight_never_joins_the_days_nfse(
    focus, tenant, cryo, alice, monkeypatch
):
    fiscal_settings(tenant, issue_mode="daily")
    first, late = paid_sale(tenant, [cryo], alice), paid_sale(tenant, [cryo], alice)
    config = FiscalSettings.objects.get(tenant=tenant)
    issuing.enqueue_sale(config, first)
    day_invoice = the_invoice(first)
    after_midnight = day_invoice.next_attempt_at
    monkeypatch.setattr(timezone, "now", lambda: after_midnight)
    issuing.enqueue_sale(config, late)
    late_invoice = the_invoice(late)
    assert late_invoice != day_invoice and late_invoice.day == day_invoice.day
    assert day_invoice.items.count() == 1


def test_tenants_never_see_each_others_nfse(
    focus, config, tenant, other_tenant, cryo, alice, client
):
    fiscal_settings(other_tenant, webhook_secret="hook-secret-beta")
    session = paid_sale(tenant, [cryo], alice)
    call_command("issue_nfse")
    invoice = the_invoice(session)
    body = focus.authorize(invoice.reference)
    theirs = reverse("fiscal_webhook_focusnfe", args=[other_tenant.slug])
    # Their own secret on their own URL, naming our reference: ignored.
    answer = client.post(
        theirs, body, content_type="application/json", HTTP_AUTHORIZATION="hook-secret-beta"
    )
    assert answer.status_code == 200 and answer.content == b"ignored"
    ours = reverse("fiscal_webhook_focusnfe", args=[tenant.slug])
    forged = client.post(
        ours, body, content_type="application/json", HTTP_AUTHORIZATION="hook-secret-beta"
    )
    assert forged.status_code == 401
    invoice.refresh_from_db()
    assert invoice.status == "processing"


def test_the_manual_provider_waits_for_a_number_typed_by_a_person(tenant, cryo, alice):
    fiscal_settings(tenant, provider="manual", api_token="")
    session = paid_sale(tenant, [cryo], alice)
    call_command("issue_nfse")
    invoice = the_invoice(session)
    assert invoice.status == "queued" and invoice.attempts == 0
    issuing.record_manual(invoice, "4711", "https://prefeitura.test/nfse/4711")
    session.receipt.refresh_from_db()
    assert session.receipt.nfse_number == "4711"


def test_settings_refuse_a_bad_cnpj_and_an_iss_rate_outside_2_to_5(tenant):
    config = FiscalSettings(tenant=tenant, cnpj="11.222.333/0001-82")
    with pytest.raises(ValidationError, match="CNPJ"):
        config.full_clean()
    for rate in ("1.99", "5.01"):
        config = FiscalSettings(tenant=tenant, cnpj=CNPJ, iss_rate=Decimal(rate))
        with pytest.raises(ValidationError) as error:
            config.full_clean()
        assert "iss_rate" in error.value.message_dict
    FiscalSettings(tenant=tenant, cnpj=CNPJ, iss_rate=Decimal("2")).full_clean()
    form = FiscalSettingsForm(
        data={
            "tenant": tenant.pk,
            "cnpj": "11.222.333/0001-81",
            "iss_rate": "3.50",
            "provider": "manual",
            "environment": "homologacao",
            "simples_nacional": 3,
            "issue_mode": "per_sale",
            "cancel_window_days": 30,
        }
    )
    assert form.is_valid(), form.errors
    assert form.cleaned_data["cnpj"] == CNPJ


def test_sales_paid_before_issuing_was_switched_on_are_not_invoiced(focus, tenant, cryo, alice):
    paid_sale(tenant, [cryo], alice)
    fiscal_settings(tenant)
    assert issuing.enqueue_paid() == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_queue_a_sale_once(tenant, alice):
    service = make_service(tenant)
    config = fiscal_settings(tenant)
    session = paid_sale(tenant, [service], alice)
    barrier = threading.Barrier(2)
    errors = []

    def work():
        try:
            barrier.wait()
            issuing.enqueue_sale(config, session)
        except Exception as error:  # noqa: BLE001 — reported by the assert below
            errors.append(error)
        finally:
            close_old_connections()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and InvoiceItem.objects.filter(session=session).count() == 1


def test_admin_shows_the_providers_message_to_the_studio_only(
    focus, tenant, cryo, alice, bob, charlie, client
):
    fiscal_settings(tenant, api_token="wrong-token")
    session = paid_sale(tenant, [cryo], alice)
    call_command("issue_nfse")
    invoice = the_invoice(session)
    client.force_login(bob)
    page = client.get(reverse("admin:fiscal_invoice_changelist"))
    assert "permissao_negada" in page.content.decode()
    config = FiscalSettings.objects.get(tenant=tenant)
    config.api_token = TOKEN  # re-typed in admin, encrypted on save
    config.save()
    answer = client.post(
        reverse("admin:fiscal_invoice_changelist"),
        {"action": "send_again", "_selected_action": [invoice.pk]},
    )
    assert answer.status_code == 302
    call_command("issue_nfse")
    invoice.refresh_from_db()
    assert invoice.status == "processing"
    client.force_login(charlie)
    outsider = client.get(reverse("admin:fiscal_invoice_change", args=[invoice.pk]))
    assert outsider.status_code == 404


def test_the_receipt_pdf_links_the_nfse(focus, config, tenant, cryo, alice, client):
    session = paid_sale(tenant, [cryo], alice)
    call_command("issue_nfse")
    invoice = the_invoice(session)
    focus.authorize(invoice.reference)
    issuing.refresh(invoice)
    pdf = client.get(reverse("payments_receipt_pdf", args=[tenant.slug, session.ticket.token]))
    assert pdf.status_code == 200 and b"/URI (https://www.nfse.gov.br/" in pdf.content


def test_retention_keeps_the_nfse_record_and_forgets_the_cpf(focus, config, tenant, cryo, alice):
    from ops import retention

    session = paid_sale(tenant, [cryo], alice, cpf="52998224725", cpf_on_invoice=True)
    issuing.enqueue_paid()
    invoice = the_invoice(session)
    assert invoice.customer_cpf == "52998224725"
    retention.anonymise_tickets([session.ticket_id])
    invoice.refresh_from_db()
    assert invoice.customer_cpf == "" and invoice.customer_name == ""
    retention.delete_tickets([session.ticket_id])
    invoice.refresh_from_db()
    item = invoice.items.get()
    assert item.session is None and item.amount == Decimal("120.00")


# --- the ISS rate, a query that keeps failing, a cancel that cannot get through --------------


def test_the_iss_rate_goes_on_the_dps_where_the_national_system_requires_it(
    focus, tenant, cryo, alice
):
    fiscal_settings(tenant, simples_nacional=1, iss_rate=Decimal("3.50"))
    session = paid_sale(tenant, [cryo], alice)
    call_command("issue_nfse")
    assert the_invoice(session).status == "processing"
    _method, _ref, sent = focus.requests[-1]
    assert sent["percentual_aliquota_relativa_municipio"] == 3.5


def test_a_simples_nacional_company_does_not_state_the_rate_and_the_fake_enforces_both(
    focus, config, tenant, cryo, alice
):
    session = paid_sale(tenant, [cryo], alice)
    call_command("issue_nfse")
    _method, _ref, sent = focus.requests[-1]
    assert config.simples_nacional == 3 and "percentual_aliquota_relativa_municipio" not in sent
    assert the_invoice(session).status == "processing"

    invoice = the_invoice(session)
    dps = issuing.payload(invoice, config)
    wrong = {**dps, "percentual_aliquota_relativa_municipio": 5.0}
    assert "E0625" in focus._iss_rate_refusal(wrong)
    outside = {**dps, "codigo_opcao_simples_nacional": 1}
    assert "não informado" in focus._iss_rate_refusal(outside)
    assert "inválido" in focus._iss_rate_refusal(
        {**outside, "percentual_aliquota_relativa_municipio": 12}
    )


def test_a_query_refused_again_and_again_backs_off_and_alerts_a_person(
    focus, config, tenant, cryo, alice
):
    session = paid_sale(tenant, [cryo], alice)
    call_command("issue_nfse")
    config.api_token = "a-token-revoked-since"
    config.save()
    now = timezone.now()
    asked_at = []
    for minute in range(0, 24 * 60, 2):
        moment = now + timedelta(minutes=3 + minute)
        before = len(focus.requests)
        issuing.poll_processing(moment)
        if len(focus.requests) > before:
            asked_at.append(moment)
    invoice = the_invoice(session)
    # Not every two minutes for a day (720 queries): spaced out as the sends are.
    assert len(asked_at) < 10
    assert invoice.failures >= issuing.POLL_ALERT_AFTER and invoice.needs_attention
    assert "permissao_negada" in invoice.provider_message
    assert invoice.status == "processing"


def test_a_cancel_that_cannot_reach_focus_backs_off_then_alerts(
    focus, config, tenant, cryo, alice, bob
):
    session = paid_sale(tenant, [cryo], alice)
    call_command("issue_nfse")
    invoice = the_invoice(session)
    focus.authorize(invoice.reference)
    issuing.refresh(invoice)
    refund(tenant, session.pk, bob, "cliente desistiu")
    focus.fail_next(1000)
    now = timezone.now()
    for minute in range(0, 24 * 60):
        issuing.settle_refunds(now + timedelta(minutes=minute))
    invoice.refresh_from_db()
    assert invoice.status == "authorized" and invoice.needs_attention
    assert invoice.failures == len(issuing.BACKOFF)
    assert 1000 - focus._failures == len(issuing.BACKOFF)  # not once a minute

    focus.fail_next(0)
    Invoice.objects.filter(pk=invoice.pk).update(needs_attention=False)
    issuing.settle_refunds(now + timedelta(days=2))
    invoice.refresh_from_db()
    assert invoice.status == "cancelled"
