"""`make bench`: the product's hot paths measured beside the raw limits of the same servers.

Every figure is taken side by side with a raw baseline in the same run and printed as a
ratio, because these machines are shared and absolute times drift. Results go to stdout as
one table and to bench/results/<timestamp>.json with the machine's description.

Sections (choose with BENCH_ONLY=cost,issuing,calling,screens,realtime):
- cost: one client alone — CPU per sale, per call cycle and per call next on the operator
  panel (over HTTP) in Python and in PostgreSQL, and queries, beside the raw loops: where
  the time goes.
- issuing: tickets created through the kiosk's domain path (create, pay cash, confirm,
  queue) by 1/4/16/64 parallel clients, on one service and over 50, against a raw SQL loop
  doing the same essential writes; duplicates and gaps in numbering counted.
- calling: operators calling next, starting and completing over a queue of 5,000+ lines,
  against a raw SELECT … FOR UPDATE SKIP LOCKED claim loop; double calls and double-booked
  devices counted.
- screens: operator panel, display state and kiosk service list rendered with 10 / 1,000 /
  10,000 waiting lines plus 20,000 finished: time per render and query count.
- realtime: 500 and 2,000 displays (4 per branch) on BENCH_DAPHNES Daphne processes sharing
  Redis, at 50, 170 and 500 events/s: latency from the event to every display, p50/p99/max,
  and events lost (by count and sequence gaps), beside a raw Redis PUBLISH → subscribe round
  trip. BENCH_SOAK=600 runs each case for ten minutes.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
BENCH_DB = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/totem_bench")
os.environ["DATABASE_URL"] = BENCH_DB
os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("HTTPS", "false")  # plain HTTP on loopback: no redirect to measure
os.environ.setdefault("SECRET_KEY", "bench-only")
os.environ.setdefault("LOG_LEVEL", "WARNING")
# The clients are forked: a pooled connection's socket would be shared by every child (they
# hung in poll, all on the parent's sockets). One persistent connection per process instead.
os.environ.setdefault("DATABASE_POOL_SIZE", "0")
os.environ.setdefault("CONN_MAX_AGE", "600")

CLIENTS = [int(c) for c in os.environ.get("BENCH_CLIENTS", "1,4,16,64").split(",")]
DURATION = float(os.environ.get("BENCH_SECONDS", "4"))


def ensure_database() -> None:
    import psycopg

    name = BENCH_DB.rsplit("/", 1)[1]
    admin = BENCH_DB.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def setup_django() -> None:
    import django

    django.setup()


# --- helpers ----------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def run_clients(target, clients: int, args: tuple) -> tuple[int, list[float], float]:
    """Run `target(i, deadline, queue, *args)` in `clients` processes; gather latencies."""
    from django.db import connections

    connections.close_all()  # forked children must not share the parent's socket
    results: mp.Queue = mp.get_context("fork").Queue()
    deadline = time.time() + 0.5 + DURATION
    procs = [
        mp.get_context("fork").Process(target=target, args=(i, deadline, results, *args))
        for i in range(clients)
    ]
    started = time.time()
    for p in procs:
        p.start()
    latencies: list[float] = []
    done = 0
    errors = []
    for _ in procs:
        count, lats, error = results.get()
        done += count
        latencies.extend(lats)
        if error:
            errors.append(error)
    for p in procs:
        p.join()
    if errors:
        sys.exit(f"a bench client failed; a broken path measures nothing:\n{errors[0]}")
    elapsed = min(time.time() - started, DURATION + 0.5)
    return done, latencies, max(elapsed - 0.5, 0.001)


def child_loop(i: int, deadline: float, results, work) -> None:
    from django.db import connections

    connections.close_all()
    while time.time() < deadline - DURATION:  # everyone starts together
        time.sleep(0.001)
    count, lats, error = 0, [], ""
    try:
        while time.time() < deadline:
            t0 = time.perf_counter()
            if not work(i, count):
                break
            lats.append(time.perf_counter() - t0)
            if time.time() > deadline:
                break  # its latency counts; the operation, ended after the window, does not
            count += 1
    except Exception:  # noqa: BLE001 — reported by the parent, which stops the bench
        import traceback

        error = traceback.format_exc()
    connections.close_all()
    results.put((count, lats, error))


# --- issuing ----------------------------------------------------------------------------------


def make_tenant(slug: str, services: int):
    from decimal import Decimal

    from equipment.models import Equipment, Kind
    from tenants.models import Tenant
    from tickets.models import Service

    tenant = Tenant.objects.create(slug=slug, name=slug)
    made = [
        Service.objects.create(
            tenant=tenant,
            name=f"Serviço {n}",
            prefix="S",
            price=Decimal("10.00"),
            duration_minutes=10,
            display_order=n,
        )
        for n in range(services)
    ]
    for n, service in enumerate(made):
        device = Equipment.objects.create(
            tenant=tenant, kind=Kind.SERVICE_DEVICE, name=f"D{n}", identifier=f"d{n}"
        )
        device.services.add(service)
    return tenant, made


def cashier_of(tenant_id: int):
    """An operator of the tenant: who confirms cash at the counter."""
    from django.contrib.auth import get_user_model

    from tenants.models import Membership

    user = get_user_model().objects.create_user(f"cashier-{tenant_id}", password="bench-password")
    Membership.objects.create(user=user, tenant_id=tenant_id, role="operator")
    return user


def issue_domain(tenant_id: int, service_ids: list[int], clients: int):
    """The kiosk's domain calls, then the cashier's: create, open a cash payment, confirm it
    (which puts the ticket in the queue)."""
    from decimal import Decimal

    from payments.sessions import confirm_cash, start_payment
    from tenants.models import Tenant
    from tickets.issuing import create_ticket

    tenant = Tenant.objects.get(pk=tenant_id)
    cashier = cashier_of(tenant_id)

    def work(i: int, n: int) -> bool:
        service = service_ids[(i + n) % len(service_ids)]
        ticket = create_ticket(
            tenant, service_ids=[service], customer_name="Bench", consent_version="1"
        )
        session = start_payment(ticket, "cash")
        confirm_cash(tenant, session.pk, cashier, Decimal("50.00"))
        return True

    return work


def issue_http(tenant_id: int, service_ids: list[int], clients: int):
    """A paired kiosk through every screen as its browser requests them (Django's test
    client, the whole middleware and template stack, no network server), then the cashier
    confirming on the panel from a browser of her own.

    Each tap is the one request the kiosk's page makes (hx-boost): the answer is the next
    screen, rendered in place (totem/kiosk.py in_place). The service toggle swaps its part."""
    import re

    from django.test import Client
    from django.urls import reverse

    from equipment.models import Kind
    from payments.models import PaymentSession
    from tenants.models import Tenant

    tenant = Tenant.objects.get(pk=tenant_id)
    slug = tenant.slug
    url = {
        name: reverse(f"kiosk_{name}", args=[slug])
        for name in ("start", "services", "extras", "identify", "summary", "leave")
    }
    part = {"HX-Request": "true"}
    screen = {"HX-Request": "true", "HX-Boosted": "true"}
    kiosks = []
    for i in range(clients):  # paired before the clock starts, as kiosks are in a studio
        kiosk = Client()
        pair(kiosk, tenant, Kind.KIOSK, name=f"kiosk-{i}")
        kiosks.append(kiosk)
    cashier = Client()  # one per process: each client runs in its own
    cashier.force_login(cashier_of(tenant_id))

    def work(i: int, n: int) -> bool:
        kiosk = kiosks[i]
        service = service_ids[(i + n) % len(service_ids)]
        kiosk.post(url["start"], headers=screen)  # → the service list
        kiosk.post(url["services"], {"toggle": service}, headers=part)  # a tap redraws it
        # "Continue": no extras on sale, so the identification screen comes in its place.
        kiosk.get(url["extras"], headers=screen)
        summary = kiosk.post(
            url["identify"],
            {"customer_name": "Bench", "priority": "", "consent": "on"},
            headers=screen,
        )
        key = re.search(r'name="key" value="([^"]+)"', summary.text)
        bought = kiosk.post(url["summary"], {"method": "cash", "key": key[1]}, headers=screen)
        number = re.search(r'data-testid="ticket-number"[^>]*>\s*(\w+)', bought.text)
        # What the cashier sees on the panel: the pending cash payment of that number.
        session = PaymentSession.objects.filter(
            tenant=tenant, ticket__number=number[1], status="pending"
        ).latest("pk")
        confirmed = cashier.post(
            reverse("panel_payment", args=[slug, session.pk, "dinheiro"]),
            {"amount_received": "50,00"},
        )
        kiosk.post(url["leave"], headers=screen)  # → the welcome screen
        if confirmed.status_code >= 400:
            raise RuntimeError(f"cash confirmation answered {confirmed.status_code}")
        return True

    return work


def issue_raw(tenant_id: int, service_ids: list[int], clients: int):
    """The essential writes of a sale in one transaction: counter bump, ticket, its line."""
    from django.db import connection, transaction
    from django.utils import timezone

    def work(i: int, n: int) -> bool:
        service = service_ids[(i + n) % len(service_ids)]
        now = timezone.now()
        with transaction.atomic(), connection.cursor() as c:
            c.execute(
                "INSERT INTO tickets_dailycounter (tenant_id, day, last) VALUES (%s, %s, 1) "
                "ON CONFLICT (tenant_id, day) DO UPDATE SET last = tickets_dailycounter.last + 1 "
                "RETURNING last",
                [tenant_id, now.date()],
            )
            seq = c.fetchone()[0]
            c.execute(
                "INSERT INTO tickets_ticket (tenant_id, day, sequence, number, status, priority, "
                "customer_name, customer_cpf, cpf_on_invoice, customer_phone, consent_version, "
                "total, token, idempotency_key, created_at, updated_at, queued_at, print_attempts, "
                "reactivation_count, operator_notes, cancellation_reason) VALUES (%s, %s, %s, %s, "
                "'in_queue', 'normal', 'Bench', '', false, '', '1', 10, md5(random()::text), '', "
                "%s, %s, "
                "%s, 0, 0, '', '') RETURNING id",
                [tenant_id, now.date(), seq, f"R{seq:03d}", now, now, now],
            )
            ticket_id = c.fetchone()[0]
            c.execute(
                "INSERT INTO tickets_ticketservice (tenant_id, ticket_id, service_id, status, "
                "priority_rank, customer_key, price, covered, position, call_count, queued_at, "
                "cancellation_reason, session_hard_maximum) VALUES (%s, %s, %s, 'waiting', 2, "
                "md5(random()::text), 10, false, 0, 0, %s, '', false)",
                [tenant_id, ticket_id, service, now],
            )
        return True

    return work


def numbering_faults(tenant_id: int) -> tuple[int, int]:
    """Duplicated numbers and gaps in the tenant's sequence (both must be 0)."""
    from tickets.models import Ticket

    seqs = list(Ticket.objects.filter(tenant_id=tenant_id).values_list("sequence", flat=True))
    duplicates = len(seqs) - len(set(seqs))
    gaps = (max(seqs) - len(set(seqs))) if seqs else 0
    return duplicates, gaps


def not_queued(tenant_id: int) -> int:
    """Tickets sold but not in the queue at the end (must be 0: every sale was confirmed)."""
    from tickets.models import Ticket

    return Ticket.objects.filter(tenant_id=tenant_id).exclude(status="in_queue").count()


def bench_issuing(rows: list[dict]) -> None:
    paths = (("domain", issue_domain), ("http", issue_http), ("raw", issue_raw))
    for spread in (1, 50):
        for clients in CLIENTS:
            figures = {}
            for kind, factory in paths:
                tenant, services = make_tenant(f"iss-{kind}-{spread}-{clients}", spread)
                work = factory(tenant.id, [s.id for s in services], clients)
                done, lats, elapsed = run_clients(child_loop, clients, (work,))
                figures[kind] = (done / elapsed, percentile(lats, 99) * 1000, tenant.id)
            faults = [numbering_faults(figures[kind][2]) for kind in ("domain", "http")]
            rows.append(
                {
                    "section": "issuing",
                    "case": f"{spread} service(s), {clients} client(s)",
                    "clients": clients,
                    "services": spread,
                    "per_s": round(figures["domain"][0], 1),
                    "p99_ms": round(figures["domain"][1], 1),
                    "http_per_s": round(figures["http"][0], 1),
                    "http_p99_ms": round(figures["http"][1], 1),
                    "raw_per_s": round(figures["raw"][0], 1),
                    "ratio": round(figures["domain"][0] / figures["raw"][0], 2),
                    "http_ratio": round(figures["http"][0] / figures["raw"][0], 2),
                    "duplicates": sum(dup for dup, _ in faults),
                    "gaps": sum(gaps for _, gaps in faults),
                    "not_queued": sum(not_queued(figures[k][2]) for k in ("domain", "http")),
                }
            )
            print_row(rows[-1])


# --- calling ----------------------------------------------------------------------------------


def fill_queue(tenant, services, lines: int, start: int = 0) -> None:
    """Thousands of waiting lines, written in bulk (the sale path is measured above),
    numbered today after the `start` tickets the day already has."""
    from django.utils import timezone

    from tickets.models import Ticket, TicketLine

    now = timezone.now()
    tickets = Ticket.objects.bulk_create(
        Ticket(
            tenant=tenant,
            day=now.date(),
            sequence=start + n + 1,
            number=f"Q{start + n + 1:05d}",
            status="in_queue",
            customer_name="Fila",
            consent_version="1",
            total=10,
            queued_at=now,
        )
        for n in range(lines)
    )
    TicketLine.objects.bulk_create(
        TicketLine(
            tenant=tenant,
            ticket=t,
            service=services[n % len(services)],
            price=10,
            priority_rank=(0, 1, 2, 3, 3)[n % 5],  # 80+, priority, blood donor, normal
            customer_key=t.token,
            queued_at=now,
        )
        for n, t in enumerate(tickets)
    )
    analyze()


def analyze() -> None:
    """Fresh statistics after a bulk write, as autovacuum keeps them on a live database: a
    plan chosen on an empty table's estimates (or autovacuum running mid-measure) made the
    panel's p95 swing from 91 to 250 ms between two runs."""
    from django.db import connection

    with connection.cursor() as c:
        c.execute("ANALYZE tickets_ticket, tickets_ticketservice")


def call_domain(tenant_id: int, device_ids: list[int]):
    from equipment.models import Equipment
    from tenants.models import Tenant
    from tickets import queue

    tenant = Tenant.objects.get(pk=tenant_id)

    def work(i: int, n: int) -> bool:
        device = Equipment.objects.get(pk=device_ids[i])
        service = device.services.first()
        service.tenant = tenant  # as the panel's view does: its tenant comes with the request
        try:
            line = queue.call_next(service, device)
        except queue.QueueError:
            return False
        queue.start(tenant, line.id)
        queue.complete(tenant, line.id)
        return True

    return work


def call_next_http(tenant_id: int, device_ids: list[int]):
    """Call next on the operator panel as its browser makes it: one htmx POST, answered with
    the refreshed panel (panel.js skips the refresh the call's own events would ask for: the
    render carries their numbers in data-seqs). The station runs every service of the
    tenant and calls them in turn. The line called is then closed with one UPDATE, so the
    station is free for the next call: start and complete are other taps."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.urls import reverse

    from equipment.models import Equipment
    from tenants.models import Membership, Tenant

    tenant = Tenant.objects.get(pk=tenant_id)
    station = Equipment.objects.get(pk=device_ids[0])
    services = sorted(station.services.values_list("pk", flat=True))
    user = get_user_model().objects.create_user(f"operator-{tenant_id}", password="x")
    Membership.objects.create(user=user, tenant=tenant, role="operator")
    browser = Client()
    browser.force_login(user)
    session = browser.session
    session[f"panel_station_{tenant.pk}"] = station.pk
    session.save()
    urls = [reverse("panel_call_next", args=[tenant.slug, pk]) for pk in services]

    def work(i: int, n: int) -> bool:
        answer = browser.post(urls[n % len(urls)], headers={"HX-Request": "true"})
        if answer.status_code != 200 or 'data-testid="mine-row"' not in answer.text:
            raise RuntimeError(f"call next answered {answer.status_code} without the call")
        with connection.cursor() as c:
            c.execute(
                "UPDATE tickets_ticketservice SET status = 'completed', started_at = now(), "
                "completed_at = now() WHERE equipment_id = %s AND status = 'called'",
                [station.pk],
            )
        return True

    return work


def call_raw(tenant_id: int, device_ids: list[int]):
    """Claim with SKIP LOCKED, then the two status writes, in three short transactions."""
    from django.db import connection, transaction

    from equipment.models import Equipment

    def work(i: int, n: int) -> bool:
        device = device_ids[i]
        service = Equipment.objects.get(pk=device).services.first().pk
        with transaction.atomic(), connection.cursor() as c:
            c.execute(
                "SELECT id FROM tickets_ticketservice WHERE service_id = %s AND status = 'waiting' "
                "AND queued_at IS NOT NULL ORDER BY priority_rank, queued_at, id "
                "LIMIT 1 FOR UPDATE SKIP LOCKED",
                [service],
            )
            row = c.fetchone()
            if row is None:
                return False
            c.execute(
                "UPDATE tickets_ticketservice SET status = 'called', equipment_id = %s, "
                "call_count = call_count + 1, called_at = now() WHERE id = %s",
                [device, row[0]],
            )
        with transaction.atomic(), connection.cursor() as c:
            c.execute(
                "UPDATE tickets_ticketservice SET status = 'in_progress', started_at = now() "
                "WHERE id = %s",
                [row[0]],
            )
        with transaction.atomic(), connection.cursor() as c:
            c.execute(
                "UPDATE tickets_ticketservice SET status = 'completed', completed_at = now() "
                "WHERE id = %s",
                [row[0]],
            )
        return True

    return work


def calling_faults(tenant_id: int) -> tuple[int, int]:
    """Lines called more than once, and devices serving two lines at overlapping times."""
    from django.db import connection

    from tickets.models import TicketLine

    double_calls = TicketLine.objects.filter(tenant_id=tenant_id, call_count__gt=1).count()
    with connection.cursor() as c:
        c.execute(
            "SELECT count(*) FROM tickets_ticketservice a JOIN tickets_ticketservice b "
            "ON a.equipment_id = b.equipment_id AND a.id < b.id "
            "AND a.called_at < b.completed_at AND b.called_at < a.completed_at "
            "WHERE a.tenant_id = %s",
            [tenant_id],
        )
        overlaps = c.fetchone()[0]
    return double_calls, overlaps


def bench_calling(rows: list[dict]) -> None:
    from equipment.models import Equipment, Kind

    for clients in CLIENTS:
        figures = {}
        for kind, factory in (("domain", call_domain), ("raw", call_raw)):
            tenant, services = make_tenant(f"call-{kind}-{clients}", 8)
            devices = []
            for n in range(clients):
                device = Equipment.objects.create(
                    tenant=tenant, kind=Kind.SERVICE_DEVICE, name=f"Op{n}", identifier=f"op{n}"
                )
                device.services.add(services[n % len(services)])
                devices.append(device.id)
            fill_queue(tenant, services, max(5000, clients * 400))
            work = factory(tenant.id, devices)
            done, lats, elapsed = run_clients(child_loop, clients, (work,))
            figures[kind] = (done / elapsed, percentile(lats, 99) * 1000, tenant.id)
        double_calls, overlaps = calling_faults(figures["domain"][2])
        rows.append(
            {
                "section": "calling",
                "case": f"{clients} operator(s), 8 services, 5,000+ waiting",
                "clients": clients,
                "per_s": round(figures["domain"][0], 1),
                "p99_ms": round(figures["domain"][1], 1),
                "raw_per_s": round(figures["raw"][0], 1),
                "ratio": round(figures["domain"][0] / figures["raw"][0], 2),
                "double_calls": double_calls,
                "double_booked": overlaps,
            }
        )
        print_row(rows[-1])


# --- cost per operation -----------------------------------------------------------------------


def backend_cpu_seconds() -> float | None:
    """CPU this connection's PostgreSQL backend has used (None when the server is not local)."""
    from django.db import connection

    with connection.cursor() as c:
        c.execute("SELECT pg_backend_pid()")
        pid = c.fetchone()[0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_cost(rows: list[dict]) -> None:
    """Where an operation's time goes, one client alone: CPU in Python (this process, all
    threads) and in its PostgreSQL backend, and queries, per sale and per call cycle, beside
    the raw loops, and the operator panel's call next over HTTP. Under load on a small
    machine these two add up to the throughput."""
    from equipment.models import Equipment, Kind

    cases = []
    for kind, factory in (("domain", issue_domain), ("http", issue_http), ("raw", issue_raw)):
        tenant, services = make_tenant(f"cost-sale-{kind}", 1)
        cases.append((f"sale, {kind}", factory(tenant.id, [services[0].id], 1)))
    for kind, factory in (("domain", call_domain), ("raw", call_raw)):
        tenant, services = make_tenant(f"cost-call-{kind}", 8)
        device = Equipment.objects.create(
            tenant=tenant, kind=Kind.SERVICE_DEVICE, name="Op", identifier="op"
        )
        device.services.add(services[0])
        fill_queue(tenant, services, 8 * 400)
        cases.append((f"call cycle, {kind}", factory(tenant.id, [device.id])))
    cases.append(("call next, HTTP (operator panel, 4 queues)", panel_call_case()))
    for case, measured in cases:
        rows.append(cost_of(case, measured))
        print_row(rows[-1])


def panel_call_case():
    """A station of 4 services over 3,200 waiting lines, and its operator's panel."""
    from equipment.models import Equipment, Kind

    tenant, services = make_tenant("cost-call-panel", 4)
    station = Equipment.objects.create(
        tenant=tenant, kind=Kind.SERVICE_DEVICE, name="Estação", identifier="estacao"
    )
    station.services.set(services)
    fill_queue(tenant, services, 8 * 400)
    return call_next_http(tenant.id, [station.id])


def cost_of(case: str, measured, runs: int = 150) -> dict:
    """One client alone: wall, Python CPU (this process, all threads), its PostgreSQL
    backend's CPU and queries, per operation, after a warm-up."""
    import resource

    from django.db import connection

    def python_cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    def work(i: int, n: int) -> None:
        if not measured(i, n):  # e.g. a queue run dry: cheap no-ops would be measured
            sys.exit(f"bench cost: {case} had nothing to do at operation {n}")

    for n in range(20):  # warm: connections, prepared statements, caches
        work(0, n)
    # Counted at the cursor: CaptureQueriesContext saw 0 queries in a test-client request.
    queries = []

    def count(execute, sql, params, many, context):
        queries.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        work(0, 20)
    cpu, backend, t0 = python_cpu(), backend_cpu_seconds(), time.perf_counter()
    for n in range(runs):
        work(0, 21 + n)
    wall = time.perf_counter() - t0
    cpu, backend_after = python_cpu() - cpu, backend_cpu_seconds()
    return {
        "section": "cost",
        "case": case,
        "wall_ms": round(wall / runs * 1000, 1),
        "python_cpu_ms": round(cpu / runs * 1000, 1),
        "postgres_cpu_ms": (
            round((backend_after - backend) / runs * 1000, 1)
            if backend is not None and backend_after is not None
            else None
        ),
        "queries": len(queries),
    }


# --- screens ----------------------------------------------------------------------------------


def pair(client, tenant, kind: str, name: str = "") -> None:
    """Make `client` a paired kiosk or display of `tenant`, as a browser would by its code."""
    from datetime import timedelta

    from django.urls import reverse
    from django.utils import timezone

    from equipment.models import Equipment
    from totem.models import PairingCode

    name = name or kind
    device = Equipment.objects.create(tenant=tenant, kind=kind, name=name, identifier=name)
    code = PairingCode.objects.create(
        tenant=tenant, equipment=device, expires_at=timezone.now() + timedelta(minutes=5)
    )
    client.post(reverse("kiosk_pair", args=[tenant.slug]), {"code": code.code})


def bench_screens(rows: list[dict]) -> None:
    """Render the screens that exist with growing queues; time and query count per render."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse
    from django.utils import timezone

    from equipment.models import Equipment, Kind
    from tenants.models import Membership
    from tickets.models import TicketLine

    user = get_user_model().objects.create_user("bench-op", password="x")
    for waiting in (10, 1000, 10000):
        tenant, services = make_tenant(f"screen-{waiting}", 4)
        Membership.objects.create(user=user, tenant=tenant, role="operator")
        fill_queue(tenant, services, waiting + 20000)
        # All but `waiting` lines are finished ones.
        finished = TicketLine.objects.filter(tenant=tenant).order_by("id")[:20000]
        TicketLine.objects.filter(pk__in=list(finished.values_list("pk", flat=True))).update(
            status="completed", completed_at=timezone.now(), duration_seconds=600
        )
        analyze()
        client = Client()
        client.force_login(user)
        pair(client, tenant, Kind.KIOSK)
        pair(client, tenant, Kind.DISPLAY)
        station = Equipment.objects.create(
            tenant=tenant, kind=Kind.SERVICE_DEVICE, name="Estação", identifier="estacao"
        )
        station.services.set(services)  # the panel shows one queue per service it runs
        session = client.session
        session[f"panel_station_{tenant.pk}"] = station.pk
        session.save()
        client.post(reverse("kiosk_start", args=[tenant.slug]))  # a customer touched "start"
        screens = [
            (name, reverse(url_name, args=[tenant.slug]))
            for name, url_name in (
                ("panel", "panel"),
                ("display", "display_state"),
                ("kiosk services", "kiosk_services"),
            )
        ]
        for name, url in screens:
            times, queries = [], 0
            for _ in range(15):
                with CaptureQueriesContext(connection) as captured:
                    t0 = time.perf_counter()
                    response = client.get(url)
                    times.append(time.perf_counter() - t0)
                queries = len(captured)
            if response.status_code != 200:  # a redirect or an error page measures nothing
                sys.exit(f"bench screens: {name} answered {response.status_code}")
            rows.append(
                {
                    "section": "screens",
                    "case": f"{name}, {waiting} waiting + 20,000 finished",
                    "status": response.status_code,
                    "p50_ms": round(statistics.median(times) * 1000, 1),
                    "p95_ms": round(percentile(times, 95) * 1000, 1),
                    "queries": queries,
                }
            )
            print_row(rows[-1])


# --- real time --------------------------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_daphnes(count: int) -> tuple[list, list[int]]:
    import socket
    import subprocess

    procs, ports = [], []
    for _ in range(count):
        port = free_port()
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
                + ["config.asgi:application"],
                cwd=ROOT,
                env=os.environ | {"LOG_LEVEL": "WARNING", "HTTPS": "false"},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        ports.append(port)
    for port in ports:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.1)
    return procs, ports


def display_tenants(count: int) -> list[tuple[int, str, str]]:
    """`count` tenants, each with a paired display: (tenant id, slug, the display's cookie)."""
    from django.core import signing

    from equipment.models import Equipment, Kind
    from tenants.models import Tenant
    from totem.models import PairingCode
    from totem.pairing import SALT, cookie_name

    made = []
    for n in range(count):
        tenant = Tenant.objects.create(slug=f"rt{count}-{n}", name=f"Filial {n}")
        device = Equipment.objects.create(
            tenant=tenant, kind=Kind.DISPLAY, name="TV", identifier="tv"
        )
        pairing = PairingCode.objects.create(
            tenant=tenant, equipment=device, used_at=datetime.now(UTC)
        )
        value = signing.dumps({"p": pairing.pk, "e": device.pk}, salt=SALT)
        made.append((tenant.id, tenant.slug, f"{cookie_name(Kind.DISPLAY)}={value}"))
    return made


async def _displays(targets, results: dict) -> None:
    """Connect every display, wait for the publisher, then count and time what arrives."""
    import asyncio

    from websockets.asyncio.client import connect

    # Screens come up over seconds (boot, backoff with jitter), not all in one instant;
    # 2,000 handshakes at once overran Daphne's 5 s handshake timeout for most of them.
    handshakes = asyncio.Semaphore(50)

    async def display(port: int, slug: str, cookie: str, ready) -> None:
        try:
            await listen(port, slug, cookie, ready)
        except Exception:  # noqa: BLE001 — a display that cannot connect is counted, not fatal
            results["failed"] += 1
            if not ready.done():
                ready.set_result(None)

    async def listen(port: int, slug: str, cookie: str, ready) -> None:
        url = f"ws://127.0.0.1:{port}/ws/t/{slug}/display/"
        async with handshakes:
            ws = await connect(
                url,
                origin=f"http://127.0.0.1:{port}",
                additional_headers={"Cookie": cookie},
                max_queue=None,
                open_timeout=60,
            )
            hello = json.loads(await ws.recv())
        async with ws:
            last = max(hello["seqs"].values(), default=0)
            ready.set_result(None)
            while True:
                try:
                    event = json.loads(await asyncio.wait_for(ws.recv(), 1))
                except TimeoutError:
                    # Listen until the publisher is done, plus a grace for what is in flight.
                    if results["done"] and time.time() > results["done"] + 3:
                        return
                    continue
                arrived = time.time()
                results["got"] += 1
                if event["group_seq"] != last + 1:
                    results["gaps"] += 1
                last = event["group_seq"]
                results["lat"].append(arrived - datetime.fromisoformat(event["at"]).timestamp())

    loop = asyncio.get_running_loop()
    readies = [loop.create_future() for _ in targets]
    tasks = [asyncio.create_task(display(*t, r)) for t, r in zip(targets, readies, strict=True)]
    await asyncio.gather(*readies)
    results["ready"].set()
    await asyncio.gather(*tasks, return_exceptions=True)


def raw_redis_roundtrip(samples: int = 300) -> list[float]:
    """PUBLISH → a subscriber's receipt on the same Redis: the floor under any event."""
    import redis

    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    sub = client.pubsub()
    sub.subscribe("bench-raw")
    sub.get_message(timeout=1)
    times = []
    for _ in range(samples):
        t0 = time.perf_counter()
        client.publish("bench-raw", "x")
        while sub.get_message(timeout=1) is None:
            pass
        times.append(time.perf_counter() - t0)
    sub.close()
    return times


def bench_realtime(rows: list[dict]) -> None:
    """Displays (4 per branch) on Daphnes sharing Redis; call events at fixed rates.

    Latency is from the event's creation (just after its commit) to its arrival at each
    display; loss is counted from every display's delivered count and sequence gaps.
    """
    import asyncio
    import threading

    from tests.daphne_server import rss_mib
    from tickets import events

    if not os.environ.get("REDIS_URL"):
        print("  realtime: skipped, needs REDIS_URL", flush=True)
        return
    raw = raw_redis_roundtrip()
    daphnes = int(os.environ.get("BENCH_DAPHNES", "2"))
    seconds = float(os.environ.get("BENCH_SOAK", "0")) or DURATION
    for displays in [int(n) for n in os.environ.get("BENCH_DISPLAYS", "500,2000").split(",")]:
        branches = display_tenants(displays // 4)
        procs, ports = start_daphnes(daphnes)
        try:
            for rate in [int(r) for r in os.environ.get("BENCH_RATES", "50,170,500").split(",")]:
                targets = [
                    (ports[i % daphnes], slug, cookie)
                    for i, (_, slug, cookie) in enumerate(branches * 4)
                ]
                results = {
                    "got": 0,
                    "gaps": 0,
                    "failed": 0,
                    "lat": [],
                    "ready": threading.Event(),
                    "done": 0.0,
                }
                total = int(rate * seconds)
                thread = threading.Thread(
                    target=lambda t=targets, r=results: asyncio.run(_displays(t, r))
                )
                thread.start()
                results["ready"].wait(300)
                memory = sum(rss_mib(proc.pid) for proc in procs)  # every display connected
                t0 = time.perf_counter()
                for k in range(total):
                    tenant_id = branches[k % len(branches)][0]
                    events.publish("queue_update", tenant_id=tenant_id, service_id=None)
                    delay = t0 + (k + 1) / rate - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                results["done"] = time.time()
                thread.join()
                expected = 4 * total  # every event reaches its branch's 4 TVs
                lat = results["lat"]
                rows.append(
                    {
                        "section": "realtime",
                        "case": f"{displays} displays, {rate} events/s, {daphnes} Daphnes",
                        "failed_connections": results["failed"],
                        "delivered": results["got"],
                        "lost": max(expected - results["got"], 0),
                        # Pub/sub channels ignore Redis's database number: another process
                        # publishing to the same tenant ids on this Redis shows up here.
                        "foreign": max(results["got"] - expected, 0),
                        "gaps": results["gaps"],
                        "daphnes_mib": round(memory),
                        "p50_ms": round(percentile(lat, 50) * 1000, 1),
                        "p99_ms": round(percentile(lat, 99) * 1000, 1),
                        "max_ms": round(max(lat, default=0) * 1000, 1),
                        "raw_redis_p50_ms": round(percentile(raw, 50) * 1000, 2),
                        "raw_redis_p99_ms": round(percentile(raw, 99) * 1000, 2),
                    }
                )
                print_row(rows[-1])
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait()


# --- output -----------------------------------------------------------------------------------


def print_row(row: dict) -> None:
    figures = "  ".join(f"{k}={v}" for k, v in row.items() if k not in ("section", "case"))
    print(f"  {row['section']:8} {row['case']:46} {figures}", flush=True)


def machine() -> dict:
    from django.db import connection

    with connection.cursor() as c:
        c.execute("SELECT version()")
        pg = c.fetchone()[0]
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "postgres": pg,
        "duration_per_case_s": DURATION,
        "realtime_seconds_per_case": float(os.environ.get("BENCH_SOAK", "0")) or DURATION,
    }


def main() -> None:
    import resource

    # Thousands of sockets: the client here and each Daphne it starts need more than the
    # default 1,024 file descriptors.
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    # Each bench kiosk buys as fast as the machine allows; the per-device flood limit (which
    # the suite covers) would otherwise be what this measures. Here, not at import: the soak
    # imports this module and keeps the real limit.
    os.environ.setdefault("KIOSK_REQUESTS_PER_MINUTE", "1000000")
    ensure_database()
    setup_django()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    only = os.environ.get("BENCH_ONLY", "cost,issuing,calling,screens,realtime").split(",")
    rows: list[dict] = []
    print(f"Totem bench — {DURATION:.0f} s per case, clients {CLIENTS}", flush=True)
    for name, fn in (
        ("cost", bench_cost),
        ("issuing", bench_issuing),
        ("calling", bench_calling),
        ("screens", bench_screens),
        ("realtime", bench_realtime),
    ):
        if name in only:
            print(f"[{name}]", flush=True)
            fn(rows)
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    path = out / f"{datetime.now(UTC):%Y%m%d-%H%M%SZ}.json"
    path.write_text(json.dumps({"machine": machine(), "rows": rows}, indent=2))
    print(f"\nwritten {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
