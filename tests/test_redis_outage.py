"""A Redis outage never stops a sale, a call, a login or a pairing.

Against a real Daphne on the test PostgreSQL and a redis-server this module starts on a port of
its own, which each test stops (the process terminated: connections refused) or pauses
(SIGSTOP: the kernel still accepts connections, nothing ever answers). While it is away, every
request a kiosk and an operator make answers within BOUND seconds and never with a server
error; when it returns, displays hear calls again. The shared Redis is never touched.
"""

from __future__ import annotations

import logging
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
import redis
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from websockets.exceptions import WebSocketException

from payments.models import PaymentSettings
from tenants import throttle
from tests import daphne_server
from tests.browsing import (
    PASSWORD,
    Browser,
    buy,
    call_next,
    choose_station,
    log_in,
    log_in_to_admin,
    pair_kiosk,
)
from tests.conftest import make_device, make_service
from tests.test_realtime import display_client, pair_display, wait_for
from tickets.models import LineStatus, Ticket, TicketStatus

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

# Seconds any one request may take while Redis is away: a kiosk tap must feel normal.
BOUND = 3.0
# How long Daphne leaves Redis alone after a failure (5 s in production): shorter here, so a
# test waits less for it to notice that Redis is back; no shorter than BOUND, so that one
# request never waits on two probes of a stalled Redis.
RETRY_SECONDS = 3


class RedisServer:
    """A redis-server of this test's own on a free port: nothing saved, nothing shared."""

    def __init__(self) -> None:
        self.port = daphne_server.free_port()
        self.dir = tempfile.mkdtemp(prefix="totem-redis-")
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None
        self.paused = False

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port)]
            + ["--save", "", "--appendonly", "no", "--dir", self.dir],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_timeout=1)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.02)
        client.close()

    def stop(self) -> None:
        """Terminate the server: every connection to it is refused."""
        self.process.terminate()
        self.process.wait(timeout=5)

    def pause(self) -> None:
        """SIGSTOP: connections are still accepted by the kernel, and nothing answers."""
        self.process.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)
        self.paused = False

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            if self.paused:
                self.resume()
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def running_redis() -> Iterator[RedisServer]:
    server = RedisServer()
    try:
        server.start()
        yield server
    finally:
        server.close()


# Daphne's Redis, for the module: Daphne takes seconds to start.
own_redis = pytest.fixture(running_redis, scope="module", name="own_redis")
# A Redis for one test of this process's cache (Daphne's is left to Daphne).
lone_redis = pytest.fixture(running_redis, name="lone_redis")


@pytest.fixture(scope="module")
def daphne(own_redis, django_db_setup, django_db_blocker) -> Iterator[daphne_server.DaphneProcess]:
    env = {"REDIS_RETRY_SECONDS": str(RETRY_SECONDS)}
    for servers in daphne_server.serve(
        1, django_db_blocker, redis_url=own_redis.url, extra_env=env
    ):
        yield servers[0]


@pytest.fixture
def redis_back(own_redis) -> Iterator[RedisServer]:
    """The module's Redis, running again after the test whatever happened in it."""
    yield own_redis
    if own_redis.paused:
        own_redis.resume()
    if own_redis.process.poll() is not None:
        own_redis.start()


def away(server: RedisServer, outage: str) -> None:
    if outage == "stopped":
        server.stop()
    else:
        server.pause()


def back(server: RedisServer, outage: str) -> None:
    if outage == "stopped":
        server.start()  # empty: --save ""
    else:
        server.resume()


# --- the cache, in this process ---------------------------------------------------------------


@pytest.mark.parametrize("outage", ["stopped", "paused"])
def test_limits_count_in_the_process_while_redis_is_away_and_in_redis_once_it_answers(
    lone_redis, settings, caplog, outage
):
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": lone_redis.url}}
    settings.REDIS_RETRY_SECONDS = 0.5
    caplog.set_level(logging.WARNING)
    attempt = ("login", "alice", "203.0.113.7")

    away(lone_redis, outage)
    began = time.monotonic()
    counts = [throttle.hit(*attempt, window=60) for _ in range(throttle.LOGIN_FAILURES + 1)]
    took = time.monotonic() - began
    # Still counted, so still refused past the limit; a stalled Redis cost one timeout (1 s).
    assert counts == list(range(1, throttle.LOGIN_FAILURES + 2))
    assert throttle.count(*attempt) > throttle.LOGIN_FAILURES
    assert took < 1.5, f"{took:.1f} s"

    back(lone_redis, outage)
    time.sleep(settings.REDIS_RETRY_SECONDS + 0.1)
    assert throttle.hit("login", "bob", "203.0.113.8", window=60) == 1
    stored = redis.Redis(port=lone_redis.port)
    keys = stored.scan_iter(f"{settings.REDIS_PREFIX}:*throttle:login:*")
    assert b"1" in [stored.get(key) for key in keys]
    stored.close()
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 2, warnings
    assert "is unreachable" in warnings[0] and "answers again" in warnings[1]


# --- Daphne -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def password_hash() -> str:
    """PASSWORD hashed as in production (Daphne knows no test hasher); ~0.3 s, so once."""
    return PBKDF2PasswordHasher().encode(PASSWORD, "outage-salt")


@pytest.fixture
def studio(tenant, alice, bob, password_hash):
    """A studio selling cryotherapy on two cabins, taking cash and static PIX, with an
    operator (alice) and a manager (bob) who log in with PASSWORD."""
    cryo = make_service(tenant)
    cabins = [make_device(tenant, f"Cabine {n}", [cryo], location=f"Sala {n}") for n in (1, 2)]
    PaymentSettings.objects.create(
        tenant=tenant,
        pix_key="studio@example.com",
        merchant_name="Studio Alfa",
        merchant_city="Sao Paulo",
    )
    for user in (alice, bob):
        user.password = password_hash
        user.save(update_fields=["password"])
    return {"tenant": tenant, "cryo": cryo, "cabins": cabins, "manager": bob}


def daphne_log(daphne: daphne_server.DaphneProcess) -> str:
    return Path(daphne.log.name).read_text(errors="replace")


# --- the outage -------------------------------------------------------------------------------


def sell_log_in_pair_and_call(daphne, studio) -> tuple[Browser, Ticket]:
    """Everything that must work without Redis; the operator and the ticket still waiting."""
    tenant, cryo, cabins = studio["tenant"], studio["cryo"], studio["cabins"]

    kiosk = pair_kiosk(daphne, tenant, BOUND)
    cash = buy(kiosk, tenant, cryo, "cash", "Maria Souza")
    operator = log_in(daphne, tenant, bound=BOUND)
    choose_station(operator, tenant, cabins[0])
    operator.post(
        f"/t/{tenant.slug}/painel/pagamento/{cash.pk}/dinheiro/", data={"amount_received": "120,00"}
    )
    cash.ticket.refresh_from_db()
    assert cash.ticket.status == TicketStatus.IN_QUEUE

    call_next(operator, tenant, cryo)
    assert cash.ticket.lines.get(status=LineStatus.CALLED).equipment_id == cabins[0].pk

    kiosk.post(f"/t/{tenant.slug}/totem/sair/", data={"reason": "done"})
    pix = buy(kiosk, tenant, cryo, "pix", "Joana Lima")
    status = f"/t/{tenant.slug}/totem/pagamento/estado/"
    htmx = {"HX-Request": "true"}
    assert "HX-Redirect" not in kiosk.get(status, headers=htmx).headers  # asks the provider
    operator.post(f"/t/{tenant.slug}/painel/pagamento/{pix.pk}/pix/")
    moved_on = kiosk.get(status, headers=htmx).headers.get("HX-Redirect", "")
    assert moved_on.endswith("/totem/senha/"), moved_on
    assert pix.ticket.number in kiosk.get(moved_on).text
    pix.ticket.refresh_from_db()
    assert pix.ticket.status == TicketStatus.IN_QUEUE
    return operator, pix.ticket


@contextmanager
def reconnecting_display(daphne, tenant, tv) -> Iterator:
    """A display socket retried as live.js retries it, until the server greets it."""
    deadline = time.monotonic() + 10
    with ExitStack() as stack:
        while True:
            try:
                client = stack.enter_context(display_client(daphne.address, tenant.slug, tv))
                break
            except (OSError, WebSocketException):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield client


@pytest.mark.parametrize("outage", ["stopped", "paused"])
@pytest.mark.django_db(transaction=True)
def test_sales_calls_logins_and_pairing_need_no_redis_and_screens_hear_calls_when_it_returns(
    daphne, redis_back, studio, outage
):
    tenant, cryo, cabins = studio["tenant"], studio["cryo"], studio["cabins"]
    tv = pair_display(tenant)
    logged_before = len(daphne_log(daphne))
    # A TV left on through the outage; it also warms Daphne's connections to Redis.
    with display_client(daphne.address, tenant.slug, tv) as left_on:
        away(redis_back, outage)
        operator, waiting = sell_log_in_pair_and_call(daphne, studio)
        log_in_to_admin(daphne, studio["manager"], BOUND)

        back(redis_back, outage)
        time.sleep(RETRY_SECONDS + 0.5)  # Daphne leaves Redis alone that long after a failure
        choose_station(operator, tenant, cabins[1])
        with reconnecting_display(daphne, tenant, tv) as reconnected:
            call_next(operator, tenant, cryo)
            heard = [wait_for(screen, "ticket_called") for screen in (reconnected, left_on)]

    for called in heard:
        assert (called["number"], called["room"]) == (waiting.number, "Sala 2")
    # One warning when the outage began and one when it ended: no line per request, no
    # traceback per second from the channel layer.
    logged = daphne_log(daphne)[logged_before:]
    assert logged.count("is unreachable") == 1, logged
    assert logged.count("answers again") == 1, logged
    assert "Traceback" not in logged, logged
