"""Memberships "unlimited within a daily limit": no session count, at most N a day (the
studio's day), the limit held by the database when kiosks race, a cancelled session freeing
its place, and the plan closed on erasure like any package."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from tests.conftest import make_device, make_ticket
from tests.test_customers import CPF, customer_of, kiosks_use_a_session_at_once
from tickets import credits, queue
from tickets.models import (
    CreditEntry,
    CreditKind,
    Package,
    PackageCredit,
    PackageKind,
    PackageService,
    Ticket,
)


def unlimited_plan(tenant, services, *, per_day=1, price="300.00") -> Package:
    plan = Package.objects.create(
        tenant=tenant,
        name="Plano livre",
        kind=PackageKind.MEMBERSHIP,
        price=price,
        validity_days=30,
    )
    for service in services:
        PackageService.objects.create(package=plan, service=service, per_day=per_day)
    return plan


@pytest.fixture
def member(tenant, cryo):
    customer = customer_of(tenant)
    credits.grant(unlimited_plan(tenant, [cryo], per_day=2), customer, price=0)
    return customer


def test_an_unlimited_plan_is_used_up_to_its_daily_limit(tenant, cryo, member):
    [balance] = credits.balances(member)
    assert (balance.left, balance.per_day) == (2, 2)
    for _ in range(2):
        make_ticket(tenant, [cryo], cpf=CPF, use_sessions=[cryo.pk])
    assert credits.sessions_left(member, cryo.pk) == 0
    with pytest.raises(ValidationError):
        make_ticket(tenant, [cryo], cpf=CPF, use_sessions=[cryo.pk])
    credit = PackageCredit.objects.get()
    assert credit.balance is None and credit.used_that_day == 2
    assert CreditEntry.objects.filter(kind=CreditKind.SPENT, balance_after=None).count() == 2


def test_the_next_studio_day_starts_a_new_count(tenant, cryo, member):
    make_ticket(tenant, [cryo], cpf=CPF, use_sessions=[cryo.pk])
    make_ticket(tenant, [cryo], cpf=CPF, use_sessions=[cryo.pk])
    yesterday = credits.today(tenant.pk) - timedelta(days=1)
    PackageCredit.objects.update(used_on=yesterday)
    assert credits.sessions_left(member, cryo.pk) == 2
    make_ticket(tenant, [cryo], cpf=CPF, use_sessions=[cryo.pk])
    assert PackageCredit.objects.get().used_that_day == 1


def test_a_cancelled_session_frees_its_place_of_the_day(tenant, cryo, member, alice):
    tickets = [make_ticket(tenant, [cryo], cpf=CPF, use_sessions=[cryo.pk]) for _ in range(2)]
    queue.cancel_ticket(tenant, tickets[0].pk, user=alice, reason="desistiu")
    assert credits.sessions_left(member, cryo.pk) == 1
    assert PackageCredit.objects.get().balance is None


def test_the_database_refuses_passing_the_daily_limit(tenant, cryo, member):
    with pytest.raises(IntegrityError), transaction.atomic():
        PackageCredit.objects.update(used_on=credits.today(tenant.pk), used_that_day=3)


def test_a_package_service_needs_sessions_or_a_daily_limit(tenant, cryo):
    plan = unlimited_plan(tenant, [], per_day=1)
    with pytest.raises(IntegrityError), transaction.atomic():
        PackageService.objects.create(package=plan, service=cryo)


def test_erasing_closes_an_unlimited_plan(tenant, cryo, member):
    from ops import retention

    assert retention.live_sessions(tenant, CPF) == 2  # asks for the second yes
    retention.erase_customer(tenant, CPF, close_packages=True)
    credit = PackageCredit.objects.get()
    assert credit.balance == 0 and credit.customer_package.customer is None


def test_the_kiosk_offers_the_plan_with_what_is_left_today(tenant, cryo, member):
    from django.test import Client

    from equipment.models import Kind
    from tests.test_customers_kiosk import start_cart
    from tests.test_kiosk import identify, pair, url

    make_device(tenant, "Crio 1", [cryo])
    client = Client()
    pair(client, tenant, make_device(tenant, "Totem 1", kind=Kind.KIOSK))
    start_cart(client, tenant, [cryo])
    assert identify(client, tenant)["Location"].endswith("/pacotes/")
    step = client.get(url(tenant, "kiosk_packages")).content.decode()
    assert "Usar o plano (restam 2 hoje)" in step
    client.post(url(tenant, "kiosk_packages"), {f"choice-{cryo.pk}": "session"})
    summary = client.get(url(tenant, "kiosk_summary")).content.decode()
    assert "1 sessão do plano (resta 1 hoje)" in summary


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_kiosks_never_pass_the_daily_limit(tenant, cryo):
    """Eight kiosks at once for a plan of one session a day: exactly one sells it."""
    make_device(tenant, "Criocâmara", [cryo])
    customer = customer_of(tenant)
    credits.grant(unlimited_plan(tenant, [cryo], per_day=1), customer, price=0)
    outcomes = kiosks_use_a_session_at_once(tenant, cryo, kiosks=8)
    assert outcomes.count("refused") == 8 - 1
    credit = PackageCredit.objects.get()
    assert credit.used_that_day == 1 and credit.balance is None
    assert CreditEntry.objects.filter(kind=CreditKind.SPENT).count() == 1
    assert Ticket.objects.count() == 1


def test_a_manager_defines_an_unlimited_plan_in_admin(client, tenant, cryo, bob):
    client.force_login(bob)
    data = {
        "tenant": tenant.pk,
        "name": "Plano livre",
        "kind": PackageKind.MEMBERSHIP,
        "price": "300.00",
        "validity_days": 30,
        "is_active": "on",
        "items-TOTAL_FORMS": "1",
        "items-INITIAL_FORMS": "0",
        "items-MIN_NUM_FORMS": "1",
        "items-MAX_NUM_FORMS": "1000",
        "items-0-service": cryo.pk,
        "items-0-sessions": "",
        "items-0-per_day": "",
    }
    refused = client.post("/admin/tickets/package/add/", data)
    assert "precisam de um limite diário" in refused.content.decode()
    done = client.post("/admin/tickets/package/add/", {**data, "items-0-per_day": "1"})
    assert done.status_code == 302
    item = PackageService.objects.get()
    assert (item.sessions, item.per_day) == (None, 1)
