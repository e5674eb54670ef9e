"""Database connections: a Daphne process holds at most DATABASE_POOL_SIZE of them, however
many clients it serves, and gives back every one it borrowed (even when a client hangs up
mid-request)."""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Iterator

import pytest
from django.db import connection

from tests import daphne_server
from tests.conftest import queued_ticket

POOL_SIZE = 3
CLIENTS = 32
LOAD_SECONDS = 4
# Each client hangs up without reading the answer to one request in this many.
HANG_UP_EVERY = 5


@pytest.fixture(scope="module")
def small_pool_daphne(django_db_setup, django_db_blocker) -> Iterator[str]:
    """One Daphne whose settings bound its pool to POOL_SIZE connections: its address."""
    extra = {"DATABASE_POOL_SIZE": str(POOL_SIZE)}
    for servers in daphne_server.serve(1, django_db_blocker, extra_env=extra):
        yield servers[0].address


def server_connections() -> list[str]:
    """The state of each connection the Daphne holds to the test database, read from the
    test's own connection."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT state FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name = %s"
            " AND pid <> pg_backend_pid()",
            [daphne_server.APPLICATION_NAME],
        )
        return [state for (state,) in cursor.fetchall()]


def load(address: str, paths: list[str], stop: threading.Event, statuses: list[int]) -> None:
    """One client: GET the pages in turn on a kept-alive connection until `stop`; now and
    then send a request and hang up without reading the answer."""
    host, port = address.split(":")
    client = http.client.HTTPConnection(host, int(port), timeout=60)
    sent = 0
    while not stop.is_set():
        client.request("GET", paths[sent % len(paths)])
        sent += 1
        if sent % HANG_UP_EVERY == 0:
            client.close()
            continue
        response = client.getresponse()
        response.read()
        statuses.append(response.status)
    client.close()


def burst(address: str, paths: list[str]) -> list[int]:
    """CLIENTS clients at once, one request each: their statuses."""
    statuses: list[int] = []

    def one(path: str) -> None:
        host, port = address.split(":")
        client = http.client.HTTPConnection(host, int(port), timeout=60)
        client.request("GET", path)
        response = client.getresponse()
        response.read()
        statuses.append(response.status)
        client.close()

    threads = [threading.Thread(target=one, args=(paths[i % len(paths)],)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_daphne_serving_32_clients_holds_no_more_connections_than_its_pool(
    small_pool_daphne, tenant, cryo, boots
):
    tickets = [queued_ticket(tenant, [cryo, boots]) for _ in range(3)]
    # Public ticket pages: each reads the tenant, the ticket, its lines and their places.
    paths = [f"/t/{tenant.slug}/senha/{ticket.token}/" for ticket in tickets]
    stop = threading.Event()
    statuses: list[int] = []
    clients = [
        threading.Thread(target=load, args=(small_pool_daphne, paths, stop, statuses))
        for _ in range(CLIENTS)
    ]
    for client in clients:
        client.start()
    held: list[int] = []
    try:
        deadline = time.monotonic() + LOAD_SECONDS
        while time.monotonic() < deadline:
            held.append(len(server_connections()))
            time.sleep(0.02)
    finally:
        stop.set()
        for client in clients:
            client.join()

    assert len(statuses) > CLIENTS and set(statuses) == {200}
    # The clients kept the whole pool busy, and never had more: without the pool each request
    # in flight had a connection of its own.
    assert max(held) == POOL_SIZE
    # Idle again: no more than the pool, and none left inside a transaction or a query
    # (a request that lost its client still gave its connection back).
    time.sleep(1)
    idle = server_connections()
    assert len(idle) <= POOL_SIZE and set(idle) <= {"idle"}
    # And the pool still lends them: with none given back, these would wait 30 s for a 503.
    assert burst(small_pool_daphne, paths) == [200] * CLIENTS
