"""Service devices as a studio runs them: how long a session lasts, the cool-down after it,
each device's state now, and the `equipment_update` event of every change.

A device's state (`equipment.models.DeviceState`) is derived from its status, the line
active on it and two times — the cool-down's end (`Equipment.cooling_until`) and its daily
maintenance window — so it is right at every instant with no process running. The worker
only *announces* a cool-down that ran out (`announce_cooled`).

Nothing is called onto a device that is not ready, and the database holds that too: the
trigger `line_device_ready` (migration `tickets.0014_line_device_ready`) refuses a line
moving to `called` onto a device that is offline, in maintenance, cooling down or — on
PostgreSQL — inside its daily window, whatever the code above it does, as
`line_one_active_per_equipment` holds occupancy. `tickets.queue.lock_device` checks first,
under the device's row lock, to refuse with a sentence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import OuterRef, QuerySet, Subquery
from django.utils import timezone
from django.utils.translation import gettext as _

from equipment.models import DeviceServiceSettings, DeviceState, Equipment, Status
from tenants import audit
from tenants.compiled import CompiledRead
from tenants.errors import DomainError
from tenants.models import AuditAction, Tenant
from tickets import events
from tickets.models import LINE_ACTIVE, LineStatus, Service, TicketLine, status_is


@dataclass(frozen=True)
class SessionPlan:
    """How a session of a service runs on a device: the device's own settings, else the
    service's."""

    session_seconds: int
    hard_maximum: bool
    cooldown_seconds: int


def with_plan(equipment_id: int, service: Service) -> tuple[Equipment, SessionPlan]:
    """The device and how it runs `service`, in one query: every session's start and end
    reads both, on the call cycle's path."""
    own = DeviceServiceSettings.objects.filter(equipment=OuterRef("pk"), service=service.pk)
    device = (
        Equipment.objects.select_related("tenant")
        .annotate(
            own_minutes=Subquery(own.values("session_minutes")[:1]),
            own_cooldown=Subquery(own.values("cooldown_minutes")[:1]),
        )
        .get(pk=equipment_id)
    )
    cooldown = service.cooldown_minutes if device.own_cooldown is None else device.own_cooldown
    return device, SessionPlan(
        session_seconds=(device.own_minutes or service.duration_minutes) * 60,
        hard_maximum=service.hard_maximum,
        cooldown_seconds=cooldown * 60,
    )


@CompiledRead
def _online_runs(tenant_id: int) -> QuerySet[Any]:
    # The kiosk's service list reads this on every tap: its statement is built once.
    own = DeviceServiceSettings.objects.filter(
        equipment=OuterRef("equipment_id"), service=OuterRef("service_id")
    ).values("cooldown_minutes")
    online = Equipment.objects.service_devices().filter(tenant_id=tenant_id, status=Status.ONLINE)
    return (
        Equipment.services.through.objects.filter(equipment__in=online)
        .annotate(own_cooldown=Subquery(own))
        .only("service", "equipment")
    )


def online_runs(tenant_id: int) -> dict[int, list[tuple[int, int | None]]]:
    """Per service of the tenant, its online devices that run it, each with its own cool-down
    for it (None: the service's); services none runs are absent. One query, the device's own
    settings in the same statement (a second one was ~1 ms of Python on every kiosk tap)."""
    by_service: dict[int, list[tuple[int, int | None]]] = {}
    for run in _online_runs(tenant_id):
        by_service.setdefault(run.service_id, []).append((run.equipment_id, run.own_cooldown))
    return by_service


def cooldowns(
    services: list[Service], runs: dict[int, list[tuple[int, int | None]]] | None = None
) -> dict[int, int]:
    """Per service, the cool-down a session adds before its device takes the next customer,
    on average over the online devices that run it (their own settings, else the service's).
    One query, whatever the number of services (the kiosk and the panel list them all); none
    when the caller has read `online_runs` already."""
    if runs is None:
        runs = online_runs(services[0].tenant_id) if services else {}
    result = {}
    for service in services:
        minutes = [
            service.cooldown_minutes if own is None else own
            for _device, own in runs.get(service.pk, [])
        ] or [service.cooldown_minutes]
        result[service.pk] = round(sum(minutes) * 60 / len(minutes))
    return result


@dataclass
class DeviceNow:
    """A device's state at one instant, with what a screen counts down to."""

    device: Equipment
    state: str
    line: TicketLine | None = None  # the line called or in service on it
    until: datetime | None = None  # end of the cool-down, of the maintenance window

    @property
    def label(self) -> str:
        return DeviceState(self.state).label

    @property
    def ends_at(self) -> datetime | None:
        """The running session's planned end (None when nothing runs)."""
        return self.line.session_ends_at if self.line is not None else None

    def payload(self) -> dict:
        """The event's fields (no personal data: the TV hears it too)."""
        return {
            "equipment_id": self.device.pk,
            "equipment": self.device.name,
            "room": self.device.announced_as,
            "state": self.state,
            "until": self.until.isoformat() if self.until else None,
            "ends_at": self.ends_at.isoformat() if self.ends_at else None,
            "hard_maximum": bool(self.line and self.line.session_hard_maximum),
        }


def state_of(device: Equipment, line: TicketLine | None, now: datetime) -> DeviceNow:
    """`device`'s state at `now`, `line` being the one active on it (None when free)."""
    state = device.state(now, busy=line is not None)
    until = None
    if state == DeviceState.COOLING:
        until = device.cooling_until
    elif state == DeviceState.MAINTENANCE:
        until = device.maintenance_until(now)
    return DeviceNow(device=device, state=state, line=line, until=until)


def states(devices: list[Equipment], now: datetime | None = None) -> list[DeviceNow]:
    """The state of each device at `now`, in one query for their active lines. The devices
    come with their tenant (`select_related("tenant")`, or set) for the maintenance window."""
    if not devices:
        return []  # building the lines' query costs ~1 ms even for none (a TV with no timers)
    now = now or timezone.now()
    # The lines alone: a state reads their session's end, never their ticket or service
    # (joined here, they were a third of the panel's devices section).
    active = {
        line.equipment_id: line
        for line in TicketLine.objects.filter(
            status_is(TicketLine, *LINE_ACTIVE), equipment__in=[d.pk for d in devices]
        )
    }
    return [state_of(device, active.get(device.pk), now) for device in devices]


def announce(device: Equipment, line: TicketLine) -> None:
    """Publish, once the transaction commits, the state of `device` after `line` moved on it
    (called, started, or gone): to the tenant (dashboard, TV) and to the line's service's
    group, which every station of that service hears, the device's own included.

    It costs no query, on the call cycle's path: one device serves one line at a time, so
    the device is busy exactly while `line` is active. (Stations of the device's other
    services see the change on their next refresh.)
    """
    active = line if line.status in LINE_ACTIVE else None
    _publish(state_of(device, active, timezone.now()), [line.service_id])


def announce_device(equipment_id: int) -> None:
    """The device's state to the tenant and every service it runs, for a caller that knows
    only the device (admin, worker, an early end)."""
    device = Equipment.objects.select_related("tenant").filter(pk=equipment_id).first()
    if device is not None:
        _publish(states([device])[0], list(device.services.values_list("pk", flat=True)))


def _publish(now_state: DeviceNow, service_ids: list[int]) -> None:
    events.publish(
        "equipment_update",
        tenant_id=now_state.device.tenant_id,
        service_ids=service_ids,
        **now_state.payload(),
    )


def session_fields(equipment_id: int, service: Service, now: datetime) -> tuple[Equipment, dict]:
    """The device, and what a line records when its session starts on it: its planned end
    and whether that end is a hard maximum."""
    device, plan = with_plan(equipment_id, service)
    return device, {
        "session_ends_at": now + timedelta(seconds=plan.session_seconds),
        "session_hard_maximum": plan.hard_maximum,
    }


def release(line: TicketLine, equipment_id: int | None, *, used: bool) -> None:
    """`line` has just left device `equipment_id` (completed, cancelled, missed, sent back).
    After a session that took place (`used`), the device cools down for its plan's time;
    then its new state is announced.

    Call inside the operation's transaction, holding the line's lock. The device's row is
    updated (and so locked) last, after ticket and line: the project's lock order.
    """
    if equipment_id is None:
        return
    device, plan = with_plan(equipment_id, line.service)
    if used and plan.cooldown_seconds:
        until = timezone.now() + timedelta(seconds=plan.cooldown_seconds)
        Equipment.objects.filter(pk=equipment_id).update(cooling_until=until)
        TicketLine.objects.filter(pk=line.pk).update(cooling_until=until)
        line.cooling_until = device.cooling_until = until
    announce(device, line)


def end_cooldown(tenant: Tenant, equipment_id: int, *, user, reason: str) -> Equipment:
    """An operator ends a device's cool-down early (cleaned faster, a spare chamber…): the
    reason is required and audited; the device is free at once."""
    reason = (reason or "").strip()
    if not reason:
        raise DomainError(_("Say why (the reason is required)."))
    with transaction.atomic():
        device = (
            Equipment.objects.select_for_update(of=("self",))
            .select_related("tenant")
            .filter(tenant=tenant, pk=equipment_id, deleted_at=None)
            .first()
        )
        if device is None:
            raise DomainError(_("Device not found."))
        now = timezone.now()
        if device.cooling_until is None or device.cooling_until <= now:
            raise DomainError(_("%(device)s is not cooling down.") % {"device": device.name})
        planned = device.cooling_until
        Equipment.objects.filter(pk=device.pk).update(cooling_until=now)
        # The session's record of its cool-down, for the utilisation statistics.
        TicketLine.objects.filter(equipment=device, cooling_until=planned).update(cooling_until=now)
        device.cooling_until = now
        audit.record(
            AuditAction.COOLDOWN_ENDED,
            tenant=tenant,
            user=user,
            entity=device,
            data={
                "device": device.name,
                "planned_until": planned.isoformat(),
                "minutes_left": round((planned - now).total_seconds() / 60, 1),
                "reason": reason,
            },
        )
        announce_device(device.pk)
    return device


def announce_cooled(now: datetime | None = None) -> int:
    """For the worker: announce each device whose cool-down has passed, and clear its time
    (a conditional UPDATE, so a device that started a new session meanwhile keeps its new
    time). Announcing is all it does: the device was free the moment the time passed."""
    now = now or timezone.now()
    found = 0
    due = Equipment.objects.filter(cooling_until__isnull=False, cooling_until__lte=now)
    for pk, until in due.values_list("pk", "cooling_until")[:500]:
        with transaction.atomic():
            if Equipment.objects.filter(pk=pk, cooling_until=until).update(cooling_until=None):
                announce_device(pk)
                found += 1
    return found


def announce_windows(now: datetime, period: timedelta) -> int:
    """For the worker: announce the devices whose daily maintenance window opened or closed
    within the last `period`."""
    found = 0
    devices = Equipment.objects.service_devices().filter(
        maintenance_starts__isnull=False, maintenance_minutes__gt=0
    )
    for device in devices.select_related("tenant"):
        if (device.maintenance_until(now) is None) != (
            device.maintenance_until(now - period) is None
        ):
            announce_device(device.pk)
            found += 1
    return found


def used(status: str) -> bool:
    """Whether a line leaving its device in `status` had its session (a cool-down follows)."""
    return status == LineStatus.IN_PROGRESS
