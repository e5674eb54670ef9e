"""The demo without an account: the fake MercadoPago beside the app, "simular pagamento" and
"simular recusa"."""

from __future__ import annotations

import time

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from payments.fake_mercadopago import FakeMercadoPago
from payments.management.commands.run_fake_mercadopago import DEMO_SECRET, configure_demo_tenant
from payments.models import Notification, PaymentSettings, PointApi
from payments.sessions import start_payment
from tests.conftest import make_ticket
from tickets.models import Ticket


def wait_for(check, seconds=10.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def test_demo_credentials_are_set_only_where_there_are_none(tenant, other_tenant):
    config, changed = configure_demo_tenant(tenant)
    assert changed and config.mercadopago_webhook_secret == DEMO_SECRET
    assert set(config.enabled_methods()) == {"pix", "card", "cash"}
    PaymentSettings.objects.create(tenant=other_tenant, mercadopago_access_token="APP_USR-real")
    config, changed = configure_demo_tenant(other_tenant)
    assert not changed and config.mercadopago_access_token == "APP_USR-real"


def test_the_command_refuses_an_unknown_tenant_clearly(db):
    with pytest.raises(CommandError, match="no tenant"):
        call_command("run_fake_mercadopago", tenant="nope", port=0)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("method", ["pix", "card"])
def test_simular_pagamento_goes_through_the_signed_webhook_and_queues_the_ticket(
    live_server, settings, tenant, cryo, method
):
    config, _ = configure_demo_tenant(tenant)
    fake = FakeMercadoPago(
        webhook_url=f"{live_server.url}/t/{tenant.slug}/pagamentos/webhook/mercadopago/",
        secret=config.mercadopago_webhook_secret,
    ).start()
    settings.MERCADOPAGO_BASE_URL = fake.url
    try:
        ticket = make_ticket(tenant, [cryo])
        session = start_payment(ticket, method)
        response = Client().post(f"/t/{tenant.slug}/pagamentos/{session.pk}/simular/")
        assert response.status_code == 202
        assert wait_for(lambda: Ticket.objects.get(pk=ticket.pk).status == "in_queue")
        session.refresh_from_db()
        assert session.status == "paid"
        # The view records the outcome just after the confirmation commits.
        assert wait_for(
            lambda: Notification.objects.filter(session=session, outcome="confirmed").exists()
        )
    finally:
        fake.stop()


def test_simular_pagamento_does_not_exist_outside_demo_mode(settings, tenant, client):
    settings.MERCADOPAGO_BASE_URL = "https://api.mercadopago.com"
    assert client.post(f"/t/{tenant.slug}/pagamentos/1/simular/").status_code == 404


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("method", "point_api", "topic"),
    [
        ("pix", PointApi.ORDERS, "payment"),
        ("card", PointApi.ORDERS, "order"),
        ("card", PointApi.LEGACY_INTENTS, "point_integration_wh"),
    ],
)
def test_simular_recusa_fails_the_payment_through_the_signed_webhook_and_keeps_the_ticket(
    live_server, settings, tenant, cryo, method, point_api, topic
):
    config, _ = configure_demo_tenant(tenant)
    config.point_api = point_api
    config.save(update_fields=["point_api"])
    fake = FakeMercadoPago(
        webhook_url=f"{live_server.url}/t/{tenant.slug}/pagamentos/webhook/mercadopago/",
        secret=config.mercadopago_webhook_secret,
    ).start()
    settings.MERCADOPAGO_BASE_URL = fake.url
    try:
        ticket = make_ticket(tenant, [cryo])
        session = start_payment(ticket, method)
        url = f"/t/{tenant.slug}/pagamentos/{session.pk}/simular/"
        assert Client().post(url, {"outcome": "refuse"}).status_code == 202
        assert wait_for(
            lambda: Notification.objects.filter(session=session, outcome="updated").exists()
        )
        notification = Notification.objects.get(session=session)
        assert notification.kind == topic and notification.request_id  # signed, as MercadoPago
        session.refresh_from_db()
        assert session.status == "failed"
        # Refused, not gone: the customer can pay another way.
        assert Ticket.objects.get(pk=ticket.pk).status == "pending_payment"
        # A refused payment cannot be approved afterwards: 409, and nothing is asked of the fake.
        assert Client().post(url).status_code == 409
    finally:
        fake.stop()


def test_simular_pagamento_refuses_an_outcome_it_does_not_know(settings, tenant, client):
    settings.MERCADOPAGO_BASE_URL = "http://127.0.0.1:9"
    response = client.post(f"/t/{tenant.slug}/pagamentos/1/simular/", {"outcome": "maybe"})
    assert response.status_code == 400


def test_the_fake_rejects_only_a_pix_that_still_waits(tenant, cryo, fake, mp):
    pending = start_payment(make_ticket(tenant, [cryo]), "pix")
    rejected = fake.reject(pending.external_id, notify=False)
    # The query-results page: a bank transfer refused by the bank.
    assert (rejected["status"], rejected["status_detail"]) == ("rejected", "bank_error")
    paid = start_payment(make_ticket(tenant, [cryo]), "pix")
    fake.approve(paid.external_id, notify=False)
    assert fake.reject(paid.external_id, notify=False)["status"] == "approved"
