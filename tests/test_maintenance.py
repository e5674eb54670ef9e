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


# --- missed services expire when their window ends ----------------------------------------


@pytest.fixture
def boots_1(tenant, boots):
    return make_device(tenant, "Bota 1", [boots], location="Sala 2")


def test_the_expiry_job_expires_a_missed_service_past_its_window_and_completes_the_ticket(
    tenant, cryo, boots, cryo_1, boots_1
):
    ticket = queued_ticket(tenant, [cryo, boots])
    cryo_line = queue.call_next(cryo, cryo_1)
    queue.no_show(tenant, cryo_line.id)
    boots_line = queue.call_next(boots, boots_1)
    queue.start(tenant, boots_line.id)
    queue.complete(tenant, boots_line.id)
    ticket.refresh_from_db()
    assert ticket.status == "in_queue"  # the missed cryotherapy may still be called

    assert "0 missed service(s) expired" in run("expire_tickets")
    TicketLine.objects.filter(pk=cryo_line.pk).update(
        no_show_at=timezone.now() - timedelta(minutes=61)
    )
    assert "1 missed service(s) expired" in run("expire_tickets")

    cryo_line.refresh_from_db()
    assert cryo_line.status == "expired"
    assert cryo_line.history.first().history_change_reason == (
        "não compareceu e não foi chamado de novo em 60 min"
    )
    ticket.refresh_from_db()
    assert ticket.status == "completed"
    assert "0 missed service(s) expired" in run("expire_tickets")  # idempotent


def test_a_missed_service_of_an_earlier_day_expires_whatever_the_window(tenant, cryo, cryo_1):
    ticket = queued_ticket(tenant, [cryo])
    line = queue.call_next(cryo, cryo_1)
    queue.no_show(tenant, line.id)
    Ticket.objects.filter(pk=ticket.pk).update(day=tenant.today() - datetime.timedelta(days=1))

    assert "1 missed service(s) expired" in run("expire_tickets")
    line.refresh_from_db()
    assert line.status == "expired"
    assert line.history.first().history_change_reason == "não compareceu, e o dia acabou"


def test_a_ticket_waiting_only_on_a_missed_service_is_not_expired_again_every_minute(
    tenant, cryo, boots, cryo_1, boots_1
):
    ticket = queued_ticket(tenant, [cryo, boots])
    queue.no_show(tenant, queue.call_next(cryo, cryo_1).id)
    served = queue.call_next(boots, boots_1)
    queue.start(tenant, served.id)
    queue.complete(tenant, served.id)
    Ticket.objects.filter(pk=ticket.pk).update(queued_at=timezone.now() - timedelta(hours=5))

    assert "0 expired" in run("expire_tickets")
    assert line_status(ticket, cryo) == "no_show"


def line_status(ticket, service) -> str:
    return ticket.lines.get(service=service).status


# --- stale work is closed -------------------------------------------------------------------


def started(tenant, service, device, *, minutes_ago: float):
    """A line of a new ticket in service on `device` since `minutes_ago`."""
    ticket = queued_ticket(tenant, [service])
    line = queue.call_next(service, device)
    queue.start(tenant, line.id)
    since = timezone.now() - timedelta(minutes=minutes_ago)
    TicketLine.objects.filter(pk=line.pk).update(called_at=since, started_at=since)
    line.refresh_from_db()
    return ticket, line


def test_a_service_in_progress_past_its_limit_is_flagged_then_closed_as_completed(
    midday, tenant, cryo, cryo_1
):
    # Crioterapia takes 10 min: stuck after 30 (× 3), closed 15 min later.
    ticket, line = started(tenant, cryo, cryo_1, minutes_ago=29)
    assert queue.stuck_lines(tenant, timezone.now()) == []
    TicketLine.objects.filter(pk=line.pk).update(started_at=timezone.now() - timedelta(minutes=31))
    assert queue.stuck_lines(tenant, timezone.now()) == [line]
    assert "0 stuck service(s) closed" in run("expire_tickets")  # flagged, not closed yet

    TicketLine.objects.filter(pk=line.pk).update(started_at=timezone.now() - timedelta(minutes=46))
    assert "1 stuck service(s) closed" in run("expire_tickets")

    line.refresh_from_db()
    ticket.refresh_from_db()
    assert (line.status, ticket.status) == ("completed", "completed")
    assert line.duration_seconds is None  # unknown: the measured average is left alone
    reason = line.history.first().history_change_reason
    assert reason.startswith("encerrado automaticamente: em atendimento desde ")
    # The device is free: the partial unique index lets a new call onto it.
    queued_ticket(tenant, [cryo])
    assert queue.call_next(cryo, cryo_1).equipment == cryo_1
    assert "0 stuck service(s) closed" in run("expire_tickets")


def test_a_called_line_never_started_is_closed_as_a_no_show_that_can_be_called_again(
    midday, tenant, cryo, cryo_1
):
    tenant.no_show_timeout_minutes = 120  # so that the stuck rule, not the timeout, acts
    tenant.save()
    ticket = queued_ticket(tenant, [cryo])
    line = queue.call_next(cryo, cryo_1)
    TicketLine.objects.filter(pk=line.pk).update(called_at=timezone.now() - timedelta(minutes=50))

    assert "1 stuck service(s) closed" in run("expire_tickets")
    line.refresh_from_db()
    assert line.status == "no_show"
    assert line.history.first().history_change_reason.startswith(
        "encerrado automaticamente: chamado às "
    )
    assert list(queue.recoverable_lines(tenant, timezone.now())) == [line]
    ticket.refresh_from_db()
    assert ticket.status == "expired"


def test_a_service_left_in_progress_overnight_is_closed_whatever_the_limit(
    midday, tenant, cryo, cryo_1
):
    tenant.stuck_line_factor = 0  # only the end of the day
    tenant.save()
    _ticket, line = started(tenant, cryo, cryo_1, minutes_ago=5)
    assert queue.stuck_lines(tenant, timezone.now()) == []
    yesterday_night = datetime.datetime.combine(
        tenant.today() - datetime.timedelta(days=1), datetime.time(22, 0), tzinfo=tenant.tzinfo
    )
    TicketLine.objects.filter(pk=line.pk).update(started_at=yesterday_night)

    assert "1 stuck service(s) closed" in run("expire_tickets")
    line.refresh_from_db()
    assert line.status == "completed"
    assert line.history.first().history_change_reason == (
        "encerrado automaticamente: em atendimento desde 22:00"
    )


def test_cleanup_reports_stuck_lines_and_fix_closes_them(midday, tenant, cryo, cryo_1):
    _ticket, line = started(tenant, cryo, cryo_1, minutes_ago=35)

    report = run("cleanup_inconsistent_states")
    assert "stuck_line" in report and "Crioterapia in_progress em Crio 1 desde" in report
    assert "1 found (run with --fix to repair)" in report
    line.refresh_from_db()
    assert line.status == "in_progress"  # a report changes nothing

    assert "1 found, 1 repaired" in run("cleanup_inconsistent_states", "--fix")
    line.refresh_from_db()
    assert line.status == "completed"
    assert "0 found" in run("cleanup_inconsistent_states")
