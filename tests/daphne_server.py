"""Real Daphne processes on 127.0.0.1 for end-to-end tests (PostgreSQL and Redis only).

A Daphne process is another process: it cannot see rows inside a pytest transaction, so tests
that use it mark `django_db(transaction=True)` and the process is pointed at the test database
by name. It shares the test's Redis, so events cross between it and the test process (and
between two Daphnes) as they do in production.

They run with DEBUG on, so config/asgi.py serves static files and a browser gets the pages'
CSS and JS.

Use in a test module:

    from tests import daphne_server
    daphne = daphne_server.daphne  # or two_daphnes

`daphne` yields the base address, e.g. "127.0.0.1:53187"; `two_daphnes` a list of two.
A test that needs a Redis of its own (one it may stop) starts its processes with `serve`.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parent.parent
STARTUP_SECONDS = 30
# The application_name of the servers' database connections.
APPLICATION_NAME = "totem-test-daphne"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rss_mib(pid: int) -> float:
    """Resident memory of a process, in MiB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def database_url(settings_dict: dict) -> str:
    """The URL of the database pytest-django created (`test_<name>`)."""
    user = settings_dict.get("USER") or ""
    password = settings_dict.get("PASSWORD") or ""
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{auth}{host}:{port}/{settings_dict['NAME']}"


class DaphneProcess:
    def __init__(self, env: dict[str, str]):
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        # Kept open for the life of the process (its output), closed in stop().
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115
            prefix="daphne-", suffix=".log", delete=False
        )
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(self.port),
                "config.asgi:application",
            ],
            cwd=BASE_DIR,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait_until_listening(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"Daphne did not start on {self.address}:\n{self.output()}")

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)


# Where every test (tests/conftest.py) and every test Daphne keep uploads: one folder of this
# run, so a picture a test stores is the one its Daphne serves, and none lands in var/media.
MEDIA_ROOT = Path(tempfile.mkdtemp(prefix="totem-test-media-"))


def server_env(**overrides: str) -> dict[str, str]:
    """The environment of a test Daphne: this run's, with `overrides` (DATABASE_URL, …)."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DEBUG": "true",  # static files served by the process (config/asgi.py)
        "LOG_LEVEL": "WARNING",
        # A test's transactional flush must not wait on the server's idle connections.
        "CONN_MAX_AGE": "0",
        # No spooler or worker of its own (config/background.py) unless a test asks for one.
        "RUN_WORKERS_IN_WEB": "false",
        "MEDIA_ROOT": str(MEDIA_ROOT),
        **overrides,
    }


def serve(
    count: int, django_db_blocker, *, redis_url: str = "", extra_env: dict[str, str] | None = None
) -> Iterator[list[DaphneProcess]]:
    """`count` Daphne processes on the test database and `redis_url` (default: the test's
    Redis), with `extra_env` added to their environment; stopped when the generator closes."""
    from django.conf import settings
    from django.db import connection

    from tests.conftest import ON_POSTGRES, ON_REDIS

    if not (ON_POSTGRES and ON_REDIS):
        pytest.skip("a real Daphne needs PostgreSQL and Redis (DATABASE_URL, REDIS_URL)")
    with django_db_blocker.unblock():
        # Named, so a test can tell the servers' connections from its own in pg_stat_activity.
        url = database_url(connection.settings_dict) + f"?application_name={APPLICATION_NAME}"
    env = server_env(
        DATABASE_URL=url, REDIS_URL=redis_url or settings.REDIS_URL, **(extra_env or {})
    )
    # Started together: each spends seconds importing Django.
    servers = [DaphneProcess(env) for _ in range(count)]
    try:
        for server in servers:
            server.wait_until_listening()
        yield servers
    finally:
        for server in servers:
            server.stop()


@pytest.fixture(scope="module")
def daphne(django_db_setup, django_db_blocker) -> Iterator[str]:
    """One Daphne process: its address."""
    for servers in serve(1, django_db_blocker):
        yield servers[0].address


@pytest.fixture(scope="module")
def two_daphnes(django_db_setup, django_db_blocker) -> Iterator[list[str]]:
    """Two Daphne processes sharing the database and Redis: their addresses."""
    for servers in serve(2, django_db_blocker):
        yield [server.address for server in servers]
