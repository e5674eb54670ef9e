"""Payments in the admin: masked secrets, tenant scoping, refunds by managers."""

from __future__ import annotations

import pytest

from payments.models import PaymentSession, PaymentSettings
from payments.sessions import confirm_cash, start_payment
from tests.conftest import make_ticket

TOKEN = "APP_USR-1234567890-abcdef-SECRETTOKEN9876"


@pytest.fixture
def paid_cash(tenant, cryo, alice):
    ticket = make_ticket(tenant, [cryo])
    session = start_payment(ticket, "cash")
    confirm_cash(tenant, session.pk, alice, "120")
    return session


@pytest.fixture
def config(tenant):
    return PaymentSettings.objects.create(
        tenant=tenant, mercadopago_access_token=TOKEN, mercadopago_webhook_secret="whsec-abcd-1111"
    )


def test_a_saved_secret_is_never_shown_again_in_full(client, bob, config):
    client.force_login(bob)
    page = client.get(f"/admin/payments/paymentsettings/{config.pk}/change/").content.decode()
    assert TOKEN not in page and "whsec-abcd-1111" not in page
    assert "••••9876" in page and "••••1111" in page
    listing = client.get("/admin/payments/paymentsettings/").content.decode()
    assert TOKEN not in listing


def test_saving_with_the_secret_blank_keeps_it_and_typing_replaces_it(client, bob, config, tenant):
    client.force_login(bob)
    form = {
        "tenant": tenant.pk,
        "pix_enabled": "on",
        "cash_enabled": "on",
        "pix_provider": "pix_static",
        "mercadopago_access_token": "",
        "mercadopago_webhook_secret": "new-secret-2222",
        "mercadopago_point_device": "",
        "point_api": "orders",
        "payer_email": "",
        "pix_key": "pix@studio.test",
        "merchant_name": "Studio",
        "merchant_city": "Recife",
    }
    response = client.post(f"/admin/payments/paymentsettings/{config.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    config.refresh_from_db()
    assert config.mercadopago_access_token == TOKEN
    assert config.mercadopago_webhook_secret == "new-secret-2222"
    assert config.pix_key == "pix@studio.test"


def test_a_payer_email_that_is_the_studios_contact_email_is_refused(client, bob, config, tenant):
    tenant.contact_email = "contato@studioalfa.com.br"
    tenant.save(update_fields=["contact_email"])
    client.force_login(bob)
    form = {
        "tenant": tenant.pk,
        "pix_enabled": "on",
        "cash_enabled": "on",
        "pix_provider": "mercadopago",
        "mercadopago_access_token": "",
        "mercadopago_webhook_secret": "",
        "mercadopago_point_device": "",
        "point_api": "orders",
        "payer_email": "Contato@StudioAlfa.com.br",
        "pix_key": "",
        "merchant_name": "",
        "merchant_city": "",
    }
    response = client.post(f"/admin/payments/paymentsettings/{config.pk}/change/", form)
    assert response.status_code == 200
    assert "MercadoPago" in str(response.context["adminform"].form.errors["payer_email"])
    config.refresh_from_db()
    assert config.payer_email == ""
    response = client.post(
        f"/admin/payments/paymentsettings/{config.pk}/change/",
        {**form, "payer_email": "caixa@studioalfa.com.br"},
    )
    assert response.status_code == 302
    config.refresh_from_db()
    assert config.payer_email == "caixa@studioalfa.com.br"


def test_an_outsider_manager_cannot_see_this_tenants_payments(client, charlie, paid_cash):
    client.force_login(charlie)
    assert client.get(f"/admin/payments/paymentsession/{paid_cash.pk}/change/").status_code == 404
    listing = client.get("/admin/payments/paymentsession/")
    assert f">{paid_cash.pk}<" not in listing.content.decode()


def test_a_manager_refunds_a_cash_payment_from_the_admin_with_a_reason(client, bob, paid_cash):
    client.force_login(bob)
    url = "/admin/payments/paymentsession/"
    data = {"action": "refund_sessions", "_selected_action": [paid_cash.pk]}
    page = client.post(url, data)
    assert page.status_code == 200 and "reason" in page.content.decode().lower()
    assert PaymentSession.objects.get(pk=paid_cash.pk).status == "paid"
    client.post(url, {**data, "apply": "1", "reason": "cliente desistiu"})
    session = PaymentSession.objects.get(pk=paid_cash.pk)
    assert session.status == "refunded" and session.refunded_by == bob
    assert session.ticket.status == "cancelled"


def test_the_manager_sees_the_receipt_as_printable_text(client, bob, paid_cash):
    client.force_login(bob)
    receipt = paid_cash.receipt
    page = client.get(f"/admin/payments/receipt/{receipt.pk}/change/").content.decode()
    assert receipt.code in page and "R$ 120,00" in page
