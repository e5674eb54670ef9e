"""Customers who come back, at the kiosk: greeted by first name, offered their package
sessions, buying a package; and their sessions on the phone page."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from customers.models import Customer
from equipment.models import Kind
from tests.conftest import make_device, make_ticket
from tests.test_customers import CPF, customer_of, make_package, pay, with_sessions
from tests.test_kiosk import buy, identify, pair, url
from tickets import credits
from tickets.models import CustomerPackage, Ticket


@pytest.fixture
def kiosk_client(tenant, cryo) -> Client:
    make_device(tenant, "Crio 1", [cryo])
    client = Client()
    pair(client, tenant, make_device(tenant, "Totem 1", kind=Kind.KIOSK))
    return client


# --- at the kiosk ------------------------------------------------------------------------------


def start_cart(client, tenant, services):
    client.post(url(tenant, "kiosk_start"))
    for service in services:
        client.post(url(tenant, "kiosk_services"), {"toggle": service.pk})
    client.post(url(tenant, "kiosk_extras"), {"next": "1"})


def test_the_kiosk_greets_a_returning_customer_by_first_name_only(tenant, cryo, kiosk_client):
    customer = customer_of(tenant, name="Maria Souza")
    Customer.objects.filter(pk=customer.pk).update(phone="11998765432", email="maria@example.com")
    start_cart(kiosk_client, tenant, [cryo])
    assert identify(kiosk_client, tenant, customer_phone="")["Location"].endswith("/resumo/")
    page = kiosk_client.get(url(tenant, "kiosk_summary")).content.decode()
    assert "Que bom ver você de novo, Maria!" in page
    assert "98765" not in page and "5432" not in page and "maria@example.com" not in page


def test_a_first_visit_is_not_greeted_as_a_return(tenant, cryo, kiosk_client):
    start_cart(kiosk_client, tenant, [cryo])
    identify(kiosk_client, tenant)
    assert b"welcome-back" not in kiosk_client.get(url(tenant, "kiosk_summary")).content


def test_the_kiosk_offers_a_session_and_the_line_needs_no_payment(tenant, cryo, kiosk_client):
    customer, _sold = with_sessions(tenant, [cryo], sessions=8)
    start_cart(kiosk_client, tenant, [cryo])
    assert identify(kiosk_client, tenant)["Location"].endswith("/pacotes/")
    step = kiosk_client.get(url(tenant, "kiosk_packages")).content.decode()
    assert "Usar 1 sessão do pacote (restam 8)" in step
    kiosk_client.post(url(tenant, "kiosk_packages"), {f"choice-{cryo.pk}": "session"})
    summary = kiosk_client.get(url(tenant, "kiosk_summary"))
    assert "1 sessão do pacote (restam 7)" in summary.content.decode()
    assert summary.context["total"] == 0
    response = kiosk_client.post(
        url(tenant, "kiosk_summary"), {"key": summary.context["cart"]["key"]}
    )
    assert response["Location"].endswith("/senha/")
    ticket = Ticket.objects.get()
    assert ticket.status == "in_queue" and ticket.customer == customer
    assert credits.sessions_left(customer, cryo.pk) == 7
    done = kiosk_client.get(url(tenant, "kiosk_ticket")).content.decode()
    assert "Crioterapia: 7 sessões restantes" in done


def test_a_customer_may_pay_instead_of_using_a_session(tenant, cryo, kiosk_client):
    customer, _sold = with_sessions(tenant, [cryo], sessions=8)
    start_cart(kiosk_client, tenant, [cryo])
    identify(kiosk_client, tenant)
    kiosk_client.post(url(tenant, "kiosk_packages"), {f"choice-{cryo.pk}": "pay"})
    assert kiosk_client.get(url(tenant, "kiosk_summary")).context["total"] == cryo.price
    buy(kiosk_client, tenant)
    assert credits.sessions_left(customer, cryo.pk) == 8


def test_a_package_bought_at_the_kiosk_is_paid_then_given(tenant, cryo, kiosk_client, alice):
    from payments.models import PaymentSession
    from payments.sessions import confirm_cash

    package = make_package(tenant, [cryo], sessions=10, price="900.00")
    start_cart(kiosk_client, tenant, [cryo])
    assert identify(kiosk_client, tenant)["Location"].endswith("/pacotes/")
    kiosk_client.post(url(tenant, "kiosk_packages"), {f"choice-{cryo.pk}": f"package-{package.pk}"})
    summary = kiosk_client.get(url(tenant, "kiosk_summary"))
    assert summary.context["total"] == Decimal("900.00")
    assert "1 sessão do pacote (restam 9)" in summary.content.decode()
    buy(kiosk_client, tenant, "cash")
    assert not CustomerPackage.objects.exists()
    session = PaymentSession.objects.get()
    assert session.amount == Decimal("900.00")
    confirm_cash(tenant, session.pk, alice, "900.00")
    customer = Customer.objects.get()
    assert credits.sessions_left(customer, cryo.pk) == 9


def test_the_phone_page_shows_the_sessions_left(tenant, cryo, client):
    customer, _sold = with_sessions(tenant, [cryo], sessions=5)
    ticket = pay(make_ticket(tenant, [cryo], cpf=CPF, use_sessions=[cryo.pk]))
    page = client.get(reverse("ticket_status", args=[tenant.slug, ticket.token]))
    assert "Crioterapia: 4 sessões restantes" in page.content.decode()


def test_a_package_for_another_service_is_bought_without_using_a_session_today(
    tenant, cryo, boots, kiosk_client
):
    make_device(tenant, "Botas 1", [boots])
    boots_package = make_package(tenant, [boots], sessions=5, price="350.00")
    start_cart(kiosk_client, tenant, [cryo])
    assert identify(kiosk_client, tenant)["Location"].endswith("/pacotes/")
    step = kiosk_client.get(url(tenant, "kiosk_packages")).content.decode()
    assert "Pacotes para as próximas visitas" in step and "sem usar sessão hoje" in step
    kiosk_client.post(url(tenant, "kiosk_packages"), {f"also-{boots_package.pk}": "1"})
    summary = kiosk_client.get(url(tenant, "kiosk_summary"))
    assert summary.context["total"] == Decimal("470.00")  # today's cryotherapy + the package
    buy(kiosk_client, tenant)
    ticket = Ticket.objects.get()
    assert [line.service for line in ticket.lines.all()] == [cryo]
    pay(ticket)
    sold = CustomerPackage.objects.get()
    assert sold.package == boots_package
    assert credits.sessions_left(sold.customer, boots.pk) == 5  # none used today


def test_a_package_s_last_day_is_the_studio_s_not_the_server_s(tenant, cryo, kiosk_client):
    tenant.timezone = "America/Manaus"  # an hour behind the server's São Paulo
    tenant.save()
    customer, sold = with_sessions(tenant, [cryo], sessions=8)
    # 00:30 on 11 March in São Paulo is still 23:30 on 10 March in Manaus.
    ends = datetime(2031, 3, 11, 3, 30, tzinfo=UTC)
    CustomerPackage.objects.filter(pk=sold.pk).update(valid_until=ends)
    start_cart(kiosk_client, tenant, [cryo])
    identify(kiosk_client, tenant)
    kiosk_client.post(url(tenant, "kiosk_packages"), {f"choice-{cryo.pk}": "session"})
    summary = kiosk_client.get(url(tenant, "kiosk_summary"))
    kiosk_client.post(url(tenant, "kiosk_summary"), {"key": summary.context["cart"]["key"]})
    done = kiosk_client.get(url(tenant, "kiosk_ticket")).content.decode()
    assert "até 10/03/2031" in done and "11/03/2031" not in done
