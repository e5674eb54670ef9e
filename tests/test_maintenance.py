"""The cron commands on crafted states."""

from __future__ import annotations

import datetime
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from tests.conftest import make_device, make_ticket, queued_ticket
from tickets import queue
from tickets.models import Ticket, TicketLine


@pytest.fixture
def cryo_1(tenant, cryo):
    return make_device(tenant, "Crio 1", [cryo], location="Sala 1")


def run(command: str, *args) -> str:
    from io import StringIO

    out = StringIO()
    call_command(command, *args, stdout=out)
    return out.getvalue()


def test_expire_tickets_marks_late_called_customers_as_no_show(tenant, cryo, boots, cryo_1):
    ticket = queued_ticket(tenant, [cryo, boots])
    line = queue.call_next(cryo, cryo_1)
    TicketLine.objects.filter(pk=line.pk).update(called_at=timezone.now() - timedelta(minutes=6))

    assert "1 no-show(s)" in run("expire_tickets")
    line.refresh_from_db()
    assert line.status == "no_show"
    ticket.refresh_from_db()
    assert ticket.status == "in_queue"  # the boots still wait
    assert "0 no-show(s)" in run("expire_tickets")  # idempotent


def test_expire_tickets_expires_old_and_yesterdays_waiting_tickets(tenant, cryo):
    old = queued_ticket(tenant, [cryo])
    Ticket.objects.filter(pk=old.pk).update(queued_at=timezone.now() - timedelta(hours=5))
    yesterday = queued_ticket(tenant, [cryo])
    Ticket.objects.filter(pk=yesterday.pk).update(day=tenant.today() - datetime.timedelta(days=1))
    fresh = queued_ticket(tenant, [cryo])

    assert "2 expired" in run("expire_tickets")
    assert {t.status for t in Ticket.objects.filter(pk__in=[old.pk, yesterday.pk])} == {"expired"}
    assert old.lines.get().status == "no_show"
    fresh.refresh_from_db()
    assert fresh.status == "in_queue"


def test_expire_tickets_cancels_unpaid_tickets_and_returns_their_stock(tenant, cryo, towel):
    ticket = make_ticket(tenant, [cryo], extras={towel.id: 2})
    Ticket.objects.filter(pk=ticket.pk).update(created_at=timezone.now() - timedelta(minutes=16))
    recent = make_ticket(tenant, [cryo])

    assert "1 unpaid ticket(s) or payment session(s) cancelled" in run("expire_tickets")
    ticket.refresh_from_db()
    towel.refresh_from_db()
    assert ticket.status == "cancelled" and towel.stock == 2
    recent.refresh_from_db()
    assert recent.status == "pending_payment"


def test_cleanup_reports_then_repairs_crafted_inconsistencies(tenant, cryo, boots, cryo_1):
    closed_with_open_line = queued_ticket(tenant, [cryo])
    queue.call_next(cryo, cryo_1)
    Ticket.objects.filter(pk=closed_with_open_line.pk).update(status="cancelled")
    disagreeing = queued_ticket(tenant, [boots])
    Ticket.objects.filter(pk=disagreeing.pk).update(status="called")
    stuck = make_ticket(tenant, [boots])
    Ticket.objects.filter(pk=stuck.pk).update(
        status="printing", printing_at=timezone.now() - timedelta(minutes=30)
    )

    report = run("cleanup_inconsistent_states")
    assert "3 found (run with --fix to repair)" in report
    assert "ocupando Crio 1" in report
    assert closed_with_open_line.lines.get().status == "called"  # a report changes nothing

    assert "3 found, 3 repaired" in run("cleanup_inconsistent_states", "--fix")
    assert closed_with_open_line.lines.get().status == "cancelled"
    disagreeing.refresh_from_db()
    stuck.refresh_from_db()
    assert (disagreeing.status, stuck.status) == ("in_queue", "print_error")
    assert "0 found" in run("cleanup_inconsistent_states")
    queued_ticket(tenant, [cryo])
    queue.call_next(cryo, cryo_1)  # the device is free again
