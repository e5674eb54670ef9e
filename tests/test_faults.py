"""Faults: the database going away mid-request, mid-sale, and idle transactions."""

from __future__ import annotations

import psycopg
import pytest
from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.test import Client
from django.urls import reverse

from tests.conftest import make_ticket
from tickets import issuing
from tickets.models import Extra, Ticket


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
    real = issuing.next_number

    def dying(*args, **kwargs):
        kill_backend(backend_pid())  # after the stock was taken, before the ticket is written
        return real(*args, **kwargs)

    monkeypatch.setattr(issuing, "next_number", dying)
    with pytest.raises(OperationalError):
        make_ticket(tenant, [cryo], extras={towel.id: 1})
    connection.close()
    monkeypatch.setattr(issuing, "next_number", real)
    assert Ticket.objects.count() == 0
    assert Extra.objects.get(pk=towel.pk).stock == 2  # the decrement rolled back with it
    assert make_ticket(tenant, [cryo]).number == "C001"  # and no number was lost


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_idle_transaction_is_ended_by_the_server():
    with connection.cursor() as cursor:
        cursor.execute("SHOW idle_in_transaction_session_timeout")
        assert cursor.fetchone()[0] == "30s"
