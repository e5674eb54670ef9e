"""The audit log and the history tables in monthly partitions on PostgreSQL, plain on SQLite:
made ahead by the worker, dropped whole past their keeping, and a migration that keeps rows."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection

from ops import retention
from ops.worker import JOBS
from tenants import partitions
from tenants.audit import record
from tenants.models import AuditAction, AuditLog
from tests.conftest import queued_ticket
from tests.test_identity_input import migrate, migrate_to_latest
from tickets.models import Ticket, TicketLine

PARTITIONED = {
    "tenants_auditlog": "created_at",
    "tickets_historicalticket": "history_date",
    "tickets_historicalticketservice": "history_date",
    "payments_historicalpaymentsession": "history_date",
}


def where(model, **lookup) -> str:
    """The partition a row landed in."""
    table = model._meta.db_table
    column, value = next(iter(lookup.items()))
    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT tableoid::regclass::text FROM "{table}" WHERE "{column}" = %s', [value]
        )
        return cursor.fetchone()[0]


def audit_at(moment: datetime) -> AuditLog:
    entry = record(AuditAction.LOGIN, tenant=None, username="alice")
    AuditLog.objects.filter(pk=entry.pk).update(created_at=moment)
    with connection.cursor() as cursor:
        # The worker's own transaction has no deferred foreign-key checks waiting; this test's
        # has, and PostgreSQL moves or drops no table with checks pending.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    entry.refresh_from_db()
    return entry


def tables() -> set[str]:
    # Django's introspection lists no partitions: the catalog does.
    with connection.cursor() as cursor:
        cursor.execute("SELECT relname FROM pg_class WHERE relkind IN ('r', 'p')")
        return {name for (name,) in cursor.fetchall()}


@pytest.mark.postgres
def test_audit_and_history_are_partitioned_with_this_month_and_two_ahead(db):
    assert partitions.partitioned_tables(connection) == PARTITIONED
    this = partitions.month_start(datetime.now(UTC))
    for table in PARTITIONED:
        months = partitions.months_of(connection, table)
        assert [partitions.add_months(this, n) for n in range(3)] == months[-3:]
        assert f"{table}_default" in tables()


@pytest.mark.postgres
def test_rows_land_in_their_month(tenant, cryo):
    ticket = queued_ticket(tenant, [cryo])
    this = partitions.month_start(datetime.now(UTC))
    assert where(Ticket.history.model, id=ticket.pk) == partitions.partition_name(
        "tickets_historicalticket", this
    )
    line = TicketLine.objects.get(ticket=ticket)
    assert where(TicketLine.history.model, id=line.pk).endswith(f"_p{this:%Y%m}")
    next_month = datetime.combine(partitions.add_months(this, 1), datetime.min.time(), UTC)
    entry = audit_at(next_month + timedelta(days=3))
    assert where(AuditLog, id=entry.pk) == f"tenants_auditlog_p{next_month:%Y%m}"
    # Django still finds the row by its id alone.
    assert AuditLog.objects.get(pk=entry.pk).username == "alice"


@pytest.mark.postgres
def test_the_worker_makes_the_coming_months_once(db):
    assert any(job.command == ("manage_partitions",) for job in JOBS)
    later = datetime.now(UTC) + timedelta(days=200)
    created, _ = retention.keep_partitions(now=later)
    month = partitions.month_start(later)
    expected = {
        partitions.partition_name(table, partitions.add_months(month, n))
        for table in PARTITIONED
        for n in range(3)
    }
    assert expected <= set(created)
    assert expected <= tables()
    assert retention.keep_partitions(now=later)[0] == []


@pytest.mark.postgres
def test_retention_drops_months_past_their_keeping_and_keeps_the_recent_ones(db):
    now = datetime.now(UTC)
    old = audit_at(now - timedelta(days=250))
    recent = audit_at(now - timedelta(days=100))
    partitions.ensure_months(
        connection, "tenants_auditlog", partitions.month_start(old.created_at), 1
    )
    audit_at(now - timedelta(days=250))  # after the month exists: routed into it
    old_month = partitions.month_start(now - timedelta(days=250))

    _, dropped = retention.keep_partitions(now=now)

    assert partitions.partition_name("tenants_auditlog", old_month) in dropped
    assert not AuditLog.objects.filter(created_at__lt=now - timedelta(days=200)).exists()
    assert AuditLog.objects.filter(pk=recent.pk).exists()
    # History is kept as long as the tickets: nothing of this year goes.
    assert not [name for name in dropped if "historical" in name]


@pytest.mark.postgres
def test_a_row_of_a_month_without_partition_is_kept_and_moves_when_the_month_is_made(db):
    far = datetime(2031, 5, 17, 12, tzinfo=UTC)
    entry = audit_at(far)
    assert where(AuditLog, id=entry.pk) == "tenants_auditlog_default"

    created, _ = retention.keep_partitions(now=far)

    assert "tenants_auditlog_p203105" in created
    assert where(AuditLog, id=entry.pk) == "tenants_auditlog_p203105"
    assert AuditLog.objects.get(pk=entry.pk).created_at == far


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_migration_partitions_a_populated_database_and_keeps_every_row(tenant, cryo):
    # Sold with today's models (later migrations added columns the old schema lacks); going
    # back un-partitions its history with it.
    ticket = queued_ticket(tenant, [cryo])
    try:
        _partition_a_populated_database(tenant, ticket)
    finally:
        migrate_to_latest()  # a failure must not leave the old schema to the next tests


def _partition_a_populated_database(tenant, ticket) -> None:
    migrate(("tenants", "0018_audit_package_shared"))
    migrate(("tickets", "0017_package_sharing"))
    assert "tenants_auditlog" not in partitions.partitioned_tables(connection)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO tenants_auditlog (username, action, entity, entity_id, data, created_at,"
            " label) SELECT 'op', 'login', '', '', '{}', now() - g * interval '9 days', ''"
            " FROM generate_series(1, 60) g"
        )
    audit_ids = set(AuditLog.objects.values_list("pk", flat=True))
    history_ids = set(Ticket.history.model.objects.values_list("history_id", flat=True))

    migrate_to_latest()

    assert set(PARTITIONED) == set(partitions.partitioned_tables(connection))
    assert set(AuditLog.objects.values_list("pk", flat=True)) == audit_ids
    assert set(Ticket.history.model.objects.values_list("history_id", flat=True)) == history_ids
    oldest = partitions.month_start(datetime.now(UTC) - timedelta(days=540))
    assert partitions.months_of(connection, "tenants_auditlog")[0] == oldest
    # New rows take ids after the old ones, in their month.
    assert record(AuditAction.LOGIN, tenant=None, username="x").pk > max(audit_ids)
    assert Ticket.history.model.objects.filter(id=ticket.pk).count() >= 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_making_the_same_months_at_once_make_each_once():
    far = datetime(2032, 3, 10, tzinfo=UTC)
    start = threading.Barrier(2)
    made: list[list[str]] = []
    failed: list[Exception] = []

    def run() -> None:
        try:
            start.wait()
            made.append(retention.keep_partitions(now=far)[0])
        except Exception as error:  # noqa: BLE001 — the assertion below names it
            failed.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failed == []
        created = made[0] + made[1]
        assert len(created) == len(set(created)) == 3 * len(PARTITIONED)
    finally:
        # Committed DDL outlives the test: later tests expect this month and two ahead last.
        with connection.cursor() as cursor:
            for table in PARTITIONED:
                for n in range(3):
                    month = partitions.add_months(date(2032, 3, 1), n)
                    name = partitions.partition_name(table, month)
                    cursor.execute(f'DROP TABLE IF EXISTS "{name}"')


def test_sqlite_keeps_plain_tables(db):
    if connection.vendor == "postgresql":
        pytest.skip("SQLite's half of the rule")
    assert partitions.partitioned_tables(connection) == {}
    assert retention.keep_partitions() == ([], [])
    assert record(AuditAction.LOGIN, tenant=None, username="x").pk


def test_months_are_counted_across_years():
    assert partitions.add_months(date(2026, 11, 1), 2) == date(2027, 1, 1)
    assert partitions.add_months(date(2026, 1, 1), -1) == date(2025, 12, 1)
