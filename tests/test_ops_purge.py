"""Retention and LGPD: the purge on crafted data, and a customer's export and erasure by CPF."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from ops.models import DailyStats
from tenants.audit import record
from tenants.models import AuditAction, AuditLog
from tests.conftest import make_ticket, queued_ticket
from tickets.models import Ticket, TicketLine

CPF = "52998224725"
OTHER_CPF = "11144477735"


def age(ticket, days):
    Ticket.objects.filter(pk=ticket.pk).update(created_at=timezone.now() - timedelta(days=days))


@pytest.fixture
def crafted(tenant, cryo, boots):
    old = queued_ticket(tenant, [cryo, boots], cpf=CPF, phone="11987654321")
    middle = queued_ticket(tenant, [cryo], customer_name="Ana Lima", cpf=CPF, phone="11912345678")
    recent = make_ticket(tenant, [cryo], customer_name="Rui Melo", cpf=OTHER_CPF)
    age(old, 400)
    age(middle, 100)
    age(recent, 10)
    stale = record(AuditAction.REPRINT, tenant=tenant)
    AuditLog.objects.filter(pk=stale.pk).update(created_at=timezone.now() - timedelta(days=200))
    fresh = record(AuditAction.REPRINT, tenant=tenant)
    DailyStats.objects.create(tenant=tenant, day=timezone.now().date() - timedelta(days=400))
    return {"old": old, "middle": middle, "recent": recent, "stale": stale, "fresh": fresh}


def state():
    history = Ticket.history.model.objects.order_by("history_id")
    return (
        list(
            Ticket.objects.order_by("pk").values(
                "pk", "customer_name", "customer_cpf", "customer_phone"
            )
        ),
        list(history.values_list("customer_name", "customer_cpf")),
        list(TicketLine.objects.order_by("pk").values_list("customer_key", flat=True)),
        list(AuditLog.objects.order_by("pk").values_list("pk", flat=True)),
        DailyStats.objects.count(),
    )


def purge(*args):
    out = io.StringIO()
    call_command("purge_old_data", *args, stdout=out)
    return out.getvalue()


def test_a_dry_run_changes_nothing_and_says_what_it_would_do(crafted):
    before = state()
    output = purge()
    assert state() == before
    assert "DRY RUN" in output
    assert "tickets would be anonymised: 1" in output  # the middle one (the old one goes)
    assert "tickets would be deleted: 1" in output
    assert "audit entries would be deleted: 1" in output


def test_apply_anonymises_and_deletes_exactly_what_it_should(crafted):
    old, middle, recent = crafted["old"], crafted["middle"], crafted["recent"]
    output = purge("--apply", "--batch-size", "1")
    assert "summary:" in output and "tickets deleted: 1" in output

    assert not Ticket.objects.filter(pk=old.pk).exists()
    assert not TicketLine.objects.filter(ticket_id=old.pk).exists()
    assert not Ticket.history.model.objects.filter(id=old.pk).exists()

    middle.refresh_from_db()
    assert (middle.customer_name, middle.customer_cpf, middle.customer_phone) == ("", "", "")
    assert middle.number and middle.total  # the ticket itself stays, for the books
    assert set(middle.lines.values_list("customer_key", flat=True)) == {middle.token}
    past = Ticket.history.model.objects.filter(id=middle.pk)
    assert past.exists() and not past.exclude(customer_name="", customer_cpf="").exists()

    recent.refresh_from_db()
    assert (recent.customer_name, recent.customer_cpf) == ("Rui Melo", OTHER_CPF)

    left = set(AuditLog.objects.values_list("pk", flat=True))
    assert crafted["stale"].pk not in left and crafted["fresh"].pk in left
    assert DailyStats.objects.count() == 1  # statistics hold no personal data: kept
    entry = AuditLog.objects.get(action=AuditAction.DATA_PURGED)
    assert entry.data["anonymised"] == 1 and entry.data["tickets_deleted"] == 1


def test_a_second_purge_finds_nothing_to_do(crafted):
    purge("--apply")
    output = purge()
    assert "tickets would be anonymised: 0" in output
    assert "tickets would be deleted: 0" in output


def test_the_purge_refuses_nonsense_options(crafted):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        purge("--anonymise-after", "400", "--retention-days", "365")
    with pytest.raises(CommandError):
        purge("--batch-size", "0")


# --- LGPD ---------------------------------------------------------------------------------------


def test_a_manager_exports_a_customers_data_by_cpf_audited(client, tenant, other_tenant, cryo, bob):
    from tests.conftest import make_service

    mine = make_ticket(tenant, [cryo], cpf=CPF, phone="11987654321")
    make_ticket(tenant, [cryo], cpf=OTHER_CPF)
    make_ticket(other_tenant, [make_service(other_tenant)], cpf=CPF)
    client.force_login(bob)
    response = client.post(
        reverse("ops_customer_data", args=[tenant.slug]),
        {"cpf": "529.982.247-25", "action": "export"},
    )
    data = json.loads(response.content)
    assert [t["number"] for t in data["tickets"]] == [mine.number]
    assert data["tickets"][0]["phone"] == "11987654321"
    entry = AuditLog.objects.get(action=AuditAction.DATA_EXPORTED)
    assert entry.user == bob and entry.data == {"cpf": "***.982.247-**", "tickets": 1}


def test_a_manager_erases_a_customers_data_by_cpf_audited(client, tenant, cryo, bob):
    mine = queued_ticket(tenant, [cryo], cpf=CPF, phone="11987654321")
    other = make_ticket(tenant, [cryo], cpf=OTHER_CPF)
    client.force_login(bob)
    url = reverse("ops_customer_data", args=[tenant.slug])
    unconfirmed = client.post(url, {"cpf": CPF, "action": "erase"})
    assert unconfirmed.status_code == 200 and Ticket.objects.get(pk=mine.pk).customer_cpf == CPF
    response = client.post(url, {"cpf": CPF, "action": "erase", "confirm": "yes"})
    assert response.status_code == 302
    mine.refresh_from_db()
    assert (mine.customer_name, mine.customer_cpf, mine.customer_phone) == ("", "", "")
    assert not Ticket.history.model.objects.filter(customer_cpf=CPF).exists()
    assert Ticket.objects.get(pk=other.pk).customer_cpf == OTHER_CPF
    entry = AuditLog.objects.get(action=AuditAction.DATA_ERASED)
    assert entry.data == {
        "cpf": "***.982.247-**",
        "tickets": 1,
        "customer_record": True,
        "package_sessions_closed": 0,
    }
    assert CPF not in json.dumps(list(AuditLog.objects.values("data")))


def test_customer_data_requests_are_for_managers_only(client, tenant, alice, charlie):
    url = reverse("ops_customer_data", args=[tenant.slug])
    client.force_login(alice)
    assert client.post(url, {"cpf": CPF, "action": "export"}).status_code == 403
    client.force_login(charlie)
    assert client.post(url, {"cpf": CPF, "action": "export"}).status_code == 404


def test_a_bad_cpf_is_a_form_error(client, tenant, bob):
    client.force_login(bob)
    response = client.post(
        reverse("ops_customer_data", args=[tenant.slug]), {"cpf": "123", "action": "export"}
    )
    assert response.status_code == 200 and response.context["form"].errors["cpf"]
