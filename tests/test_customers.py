"""Customers who come back: the record found by CPF, package sessions taken, given back,
adjusted and renewed, and two kiosks racing for the last session."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from customers.models import Customer
from tenants.models import AuditLog
from tests.conftest import make_device, make_ticket
from tickets import credits, queue
from tickets.models import (
    CreditEntry,
    CreditKind,
    CustomerPackage,
    LineStatus,
    Package,
    PackageCredit,
    PackageKind,
    PackageService,
    Ticket,
)
from tickets.printing import mark_paid

CPF = "52998224725"


def make_package(tenant, services, *, sessions=10, price="900.00", days=90, **extra):
    package = Package.objects.create(
        tenant=tenant, name=f"{sessions} sessões", price=Decimal(price), validity_days=days, **extra
    )
    for service in services:
        PackageService.objects.create(package=package, service=service, sessions=sessions)
    return package


def customer_of(tenant, name="Maria Souza", cpf=CPF) -> Customer:
    return Customer.objects.create(
        tenant=tenant,
        cpf=cpf,
        name=name,
        consent_version="2026-01",
        consent_at=timezone.now(),
        last_seen_at=timezone.now(),
    )


def with_sessions(tenant, services, customer=None, *, sessions=10, bob=None):
    customer = customer or customer_of(tenant)
    sold = credits.grant(make_package(tenant, services, sessions=sessions), customer, price=0)
    return customer, sold


def pay(ticket: Ticket) -> Ticket:
    with transaction.atomic():
        ticket = Ticket.objects.select_for_update().get(pk=ticket.pk)
        mark_paid(ticket)
    return ticket


# --- the record -----------------------------------------------------------------------------


def test_a_customers_second_visit_finds_the_record_made_on_the_first(tenant, cryo):
    first = make_ticket(tenant, [cryo], cpf="529.982.247-25", phone="11912345678")
    second = make_ticket(tenant, [cryo], customer_name="Mari", cpf="52998224725")
    assert Customer.objects.count() == 1
    customer = Customer.objects.get()
    assert first.customer == second.customer == customer
    # The name to be called by is the latest typed; a phone left blank keeps the stored one.
    assert (customer.name, customer.phone, customer.first_name) == ("Mari", "11912345678", "Mari")
    assert list(customer.tickets.order_by("created_at")) == [first, second]


def test_a_walk_in_without_cpf_has_no_customer_record(tenant, cryo):
    ticket = make_ticket(tenant, [cryo])
    assert ticket.customer is None and not Customer.objects.exists()


def test_the_same_cpf_is_another_customer_at_another_studio(tenant, other_tenant, cryo):
    make_ticket(tenant, [cryo], cpf=CPF)
    customer_of(other_tenant)
    assert Customer.objects.filter(cpf=CPF).count() == 2


# --- taking a session -------------------------------------------------------------------------


def test_a_covered_service_costs_nothing_and_takes_one_session(tenant, cryo, boots):
    customer, sold = with_sessions(tenant, [cryo], sessions=8)
    ticket = make_ticket(tenant, [cryo, boots], cpf=CPF, use_sessions=[cryo.pk])
    assert ticket.total == boots.price
    line = ticket.lines.get(service=cryo)
    assert line.covered and line.price == 0 and line.credit.customer_package == sold
    assert credits.sessions_left(customer, cryo.pk) == 7
    entry = CreditEntry.objects.get(kind=CreditKind.SPENT)
    assert (entry.change, entry.balance_after, entry.line) == (-1, 7, line)
    assert entry.reason == ticket.number == "C001"  # numbered before the session is taken
    assert not ticket.lines.get(service=boots).covered
    # The line's creation in its history shows the session it took.
    assert line.history.get().credit_id == line.credit_id


def test_a_ticket_covered_entirely_by_sessions_has_nothing_to_pay(tenant, cryo):
    with_sessions(tenant, [cryo])
    ticket = make_ticket(tenant, [cryo], cpf=CPF, use_sessions=[cryo.pk])
    assert ticket.total == 0


def test_no_session_left_refuses_the_sale_and_writes_nothing(tenant, cryo):
    customer, sold = with_sessions(tenant, [cryo], sessions=1)
    make_ticket(tenant, [cryo], cpf=CPF, use_sessions=[cryo.pk])
    with pytest.raises(ValidationError) as refused:
        make_ticket(tenant, [cryo], cpf=CPF, use_sessions=[cryo.pk])
    assert "services" in refused.value.message_dict
    assert Ticket.objects.count() == 1
    assert PackageCredit.objects.get().balance == 0


def test_an_expired_package_is_not_used_but_keeps_its_history(tenant, cryo):
    customer, sold = with_sessions(tenant, [cryo])
    make_ticket(tenant, [cryo], cpf=CPF, use_sessions=[cryo.pk])
    CustomerPackage.objects.filter(pk=sold.pk).update(
        valid_from=timezone.now() - timedelta(days=100), valid_until=timezone.now()
    )
    assert credits.balances(customer) == []
    with pytest.raises(ValidationError):
        make_ticket(tenant, [cryo], cpf=CPF, use_sessions=[cryo.pk])
    assert CreditEntry.objects.filter(credit__customer_package=sold).count() == 2


def test_the_package_ending_first_is_used_first(tenant, cryo):
    customer, later = with_sessions(tenant, [cryo])
    _same, sooner = with_sessions(tenant, [cryo], customer)
    CustomerPackage.objects.filter(pk=sooner.pk).update(
        valid_until=timezone.now() + timedelta(days=3)
    )
    ticket = make_ticket(tenant, [cryo], cpf=CPF, use_sessions=[cryo.pk])
    assert ticket.lines.get().credit.customer_package_id == sooner.pk


def test_sessions_of_another_customer_are_never_used(tenant, cryo):
    with_sessions(tenant, [cryo], customer_of(tenant, cpf="11144477735"))
    with pytest.raises(ValidationError):
        make_ticket(tenant, [cryo], cpf=CPF, use_sessions=[cryo.pk])


# --- giving back --------------------------------------------------------------------------------


def test_a_cancelled_service_gives_its_session_back(tenant, cryo, alice):
    customer, _sold = with_sessions(tenant, [cryo], sessions=3)
    ticket = pay(make_ticket(tenant, [cryo], cpf=CPF, use_sessions=[cryo.pk]))
    assert credits.sessions_left(customer, cryo.pk) == 2
    queue.cancel_ticket(tenant, ticket.pk, user=alice, reason="cliente desistiu")
    assert credits.sessions_left(customer, cryo.pk) == 3
    back = CreditEntry.objects.get(kind=CreditKind.RETURNED)
    assert (back.change, back.balance_after, back.user, back.reason) == (
        1,
        3,
        alice,
        "cliente desistiu",
    )


def test_an_unpaid_ticket_abandoned_gives_its_session_back(tenant, cryo):
    customer, _sold = with_sessions(tenant, [cryo], sessions=3)
    ticket = make_ticket(tenant, [cryo], cpf=CPF, use_sessions=[cryo.pk])
    queue.cancel_ticket(tenant, ticket.pk, reason="abandonada no totem")
    assert credits.sessions_left(customer, cryo.pk) == 3


def _miss(tenant, ticket):
    line = ticket.lines.get()
    device = make_device(tenant, "Outra câmara", [line.service])
    queue.call_next(line.service, device)
    queue.no_show(tenant, line.pk)
    later = timezone.now() + timedelta(days=2)
    return queue.expire_missed(tenant, line.pk, now=later)


@pytest.mark.parametrize("policy, left", [(False, 2), (True, 3)])
def test_a_missed_service_gives_its_session_back_only_if_the_studio_says_so(
    tenant, cryo, policy, left
):
    tenant.missed_sessions_come_back = policy
    tenant.save()
    customer, _sold = with_sessions(tenant, [cryo], sessions=3)
    ticket = pay(make_ticket(tenant, [cryo], cpf=CPF, use_sessions=[cryo.pk]))
    line = _miss(tenant, ticket)
    assert line.status == LineStatus.EXPIRED
    assert credits.sessions_left(customer, cryo.pk) == left


# --- a package bought on a ticket ----------------------------------------------------------------


def test_a_package_bought_on_a_ticket_is_given_when_paid_and_pays_todays_session(tenant, cryo):
    package = make_package(tenant, [cryo], sessions=10, price="900.00")
    ticket = make_ticket(tenant, [cryo], cpf=CPF, buy_packages=[package.pk])
    assert ticket.total == Decimal("900.00")
    line = ticket.lines.get()
    assert line.covered and line.credit is None
    assert not CustomerPackage.objects.exists()  # nothing before the money
    pay(ticket)
    sold = CustomerPackage.objects.get()
    assert (sold.customer, sold.ticket, sold.price) == (ticket.customer, ticket, package.price)
    line.refresh_from_db()
    assert line.credit.customer_package == sold
    assert credits.sessions_left(ticket.customer, cryo.pk) == 9


def test_a_package_bought_on_a_ticket_never_paid_gives_nothing(tenant, cryo):
    package = make_package(tenant, [cryo])
    ticket = make_ticket(tenant, [cryo], cpf=CPF, buy_packages=[package.pk])
    queue.cancel_ticket(tenant, ticket.pk, reason="tempo de pagamento esgotado")
    assert not CustomerPackage.objects.exists()


def test_packages_and_sessions_need_a_cpf(tenant, cryo):
    package = make_package(tenant, [cryo])
    with pytest.raises(ValidationError) as refused:
        make_ticket(tenant, [cryo], buy_packages=[package.pk])
    assert "customer_cpf" in refused.value.message_dict
    with pytest.raises(ValidationError):
        make_ticket(tenant, [cryo], use_sessions=[cryo.pk])


def test_a_package_of_another_studio_cannot_be_bought(tenant, other_tenant, cryo):
    foreign = make_package(other_tenant, [])
    with pytest.raises(ValidationError):
        make_ticket(tenant, [cryo], cpf=CPF, buy_packages=[foreign.pk])


def test_a_refunded_package_is_closed_and_its_todays_session_cancelled(tenant, cryo, alice, bob):
    from payments.sessions import confirm_cash, refund, start_payment

    package = make_package(tenant, [cryo], sessions=10, price="900.00")
    ticket = make_ticket(tenant, [cryo], cpf=CPF, buy_packages=[package.pk])
    session = start_payment(ticket, "cash")
    confirm_cash(tenant, session.pk, alice, "900.00")
    assert credits.sessions_left(ticket.customer, cryo.pk) == 9
    refund(tenant, session.pk, bob, "desistiu do pacote")
    ticket.refresh_from_db()
    assert ticket.status == "cancelled"
    assert credits.sessions_left(ticket.customer, cryo.pk) == 0
    kinds = list(CreditEntry.objects.values_list("kind", "change"))
    assert kinds == [("granted", 10), ("spent", -1), ("returned", 1), ("forfeited", -10)]


# --- managers -----------------------------------------------------------------------------------


def test_a_manager_adjusts_sessions_with_a_reason_and_it_is_audited(tenant, cryo, bob, alice):
    customer, sold = with_sessions(tenant, [cryo], sessions=2)
    credit = sold.credits.get()
    with pytest.raises(credits.CreditError):
        credits.adjust(tenant, credit.pk, 1, user=bob, reason="  ")
    with pytest.raises(credits.CreditError):
        credits.adjust(tenant, credit.pk, 1, user=alice, reason="cortesia")  # an operator
    with pytest.raises(credits.CreditError):
        credits.adjust(tenant, credit.pk, -3, user=bob, reason="erro")
    credits.adjust(tenant, credit.pk, 2, user=bob, reason="cortesia de aniversário")
    assert credits.sessions_left(customer, cryo.pk) == 4
    entry = CreditEntry.objects.get(kind=CreditKind.ADJUSTED)
    assert (entry.change, entry.user, entry.reason) == (2, bob, "cortesia de aniversário")
    assert AuditLog.objects.get(action="credits_adjusted").data["reason"] == (
        "cortesia de aniversário"
    )


def test_an_outsider_cannot_adjust_another_studios_sessions(tenant, cryo, charlie):
    _customer, sold = with_sessions(tenant, [cryo])
    with pytest.raises(credits.CreditError):
        credits.adjust(tenant, sold.credits.get().pk, 5, user=charlie, reason="x")


def test_a_counter_sale_gives_the_sessions_and_is_audited(tenant, cryo, bob):
    customer = customer_of(tenant)
    package = make_package(tenant, [cryo], sessions=5, price="450.00")
    sold = credits.sell_at_counter(tenant, customer, package, user=bob)
    assert (sold.sold_by, sold.price) == (bob, Decimal("450.00"))
    assert credits.sessions_left(customer, cryo.pk) == 5
    assert AuditLog.objects.filter(action="package_sold").exists()


def test_a_membership_renews_its_allowance_for_the_next_period(tenant, cryo, bob):
    customer = customer_of(tenant)
    plan = make_package(tenant, [cryo], sessions=4, days=30, kind=PackageKind.MEMBERSHIP)
    first = credits.sell_at_counter(tenant, customer, plan, user=bob)
    second = credits.renew(tenant, first.pk, user=bob)
    assert second.valid_from == first.valid_until
    assert credits.sessions_left(customer, cryo.pk) == 4  # the next period is not live yet
    CustomerPackage.objects.filter(pk=first.pk).update(valid_until=timezone.now())
    CustomerPackage.objects.filter(pk=second.pk).update(valid_from=timezone.now())
    assert credits.sessions_left(customer, cryo.pk) == 4
    package = make_package(tenant, [cryo])
    with pytest.raises(credits.CreditError):
        credits.renew(
            tenant, credits.sell_at_counter(tenant, customer, package, user=bob).pk, user=bob
        )


# --- two kiosks, one last session -------------------------------------


def kiosks_use_a_session_at_once(tenant, service, kiosks: int) -> list[str]:
    """`kiosks` threads sell `service` to CPF's customer on a session at the same moment:
    each sale's number, or "refused"."""
    barrier = threading.Barrier(kiosks)
    outcomes: list[str] = []

    def buy() -> None:
        try:
            barrier.wait()
            ticket = make_ticket(tenant, [service], cpf=CPF, use_sessions=[service.pk])
            outcomes.append(ticket.number)
        except ValidationError:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=buy) for _ in range(kiosks)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_kiosks_never_spend_the_last_session_twice(tenant, cryo):
    make_device(tenant, "Criocâmara", [cryo])
    customer, sold = with_sessions(tenant, [cryo], sessions=1)
    outcomes = kiosks_use_a_session_at_once(tenant, cryo, kiosks=8)
    assert outcomes.count("refused") == 8 - 1
    assert PackageCredit.objects.get().balance == 0
    assert CreditEntry.objects.filter(kind=CreditKind.SPENT).count() == 1
    assert Ticket.objects.count() == 1


# --- LGPD ----------------------------------------------------------------------------------------


def test_the_export_holds_the_customer_record_packages_and_movements(client, tenant, cryo, bob):
    customer, sold = with_sessions(tenant, [cryo], sessions=5)
    make_ticket(tenant, [cryo], cpf=CPF, phone="11987654321", use_sessions=[cryo.pk])
    client.force_login(bob)
    response = client.post(
        reverse("ops_customer_data", args=[tenant.slug]), {"cpf": CPF, "action": "export"}
    )
    data = response.json()
    assert data["customer"]["cpf"] == CPF and data["customer"]["phone"] == "11987654321"
    [package] = data["customer"]["packages"]
    assert package["sessions"] == [{"service": "Crioterapia", "bought": 5, "left": 4}]
    assert [m["kind"] for m in package["movements"]] == ["granted", "spent"]


def test_erasing_a_customer_with_sessions_left_asks_first_then_closes_them(
    client, tenant, cryo, bob
):
    customer, sold = with_sessions(tenant, [cryo], sessions=5)
    ticket = make_ticket(tenant, [cryo], cpf=CPF, use_sessions=[cryo.pk])
    client.force_login(bob)
    url = reverse("ops_customer_data", args=[tenant.slug])
    asked = client.post(url, {"cpf": CPF, "action": "erase", "confirm": "yes"})
    assert asked.status_code == 200 and asked.context["live_sessions"] == 4
    assert "4 sessões de pacote restantes" in asked.content.decode()
    assert Customer.objects.filter(pk=customer.pk).exists()
    done = client.post(
        url, {"cpf": CPF, "action": "erase", "confirm": "yes", "close_packages": "yes"}
    )
    assert done.status_code == 302
    assert not Customer.objects.exists()
    ticket.refresh_from_db()
    assert ticket.customer is None and ticket.customer_cpf == ""
    sold.refresh_from_db()
    assert sold.customer is None  # the sale stays, without the person
    assert PackageCredit.objects.get().balance == 0
    closed = CreditEntry.objects.get(kind=CreditKind.FORFEITED)
    assert (closed.change, closed.user) == (-4, bob)
    entry = AuditLog.objects.get(action="data_erased")
    assert entry.data["package_sessions_closed"] == 4 and entry.data["customer_record"]


def test_erasing_a_customer_without_sessions_left_needs_no_second_yes(tenant, cryo):
    from ops.retention import erase_customer

    customer_of(tenant)
    erase_customer(tenant, CPF)
    assert not Customer.objects.exists()


def test_the_purge_deletes_customers_unseen_for_the_retention_but_not_those_owed_sessions(
    tenant, cryo
):
    from ops.retention import purge

    long_ago = timezone.now() - timedelta(days=400)
    gone = customer_of(tenant, cpf="11144477735")
    owed, _sold = with_sessions(tenant, [cryo], customer_of(tenant))
    recent = customer_of(tenant, cpf="39053344705")
    Customer.objects.filter(pk__in=[gone.pk, owed.pk]).update(last_seen_at=long_ago)
    report = purge(apply=True)
    assert report.customers_deleted == 1
    assert set(Customer.objects.values_list("pk", flat=True)) == {owed.pk, recent.pk}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_kiosks_seeing_a_new_cpf_at_once_make_one_customer(tenant, cryo):
    make_device(tenant, "Criocâmara", [cryo])
    kiosks = 6
    barrier = threading.Barrier(kiosks)
    errors: list[Exception] = []

    def buy() -> None:
        try:
            barrier.wait()
            make_ticket(tenant, [cryo], cpf=CPF)
        except Exception as error:  # noqa: BLE001 - any failure fails the test below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=buy) for _ in range(kiosks)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    customer = Customer.objects.get()
    assert Ticket.objects.filter(customer=customer).count() == kiosks


# --- operators and paper ---------------------------------------------------------------------


def test_the_panel_marks_a_line_paid_with_a_package_session(client, tenant, cryo, boots, alice):
    from tests.test_panel import pick_station

    device = make_device(tenant, "Crio 1", [cryo, boots])
    with_sessions(tenant, [cryo])
    pay(make_ticket(tenant, [cryo, boots], cpf=CPF, use_sessions=[cryo.pk]))
    client.force_login(alice)
    pick_station(client, tenant, device)
    page = client.get(f"/t/{tenant.slug}/painel/").content.decode()
    assert page.count('data-testid="package-badge"') == 1  # cryotherapy, not the boots
    assert ">Pacote<" in page


def test_the_printed_ticket_says_pacote_under_a_service_paid_with_a_session(tenant, cryo, boots):
    from equipment.printing import render_ticket
    from tests.fake_printer import decode_text
    from tests.test_printing import make_printer
    from tickets.printing import ticket_print_data

    printer = make_printer(tenant)
    with_sessions(tenant, [cryo])
    ticket = make_ticket(tenant, [cryo, boots], cpf=CPF, use_sessions=[cryo.pk])
    text = decode_text(render_ticket(ticket_print_data(ticket, printer.printer_settings), 32))
    lines = [line.strip() for line in text.splitlines()]
    assert lines[lines.index("Crioterapia") + 1] == "pacote"
    assert "pacote" not in lines[lines.index("Bota de compressão") + 1]
