"""Utilisation of each service device per local day: sessions, time in use, cooling down and
idle while the studio is open, and the revenue of its sessions.

Read from the lines' own times — `started_at`, `completed_at`/`cancelled_at` and the
cool-down each session left (`TicketLine.cooling_until`, shortened when an operator ended it
early) — so it needs no log of device events. `compute_devices` reads a day (today live, for
the dashboard, up to now); `snapshot_devices` stores it in DeviceDailyStats with an upsert,
run by `snapshot_daily_stats` with the tenant's other statistics.

What counts: a session is a line that started on the device that day (a session cancelled
midway too: the device was used); its revenue counts once completed, unless its ticket was
refunded. Idle is the opening hours (the whole day when the studio set none) less in use,
cooling down and the device's daily maintenance window. A device switched offline or to
maintenance by hand is not tracked over time: that time counts as idle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone

from equipment.models import Equipment
from ops.models import DeviceDailyStats
from ops.stats import day_bounds, refunded_ticket_ids
from tenants.models import Tenant
from tickets import devices
from tickets.models import LineStatus, TicketLine

Interval = tuple[datetime, datetime]


def _clip(intervals: list[Interval], bounds: Interval) -> list[Interval]:
    low, high = bounds
    return [(max(a, low), min(b, high)) for a, b in intervals if min(b, high) > max(a, low)]


def _union(intervals: list[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _seconds(intervals: list[Interval]) -> int:
    return int(sum((b - a).total_seconds() for a, b in intervals))


def _overlap(first: list[Interval], second: list[Interval]) -> int:
    return _seconds([piece for interval in first for piece in _clip(second, interval)])


def open_intervals(tenant: Tenant, day: date) -> list[Interval]:
    """The studio's opening hours on `day` (local), or the whole day when it set none."""
    every = list(tenant.opening_hours.all())
    if not every:
        return [day_bounds(tenant, day)]
    hours = [h for h in every if h.weekday == day.weekday()]
    zone = tenant.tzinfo
    return _union(
        [
            (
                datetime.combine(day, h.opens, tzinfo=zone),
                datetime.combine(day, h.closes, tzinfo=zone),
            )
            for h in hours
        ]
    )


def maintenance_intervals(device: Equipment, day: date) -> list[Interval]:
    """The device's daily window on `day`, with the end of the previous day's if it crosses
    midnight."""
    if device.maintenance_starts is None or not device.maintenance_minutes:
        return []
    zone = device.tenant.tzinfo
    length = timedelta(minutes=device.maintenance_minutes)
    starts = [
        datetime.combine(d, device.maintenance_starts, tzinfo=zone)
        for d in (day - timedelta(days=1), day)
    ]
    return [(start, start + length) for start in starts]


@dataclass
class DeviceDay:
    device: Equipment
    sessions: int = 0
    in_use: list[Interval] = field(default_factory=list)
    cooling: list[Interval] = field(default_factory=list)
    seconds_idle: int = 0
    revenue: Decimal = Decimal("0.00")

    @property
    def seconds_in_use(self) -> int:
        return _seconds(_union(self.in_use))

    @property
    def seconds_cooling(self) -> int:
        return _seconds(_union(self.cooling))

    def values(self) -> dict:
        return {
            "tenant": self.device.tenant,
            "sessions": self.sessions,
            "seconds_in_use": self.seconds_in_use,
            "seconds_cooling": self.seconds_cooling,
            "seconds_idle": self.seconds_idle,
            "revenue": self.revenue,
        }


def compute_devices(tenant: Tenant, day: date, now: datetime | None = None) -> list[DeviceDay]:
    """Each of the tenant's service devices on `day`, up to `now` for today."""
    now = now or timezone.now()
    start, end = day_bounds(tenant, day)
    until = min(end, now)
    if until <= start:
        return []
    found = list(Equipment.objects.service_devices().for_tenant(tenant).select_related("tenant"))
    rows = {device.pk: DeviceDay(device=device) for device in found}
    lines = list(
        TicketLine.objects.filter(
            tenant=tenant, equipment__in=list(rows), started_at__lt=until, started_at__isnull=False
        )
        .filter(
            # Started at most a day before the day began: a longer session is a stuck line,
            # which the expiry job closes at the end of its own day. The bound lets
            # line_device_sessions read the day's lines; without it every live dashboard read
            # the devices' whole history (a year: 120–200 ms of PostgreSQL). A line still in
            # service counts whenever it began.
            Q(started_at__gte=start - timedelta(days=1))
            & (
                Q(completed_at__gte=start)
                | Q(cancelled_at__gte=start)
                | Q(cooling_until__gte=start)
            )
            | Q(status=LineStatus.IN_PROGRESS)
        )
        .values(
            "equipment_id",
            "ticket_id",
            "status",
            "price",
            "started_at",
            "completed_at",
            "cancelled_at",
            "cooling_until",
        )
    )
    refunded = refunded_ticket_ids(tenant, {line["ticket_id"] for line in lines})
    for line in lines:
        row = rows[line["equipment_id"]]
        ended = line["completed_at"] or line["cancelled_at"] or now
        row.in_use += _clip([(line["started_at"], ended)], (start, until))
        if line["cooling_until"] and line["cooling_until"] > ended:
            row.cooling += _clip([(ended, line["cooling_until"])], (start, until))
        if start <= line["started_at"] < end:
            row.sessions += 1
            if line["status"] == LineStatus.COMPLETED and line["ticket_id"] not in refunded:
                row.revenue += line["price"]
    opened = _clip(open_intervals(tenant, day), (start, until))
    for row in rows.values():
        busy = _union([*row.in_use, *row.cooling, *maintenance_intervals(row.device, day)])
        row.seconds_idle = max(0, _seconds(opened) - _overlap(opened, busy))
    return list(rows.values())


def snapshot_devices(tenant: Tenant, day: date) -> int:
    """Store the day's rows (an upsert: running it again gives the same rows)."""
    rows = compute_devices(tenant, day)
    with transaction.atomic():
        for row in rows:
            DeviceDailyStats.objects.update_or_create(
                equipment=row.device, day=day, defaults=row.values()
            )
    return len(rows)


def minutes(seconds: int) -> int:
    return round(seconds / 60)


def dashboard_context(tenant: Tenant, today: date) -> dict:
    """The dashboard's devices section: each device's state now and its day so far, with
    the last 7 stored days beside it."""
    week = dict.fromkeys(["sessions", "seconds_in_use", "revenue"])
    stored = {
        row["equipment_id"]: row
        for row in DeviceDailyStats.objects.filter(
            tenant=tenant, day__gte=today - timedelta(days=7), day__lt=today
        )
        .values("equipment_id")
        .annotate(**{name: Sum(name) for name in week})
    }
    days = compute_devices(tenant, today)
    states = {
        now_state.device.pk: now_state for now_state in devices.states([d.device for d in days])
    }
    return {
        "device_rows": [
            {
                "device": day.device,
                "now": states[day.device.pk],
                "today": day,
                "in_use_minutes": minutes(day.seconds_in_use),
                "cooling_minutes": minutes(day.seconds_cooling),
                "idle_minutes": minutes(day.seconds_idle),
                "week": stored.get(day.device.pk),
                "week_in_use_minutes": minutes(
                    (stored.get(day.device.pk) or {}).get("seconds_in_use") or 0
                ),
            }
            for day in days
        ],
    }
