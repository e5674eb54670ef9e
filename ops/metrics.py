"""Prometheus metrics at /metrics, read from the database at each scrape.

prometheus-client is not a dependency: the text exposition format is a few lines, and every
number here is a query, not a counter kept in one process (several Daphne processes would each
hold only their share). The endpoint wants `Authorization: Bearer <METRICS_TOKEN>`; without a
configured token it does not exist (404).

The "_total" counters count since the tenant's local midnight and fall back to zero at the
next one: Prometheus reads that as a counter reset, as after a restart, so `increase()` and
`rate()` stay right. Gauges are the state at the scrape.
"""

from __future__ import annotations

import hmac
from collections import defaultdict
from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from equipment.models import Equipment, JobStatus, PrintJob
from ops.models import Alert
from ops.stats import day_bounds
from payments.models import PaymentSession
from tenants.models import OutboxStatus, Tenant, WebhookOutbox
from tickets.models import LineStatus, Ticket, TicketLine

WAIT_BUCKETS = (60, 300, 600, 900, 1200, 1800, 2700, 3600, 7200)
DURATION_BUCKETS = (300, 600, 900, 1200, 1800, 2700, 3600, 5400)
# A display or kiosk that pinged within this time counts as connected.
SEEN_RECENTLY = timedelta(minutes=2)


def metrics_token() -> str:
    return settings.METRICS_TOKEN


def escape(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Exposition:
    """Collects families (HELP, TYPE, samples) and renders the text format 0.0.4."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str) -> None:
        self.lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]

    def sample(self, name: str, labels: dict, value: float) -> None:
        inner = ",".join(f'{k}="{escape(v)}"' for k, v in labels.items())
        number = repr(float(value)) if isinstance(value, float) else str(value)
        self.lines.append(f"{name}{{{inner}}} {number}" if inner else f"{name} {number}")

    def histogram(self, name: str, labels: dict, values: Iterable[float], buckets) -> None:
        values = list(values)
        for bound in buckets:
            self.sample(f"{name}_bucket", {**labels, "le": bound}, sum(v <= bound for v in values))
        self.sample(f"{name}_bucket", {**labels, "le": "+Inf"}, len(values))
        self.sample(f"{name}_sum", labels, sum(values))
        self.sample(f"{name}_count", labels, len(values))

    def render(self) -> str:
        return "\n".join(self.lines) + "\n"


def _today_start(tenant: Tenant):
    return day_bounds(tenant, tenant.today())[0]


def collect(now=None) -> str:
    """Every metric of every live tenant, as exposition text."""
    now = now or timezone.now()
    out = Exposition()
    tenants = list(Tenant.objects.alive().filter(is_active=True).order_by("pk"))
    starts = {t.pk: _today_start(t) for t in tenants}
    slugs = {t.pk: t.slug for t in tenants}

    out.family("totem_tickets_created_total", "counter", "Tickets created today (local day).")
    out.family("totem_tickets_paid_total", "counter", "Tickets paid today (local day).")
    for tenant in tenants:
        today = Ticket.objects.filter(tenant=tenant, day=tenant.today())
        counts = today.aggregate(
            created=Count("id"), paid=Count("id", filter=Q(paid_at__isnull=False))
        )
        out.sample("totem_tickets_created_total", {"tenant": tenant.slug}, counts["created"])
        out.sample("totem_tickets_paid_total", {"tenant": tenant.slug}, counts["paid"])

    lines = list(
        TicketLine.objects.filter(tenant__in=tenants)
        .filter(
            Q(status=LineStatus.WAITING, queued_at__isnull=False)
            | Q(status__in=[LineStatus.CALLED, LineStatus.IN_PROGRESS])
            | Q(called_at__gte=min(starts.values(), default=now))
            | Q(completed_at__gte=min(starts.values(), default=now))
        )
        .values(
            "tenant_id",
            "service__name",
            "status",
            "queued_at",
            "called_at",
            "completed_at",
            "duration_seconds",
        )
    )
    queue = defaultdict(int)
    oldest: dict[tuple, float] = {}
    in_service = defaultdict(int)
    waits = defaultdict(list)
    durations = defaultdict(list)
    completed = defaultdict(int)
    for line in lines:
        key = (slugs[line["tenant_id"]], line["service__name"])
        start = starts[line["tenant_id"]]
        if line["status"] == LineStatus.WAITING and line["queued_at"]:
            queue[key] += 1
            waited = (now - line["queued_at"]).total_seconds()
            oldest[key] = max(oldest.get(key, 0), waited)
        if line["status"] in (LineStatus.CALLED, LineStatus.IN_PROGRESS):
            in_service[key] += 1
        if line["called_at"] and line["called_at"] >= start and line["queued_at"]:
            waits[key].append((line["called_at"] - line["queued_at"]).total_seconds())
        if (
            line["status"] == LineStatus.COMPLETED
            and line["completed_at"]
            and line["completed_at"] >= start
        ):
            completed[key] += 1
            if line["duration_seconds"] is not None:
                durations[key].append(line["duration_seconds"])
    services = sorted(set(queue) | set(in_service) | set(waits) | set(completed))

    out.family("totem_service_lines_completed_total", "counter", "Service lines completed today.")
    for key in services:
        labels = {"tenant": key[0], "service": key[1]}
        out.sample("totem_service_lines_completed_total", labels, completed[key])
    out.family("totem_queue_length", "gauge", "Service lines waiting in the queue now.")
    for key in services:
        out.sample("totem_queue_length", {"tenant": key[0], "service": key[1]}, queue[key])
    out.family(
        "totem_queue_oldest_wait_seconds", "gauge", "How long the oldest waiting line waits."
    )
    for key in services:
        labels = {"tenant": key[0], "service": key[1]}
        out.sample("totem_queue_oldest_wait_seconds", labels, round(oldest.get(key, 0.0), 1))
    out.family("totem_lines_in_service", "gauge", "Service lines called or in service now.")
    for key in services:
        out.sample("totem_lines_in_service", {"tenant": key[0], "service": key[1]}, in_service[key])
    out.family("totem_wait_seconds", "histogram", "Wait from queue to call, lines called today.")
    for key in services:
        labels = {"tenant": key[0], "service": key[1]}
        out.histogram("totem_wait_seconds", labels, waits[key], WAIT_BUCKETS)
    out.family(
        "totem_service_duration_seconds", "histogram", "Service duration, lines completed today."
    )
    for key in services:
        labels = {"tenant": key[0], "service": key[1]}
        out.histogram("totem_service_duration_seconds", labels, durations[key], DURATION_BUCKETS)

    _payments(out, tenants, starts, slugs)
    _printing(out, tenants, starts, slugs)
    _devices(out, tenants, slugs, now)

    out.family("totem_webhooks_pending", "gauge", "Outgoing webhook events not yet delivered.")
    pending = dict(
        WebhookOutbox.objects.filter(status=OutboxStatus.PENDING)
        .values_list("tenant_id")
        .annotate(n=Count("id"))
    )
    failed = dict(
        WebhookOutbox.objects.filter(status=OutboxStatus.FAILED)
        .values_list("tenant_id")
        .annotate(n=Count("id"))
    )
    for tenant in tenants:
        out.sample("totem_webhooks_pending", {"tenant": tenant.slug}, pending.get(tenant.pk, 0))
    out.family("totem_webhooks_failed", "gauge", "Outgoing webhook events given up on.")
    for tenant in tenants:
        out.sample("totem_webhooks_failed", {"tenant": tenant.slug}, failed.get(tenant.pk, 0))
    out.family("totem_alerts_open", "gauge", "Alerts notified and not yet cleared.")
    open_alerts = dict(
        Alert.objects.filter(resolved_at__isnull=True)
        .values_list("tenant_id")
        .annotate(n=Count("id"))
    )
    for tenant in tenants:
        out.sample("totem_alerts_open", {"tenant": tenant.slug}, open_alerts.get(tenant.pk, 0))
    return out.render()


def _payments(out: Exposition, tenants, starts, slugs) -> None:
    out.family(
        "totem_payments_total", "counter", "Payment sessions created today, by method and status."
    )
    rows = (
        PaymentSession.objects.filter(tenant__in=tenants, created_at__gte=min(starts.values()))
        .values("tenant_id", "method", "status", "created_at")
        .order_by()
    )
    counts = defaultdict(int)
    for row in rows:
        if row["created_at"] >= starts[row["tenant_id"]]:
            counts[(slugs[row["tenant_id"]], row["method"], row["status"])] += 1
    for (tenant, method, status), n in sorted(counts.items()):
        out.sample(
            "totem_payments_total", {"tenant": tenant, "method": method, "status": status}, n
        )


def _printing(out: Exposition, tenants, starts, slugs) -> None:
    out.family("totem_print_failures_total", "counter", "Print jobs that failed today.")
    failures = defaultdict(int)
    for row in PrintJob.objects.filter(
        tenant__in=tenants, failed_at__gte=min(starts.values())
    ).values("tenant_id", "failed_at"):
        if row["failed_at"] >= starts[row["tenant_id"]]:
            failures[row["tenant_id"]] += 1
    for tenant in tenants:
        out.sample("totem_print_failures_total", {"tenant": tenant.slug}, failures[tenant.pk])
    out.family("totem_print_jobs_pending", "gauge", "Print jobs waiting for the spooler.")
    pending = dict(
        PrintJob.objects.filter(tenant__in=tenants, status=JobStatus.PENDING)
        .values_list("tenant_id")
        .annotate(n=Count("id"))
    )
    for tenant in tenants:
        out.sample("totem_print_jobs_pending", {"tenant": tenant.slug}, pending.get(tenant.pk, 0))


def _devices(out: Exposition, tenants, slugs, now) -> None:
    out.family("totem_devices", "gauge", "Devices by kind and status.")
    rows = (
        Equipment.objects.alive()
        .filter(tenant__in=tenants)
        .values("tenant_id", "kind", "status")
        .annotate(n=Count("id"))
        .order_by("tenant_id", "kind", "status")
    )
    for row in rows:
        labels = {"tenant": slugs[row["tenant_id"]], "kind": row["kind"], "status": row["status"]}
        out.sample("totem_devices", labels, row["n"])
    # Screens that reported in moments ago: the connected kiosks, displays and panels.
    out.family(
        "totem_connected_screens", "gauge", "Kiosks, displays and panels seen in the last 2 min."
    )
    seen = (
        Equipment.objects.alive()
        .filter(
            tenant__in=tenants,
            kind__in=["kiosk", "display", "panel"],
            last_seen_at__gte=now - SEEN_RECENTLY,
        )
        .values("tenant_id", "kind")
        .annotate(n=Count("id"))
        .order_by("tenant_id", "kind")
    )
    for row in seen:
        out.sample(
            "totem_connected_screens",
            {"tenant": slugs[row["tenant_id"]], "kind": row["kind"]},
            row["n"],
        )


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    token = metrics_token()
    if not token:
        raise Http404("metrics are off: set METRICS_TOKEN")
    given = request.headers.get("Authorization", "")
    scheme, _, value = given.partition(" ")
    # Constant-time comparison: the token must not leak one character at a time.
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        value.strip().encode(), token.encode()
    ):
        response = HttpResponse("A valid bearer token is required.\n", status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(collect(), content_type="text/plain; version=0.0.4; charset=utf-8")
