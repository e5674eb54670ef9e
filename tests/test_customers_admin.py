"""Customers and packages in the admin: found by a full CPF, scoped to the studio, sessions
adjusted with a reason and packages sold at the counter through the admin's actions."""

from __future__ import annotations

from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from customers.models import Customer
from tests.conftest import make_ticket
from tests.test_customers import CPF, customer_of, make_package, with_sessions
from tickets import credits
from tickets.models import CreditEntry, CreditKind, CustomerPackage


def test_a_manager_finds_a_customer_by_a_full_cpf_only(client, tenant, cryo, bob):
    customer_of(tenant)
    client.force_login(bob)
    url = reverse("admin:customers_customer_changelist")
    assert client.get(url, {"q": "529.982.247-25"}).context["cl"].result_count == 1
    assert client.get(url, {"q": "Maria"}).context["cl"].result_count == 1
    assert client.get(url, {"q": "52998"}).context["cl"].result_count == 0


def test_a_customers_page_shows_tickets_and_packages_but_never_to_an_outsider(
    client, tenant, cryo, bob, charlie
):
    customer, sold = with_sessions(tenant, [cryo], sessions=3)
    ticket = make_ticket(tenant, [cryo], cpf=CPF, use_sessions=[cryo.pk])
    client.force_login(bob)
    page = client.get(reverse("admin:customers_customer_change", args=[customer.pk]))
    html = page.content.decode()
    assert ticket.number in html and "Crioterapia: 2/3" in html
    assert "Crioterapia (pacote)" in html
    client.force_login(charlie)
    for name, pk in [("customers_customer", customer.pk), ("tickets_customerpackage", sold.pk)]:
        assert client.get(reverse(f"admin:{name}_change", args=[pk])).status_code == 404


def test_a_manager_adjusts_sessions_from_the_admin_with_a_reason(client, tenant, cryo, bob):
    customer, sold = with_sessions(tenant, [cryo], sessions=3)
    credit = sold.credits.get()
    client.force_login(bob)
    url = reverse("admin:tickets_customerpackage_changelist")
    form = {"action": "adjust_sessions", ACTION_CHECKBOX_NAME: [sold.pk]}
    page = client.post(url, form)
    assert page.status_code == 200 and "Ajustar sessões" in page.content.decode()
    refused = client.post(
        url, {**form, "apply": "1", "credit": credit.pk, "change": -9, "reason": "erro"}
    )
    assert "Restam só 3 sessões" in refused.content.decode()
    done = client.post(
        url, {**form, "apply": "1", "credit": credit.pk, "change": 2, "reason": "cortesia"}
    )
    assert done.status_code == 302
    assert credits.sessions_left(customer, cryo.pk) == 5
    assert CreditEntry.objects.get(kind=CreditKind.ADJUSTED).reason == "cortesia"


def test_a_manager_sells_a_package_at_the_counter_from_the_customers_page(
    client, tenant, cryo, bob
):
    customer = customer_of(tenant)
    package = make_package(tenant, [cryo], sessions=10)
    client.force_login(bob)
    url = reverse("admin:customers_customer_changelist")
    form = {"action": "sell_package", ACTION_CHECKBOX_NAME: [customer.pk]}
    done = client.post(url, {**form, "apply": "1", "package": package.pk})
    assert done.status_code == 302
    assert CustomerPackage.objects.get().sold_by == bob
    assert credits.sessions_left(customer, cryo.pk) == 10


def test_a_customer_added_at_the_counter_has_a_canonical_cpf(client, tenant, bob):
    client.force_login(bob)
    response = client.post(
        reverse("admin:customers_customer_add"),
        {
            "tenant": tenant.pk,
            "cpf": "529.982.247-25",
            "name": "Maria Souza",
            "phone": "(11) 91234-5678",
            "email": "",
            **inline_management(),
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    customer = Customer.objects.get()
    assert (customer.cpf, customer.phone, customer.consent_version) == (
        CPF,
        "11912345678",
        "balcao",
    )


def inline_management() -> dict:
    """The empty management forms of the customer page's inlines."""
    data = {}
    for prefix in ("packages", "waivers", "tickets"):
        data |= {
            f"{prefix}-TOTAL_FORMS": "0",
            f"{prefix}-INITIAL_FORMS": "0",
            f"{prefix}-MIN_NUM_FORMS": "0",
            f"{prefix}-MAX_NUM_FORMS": "1000",
        }
    return data
