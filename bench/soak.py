"""`make soak`: kiosks, operators and displays together against a real Daphne for a while.

Bounded (SOAK_SECONDS, default 120), loopback only, PostgreSQL and Redis from the
environment like `make bench`. Kiosks buy over HTTP through every screen and pay cash; a
cashier confirms from the operator panel; operators call, start and complete from the panel;
displays listen on WebSockets. At the end it reports errors (must be 0), tickets lost or left
inconsistent (must be 0), events missed by the displays, and the Daphne process's memory.
"""

from __future__ import annotations

import os
import random
import re
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.run import ensure_database, setup_django, start_daphnes  # noqa: E402
from tests.daphne_server import rss_mib  # noqa: E402

SECONDS = float(os.environ.get("SOAK_SECONDS", "120"))
KIOSKS = int(os.environ.get("SOAK_KIOSKS", "4"))
OPERATORS = int(os.environ.get("SOAK_OPERATORS", "4"))
DISPLAYS = int(os.environ.get("SOAK_DISPLAYS", "8"))
# Seconds between a kiosk's taps: a robot at full speed is (rightly) rate-limited as a flood.
THINK = float(os.environ.get("SOAK_THINK", "0.3"))


def build_studio() -> dict:
    """A tenant with two services, an operator per device, a paired kiosk and TV."""
    from datetime import UTC, datetime
    from decimal import Decimal

    from django.contrib.auth import get_user_model
    from django.core import signing

    from equipment.models import Equipment, Kind
    from payments.models import PaymentSettings
    from tenants.models import Membership, Role, Tenant
    from tickets.models import Service
    from totem.models import PairingCode
    from totem.pairing import SALT, cookie_name

    tenant = Tenant.objects.create(slug="soak", name="Studio Soak")
    PaymentSettings.objects.update_or_create(tenant=tenant, defaults={"cash_enabled": True})
    services = [
        Service.objects.create(
            tenant=tenant, name=name, prefix=prefix, price=Decimal("50.00"), duration_minutes=5
        )
        for name, prefix in (("Crioterapia", "C"), ("Bota de compressão", "B"))
    ]
    stations = []
    for n in range(OPERATORS):
        device = Equipment.objects.create(
            tenant=tenant, kind=Kind.SERVICE_DEVICE, name=f"Estação {n}", identifier=f"st{n}"
        )
        device.services.add(services[n % 2])
        stations.append(device.pk)
    cookies: dict[str, list] = {Kind.KIOSK: [], Kind.DISPLAY: []}
    # One device per kiosk, as in a studio: each kiosk has its own request-rate allowance.
    for kind, count in ((Kind.KIOSK, KIOSKS), (Kind.DISPLAY, 1)):
        for n in range(count):
            device = Equipment.objects.create(
                tenant=tenant, kind=kind, name=f"{kind} {n}", identifier=f"{kind}-{n}"
            )
            pairing = PairingCode.objects.create(
                tenant=tenant, equipment=device, used_at=datetime.now(UTC)
            )
            value = signing.dumps({"p": pairing.pk, "e": device.pk}, salt=SALT)
            cookies[kind].append((cookie_name(kind), value))
    users = []
    for n in range(OPERATORS + 1):
        user = get_user_model().objects.create_user(f"op{n}", password="soak-password")
        Membership.objects.create(user=user, tenant=tenant, role=Role.OPERATOR)
        users.append(user.username)
    return {"tenant": tenant, "stations": stations, "cookies": cookies, "users": users}


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: dict[str, int] = {}
        self.errors: list[str] = []
        self.sold: set[str] = set()

    def add(self, name: str) -> None:
        with self.lock:
            self.counts[name] = self.counts.get(name, 0) + 1

    def error(self, text: str) -> None:
        with self.lock:
            self.errors.append(text)


def session(base: str, cookie: tuple[str, str] | None = None):
    import requests

    http = requests.Session()
    if cookie:
        http.cookies.set(*cookie, domain="127.0.0.1")
    http.get(base + "/accounts/login/", timeout=10)  # a CSRF cookie
    http.headers["X-CSRFToken"] = http.cookies.get("csrftoken", "")
    http.headers["Referer"] = base + "/"
    return http


def checked(stats: Stats, response, what: str) -> bool:
    # A 429 is the kiosk locked out (the bug this soak once found), never an expected answer.
    if response.status_code >= 500 or response.status_code == 429:
        stats.error(f"{what}: HTTP {response.status_code}")
        return False
    return True


def kiosk(base: str, slug: str, cookie, stats: Stats, stop: threading.Event) -> None:
    http = session(base, cookie)
    send = http.request

    def human(method, url, *args, **kwargs):
        time.sleep(THINK)  # a customer reads and taps; a robot at full speed is a flood
        return send(method, url, *args, **kwargs)

    http.request = human
    root = f"{base}/t/{slug}/totem"
    while not stop.is_set():
        try:
            http.post(root + "/comecar/", timeout=10)
            page = http.get(root + "/servicos/", timeout=10)
            ids = re.findall(r'name="toggle" value="(\d+)"', page.text)
            if not ids:
                stats.error(f"kiosk: no services on {page.url} (HTTP {page.status_code})")
                http.post(root + "/sair/", timeout=10)
                continue
            for service in random.sample(ids, random.randint(1, len(ids))):
                http.post(root + "/servicos/", {"toggle": service}, timeout=10)
            http.post(root + "/extras/", {"next": "1"}, timeout=10)
            form = {"customer_name": "Cliente Soak", "priority": "", "consent": "on"}
            http.post(root + "/identificacao/", form, timeout=10)
            summary = http.get(root + "/resumo/", timeout=10)
            key = re.search(r'name="key" value="([^"]+)"', summary.text)
            if not key:
                stats.error("kiosk: no summary")
                continue
            bought = http.post(root + "/resumo/", {"method": "cash", "key": key[1]}, timeout=10)
            number = re.search(
                r'data-testid="ticket-number"[^>]*>\s*([A-Z]{1,3}\d{3,})', bought.text
            )
            if checked(stats, bought, "kiosk buy") and number:
                with stats.lock:
                    stats.sold.add(number[1])
            elif bought.status_code < 500:
                stats.error(f"kiosk buy: no ticket number on {bought.url}")
            http.post(root + "/sair/", timeout=10)
        except Exception as error:  # noqa: BLE001 — counted; the soak goes on
            stats.error(f"kiosk: {error!r}")


def operator(base, slug, user, station, cashier, stats: Stats, stop: threading.Event) -> None:
    http = session(base)
    http.post(base + "/accounts/login/", {"username": user, "password": "soak-password"})
    http.headers["X-CSRFToken"] = http.cookies.get("csrftoken", "")
    panel = f"{base}/t/{slug}/painel"
    http.post(panel + "/estacao/", {"station": station}, timeout=10)
    while not stop.is_set():
        time.sleep(0.2)  # a person at a panel, on every path: the cashier's too
        try:
            page = http.get(panel + "/", timeout=10)
            if not checked(stats, page, "panel"):
                continue
            if cashier:
                # Each form names its URL twice (action and hx-post): one POST per session.
                sessions = dict.fromkeys(re.findall(r"/pagamento/(\d+)/dinheiro/", page.text))
                for session_id in list(sessions)[:3]:
                    done = http.post(
                        f"{panel}/pagamento/{session_id}/dinheiro/",
                        {"amount_received": "200,00"},
                        timeout=10,
                    )
                    if checked(stats, done, "confirm cash"):
                        stats.add("cash confirmed")
                continue
            for service in re.findall(r"/servico/(\d+)/chamar/", page.text)[:1]:
                called = http.post(f"{panel}/servico/{service}/chamar/", timeout=10)
                checked(stats, called, "call next")
            page = http.get(panel + "/", timeout=10)
            for line in set(re.findall(r"/linha/(\d+)/iniciar/", page.text)):
                checked(stats, http.post(f"{panel}/linha/{line}/iniciar/", timeout=10), "start")
            page = http.get(panel + "/", timeout=10)
            for line in set(re.findall(r"/linha/(\d+)/concluir/", page.text)):
                finished = http.post(f"{panel}/linha/{line}/concluir/", timeout=10)
                if checked(stats, finished, "complete"):
                    stats.add("completed")
        except Exception as error:  # noqa: BLE001 — counted; the soak goes on
            stats.error(f"operator: {error!r}")


def displays(port: int, slug: str, cookie, stats: Stats, stop: threading.Event) -> None:
    import asyncio
    import json

    from websockets.asyncio.client import connect

    async def one() -> None:
        async with connect(
            f"ws://127.0.0.1:{port}/ws/t/{slug}/display/",
            origin=f"http://127.0.0.1:{port}",
            additional_headers={"Cookie": f"{cookie[0]}={cookie[1]}"},
            max_queue=None,
        ) as ws:
            hello = json.loads(await ws.recv())
            first = dict(hello["seqs"])  # per group: each group numbers its own events
            seen: dict[str, set[int]] = {}
            while not stop.is_set():
                try:
                    event = json.loads(await asyncio.wait_for(ws.recv(), 1))
                except TimeoutError:
                    continue
                stats.add("display events")
                seen.setdefault(event["group"], set()).add(event["group_seq"])
            # Concurrent publishers can deliver 7 before 6 (the screen re-reads on that);
            # an event is lost only if its number never arrived at all.
            for group, numbers in seen.items():
                expected = set(range(first.get(group, 0) + 1, max(numbers) + 1))
                for _ in expected - numbers:
                    stats.add("display events missed")

    async def all_of_them() -> None:
        results = await asyncio.gather(*(one() for _ in range(DISPLAYS)), return_exceptions=True)
        for result in results:
            if isinstance(result, Exception):
                stats.error(f"display: {result!r}")

    asyncio.run(all_of_them())


def main() -> int:
    ensure_database()
    setup_django()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    studio = build_studio()
    slug = studio["tenant"].slug
    procs, ports = start_daphnes(1)
    base = f"http://127.0.0.1:{ports[0]}"
    stats, stop = Stats(), threading.Event()
    workers = [
        threading.Thread(target=kiosk, args=(base, slug, cookie, stats, stop))
        for cookie in studio["cookies"]["kiosk"]
    ]
    workers.append(
        threading.Thread(
            target=operator,
            args=(base, slug, studio["users"][-1], studio["stations"][0], True, stats, stop),
        )
    )
    workers += [
        threading.Thread(target=operator, args=(base, slug, user, station, False, stats, stop))
        for user, station in zip(studio["users"], studio["stations"], strict=False)
    ]
    workers.append(
        threading.Thread(
            target=displays, args=(ports[0], slug, studio["cookies"]["display"][0], stats, stop)
        )
    )
    print(f"soak: {SECONDS:.0f} s, {KIOSKS} kiosks, {OPERATORS} operators, {DISPLAYS} displays")
    memory = [rss_mib(procs[0].pid)]
    for worker in workers:
        worker.start()
    started = time.monotonic()
    try:
        while time.monotonic() - started < SECONDS:
            time.sleep(min(10, SECONDS))
            memory.append(rss_mib(procs[0].pid))
            print(
                f"  {time.monotonic() - started:5.0f} s  {stats.counts}  "
                f"errors={len(stats.errors)}  daphne={memory[-1]:.0f} MiB",
                flush=True,
            )
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=30)
        for proc in procs:
            proc.terminate()
            proc.wait()
    return report(studio["tenant"], stats, memory)


def report(tenant, stats: Stats, memory: list[float]) -> int:
    from payments.models import PaymentSession
    from tickets.maintenance import inspect
    from tickets.models import Ticket, TicketLine

    stored_numbers = set(Ticket.objects.filter(tenant=tenant).values_list("number", flat=True))
    lost = stats.sold - stored_numbers
    sold, stored = len(stats.sold), len(stored_numbers)
    findings = inspect(fix=False).findings
    print("\nsummary")
    print(f"  tickets sold at the kiosks   {sold}")
    print(f"  tickets in the database      {stored}  (lost: {len(lost)})")
    paid = PaymentSession.objects.filter(tenant=tenant, status="paid").count()
    completed = TicketLine.objects.filter(tenant=tenant, status="completed").count()
    print(f"  payments confirmed (cash)    {paid}")
    print(f"  services completed           {completed}")
    print(
        f"  display events / missed      {stats.counts.get('display events', 0)}"
        f" / {stats.counts.get('display events missed', 0)}"
    )
    print(f"  inconsistent states          {len(findings)}")
    print(f"  errors                       {len(stats.errors)}")
    for error in stats.errors[:10]:
        print(f"    {error}")
    print(f"  daphne memory                {memory[0]:.0f} → {memory[-1]:.0f} MiB")
    missed = stats.counts.get("display events missed", 0)
    idle = not (sold and completed and stats.counts.get("display events"))
    if idle:
        print("  nothing was sold, served or announced: the soak exercised nothing")
    return 1 if stats.errors or findings or lost or missed or idle else 0


if __name__ == "__main__":
    sys.exit(main())
