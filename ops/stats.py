"""Daily statistics of a tenant, per service and in total, read from its tickets.

`compute_day` reads one local day (today live, for the dashboard); `snapshot_day` stores it in
DailyStats with an upsert, so `manage.py snapshot_daily_stats` can run twice for the same day
and change nothing. Statistics carry no personal data and outlive the purge of old tickets.

What counts: a ticket is counted once it was paid (an abandoned purchase at the kiosk is not a
customer); revenue is what paid tickets cost, less those refunded; a wait is from entering
the queue to the (latest) call; a duration is from start to completion.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from ops.models import DailyStats
from payments.models import PaymentSession, SessionStatus
from tenants.models import Tenant
from tickets.models import LineStatus, Ticket, TicketLine, TicketStatus


def day_bounds(tenant: Tenant, day: date) -> tuple[datetime, datetime]:
    """The tenant's local day as an aware [start, end) interval."""
    start = datetime.combine(day, time.min, tzinfo=tenant.tzinfo)
    return start, datetime.combine(day + timedelta(days=1), time.min, tzinfo=tenant.tzinfo)


def percentile(values: list[int], pct: float) -> int | None:
    """Nearest-rank percentile: the smallest value with `pct` % of the values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def median(values: list[int]) -> int | None:
    """The nearest-rank median: a wait someone really had, like the 95th percentile."""
    return percentile(values, 50)


def mean(values: list[int]) -> int | None:
    return round(sum(values) / len(values)) if values else None


def wait_seconds(queued_at: datetime | None, called_at: datetime | None) -> int | None:
    """A line's wait: from entering the queue to the (latest) call; None if not called."""
    if queued_at and called_at and called_at >= queued_at:
        return int((called_at - queued_at).total_seconds())
    return None


def waits_on(tenant: Tenant, days: list[date]) -> dict[int | None, list[int]]:
    """Every wait of these local days by service id, and all of them under None, from the
    lines themselves (`wait_percentiles` reads them only for days not stored)."""
    waits: dict[int | None, list[int]] = {None: []}
    if not days:
        return waits
    lines = TicketLine.objects.filter(
        tenant=tenant,
        ticket__tenant=tenant,  # the days' tickets by their (tenant, day, number) index
        ticket__day__in=days,
        ticket__paid_at__isnull=False,
        called_at__isnull=False,
    ).values_list("service_id", "queued_at", "called_at")
    for service_id, queued_at, called_at in lines:
        wait = wait_seconds(queued_at, called_at)
        if wait is not None:
            waits.setdefault(service_id, []).append(wait)
            waits[None].append(wait)
    return waits


# Waits are kept to 10 s in the stored histograms: a month's percentiles are shown in minutes.
WAIT_BUCKET = 10


def histogram(waits: list[int]) -> dict[str, int]:
    """Waits counted by bucket (its first second, as a JSON key)."""
    counts: dict[str, int] = {}
    for wait in waits:
        key = str(wait - wait % WAIT_BUCKET)
        counts[key] = counts.get(key, 0) + 1
    return counts


def histogram_percentile(counts: dict[int, int], pct: float) -> int | None:
    """`percentile` over a histogram: the nearest rank, to the bucket."""
    total = sum(counts.values())
    if not total:
        return None
    rank = max(0, math.ceil(pct / 100 * total) - 1)
    seen = 0
    for bucket in sorted(counts):
        seen += counts[bucket]
        if seen > rank:
            return bucket
    return None  # unreachable: rank < total


def wait_percentiles(tenant: Tenant, first: date, last: date) -> dict[int, tuple[int, int]]:
    """(median, 95th percentile) of the waits of the local days first…last, by service id.

    Stored days add their histograms; a day without one (today, or stored before histograms
    existed) is read from its lines. Two queries whatever the window: at 2,000 tickets a day,
    reading a month of lines was most of the dashboard's time.
    """
    counts: dict[int, dict[int, int]] = {}
    stored: set[date] = set()
    rows = DailyStats.objects.filter(
        tenant=tenant,
        day__gte=first,
        day__lte=last,
        day__lt=tenant.today(),  # today is always live, even if someone stored it
        wait_histogram__isnull=False,
    ).values_list("day", "service_id", "wait_histogram")
    for day, service_id, waits in rows:
        stored.add(day)
        if service_id is None:
            continue
        mine = counts.setdefault(service_id, {})
        for bucket, n in waits.items():
            mine[int(bucket)] = mine.get(int(bucket), 0) + n
    missing = [
        first + timedelta(days=n)
        for n in range((last - first).days + 1)
        if first + timedelta(days=n) not in stored
    ]
    for service_id, waits in waits_on(tenant, missing).items():
        if service_id is None:
            continue
        mine = counts.setdefault(service_id, {})
        for bucket, n in histogram(waits).items():
            mine[int(bucket)] = mine.get(int(bucket), 0) + n
    return {
        service_id: (histogram_percentile(c, 50), histogram_percentile(c, 95))
        for service_id, c in counts.items()
        if c
    }


@dataclass
class DayRow:
    """One DailyStats row before it is stored; `service_id` None is the tenant's total."""

    service_id: int | None
    tickets: int = 0
    completed: int = 0
    revenue: Decimal = Decimal("0.00")
    waits: list[int] = field(default_factory=list)
    durations: list[int] = field(default_factory=list)
    no_shows: int = 0
    cancellations: int = 0
    hourly: list[int] = field(default_factory=lambda: [0] * 24)

    @property
    def avg_wait_seconds(self) -> int | None:
        return mean(self.waits)

    @property
    def p95_wait_seconds(self) -> int | None:
        return percentile(self.waits, 95)

    @property
    def avg_duration_seconds(self) -> int | None:
        return mean(self.durations)

    def values(self) -> dict:
        return {
            "tickets": self.tickets,
            "completed": self.completed,
            "revenue": self.revenue,
            "avg_wait_seconds": self.avg_wait_seconds,
            "p95_wait_seconds": self.p95_wait_seconds,
            "avg_duration_seconds": self.avg_duration_seconds,
            "wait_histogram": histogram(self.waits),
            "no_shows": self.no_shows,
            "cancellations": self.cancellations,
            "hourly": self.hourly,
        }


def refunded_ticket_ids(tenant: Tenant, ticket_ids) -> set[int]:
    return set(
        PaymentSession.objects.filter(
            tenant=tenant, ticket_id__in=ticket_ids, status=SessionStatus.REFUNDED
        )
        .values_list("ticket_id", flat=True)
        .distinct()
    )


def compute_day(tenant: Tenant, day: date) -> dict[int | None, DayRow]:
    """The day's rows by service id (None: the whole tenant), from the live tables."""
    tickets = list(
        Ticket.objects.filter(tenant=tenant, day=day, paid_at__isnull=False).values(
            "id", "status", "total", "created_at"
        )
    )
    refunded = refunded_ticket_ids(tenant, [t["id"] for t in tickets])
    total = DayRow(service_id=None)
    for ticket in tickets:
        total.tickets += 1
        total.hourly[timezone.localtime(ticket["created_at"], tenant.tzinfo).hour] += 1
        if ticket["status"] == TicketStatus.COMPLETED:
            total.completed += 1
        if ticket["status"] == TicketStatus.CANCELLED:
            total.cancellations += 1
        if ticket["id"] not in refunded:
            total.revenue += ticket["total"]
    rows: dict[int | None, DayRow] = {None: total}
    # ticket__tenant too: it lets PostgreSQL find the day's tickets by their (tenant, day,
    # number) index; without it, a scan of a year of tickets was most of the dashboard's time.
    lines = TicketLine.objects.filter(
        tenant=tenant, ticket__tenant=tenant, ticket__day=day, ticket__paid_at__isnull=False
    ).values(
        "service_id",
        "ticket_id",
        "status",
        "price",
        "queued_at",
        "called_at",
        "duration_seconds",
        "ticket__created_at",
    )
    for line in lines:
        row = rows.setdefault(line["service_id"], DayRow(service_id=line["service_id"]))
        row.tickets += 1
        row.hourly[timezone.localtime(line["ticket__created_at"], tenant.tzinfo).hour] += 1
        if line["ticket_id"] not in refunded:
            row.revenue += line["price"]
        wait = wait_seconds(line["queued_at"], line["called_at"])
        if wait is not None:
            row.waits.append(wait)
            total.waits.append(wait)
        status = line["status"]
        if status == LineStatus.COMPLETED:
            row.completed += 1
            if line["duration_seconds"] is not None:
                row.durations.append(line["duration_seconds"])
                total.durations.append(line["duration_seconds"])
        elif status in (LineStatus.NO_SHOW, LineStatus.EXPIRED):  # expired: missed for good
            row.no_shows += 1
            total.no_shows += 1
        elif status == LineStatus.CANCELLED:
            row.cancellations += 1
    return rows


@dataclass
class SnapshotResult:
    written: int
    removed: int
    kept_purged: bool = False


def snapshot_day(tenant: Tenant, day: date) -> SnapshotResult:
    """Store the day's statistics: insert or update each row, drop rows of services that no
    longer have lines that day. Running it again gives the same rows.

    A day whose tickets were all purged keeps the statistics it has: they are the only record
    left of it.
    """
    rows = compute_day(tenant, day)
    existing = DailyStats.objects.filter(tenant=tenant, day=day)
    if (
        rows[None].tickets == 0
        and existing.exists()
        and not Ticket.objects.filter(tenant=tenant, day=day).exists()
    ):
        return SnapshotResult(written=0, removed=0, kept_purged=True)
    with transaction.atomic():
        for service_id, row in rows.items():
            DailyStats.objects.update_or_create(
                tenant=tenant, service_id=service_id, day=day, defaults=row.values()
            )
        removed, _ = (
            existing.exclude(service_id__in=[k for k in rows if k is not None])
            .exclude(service_id__isnull=True)
            .delete()
        )
    return SnapshotResult(written=len(rows), removed=removed)
