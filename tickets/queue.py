"""Per-service queues and the operations on them.

A ticket enters the queue once paid (and printed); from then on each of its service lines is
queued, called, started and completed on its own. The ticket's status is the aggregate of its
lines (`aggregate_status`), kept in step by `sync_ticket` inside the same transaction.

Every operation here locks, re-checks, then acts, and is called alike by the panel, admin
actions and commands. Lock order is always ticket, then its lines, then nothing else: the
device is protected by the partial unique index `line_one_active_per_equipment`, and
call-next claims ticket and line together with SKIP LOCKED, so operators never wait on each
other and never deadlock.
"""

from __future__ import annotations

import heapq
import math
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db import IntegrityError, transaction
from django.db.models import (
    Avg,
    Count,
    DurationField,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
)
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from equipment.models import Equipment, Kind
from equipment.models import Status as DeviceStatus
from tenants import audit, webhooks
from tenants.compiled import CompiledRead
from tenants.errors import DomainError
from tenants.models import AuditAction, Tenant, WebhookEvent
from tickets import devices, events
from tickets.models import (
    LINE_ACTIVE,
    Extra,
    LineStatus,
    Priority,
    Service,
    Ticket,
    TicketLine,
    TicketStatus,
    change_line_status,
    change_ticket_status,
    is_final,
    status_is,
    valid_transitions,
)
from tickets.payloads import line_payload, ticket_payload

L, T = LineStatus, TicketStatus
OPEN_LINES = (L.WAITING, L.CALLED, L.IN_PROGRESS)
# How many recent completed lines make a measured average trustworthy.
DURATION_SAMPLE = 20
DURATION_MIN_SAMPLES = 5


class QueueError(DomainError):
    """A queue operation refused: device busy, empty queue, customer already served…"""


# --- the ticket follows its lines -----------------------------------------------------------


def aggregate_status(statuses: list[str]) -> str:
    """The ticket status its lines add up to (for a ticket already in the queue).

    A missed line (`no_show`) may still be called again until the tenant's reactivation window
    ends (then the line is `expired`), so the ticket is not over while it holds one. Partly
    served, the ticket is back in the queue, as when one service ends while another waits
    (`in_progress → in_queue`), its missed service listed under that service's queue; with
    nothing served, it is `expired`, seed 000's state of a missed ticket that may be
    reactivated. When the window ends it completes (something was served) or stays expired.
    """
    present = set(statuses)
    for line_status, ticket_status in (
        (L.IN_PROGRESS, T.IN_PROGRESS),
        (L.CALLED, T.CALLED),
        (L.WAITING, T.IN_QUEUE),
    ):
        if line_status in present:
            return ticket_status
    if L.NO_SHOW in present:
        return T.IN_QUEUE if L.COMPLETED in present else T.EXPIRED
    if L.COMPLETED in present:
        return T.COMPLETED
    return T.EXPIRED if L.EXPIRED in present else T.CANCELLED


def sync_ticket(ticket: Ticket, *, user=None, reason: str = "") -> None:
    """Move the locked ticket to the aggregate of its lines, if it is not there already."""
    statuses = list(ticket.lines.values_list("status", flat=True))
    target = aggregate_status(statuses)
    if target == T.EXPIRED and ticket.status == T.IN_PROGRESS:
        # The service in progress was cancelled and the others were missed; the machine has
        # no in_progress → expired. With a missed service still to call again, the ticket
        # goes back to the queue on its way; with none, nothing is left to serve.
        if L.NO_SHOW in statuses:
            change_ticket_status(ticket, T.IN_QUEUE, user=user, reason=reason)
        else:
            target = T.CANCELLED
    if target != ticket.status:
        change_ticket_status(ticket, target, user=user, reason=reason)
        if target == T.COMPLETED:
            webhooks.enqueue(
                ticket.tenant_id, WebhookEvent.TICKET_COMPLETED, lambda: ticket_payload(ticket)
            )
        events.publish("ticket_update", tenant_id=ticket.tenant_id, ticket=ticket)


@CompiledRead
def _ticket_for_update(tenant_id: int, ticket_id: int) -> QuerySet[Ticket]:
    # Every payment, print outcome and panel action on a ticket locks it: built once.
    return Ticket.objects.select_for_update().filter(tenant_id=tenant_id, pk=ticket_id)


def lock_ticket(tenant: Tenant, ticket_id: int) -> Ticket:
    """Lock one of the tenant's tickets by id (any id a screen sends: a bad one is not found)."""
    try:
        found = _ticket_for_update(tenant.pk, int(ticket_id))
    except (ValueError, TypeError):  # not a number at all
        found = []
    if not found:
        raise QueueError(_("Ticket not found."))
    ticket = found[0]
    ticket.tenant = tenant  # spares whoever prints, queues or audits it a read
    return ticket


def _lock_line(tenant: Tenant, line_id: int) -> TicketLine:
    """Lock a line's ticket, then the line (the project's lock order)."""
    owner = TicketLine.objects.filter(tenant=tenant, pk=line_id).values("ticket_id")[:1]
    ticket = Ticket.objects.select_for_update().filter(pk=Subquery(owner)).first()
    if ticket is None:
        raise QueueError(_("Service line not found."))
    line = TicketLine.objects.select_for_update().select_related("service").get(pk=line_id)
    line.ticket = ticket
    return line


# --- entering the queue -------------------------------------------------------------------


def enter_queue(ticket: Ticket, *, user=None, reason: str = "") -> None:
    """Put a paid (or printed) ticket in the queue: its waiting lines get their place.

    Call inside a transaction holding the ticket's lock. A line keeps its first `queued_at`,
    so a ticket moved to the queue again (after a print error) does not lose its place.
    """
    change_ticket_status(ticket, T.IN_QUEUE, user=user, reason=reason)
    now = timezone.now()
    ticket.lines.filter(status=L.WAITING, queued_at__isnull=True).update(queued_at=now)
    events.publish("ticket_update", tenant_id=ticket.tenant_id, ticket=ticket)
    for service_id in ticket.lines.values_list("service_id", flat=True):
        events.publish(
            "queue_update", tenant_id=ticket.tenant_id, ticket=ticket, service_id=service_id
        )


# --- devices --------------------------------------------------------------------------------


def lock_device(device: Equipment, service: Service) -> Equipment:
    """Lock `device` and refuse it if it cannot take a line of `service` right now.

    One query: whether it runs the service and what it is busy with come with the lock, as
    annotations (three round trips were a tenth of a call's time).
    """
    runs = Equipment.services.through.objects.filter(equipment=OuterRef("pk"), service=service.pk)
    # The statuses in the text (`status_is`): bound, the generic plan of this lock walked the
    # lines of the device's whole history, not line_one_active_per_equipment (~200 ms of every
    # call over a year's data, seventh round).
    busy = TicketLine.objects.filter(status_is(TicketLine, *LINE_ACTIVE), equipment=OuterRef("pk"))
    try:
        device = (
            Equipment.objects.select_for_update(of=("self",))
            .select_related("tenant")
            .annotate(runs=Exists(runs), busy_with=Subquery(busy.values("ticket__number")[:1]))
            .get(pk=device.pk, tenant=service.tenant_id, deleted_at=None)
        )
    except Equipment.DoesNotExist:
        raise QueueError(_("Device not found.")) from None
    if device.kind != Kind.SERVICE_DEVICE:
        raise QueueError(_("%(device)s is not a service device.") % {"device": device.name})
    if device.status != DeviceStatus.ONLINE:
        raise QueueError(
            _("%(device)s is %(status)s.")
            % {"device": device.name, "status": device.get_status_display().lower()}
        )
    if not device.runs:
        raise QueueError(
            _("%(device)s does not run %(service)s.")
            % {"device": device.name, "service": service.name}
        )
    if device.busy_with:
        raise QueueError(
            _("%(device)s is busy with ticket %(number)s.")
            % {"device": device.name, "number": device.busy_with}
        )
    # Checked under the device's lock, so a session ending elsewhere cannot slip between the
    # check and the call; the trigger line_device_ready refuses it too (tickets/devices.py).
    now = timezone.now()
    window_end = device.maintenance_until(now)
    if window_end is not None:
        raise QueueError(
            _("%(device)s is in its daily maintenance until %(time)s.")
            % {"device": device.name, "time": _local_time(window_end, device.tenant)}
        )
    if device.cooling_until is not None and device.cooling_until > now:
        raise QueueError(
            _("%(device)s is cooling down until %(time)s.")
            % {"device": device.name, "time": _local_time(device.cooling_until, device.tenant)}
        )
    return device


def _local_time(moment: datetime, tenant: Tenant) -> str:
    return f"{timezone.localtime(moment, tenant.tzinfo):%H:%M}"


@contextmanager
def _conflicts():
    """Turn a broken partial unique index into a clear refusal.

    Wraps the whole transaction rather than a savepoint around the save: when the index
    refuses, the operation is over anyway, and a savepoint would cost two round trips on
    every call.
    """
    try:
        yield
    except IntegrityError as error:
        if "device_not_ready" in str(error):
            # The trigger line_device_ready: the device began cooling down or its
            # maintenance between this operator's check and the call.
            raise QueueError(_("The device is not ready for a new session. Try again.")) from None
        if "customer" in str(error):
            raise QueueError(_("This customer is already being served in this service.")) from None
        raise QueueError(_("The device was taken by another operator. Try again.")) from None


def _called(line: TicketLine, device: Equipment, user) -> None:
    """Events for a call: the display announces it, the station and the phone learn it."""
    data = {
        "service": line.service.name,
        "equipment": device.name,
        "room": device.announced_as,
        "call_count": line.call_count,
    }
    for kind in ("ticket_called", "service_called"):
        events.publish(kind, tenant_id=line.tenant_id, ticket=line.ticket, line=line, **data)
    events.publish(
        "queue_update", tenant_id=line.tenant_id, ticket=line.ticket, service_id=line.service_id
    )
    webhooks.enqueue(line.tenant_id, WebhookEvent.TICKET_CALLED, line_payload(line, device))


# --- calling --------------------------------------------------------------------------------


def queue_lines(service: Service):
    """The waiting lines of a service, in the order they will be called: line_queue_order's
    condition, the status written into the statement (`status_is`) so that a prepared
    statement's generic plan walks that index."""
    return TicketLine.objects.filter(
        status_is(TicketLine, L.WAITING), service=service, queued_at__isnull=False
    ).order_by("priority_rank", "queued_at", "id")


def _normal_turn(service: Service) -> bool:
    """Whether the interleave policy gives this call to a normal customer.

    With N > 0, after N priority calls in a row on a service the next goes to the oldest
    normal customer, so a steady stream of priorities never starves everyone else. Blood
    donors count as priority calls here: they too are served before normal customers, so a
    stream of donors would starve them just the same.
    """
    every = service.tenant.priority_interleave
    if not every:
        return False
    recent = list(
        TicketLine.objects.filter(service=service, called_at__isnull=False)
        .order_by("-called_at")
        .values_list("priority_rank", flat=True)[:every]
    )
    return len(recent) == every and all(rank < Priority.rank(Priority.NORMAL) for rank in recent)


def claim_query(service: Service, *, normal_only: bool = False, skip_busy_customers: bool = True):
    """The call-next claim: the first free waiting line and its ticket, FOR UPDATE SKIP LOCKED.

    Served by the partial index `line_queue_order`, which matches its ORDER BY exactly.
    """
    lines = queue_lines(service)
    if normal_only:
        lines = lines.filter(priority_rank=Priority.rank(Priority.NORMAL))
    if skip_busy_customers:
        busy = TicketLine.objects.filter(
            status_is(TicketLine, *LINE_ACTIVE), customer_key=OuterRef("customer_key")
        )
        lines = lines.filter(~Exists(busy))
    return lines.select_related("ticket").select_for_update(
        skip_locked=True, of=("self", "ticket")
    )[:1]


def _operator(user):
    return user if user is not None and user.is_authenticated else None


def call_next(service: Service, device: Equipment, *, user=None) -> TicketLine:
    """Call the next line of `service` onto `device`.

    Parallel operators never get the same line: the claim skips rows another transaction
    holds. By tenant policy, a customer being served elsewhere right now is passed over.
    """
    tenant = service.tenant
    with _conflicts(), transaction.atomic(), events.batch():
        device = lock_device(device, service)
        skip = tenant.skip_customers_in_service
        line = None
        if _normal_turn(service):
            line = claim_query(service, normal_only=True, skip_busy_customers=skip).first()
        line = line or claim_query(service, skip_busy_customers=skip).first()
        if line is None:
            raise QueueError(
                _("Nobody free is waiting for %(service)s.") % {"service": service.name}
            )
        line.service = service
        change_line_status(
            line,
            L.CALLED,
            user=user,
            equipment=device,
            operator=_operator(user),
            call_count=line.call_count + 1,
        )
        sync_ticket(line.ticket, user=user)
        _called(line, device, user)
        devices.announce(device, line)
    return line


def passed_over(line: TicketLine, *, limit: int = 3) -> list[str]:
    """Why call next passed over the customers still waiting ahead of `line` in its queue.

    Read just after `call_next` returned `line`: a customer ahead who is being served
    elsewhere (the tenant's `skip_customers_in_service`) or a priority customer left for a
    normal one's turn (`priority_interleave`). At most `limit` reasons, the first in queue
    order; a line ahead for another reason (another station claiming it at that instant) is
    not explained rather than explained wrongly.
    """
    ahead = list(
        queue_lines(line.service)
        .filter(
            Q(priority_rank__lt=line.priority_rank)
            | Q(priority_rank=line.priority_rank, queued_at__lt=line.queued_at)
            | Q(priority_rank=line.priority_rank, queued_at=line.queued_at, id__lt=line.pk)
        )
        .select_related("ticket")[:limit]
    )
    if not ahead:
        return []
    busy = {
        other.customer_key: other
        for other in TicketLine.objects.filter(
            status_is(TicketLine, *LINE_ACTIVE),
            customer_key__in=[a.customer_key for a in ahead if a.customer_key],
        ).select_related("equipment", "service")
    }
    reasons = []
    for waiting in ahead:
        names = {"number": waiting.ticket.number}
        elsewhere = busy.get(waiting.customer_key) if waiting.customer_key else None
        if elsewhere is not None:
            where = elsewhere.equipment.name if elsewhere.equipment else elsewhere.service.name
            reasons.append(
                _("Ticket %(number)s skipped: being served at %(where)s.")
                % {**names, "where": where}
            )
        elif waiting.priority_rank < line.priority_rank:
            reasons.append(
                _(
                    "Ticket %(number)s skipped: a customer without priority's turn "
                    "(the studio's interleave rule)."
                )
                % names
            )
    return reasons


def call_line(
    tenant: Tenant, line_id: int, device: Equipment, *, user=None, reason: str = ""
) -> TicketLine:
    """Call a chosen line onto `device` (out of order, or a second service in parallel).

    A missed line may be called again while the tenant's reactivation window lasts (see
    `recoverable_lines`); on an expired ticket, that reactivates the ticket.
    """
    with _conflicts(), transaction.atomic(), events.batch():
        line = _lock_line(tenant, line_id)
        ticket = line.ticket
        device = lock_device(device, line.service)
        if line.status == L.WAITING and line.queued_at is None:
            raise QueueError(
                _("Ticket %(number)s is not in the queue yet (%(status)s).")
                % {"number": ticket.number, "status": ticket.get_status_display()}
            )
        if line.status not in (L.WAITING, L.NO_SHOW):
            raise QueueError(
                _("%(service)s of ticket %(number)s is %(status)s, not waiting.")
                % {
                    "service": line.service.name,
                    "number": ticket.number,
                    "status": line.get_status_display().lower(),
                }
            )
        if (
            line.status == L.NO_SHOW
            and not recoverable_lines(tenant, timezone.now()).filter(pk=line.pk).exists()
        ):
            raise QueueError(
                _("The time to call %(service)s of ticket %(number)s again is over.")
                % {"service": line.service.name, "number": ticket.number}
            )
        in_service = TicketLine.objects.filter(
            status_is(TicketLine, *LINE_ACTIVE),
            service=line.service,
            customer_key=line.customer_key,
        )
        if in_service.exists():
            raise QueueError(
                _("This customer is already being served in %(service)s.")
                % {"service": line.service.name}
            )
        if line.status == L.NO_SHOW and ticket.status == T.EXPIRED:
            # The ticket's lock is held: the in-memory count is the database's, and the
            # history row of the status change below records it.
            ticket.reactivation_count += 1
            Ticket.objects.filter(pk=ticket.pk).update(reactivation_count=ticket.reactivation_count)
        change_line_status(
            line,
            L.CALLED,
            user=user,
            reason=reason,
            equipment=device,
            operator=_operator(user),
            call_count=line.call_count + 1,
        )
        sync_ticket(ticket, user=user, reason=reason)
        _called(line, device, user)
        devices.announce(device, line)
    return line


def reannounce(tenant: Tenant, line_id: int, *, user=None) -> TicketLine:
    """Call a called line again. Past the tenant's limit of calls, the line is a no-show."""
    with transaction.atomic():
        line = _lock_line(tenant, line_id)
        if line.status != L.CALLED:
            raise QueueError(_("Only a called customer can be called again."))
        if line.call_count >= tenant.no_show_calls:
            _end_no_show(line, user=user, reason=_("called %(n)s times") % {"n": line.call_count})
            return line
        TicketLine.objects.filter(pk=line.pk).update(call_count=F("call_count") + 1)
        line.refresh_from_db(fields=["call_count"])
        _called(line, line.equipment, user)
    return line


# --- serving --------------------------------------------------------------------------------


def _check_status(line: TicketLine, *allowed: str) -> None:
    if line.status not in allowed:
        raise QueueError(
            _("%(service)s of ticket %(number)s is %(status)s.")
            % {
                "service": line.service.name,
                "number": line.ticket.number,
                "status": line.get_status_display().lower(),
            }
        )


def start(tenant: Tenant, line_id: int, *, user=None) -> TicketLine:
    """The customer arrived: `called → in_progress` on the same device."""
    with transaction.atomic(), events.batch():
        line = _lock_line(tenant, line_id)
        _check_status(line, L.CALLED)
        # Its planned end is fixed now, from the device's settings: what every screen counts
        # down to.
        device, timing = devices.session_fields(line.equipment_id, line.service, timezone.now())
        change_line_status(line, L.IN_PROGRESS, user=user, **timing)
        sync_ticket(line.ticket, user=user)
        devices.announce(device, line)
        events.publish(
            "service_started",
            tenant_id=tenant.id,
            ticket=line.ticket,
            line=line,
            service=line.service.name,
        )
    return line


def complete(tenant: Tenant, line_id: int, *, user=None) -> TicketLine:
    """`in_progress → completed`: duration recorded; the device cools down (its settings),
    then is free again."""
    with transaction.atomic(), events.batch():
        line = _lock_line(tenant, line_id)
        _check_status(line, L.IN_PROGRESS)
        seconds = int((timezone.now() - line.started_at).total_seconds())
        change_line_status(line, L.COMPLETED, user=user, duration_seconds=max(seconds, 0))
        # An update, not a save: no history row, and no lock beyond this one row's.
        Service.objects.filter(pk=line.service_id).update(
            measured_duration_seconds=measure_duration(line.service_id)
        )
        sync_ticket(line.ticket, user=user)
        devices.release(line, line.equipment_id, used=True)
        events.publish("queue_update", tenant_id=tenant.id, ticket=line.ticket, line=line)
    return line


def send_back(tenant: Tenant, line_id: int, *, user=None, reason: str = "") -> TicketLine:
    """`called → waiting`: back in the queue at its original place; the device is freed."""
    with transaction.atomic():
        line = _lock_line(tenant, line_id)
        _check_status(line, L.CALLED)
        device_id = line.equipment_id
        # queued_at passed back: the line keeps its first place rather than the stamp of now.
        change_line_status(
            line, L.WAITING, user=user, reason=reason, equipment=None, queued_at=line.queued_at
        )
        sync_ticket(line.ticket, user=user, reason=reason)
        devices.release(line, device_id, used=False)
        events.publish("queue_update", tenant_id=tenant.id, ticket=line.ticket, line=line)
    return line


def _end_no_show(line: TicketLine, *, user=None, reason: str = "") -> None:
    change_line_status(line, L.NO_SHOW, user=user, reason=reason)
    sync_ticket(line.ticket, user=user, reason=reason)
    devices.release(line, line.equipment_id, used=False)
    events.publish("queue_update", tenant_id=line.tenant_id, ticket=line.ticket, line=line)


def no_show(tenant: Tenant, line_id: int, *, user=None, reason: str = "") -> TicketLine:
    """The called customer did not come: the line is a no-show; the device is free."""
    with transaction.atomic():
        line = _lock_line(tenant, line_id)
        _check_status(line, L.CALLED)
        _end_no_show(line, user=user, reason=reason or _("did not show up"))
    return line


def _require_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise QueueError(_("Say why (the reason is required)."))
    return reason


def cancel_line(tenant: Tenant, line_id: int, *, user=None, reason: str) -> TicketLine:
    """Cancel one service of a ticket; the reason is required; its device is freed."""
    reason = _require_reason(reason)
    with transaction.atomic():
        line = _lock_line(tenant, line_id)
        _check_status(line, *OPEN_LINES, L.NO_SHOW)
        was = line.status
        if line.ticket.status not in (T.IN_QUEUE, T.CALLED, T.IN_PROGRESS, T.EXPIRED):
            # Before the queue the ticket is what was (or is being) paid for: one service less
            # would no longer match its payment. The whole ticket is cancelled (or refunded).
            raise QueueError(
                _("Ticket %(number)s is not in the queue yet: cancel the whole ticket instead.")
                % {"number": line.ticket.number}
            )
        change_line_status(line, L.CANCELLED, user=user, reason=reason)
        if was in LINE_ACTIVE:
            devices.release(line, line.equipment_id, used=devices.used(was))
        audit.record(
            "line_cancelled",
            tenant=tenant,
            user=user,
            entity=line,
            data={"ticket": line.ticket.number, "service": line.service.name, "reason": reason},
        )
        sync_ticket(line.ticket, user=user, reason=reason)
        events.publish("queue_update", tenant_id=tenant.id, ticket=line.ticket, line=line)
    return line


def cancel_ticket(tenant: Tenant, ticket_id: int, *, user=None, reason: str) -> Ticket:
    """Cancel a whole ticket and its open lines; an unpaid ticket gives its extras back."""
    reason = _require_reason(reason)
    with transaction.atomic():
        ticket = lock_ticket(tenant, ticket_id)
        was_unpaid = ticket.status == T.PENDING_PAYMENT
        change_ticket_status(ticket, T.CANCELLED, user=user, reason=reason)
        audit.record(
            "ticket_cancelled",
            tenant=tenant,
            user=user,
            entity=ticket,
            data={"ticket": ticket.number, "reason": reason},
        )
        for line in ticket.lines.select_for_update().exclude(
            status__in=[L.COMPLETED, L.CANCELLED, L.EXPIRED]
        ):
            line.ticket = ticket
            was = line.status
            change_line_status(line, L.CANCELLED, user=user, reason=reason)
            if was in LINE_ACTIVE:
                devices.release(line, line.equipment_id, used=devices.used(was))
        if was_unpaid:
            restore_stock(ticket)
        events.publish("ticket_update", tenant_id=tenant.id, ticket=ticket)
        for service_id in ticket.lines.values_list("service_id", flat=True):
            events.publish(
                "queue_update", tenant_id=tenant.id, ticket=ticket, service_id=service_id
            )
    return ticket


def restore_stock(ticket: Ticket) -> None:
    """Give a ticket's extras back to stock (unlimited extras have none to give back)."""
    for item in ticket.extras.order_by("extra_id"):
        Extra.objects.filter(pk=item.extra_id, stock__isnull=False).update(
            stock=F("stock") + item.quantity
        )


def transfer(
    tenant: Tenant, line_id: int, service: Service, *, user=None, reason: str = ""
) -> TicketLine:
    """Move a waiting line to another service of the tenant; it keeps its queue time."""
    with transaction.atomic():
        line = _lock_line(tenant, line_id)
        _check_status(line, L.WAITING)
        if service.tenant_id != tenant.id or not service.is_active or service.deleted_at:
            raise QueueError(_("Choose an active service of this studio."))
        if line.ticket.lines.filter(service=service).exists():
            raise QueueError(
                _("Ticket %(number)s already has %(service)s.")
                % {"number": line.ticket.number, "service": service.name}
            )
        old = line.service
        line.service = service
        line._history_user = user if user and user.is_authenticated else None
        line._change_reason = (reason or _("transferred from %(old)s") % {"old": old.name})[:100]
        line.save(update_fields=["service"])
        for service_id in (old.id, service.id):
            events.publish(
                "queue_update", tenant_id=tenant.id, ticket=line.ticket, service_id=service_id
            )
    return line


# --- reading the queue ----------------------------------------------------------------------


def average_duration_seconds(service: Service) -> int:
    """Measured over the last completed lines; the expected duration until there are enough."""
    return service.measured_duration_seconds or service.duration_minutes * 60


def measure_duration(service_id: int) -> int | None:
    """The average of the service's last completed lines; None while there are too few."""
    recent = list(
        TicketLine.objects.filter(
            service_id=service_id, status=L.COMPLETED, duration_seconds__isnull=False
        )
        .order_by("-completed_at")
        .values_list("duration_seconds", flat=True)[:DURATION_SAMPLE]
    )
    if len(recent) < DURATION_MIN_SAMPLES:
        return None
    return int(sum(recent) / len(recent))


def round_seconds(service: Service) -> int:
    """How long a device of `service` takes per customer: the session and the cool-down or
    cleaning after it, before it can take the next."""
    return average_duration_seconds(service) + devices.cooldowns([service])[service.pk]


def devices_for(service: Service) -> int:
    return Equipment.objects.able_to_run(service).count()


def estimate_wait_minutes(ahead: int, devices: int, average_seconds: int) -> int:
    """Rounds of service before this customer's turn, each as long as the average."""
    rounds = math.ceil((ahead + 1) / max(devices, 1)) - 1 if devices else ahead
    return math.ceil(rounds * average_seconds / 60)


@dataclass
class LinePlace:
    position: int  # 1 = next to be called
    wait_minutes: int


def place_of(line: TicketLine) -> LinePlace | None:
    """Where a waiting line stands in its queue, or None when it is not waiting."""
    if line.status != L.WAITING or line.queued_at is None:
        return None
    ahead = (
        queue_lines(line.service)
        .filter(
            Q(priority_rank__lt=line.priority_rank)
            | Q(priority_rank=line.priority_rank, queued_at__lt=line.queued_at)
            | Q(priority_rank=line.priority_rank, queued_at=line.queued_at, id__lt=line.id)
        )
        .count()
    )
    turn = round_seconds(line.service)
    free_in = devices_free_in(line.service, turn, timezone.now())
    if free_in:
        wait = math.ceil(wait_seconds(ahead, free_in, turn) / 60)
    else:  # nothing runs it now (all offline): a turn per customer ahead, as a guess
        wait = estimate_wait_minutes(ahead, 0, turn)
    return LinePlace(position=ahead + 1, wait_minutes=wait)


def devices_free_in(service: Service, turn: int, now: datetime) -> list[int]:
    """Seconds until each online device that runs `service` can take a new customer: 0 when
    free; the rest of its cool-down or maintenance window; for one in a session, its planned
    end (a called one: a whole session from now) and the cool-down after it. Two queries."""
    cooldown = turn - average_duration_seconds(service)
    able = list(Equipment.objects.able_to_run(service).select_related("tenant"))
    free_in = []
    for state in devices.states(able, now):
        if state.until is not None:
            free_in.append((state.until - now).total_seconds())
        elif state.line is not None:
            end = state.ends_at or now + timedelta(seconds=average_duration_seconds(service))
            free_in.append(max((end - now).total_seconds(), 0) + cooldown)
        else:
            free_in.append(0)
    return [max(0, int(seconds)) for seconds in free_in]


def wait_seconds(ahead: int, free_in: list[int], turn: int) -> int:
    """When the customer with `ahead` others before them gets a device: each customer takes
    the device free first, for a turn (session + cool-down). `free_in` is not empty."""
    free = list(free_in)
    heapq.heapify(free)
    for _customer in range(ahead):
        heapq.heapreplace(free, free[0] + turn)
    return free[0]


def wait_level(tenant: Tenant, minutes: float) -> str:
    """`ok`, `warning` or `critical` by the tenant's thresholds: the colour of a waiting time."""
    if minutes >= tenant.wait_critical_minutes:
        return "critical"
    if minutes >= tenant.wait_warning_minutes:
        return "warning"
    return "ok"


@dataclass
class ServiceCounts:
    """What the operator panel shows of a queue."""

    service: Service
    waiting: int
    in_service: int
    average_wait_minutes: int | None
    average_duration_minutes: int


@dataclass
class ServiceStats(ServiceCounts):
    """With what a wait is estimated from (kiosk, API)."""

    devices: int
    # A customer's turn on a device: the session and the cool-down after it (waits).
    round_seconds: int


@CompiledRead
def _counts(tenant_id: int, start_of_day: datetime, *service_ids: int):
    """`service_counts`' figures of these services of the tenant (compiled once per process
    and number of services: building it was ~2 ms of each panel render)."""
    lines = TicketLine.objects.filter(service=OuterRef("pk")).order_by().values("service")
    in_service = (
        lines.filter(status_is(TicketLine, *LINE_ACTIVE)).annotate(n=Count("*")).values("n")
    )
    avg_wait = (
        lines.filter(called_at__gte=start_of_day, queued_at__isnull=False)
        .annotate(average=Avg(F("called_at") - F("queued_at")))
        .values("average")
    )
    return (
        Service.objects.filter(tenant_id=tenant_id, pk__in=service_ids)
        .annotate(
            waiting=waiting_now(),
            in_service=Coalesce(Subquery(in_service, output_field=IntegerField()), 0),
            avg_wait=Subquery(avg_wait, output_field=DurationField()),
        )
        .order_by()
        .values("pk", "waiting", "in_service", "avg_wait")
    )


def service_counts(tenant: Tenant, services: list[Service]) -> list[ServiceCounts]:
    """Per service: waiting now, in service now, average wait today, average duration.

    One query whatever the queue length: each figure a subquery of the service's row on a
    partial index of its own (line_queue_order, line_customer_once_per_service for the
    active lines, line_recent_calls for today's calls), counted without reading the lines'
    rows, so finished history is never scanned and the cost is the same in December as in
    May. One aggregate over the open lines, its statuses bound as parameters, read every
    waiting line's row: ~10 ms of PostgreSQL per panel render at 10,000 waiting, against
    ~3 ms this way (bench/README.md, seventh round).
    """
    if not services:
        return []
    start_of_day = tenant.start_of_today()
    figures = {
        row.pop("pk"): row for row in _counts(tenant.pk, start_of_day, *(s.pk for s in services))
    }
    stats = []
    for service in services:
        avg = figures[service.pk]["avg_wait"]
        stats.append(
            ServiceCounts(
                service=service,
                waiting=figures[service.pk]["waiting"],
                in_service=figures[service.pk]["in_service"],
                average_wait_minutes=round(avg.total_seconds() / 60) if avg else None,
                average_duration_minutes=round(average_duration_seconds(service) / 60),
            )
        )
    return stats


def turns(tenant: Tenant, services: list[Service]) -> dict[int, tuple[int, int]]:
    """Per service: how many online devices run it, and a customer's turn on one (the session
    and the cool-down after it) — with the queue's length, what a wait is estimated from.
    One query, whatever the number of services."""
    runs = devices.online_runs(tenant.pk)
    cooldowns = devices.cooldowns(services, runs)
    return {
        service.pk: (
            len(runs.get(service.pk, [])),
            average_duration_seconds(service) + cooldowns[service.pk],
        )
        for service in services
    }


def service_stats(tenant: Tenant, services: list[Service]) -> list[ServiceStats]:
    """`service_counts`, with the online devices of each service and a customer's turn on
    one (`turns`). Two queries in all."""
    by_service = turns(tenant, services)
    return [
        ServiceStats(
            **vars(counts),
            devices=by_service[counts.service.id][0],
            round_seconds=by_service[counts.service.id][1],
        )
        for counts in service_counts(tenant, services)
    ]


def waiting_now() -> Coalesce:
    """Of a Service row: its lines waiting now, all a TV and the kiosk's service list show of
    each queue (`service_stats` takes two queries), counted in the services' own read. The
    condition is line_queue_order's, in the statement's text (`status_is`): PostgreSQL counts
    that partial index without reading the lines (10,000 waiting: ~2 ms; bound as parameters,
    the generic plan of the count scanned the year's lines)."""
    waiting = (
        TicketLine.objects.filter(
            status_is(TicketLine, L.WAITING), service=OuterRef("pk"), queued_at__isnull=False
        )
        .order_by()
        .values("service")
        .annotate(count=Count("*"))
        .values("count")
    )
    return Coalesce(Subquery(waiting, output_field=IntegerField()), 0)


def waited_minutes(queued_at: datetime | None, now: datetime) -> int:
    """Whole minutes a line has waited since it was queued (0 before it is)."""
    if queued_at is None:
        return 0
    return max(0, int((now - queued_at) / timedelta(minutes=1)))


# --- expiry -------------------------------------------------------------------------------


def expire_ticket(tenant: Tenant, ticket_id: int, *, reason: str) -> Ticket | None:
    """Its waiting and called lines become no-shows; the ticket follows (expired, or
    completed when another line was served). None when the ticket moved on meanwhile."""
    with transaction.atomic():
        ticket = lock_ticket(tenant, ticket_id)
        if ticket.status not in (T.IN_QUEUE, T.CALLED):
            return None
        for line in ticket.lines.select_for_update().filter(status__in=[L.WAITING, L.CALLED]):
            line.ticket = ticket
            was = line.status
            change_line_status(line, L.NO_SHOW, reason=reason)
            if was == L.CALLED:
                devices.release(line, line.equipment_id, used=False)
            events.publish("queue_update", tenant_id=tenant.id, ticket=ticket, line=line)
        sync_ticket(ticket, reason=reason)
    return ticket


# --- missed and stuck lines ----------------------------------------------------------------

# A stuck line is closed this long after the panel flags it and the studio's alerts report it:
# check_alerts runs every minute like the expiry job, and without the margin whether anyone
# heard would depend on which of the two ran first. Meanwhile an operator can still complete it
# by hand, recording its real duration.
STUCK_GRACE = timedelta(minutes=15)


def end_of_day(tenant: Tenant, day: date) -> datetime:
    """The tenant's local midnight that ends `day`."""
    return datetime.combine(day + timedelta(days=1), time.min, tzinfo=tenant.tzinfo)


def recoverable_lines(tenant: Tenant, now: datetime):
    """Missed lines that may still be called again: no-shows of today's tickets inside the
    tenant's reactivation window (the end of the day ends it too)."""
    return missed_since(tenant.pk, *recoverable_window(tenant, now))


def recoverable_window(tenant: Tenant, now: datetime) -> tuple[datetime, date]:
    """What `recoverable_lines` reads at `now`: no-shows since when, of tickets of which day."""
    since = now - timedelta(minutes=tenant.reactivation_minutes)
    return since, timezone.localtime(now, tenant.tzinfo).date()


def missed_since(tenant_id: int, since: datetime, day: date):
    """The tenant's no-shows since `since` of tickets of `day` (`recoverable_window`)."""
    return TicketLine.objects.filter(
        status_is(TicketLine, L.NO_SHOW),
        tenant_id=tenant_id,
        no_show_at__gte=since,
        ticket__day=day,
    )


def recoverable_until(no_show_at: datetime, day: date, tenant: Tenant) -> datetime:
    """When a missed line of `recoverable_lines` (missed at `no_show_at`, its ticket of
    `day`) stops being one."""
    return min(
        no_show_at + timedelta(minutes=tenant.reactivation_minutes),
        end_of_day(tenant, day),
    )


def expire_missed(tenant: Tenant, line_id: int, *, now: datetime) -> TicketLine | None:
    """`no_show → expired` once the line's reactivation window is over, with the reason in its
    history; its ticket then completes (something was served) or stays expired. None when the
    line was called again or cancelled meanwhile, or is still recoverable."""
    with transaction.atomic(), events.batch():
        line = _lock_line(tenant, line_id)
        if line.status != L.NO_SHOW or recoverable_lines(tenant, now).filter(pk=line.pk).exists():
            return None
        if line.ticket.day < timezone.localtime(now, tenant.tzinfo).date():
            reason = _("missed, and its day ended")
        else:
            reason = _("missed, and not called again within %(minutes)s min") % {
                "minutes": tenant.reactivation_minutes
            }
        change_line_status(line, L.EXPIRED, reason=reason)
        # A ticket closed before missed services could be called again keeps its status.
        if not is_final(line.ticket.status):
            sync_ticket(line.ticket, reason=reason)
        events.publish("queue_update", tenant_id=tenant.id, ticket=line.ticket, line=line)
    return line


def stuck_at(line: TicketLine, tenant: Tenant) -> datetime | None:
    """When a called or in-service line is stuck: its service's expected duration × the
    tenant's factor after it was called or started, and at the latest at the end of that
    local day. None for a line in neither state."""
    since = {L.CALLED: line.called_at, L.IN_PROGRESS: line.started_at}.get(line.status)
    if since is None:
        return None
    deadline = end_of_day(tenant, timezone.localtime(since, tenant.tzinfo).date())
    if tenant.stuck_line_factor:
        limit = timedelta(minutes=line.service.duration_minutes * tenant.stuck_line_factor)
        deadline = min(deadline, since + limit)
    return deadline


def stuck_lines(tenant: Tenant, now: datetime) -> list[TicketLine]:
    """The tenant's called and in-service lines past `stuck_at`, oldest call first. One
    query over few rows: at most one active line per device."""
    active = (
        TicketLine.objects.filter(tenant=tenant, status__in=LINE_ACTIVE)
        .select_related("ticket", "service", "equipment")
        .order_by("called_at", "id")
    )
    stuck = []
    for line in active:
        deadline = stuck_at(line, tenant)
        if deadline is not None and deadline <= now:
            stuck.append(line)
    return stuck


def close_stuck(tenant: Tenant, line_id: int, *, before: datetime) -> TicketLine | None:
    """Close a line stuck since `before` or earlier, with the reason in its history; its
    device is free again. None when it moved on meanwhile (started, completed, sent back…).

    Called and never started, the customer did not come: a no-show, which stays callable
    again for the reactivation window like any other. In service and never completed, the
    session almost certainly took place — the customer was on the device and the operator
    forgot to press *Complete* — and was paid for, so it is completed, not cancelled, which
    would tell refunds and statistics it never happened. Its duration is unknown: none is
    recorded, and the service's measured average is left alone.
    """
    with transaction.atomic(), events.batch():
        line = _lock_line(tenant, line_id)
        deadline = stuck_at(line, tenant)
        if deadline is None or deadline > before:
            return None
        if line.status == L.CALLED:
            since = timezone.localtime(line.called_at, tenant.tzinfo)
            reason = _("closed automatically: called at %(time)s and never started")
            _end_no_show(line, reason=reason % {"time": f"{since:%H:%M}"})
            return line
        since = timezone.localtime(line.started_at, tenant.tzinfo)
        reason = _("closed automatically: in service since %(time)s") % {"time": f"{since:%H:%M}"}
        change_line_status(line, L.COMPLETED, reason=reason)
        sync_ticket(line.ticket, reason=reason)
        # No cool-down: the session ended long ago, only the button was never pressed.
        devices.release(line, line.equipment_id, used=False)
        events.publish("queue_update", tenant_id=tenant.id, ticket=line.ticket, line=line)
    return line


# --- by a manager's hand --------------------------------------------------------------------

BEFORE_QUEUE = (T.PAID, T.PRINTING, T.PRINT_ERROR)
# Once in the queue, these states are what the ticket's lines add up to: only the lines move
# them (in the operator panel), or a forced status would disagree with its lines.
FOLLOW_LINES = (T.CALLED, T.IN_PROGRESS, T.COMPLETED)


def hand_moves(status: str) -> set[str]:
    """The states a manager may move a ticket to from `status` (a subset of its machine's)."""
    allowed = set(valid_transitions(status)) - {T.PAID, *FOLLOW_LINES}
    if status not in BEFORE_QUEUE:
        allowed.discard(T.IN_QUEUE)
    return allowed


def move_by_hand(tenant: Tenant, ticket_id: int, target: str, *, user, reason: str) -> Ticket:
    """A manager moves a ticket to a state its machine allows; audited with who and why.

    Cancelling and expiring take the ticket's lines along; entering the queue gives its lines
    their place. A move that would leave the lines behind (to called, in service or
    completed, or back to the queue from a call) is refused: those follow the services, which
    move in the operator panel. Paying by hand is the payments' confirmation, not this.
    """
    reason = _require_reason(reason)
    if target == T.CANCELLED:
        return cancel_ticket(tenant, ticket_id, user=user, reason=reason)
    with transaction.atomic():
        ticket = lock_ticket(tenant, ticket_id)
        current = ticket.status
        if target not in valid_transitions(current):
            change_ticket_status(ticket, target, user=user, reason=reason)  # raises, naming both
        if target == T.PAID:
            raise QueueError(
                _("Confirm the payment of ticket %(number)s in the operator panel or in payments.")
                % {"number": ticket.number}
            )
        if target not in hand_moves(current):
            raise QueueError(
                _(
                    "Ticket %(number)s follows its services once in the queue: call, start or "
                    "complete them in the operator panel."
                )
                % {"number": ticket.number}
            )
        if target == T.IN_QUEUE:
            enter_queue(ticket, user=user, reason=reason)
        elif target == T.EXPIRED:
            expire_ticket(tenant, ticket.pk, reason=reason)
        else:
            change_ticket_status(ticket, target, user=user, reason=reason)
            events.publish("ticket_update", tenant_id=tenant.id, ticket=ticket)
        audit.record(
            AuditAction.STATUS_CHANGED,
            tenant=tenant,
            user=user,
            entity=ticket,
            data={"ticket": ticket.number, "from": current, "to": target, "reason": reason},
        )
    return ticket
