"""`make bench-year`: the screens over a year of data, and a day of sales in rows and bytes.

1. Generates, in PostgreSQL itself (INSERT … SELECT over generate_series, a month per
   statement; no ORM row by row), a branch with a year of finished tickets at the growth
   target's rate (2,000 a day): tickets, their lines, their history (the versions a real sale
   writes) and an audit entry each, then 10,000 waiting lines today and the last 31 days of
   DailyStats (the real snapshot job).
2. Measures the operator panel and the display's state (p50/p95 and queries, over 10 and
   10,000 waiting lines) and the dashboard's 30-day view; budgets: 50, 20 and 300 ms at p95.
3. Runs 200 real sales and calls through the domain functions on a fresh branch and counts
   what each wrote per table (rows, and bytes from the year's tables: heap + indexes per
   row), then prints the growth per day at 1,000 branches × 2,000 tickets.

BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/totem_year) is dropped and
made again. BENCH_DAYS=365, BENCH_PER_DAY=1918 (≈ 700,000 tickets), BENCH_WAITING=10000.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/totem_year")
sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # noqa: E402  (sets up the environment the bench runs in)

DAYS = int(os.environ.get("BENCH_DAYS", "365"))
PER_DAY = int(os.environ.get("BENCH_PER_DAY", "1918"))
WAITING = int(os.environ.get("BENCH_WAITING", "10000"))
BUDGETS_MS = {"panel": 50, "display": 20, "dashboard": 300}
# The versions a sale leaves in history (pending, paid, queued, called, in service, done for
# the ticket; waiting → called → in service → done for its line), as counted in part 3.
TICKET_VERSIONS = 6
LINE_VERSIONS = 4
BIG_TABLES = (
    "tickets_ticket",
    "tickets_ticketservice",
    "tickets_historicalticket",
    "tickets_historicalticketservice",
    "tenants_auditlog",
    "payments_paymentsession",
    "payments_historicalpaymentsession",
)


def sql(statement: str, params: list | None = None) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement, params or [])
        return cursor.rowcount


def bar(done: int, total: int, width: int = 30) -> str:
    filled = round(width * done / total)
    return "[" + "#" * filled + "." * (width - filled) + "]"


def generate(tenant, services, devices) -> dict[str, float]:
    """A year of finished tickets for `tenant`, a month of days per statement."""
    from django.db import transaction

    timings: dict[str, float] = {}
    started = time.perf_counter()
    chunk = 30
    for first in range(DAYS, 0, -chunk):
        last = max(first - chunk + 1, 1)
        with transaction.atomic():
            # Days `first`…`last` ago, PER_DAY tickets each from 08:00, one every 20 s.
            sql(
                """
                INSERT INTO tickets_ticket (tenant_id, day, sequence, number, status, priority,
                    customer_name, customer_cpf, customer_phone, cpf_on_invoice,
                    consent_version, total, token, idempotency_key, created_at, paid_at,
                    queued_at, called_at, started_at, completed_at, updated_at,
                    operator_notes, cancellation_reason, print_attempts,
                    reactivation_count
                )
                SELECT %(tenant)s::bigint, d, s, 'C' || lpad(s::text, 4, '0'), 'completed',
                    'normal',
                    'Cliente', '', '', false, '1', 120,
                    md5(%(tenant)s::bigint || ':' || d || ':' || s), '', t, t, t,
                    t + interval '5 min', t + interval '6 min', t + interval '20 min',
                    t + interval '20 min', '', '', 1, 0
                FROM generate_series(%(last)s::int, %(first)s::int) AS ago,
                    LATERAL (SELECT (current_date - ago) AS d) AS day,
                    generate_series(1, %(per_day)s::int) AS s,
                    LATERAL (SELECT d + time '08:00' + s * interval '20 s' AS t) AS moment
                """,
                {"tenant": tenant.pk, "first": first, "last": last, "per_day": PER_DAY},
            )
            day_range = "day BETWEEN current_date - %(first)s::int AND current_date - %(last)s::int"
            window = {"tenant": tenant.pk, "first": first, "last": last}
            sql(
                f"""
                INSERT INTO tickets_ticketservice (tenant_id, ticket_id, service_id, status,
                    priority_rank, customer_key, price, position, equipment_id, call_count,
                    queued_at, called_at, started_at, completed_at, duration_seconds,
                    cancellation_reason, covered, session_hard_maximum)
                SELECT tenant_id, id, (ARRAY{[s.pk for s in services]})[sequence %% 4 + 1],
                    'completed', 3, token, 120, 0,
                    (ARRAY{[d.pk for d in devices]})[sequence %% 4 + 1], 1,
                    queued_at, called_at, started_at, completed_at, 840, '', false, false
                FROM tickets_ticket WHERE tenant_id = %(tenant)s::bigint AND {day_range}
                """,
                window,
            )
            # The history a sale writes: each version as of its moment.
            sql(
                f"""
                INSERT INTO tickets_historicalticket (id, tenant_id, day, sequence, number,
                    status, priority, customer_name, customer_cpf, customer_phone,
                    cpf_on_invoice, consent_version, total, token, idempotency_key,
                    created_at, paid_at, queued_at, called_at, started_at, completed_at,
                    operator_notes, cancellation_reason, print_attempts, reactivation_count,
                    customer_id, history_date, history_type)
                SELECT id, tenant_id, day, sequence, number,
                    (ARRAY['pending_payment', 'paid', 'in_queue', 'called', 'in_progress',
                           'completed'])[v],
                    priority, customer_name, customer_cpf, customer_phone, cpf_on_invoice,
                    consent_version, total, token, idempotency_key, created_at, paid_at,
                    queued_at, called_at, started_at, completed_at, operator_notes,
                    cancellation_reason, print_attempts, reactivation_count, customer_id,
                    created_at + (v - 1) * interval '4 min', CASE v WHEN 1 THEN '+' ELSE '~' END
                FROM tickets_ticket, generate_series(1, {TICKET_VERSIONS}) AS v
                WHERE tenant_id = %(tenant)s::bigint AND {day_range}
                """,
                window,
            )
            sql(
                f"""
                INSERT INTO tickets_historicalticketservice (id, tenant_id, ticket_id,
                    service_id, status, priority_rank, customer_key, price, position,
                    equipment_id, call_count, queued_at, called_at, started_at, completed_at,
                    duration_seconds, cancellation_reason, covered, session_hard_maximum,
                    history_date, history_type)
                SELECT l.id, l.tenant_id, l.ticket_id, l.service_id,
                    (ARRAY['waiting', 'called', 'in_progress', 'completed'])[v],
                    l.priority_rank, l.customer_key, l.price, l.position, l.equipment_id,
                    l.call_count, l.queued_at, l.called_at, l.started_at, l.completed_at,
                    l.duration_seconds, l.cancellation_reason, l.covered, l.session_hard_maximum,
                    l.queued_at + (v - 1) * interval '5 min', CASE v WHEN 1 THEN '+' ELSE '~' END
                FROM tickets_ticketservice l JOIN tickets_ticket t ON t.id = l.ticket_id,
                    generate_series(1, {LINE_VERSIONS}) AS v
                WHERE t.tenant_id = %(tenant)s::bigint AND t.{day_range}
                """,
                window,
            )
            sql(
                f"""
                INSERT INTO tenants_auditlog (tenant_id, username, action, entity, entity_id,
                    label, data, created_at)
                SELECT tenant_id, 'caixa', 'payment_confirmed', 'payments.paymentsession',
                    id::text, 'Pagamento ' || number, '{{"method": "cash"}}', paid_at
                FROM tickets_ticket WHERE tenant_id = %(tenant)s::bigint AND {day_range}
                """,
                window,
            )
        done = DAYS - last + 1
        elapsed = time.perf_counter() - started
        print(
            f"  {bar(done, DAYS)} {done:4}/{DAYS} days, {done * PER_DAY:>9,} tickets, "
            f"{elapsed:6.1f} s",
            flush=True,
        )
    timings["year generated (s)"] = time.perf_counter() - started
    return timings


def measure(client, url: str, runs: int = 40) -> dict:
    """Wall p50/p95 per render, and CPU per render (this process's, which is Python, plus the
    PostgreSQL backend's): on a shared machine the wall time includes waiting for a core,
    the CPU does not."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    times, queries = [], 0
    for _ in range(3):  # warm-up: caches, prepared plans
        client.get(url)
    python0, backend0 = time.process_time(), bench.backend_cpu_seconds() or 0.0
    for _ in range(runs):
        with CaptureQueriesContext(connection) as captured:
            t0 = time.perf_counter()
            response = client.get(url)
            times.append(time.perf_counter() - t0)
        if response.status_code != 200:
            sys.exit(f"bench year: {url} answered {response.status_code}")
        queries = len(captured)
    python = (time.process_time() - python0) / runs * 1000
    backend = ((bench.backend_cpu_seconds() or 0.0) - backend0) / runs * 1000
    return {
        "p50_ms": round(statistics.median(times) * 1000, 1),
        "p95_ms": round(bench.percentile(times, 95) * 1000, 1),
        "python_cpu_ms": round(python, 1),
        "postgres_cpu_ms": round(backend, 1),
        "queries": queries,
    }


def screen_client(tenant, services, user):
    """A browser logged in as the manager, at a station of the four services, paired as a
    display too."""
    from django.test import Client

    from equipment.models import Equipment, Kind

    client = Client()
    client.force_login(user)
    bench.pair(client, tenant, Kind.DISPLAY)
    station = Equipment.objects.create(
        tenant=tenant, kind=Kind.SERVICE_DEVICE, name="Estação", identifier="estacao"
    )
    station.services.set(services)
    session = client.session
    session[f"panel_station_{tenant.pk}"] = station.pk
    session.save()
    return client


def screens(tenant, client) -> list[dict]:
    from django.urls import reverse

    rows = []
    for name, url_name in (
        ("panel", "panel"),
        ("display", "display_state"),
        ("dashboard", "ops_dashboard"),
    ):
        figures = measure(client, reverse(url_name, args=[tenant.slug]))
        budget = BUDGETS_MS[name]
        rows.append({"case": name, **figures, "budget_ms": budget})
        print(
            f"  {name:10} p50 {figures['p50_ms']:6.1f} ms  p95 {figures['p95_ms']:6.1f} ms "
            f"(budget {budget} ms: {'ok' if figures['p95_ms'] <= budget else 'OVER'})  "
            f"CPU {figures['python_cpu_ms']:.1f} Python + {figures['postgres_cpu_ms']:.1f} "
            f"PostgreSQL ms  {figures['queries']} queries",
            flush=True,
        )
    return rows


def table_rows() -> dict[str, int]:
    from django.db import connection

    counts = {}
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT count(*) FROM "{table}"')
            counts[table] = cursor.fetchone()[0]
    return counts


def bytes_per_row(tables: list[str]) -> dict[str, float]:
    """Heap, TOAST and indexes over rows, from the year's tables (partitions summed)."""
    from django.db import connection

    sizes = {}
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(
                """
                SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)
                FROM pg_class c
                WHERE c.oid = %s::regclass
                   OR c.oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = %s::regclass)
                """,
                [table, table],
            )
            total = cursor.fetchone()[0]
            cursor.execute(f'SELECT count(*) FROM "{table}"')
            rows = cursor.fetchone()[0]
            if rows < 10_000:
                # A few hundred rows fill whole pages: their width, plus the tuple header and
                # pointer, times the heap-to-total ratio of the year's history tables (≈ 1.6).
                cursor.execute(f'SELECT avg(pg_column_size(t.*)) FROM "{table}" t')
                width = float(cursor.fetchone()[0] or 0)
                sizes[table] = (width + 28) * 1.6 if rows else 0.0
            else:
                sizes[table] = float(total) / rows
    return sizes


def growth(rows: list[dict]) -> list[dict]:
    """200 real sales and calls; rows each wrote per table, scaled to the target's day."""
    from decimal import Decimal

    from payments.sessions import confirm_cash, start_payment
    from tickets import queue
    from tickets.issuing import create_ticket

    tenant, services = bench.make_tenant(f"growth-{time.time():.0f}", 4)
    cashier = bench.cashier_of(tenant.pk)
    from equipment.models import Equipment

    devices = list(Equipment.objects.filter(tenant=tenant).order_by("id"))
    before = table_rows()
    sales = 200
    for n in range(sales):
        ticket = create_ticket(
            tenant, service_ids=[services[n % 4].pk], customer_name="Bench", consent_version="1"
        )
        confirm_cash(tenant, start_payment(ticket, "cash").pk, cashier, Decimal("150.00"))
        service = services[n % 4]
        service.tenant = tenant
        line = queue.call_next(service, devices[n % 4])
        queue.start(tenant, line.id)
        queue.complete(tenant, line.id)
    after = table_rows()
    written = {
        t: (after[t] - before.get(t, 0)) / sales for t in after if after[t] != before.get(t, 0)
    }
    sizes = bytes_per_row([t for t in written if t in BIG_TABLES])
    per_day = 1000 * 2000
    result = []
    for table, per_sale in sorted(written.items(), key=lambda kv: -kv[1]):
        size = sizes.get(table)
        result.append(
            {
                "table": table,
                "rows_per_sale": round(per_sale, 2),
                "bytes_per_row": round(size) if size else None,
                "rows_per_day": round(per_sale * per_day),
                "gb_per_day": round(per_sale * per_day * size / 1e9, 2) if size else None,
            }
        )
    return result


def chart(result: list[dict]) -> None:
    known = sorted((r for r in result if r["gb_per_day"]), key=lambda r: -r["gb_per_day"])
    top = max(r["gb_per_day"] for r in known)
    print("\n  growth per day at 1,000 branches × 2,000 tickets (GB, heap + indexes):")
    for r in known:
        print(
            f"  {r['table']:36} {'█' * max(1, round(40 * r['gb_per_day'] / top))} {r['gb_per_day']}"
        )
    others = sum(r["rows_per_day"] for r in result if not r["gb_per_day"])
    print(f"  other tables: {others:,} rows a day (sizes not measured here)")


def main() -> None:
    # BENCH_REUSE=1 measures again over the year already generated (6 minutes saved).
    reuse = os.environ.get("BENCH_REUSE") == "1"
    if not reuse:
        bench.ensure_database()
    bench.setup_django()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from equipment.models import Equipment
    from ops.stats import snapshot_day
    from tenants.models import Membership, Tenant
    from tickets.models import Service, Ticket

    call_command("migrate", verbosity=0)
    print(f"Totem year bench — {DAYS} days × {PER_DAY} tickets + {WAITING:,} waiting", flush=True)
    timings: dict[str, float] = {}
    if reuse:
        tenant = Tenant.objects.get(slug="year")
        services = list(Service.objects.filter(tenant=tenant).order_by("display_order"))
        user = get_user_model().objects.get(username="year-op")
        Equipment.objects.filter(tenant=tenant, identifier__in=["estacao", "display"]).delete()
        # Today's queue starts again from 10 lines; the year stays.
        Ticket.objects.filter(tenant=tenant, day=tenant.today()).delete()
    else:
        tenant, services = bench.make_tenant("year", 4)
        devices = list(Equipment.objects.filter(tenant=tenant).order_by("id"))
        user = get_user_model().objects.create_user("year-op", password="x")
        Membership.objects.create(user=user, tenant=tenant, role="manager")
        timings = generate(tenant, services, devices)
        # Statistics of the year, as autovacuum keeps them on a live database: without them
        # the snapshot's day queries were planned for an empty table (31 days: 199 s, not 10).
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        t0 = time.perf_counter()
        today = tenant.today()
        for ago in range(31, 0, -1):
            snapshot_day(tenant, today - timezone.timedelta(days=ago))
        timings["31 days of DailyStats (s)"] = time.perf_counter() - t0
        print(f"  DailyStats for 31 days: {timings['31 days of DailyStats (s)']:.1f} s")
    results: dict = {"machine": bench.machine(), "timings": timings}
    client = screen_client(tenant, services, user)
    for waiting in (10, WAITING):
        t0 = time.perf_counter()
        fill(tenant, services, waiting)
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
        spent = time.perf_counter() - t0
        print(f"[screens: {waiting:,} waiting + the year] (filled in {spent:.1f} s)", flush=True)
        results[f"screens_{waiting}"] = screens(tenant, client)
    print("[growth: 200 real sales and calls]", flush=True)
    results["growth"] = growth([])
    for r in results["growth"]:
        print(
            f"  {r['table']:36} {r['rows_per_sale']:5} rows/sale  "
            f"{r['bytes_per_row'] or '-':>5} B/row  {r['rows_per_day']:>11,} rows/day"
        )
    chart(results["growth"])
    totals = {t: n for t, n in table_rows().items() if t in BIG_TABLES}
    print("\nsummary:")
    for table, n in totals.items():
        print(f"  {table:36} {n:>11,} rows")
    for key, value in timings.items():
        print(f"  {key}: {value:.1f}")
    out = (
        Path(__file__).resolve().parent
        / "results"
        / f"year-{datetime.now(UTC):%Y%m%d-%H%M%SZ}.json"
    )
    out.write_text(json.dumps({**results, "rows": totals}, indent=2, default=str))
    print(f"written {out.relative_to(out.parent.parent.parent)}")


def fill(tenant, services, waiting: int) -> None:
    """Today's queue topped up to `waiting` lines, in bulk (the sale path is bench/run.py's)."""
    from django.utils import timezone

    from tickets.models import Ticket, TicketLine

    count = waiting - TicketLine.objects.filter(tenant=tenant, status="waiting").count()
    if count > 0:
        today = timezone.now().date()
        start = Ticket.objects.filter(tenant=tenant, day=today).count()
        bench.fill_queue(tenant, services, count, start=start)


if __name__ == "__main__":
    main()
