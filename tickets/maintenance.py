"""What the cron commands do, as small functions that return what they found or changed.

`expire_tickets` and `cleanup_inconsistent_states` (ops' commands) are thin wrappers around
these, so tests call the same code cron runs.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from tenants.errors import DomainError
from tenants.models import Tenant
from tickets import devices, queue
from tickets.models import (
    LINE_ACTIVE,
    PRIORITY_RANKS,
    LineStatus,
    Priority,
    Ticket,
    TicketLine,
    TicketStatus,
    change_line_status,
    change_ticket_status,
)

L, T = LineStatus, TicketStatus
EXPIRABLE = (L.WAITING, L.CALLED)  # what expire_ticket turns into no-shows
PRINTING_STUCK_AFTER = timedelta(minutes=10)


def live_tenants():
    return Tenant.objects.alive().filter(is_active=True)


def expire(now: datetime | None = None) -> Counter:
    """One pass of queue expiry over every tenant; returns counts by what was done.

    Unpaid tickets are payments' to expire (`payments.sessions.expire_pending_sessions`):
    `manage.py expire_tickets` runs both."""
    now = now or timezone.now()
    done: Counter = Counter()
    for tenant in live_tenants():
        done += expire_tenant(tenant, now)
    return done


def expire_tenant(tenant: Tenant, now: datetime) -> Counter:
    done: Counter = Counter()
    # Called customers who did not come within the timeout.
    late = TicketLine.objects.filter(
        tenant=tenant,
        status=L.CALLED,
        called_at__lt=now - timedelta(minutes=tenant.no_show_timeout_minutes),
    ).values_list("id", flat=True)
    for line_id in late:
        try:
            queue.no_show(tenant, line_id, reason=_("no-show timeout"))
            done["no_show"] += 1
        except DomainError:
            done["skipped"] += 1  # an operator acted on it meanwhile
    # Called or in service past the tenant's limit (or the day), once the panel and the
    # alerts had their time to say so.
    for line in queue.stuck_lines(tenant, now - queue.STUCK_GRACE):
        if queue.close_stuck(tenant, line.id, before=now - queue.STUCK_GRACE):
            done["stuck_closed"] += 1
    # Tickets waiting too long, or left over from an earlier local day. Only those with a line
    # still waiting or called: one whose missed service may be called again is in the queue
    # too, and has nothing more to expire.
    too_old = now - timedelta(hours=tenant.expiry_hours)
    stale = (
        Ticket.objects.filter(tenant=tenant, status__in=[T.IN_QUEUE, T.CALLED])
        .filter(Q(queued_at__lt=too_old) | Q(day__lt=tenant.today()))
        .filter(Exists(TicketLine.objects.filter(ticket=OuterRef("pk"), status__in=EXPIRABLE)))
    )
    for ticket_id in stale.values_list("id", flat=True):
        if queue.expire_ticket(tenant, ticket_id, reason=_("waited past the expiry age")):
            done["expired"] += 1
    # Missed services whose reactivation window (or day) is over; last, so that lines made
    # no-shows above on a ticket of an earlier day expire in the same pass.
    recoverable = queue.recoverable_lines(tenant, now).values("pk")
    missed = TicketLine.objects.filter(tenant=tenant, status=L.NO_SHOW).exclude(pk__in=recoverable)
    for line_id in missed.values_list("id", flat=True):
        if queue.expire_missed(tenant, line_id, now=now):
            done["missed_expired"] += 1
    return done


@dataclass
class Finding:
    kind: str
    ticket: str
    detail: str


@dataclass
class Inspection:
    findings: list[Finding] = field(default_factory=list)
    fixed: int = 0


def inspect(*, fix: bool, now: datetime | None = None) -> Inspection:
    """Find (and with `fix`, repair) states that the rules forbid but a crash or a manual
    database edit could leave behind."""
    now = now or timezone.now()
    result = Inspection()
    final = [T.COMPLETED, T.CANCELLED, T.EXPIRED]
    # Lines still open on a ticket that is over (this includes devices held by them).
    for line in TicketLine.objects.filter(
        status__in=queue.OPEN_LINES, ticket__status__in=final
    ).select_related("ticket", "service", "equipment"):
        holds = (
            f", ocupando {line.equipment.name}"
            if line.status in LINE_ACTIVE and line.equipment
            else ""
        )
        result.findings.append(
            Finding(
                "open_line_on_closed_ticket",
                line.ticket.number,
                f"{line.service.name} {line.status} na senha {line.ticket.status}{holds}",
            )
        )
        if fix and _close_line(line):
            result.fixed += 1
    # Tickets whose status is not what their lines add up to.
    in_queue_states = [T.IN_QUEUE, T.CALLED, T.IN_PROGRESS]
    for ticket in Ticket.objects.filter(status__in=in_queue_states).prefetch_related("lines"):
        expected = queue.aggregate_status([line.status for line in ticket.lines.all()])
        if expected != ticket.status:
            result.findings.append(
                Finding(
                    "status_disagrees_with_lines", ticket.number, f"{ticket.status} ≠ {expected}"
                )
            )
            if fix and _resync(ticket):
                result.fixed += 1
    # Lines called or in service past their limit: the expiry job closes them (if it runs).
    for tenant in live_tenants():
        for line in queue.stuck_lines(tenant, now):
            since = timezone.localtime(line.started_at or line.called_at, tenant.tzinfo)
            device = line.equipment.name if line.equipment else "—"
            result.findings.append(
                Finding(
                    "stuck_line",
                    line.ticket.number,
                    f"{line.service.name} {line.status} em {device} desde {since:%d/%m %H:%M}",
                )
            )
            if fix and queue.close_stuck(tenant, line.id, before=now):
                result.fixed += 1
    # Tickets stuck in printing: the spooler died or the job was lost.
    for ticket in Ticket.objects.filter(
        status=T.PRINTING, printing_at__lt=now - PRINTING_STUCK_AFTER
    ):
        result.findings.append(
            Finding("stuck_printing", ticket.number, f"desde {ticket.printing_at:%H:%M}")
        )
        if fix and _to_print_error(ticket):
            result.fixed += 1
    # Open lines ranked for another class than their ticket's: a normal line written with the
    # old rank 2 by a process not yet restarted when blood donors took 2 (tickets 0008).
    wrong_rank = Q()
    for priority, rank in PRIORITY_RANKS.items():
        wrong_rank |= Q(ticket__priority=priority) & ~Q(priority_rank=rank)
    for line in TicketLine.objects.filter(wrong_rank, status__in=queue.OPEN_LINES).select_related(
        "ticket", "service"
    ):
        expected = Priority.rank(line.ticket.priority)
        result.findings.append(
            Finding(
                "rank_disagrees_with_priority",
                line.ticket.number,
                f"{line.service.name}: ordem {line.priority_rank} ≠ {expected}",
            )
        )
        # Conditional: a line changed meanwhile is left as it now is.
        if fix and TicketLine.objects.filter(pk=line.pk, priority_rank=line.priority_rank).update(
            priority_rank=expected
        ):
            result.fixed += 1
    return result


def _close_line(line: TicketLine) -> bool:
    with transaction.atomic():
        line = (
            TicketLine.objects.select_for_update()
            .select_related("ticket", "service")
            .get(pk=line.pk)
        )
        if line.status not in queue.OPEN_LINES:
            return False
        was = line.status
        change_line_status(line, L.CANCELLED, reason=_("repair: the ticket was already closed"))
        if was in LINE_ACTIVE:
            devices.release(line, line.equipment_id, used=False)
    return True


def _resync(ticket: Ticket) -> bool:
    with transaction.atomic():
        ticket = Ticket.objects.select_for_update().get(pk=ticket.pk)
        try:
            queue.sync_ticket(ticket, reason=_("repair: status did not match its lines"))
        except DomainError:
            return False
    return True


def _to_print_error(ticket: Ticket) -> bool:
    with transaction.atomic():
        ticket = Ticket.objects.select_for_update().get(pk=ticket.pk)
        if ticket.status != T.PRINTING:
            return False
        change_ticket_status(
            ticket,
            T.PRINT_ERROR,
            reason=_("repair: stuck in printing; reprint or move to the queue"),
        )
    return True
