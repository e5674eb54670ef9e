"""Faults: the database going away mid-request, mid-sale, or whole; idle transactions."""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import OperationalError, connection, transaction
from django.test import Client
from django.urls import reverse

from equipment.models import Kind
from tests.conftest import make_ticket
from tests.daphne_server import BASE_DIR, DaphneProcess, free_port, server_env
from tickets import issuing
from tickets.models import Extra, Ticket
from totem.models import PairingCode


def kill_backend(pid: int) -> None:
    """What a PostgreSQL restart does to one connection, without stopping the shared server."""
    db = settings.DATABASES["default"]
    dsn = f"host={db['HOST']} port={db['PORT'] or 5432} user={db['USER']} dbname=postgres"
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])


def backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_request_in_flight_when_the_database_drops_gets_a_503_and_the_next_succeeds(alice):
    client = Client()
    client.force_login(alice)
    url = reverse("panel_home")
    assert client.get(url).status_code in (200, 302)
    # Inside an atomic block Django cannot swap the connection: the request is "in flight".
    try:
        with transaction.atomic():
            kill_backend(backend_pid())
            response = client.get(url)
    except OperationalError:
        pass  # the rollback of the dead connection fails too; that is the point
    assert response.status_code == 503
    assert "Um momento" in response.content.decode()
    assert response["Retry-After"] == "5"
    connection.close()  # what request_finished does after a failed request
    assert client.get(url).status_code in (200, 302)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_sale_cut_by_the_database_leaves_no_half_written_ticket(tenant, cryo, towel, monkeypatch):
    real = issuing.number_ticket

    def dying(*args, **kwargs):
        kill_backend(backend_pid())  # after the stock and the ticket were written, before commit
        return real(*args, **kwargs)

    monkeypatch.setattr(issuing, "number_ticket", dying)
    with pytest.raises(OperationalError):
        make_ticket(tenant, [cryo], extras={towel.id: 1})
    connection.close()
    monkeypatch.setattr(issuing, "number_ticket", real)
    assert Ticket.objects.count() == 0
    assert Extra.objects.get(pk=towel.pk).stock == 2  # the decrement rolled back with it
    assert make_ticket(tenant, [cryo]).number == "C001"  # and no number was lost


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_idle_transaction_is_ended_by_the_server():
    with connection.cursor() as cursor:
        cursor.execute("SHOW idle_in_transaction_session_timeout")
        assert cursor.fetchone()[0] == "30s"


# --- PostgreSQL down: a cluster of the test's own, stopped under a real Daphne -----------------

PG_BINS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))


class Cluster:
    """A PostgreSQL the test may stop: its own data directory and socket in a temporary
    directory, on a free port of 127.0.0.1, never the shared server."""

    def __init__(self) -> None:
        self.bin = PG_BINS[-1]
        self.root = Path(tempfile.mkdtemp(prefix="totem-pg-"))
        self.port = free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/totem"
        # initdb refuses to run as root; PostgreSQL's own user owns the cluster then.
        self.user = "postgres" if os.geteuid() == 0 else None
        if self.user:
            account = pwd.getpwnam(self.user)
            os.chown(self.root, account.pw_uid, account.pw_gid)
        self.pg("initdb", "-D", "data", "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8")

    def pg(self, program: str, *args: str) -> None:
        subprocess.run(
            [str(self.bin / program), *args],
            cwd=self.root,
            user=self.user,
            check=True,
            capture_output=True,
            timeout=60,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.pg("pg_ctl", "-D", "data", "-l", "log", "-w", "-o", options, "start")

    def stop(self) -> None:
        self.pg("pg_ctl", "-D", "data", "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def open_studio() -> None:
    """Run in a process pointed at the cluster: migrate, seed the demo studio, pair a kiosk
    and a TV and sign the manager in as a browser would, sell a ticket; print the browser's
    cookies and the ticket's token as JSON."""
    from django.core.management import call_command

    from equipment.models import Equipment
    from tenants.models import Tenant

    call_command("migrate", verbosity=0)
    call_command("seed_demo", stdout=io.StringIO())
    tenant = Tenant.objects.get(slug="demo")
    browser = Client()
    for kind in (Kind.KIOSK, Kind.DISPLAY):
        device = Equipment.objects.get(tenant=tenant, kind=kind)
        code = PairingCode.objects.create(tenant=tenant, equipment=device)
        response = browser.post(reverse("kiosk_pair", args=["demo"]), {"code": code.code})
        assert response.status_code == 302, response.content
    browser.force_login(get_user_model().objects.get(username="manager"))
    ticket = make_ticket(tenant, [tenant.services.first()])
    cookies = {name: morsel.value for name, morsel in browser.cookies.items()}
    print(json.dumps({"cookies": cookies, "token": ticket.token}))


def get(
    address: str, path: str, cookies: dict[str, str], **headers: str
) -> tuple[http.client.HTTPResponse, str]:
    """GET `path` as the browser holding `cookies`: the response and its text."""
    connection = http.client.HTTPConnection(address, timeout=10)
    cookie = "; ".join(f"{name}={value}" for name, value in cookies.items())
    connection.request("GET", path, headers={"Cookie": cookie, **headers})
    response = connection.getresponse()
    text = response.read().decode()
    connection.close()
    return response, text


@pytest.mark.postgres
@pytest.mark.timeout(480)  # its new cluster is migrated from scratch first
def test_with_postgresql_stopped_every_screen_answers_503_once_logged_and_recovers_by_itself():
    if not PG_BINS:
        pytest.skip("needs PostgreSQL's server programs (initdb, pg_ctl)")
    cluster = Cluster()
    daphne = None
    try:
        cluster.start()
        cluster.pg(
            "createdb", "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres", "totem"
        )
        env = server_env(DATABASE_URL=cluster.url)  # the connection pool, as in production
        daphne = DaphneProcess(env)  # starts while the studio is prepared
        prepared = subprocess.run(
            [
                sys.executable,
                "-c",
                "import django; django.setup(); "
                "from tests.test_faults import open_studio; open_studio()",
            ],
            cwd=BASE_DIR,
            env={**env, "ALLOWED_HOSTS": "testserver"},
            capture_output=True,
            text=True,
            # Every migration on a new database: a minute alone, more beside another worker.
            timeout=240,
        )
        assert prepared.returncode == 0, prepared.stderr
        studio = json.loads(prepared.stdout.splitlines()[-1])
        daphne.wait_until_listening()
        pages = {
            "kiosk": "/t/demo/totem/",
            "panel": "/t/demo/painel/",
            "dashboard": "/t/demo/gestao/",
            "display": "/t/demo/display/",
            "ticket status": f"/t/demo/senha/{studio['token']}/",
            "admin login": "/admin/login/",
        }
        cookies = studio["cookies"]
        normal = {
            name: get(daphne.address, path, cookies)[0].status for name, path in pages.items()
        }
        assert set(normal.values()) <= {200, 302}, normal

        cluster.stop()
        for name, path in pages.items():
            response, text = get(daphne.address, path, cookies)
            assert response.status == 503, (name, response.status, daphne.output())
            assert response.getheader("Retry-After") == "5", name
            assert "Um momento" in text, name
        # An htmx poll (panel, kiosk) is told to reload, so the screen shows that page.
        polled, _ = get(daphne.address, pages["panel"], cookies, **{"HX-Request": "true"})
        assert (polled.status, polled.getheader("HX-Refresh")) == (503, "true")

        cluster.start()
        # The database is asked again at most once a second, as a screen retrying would.
        back_by = time.monotonic() + 10
        while get(daphne.address, pages["kiosk"], cookies)[0].status == 503:
            assert time.monotonic() < back_by, "still 503 ten seconds after PostgreSQL returned"
            time.sleep(0.2)
        again = {name: get(daphne.address, path, cookies)[0].status for name, path in pages.items()}
        assert again == normal

        log = Path(daphne.log.name).read_text()
        assert log.count("database unavailable") == 1, log
        assert log.count("database available again") == 1, log
        assert "Traceback" not in log and "Service Unavailable" not in log, log
    finally:
        if daphne is not None:
            daphne.stop()
        cluster.remove()
