"""`python bench/sale_requests.py`: where a kiosk sale's Python CPU goes, request by request.

Runs the bench's HTTP sale (`run.issue_http`: a paired kiosk through every screen with the
test client and htmx headers, then the cashier's confirmation on the panel) in this process,
one client alone: 20 sales to warm up, then SALES (60) measured. Prints the Python CPU per
sale (rusage of the process: what `BENCH_ONLY=cost` calls "sale, http") and per request.

Run it from each tree being compared, alternately (A B A B …): this machine's speed drifts
from minute to minute, so only pairs taken side by side are comparable. BENCH_DATABASE_URL
(default postgres://postgres@127.0.0.1:5432/totem_sale) is dropped and made again unless
BENCH_REUSE=1; PROFILE=<file> writes a cProfile of the measured sales; QUERIES=1 prints the
statements of one sale.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/totem_sale")
# One client selling as fast as it can: the kiosk's rate limit would refuse it.
os.environ.setdefault("KIOSK_REQUESTS_PER_MINUTE", "1000000")
sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # noqa: E402  (sets up the environment the bench runs in)

SALES = int(os.environ.get("SALES", "60"))


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    if os.environ.get("BENCH_REUSE") != "1":
        bench.ensure_database()
    bench.setup_django()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    call_command("migrate", verbosity=0)
    slug = f"sale-{int(time.time())}"
    tenant, services = bench.make_tenant(slug, 1)
    work = bench.issue_http(tenant.id, [services[0].id], 1)

    spent: defaultdict[str, float] = defaultdict(float)
    request = Client.request

    def timed(client, **environ):
        started = cpu()
        response = request(client, **environ)
        # One name per screen: the payment's id is not part of it.
        path = environ["PATH_INFO"].replace(slug, "…").split("/pagamento/")[0]
        spent[f"{environ['REQUEST_METHOD']} {path}"] += cpu() - started
        return response

    Client.request = timed
    for n in range(20):
        work(0, n)
    if os.environ.get("QUERIES"):
        statements: list[str] = []

        def count(execute, sql, params, many, context):
            statements.append(sql)
            return execute(sql, params, many, context)

        with connection.execute_wrapper(count):
            work(0, 20)
        print("\n".join(sql[:160] for sql in statements), f"\n{len(statements)} statements")
    spent.clear()
    profile = None
    if os.environ.get("PROFILE"):
        import cProfile

        profile = cProfile.Profile()
        profile.enable()
    started = cpu()
    for n in range(SALES):
        work(0, 21 + n)
        print(f"\r{n + 1}/{SALES} sales", end="", file=sys.stderr)
    total = cpu() - started
    print(file=sys.stderr)
    if profile:
        profile.disable()
        profile.dump_stats(os.environ["PROFILE"])
    print(f"Python CPU per sale: {total / SALES * 1000:.1f} ms")
    for name, seconds in sorted(spent.items(), key=lambda item: -item[1]):
        print(f"  {name:45s} {seconds / SALES * 1000:6.1f} ms")


if __name__ == "__main__":
    main()
