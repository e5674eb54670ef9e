"""Monthly partitions of the tables that grow with every sale, on PostgreSQL.

The audit log and the history of tickets, lines and payment sessions gain rows with
every sale and call (at 1,000 branches × 2,000 tickets a day, millions a day: bench/README.md).
Partitioned by month on their timestamp (declarative, PARTITION BY RANGE), a month past its
keeping is one DROP TABLE instead of millions of DELETEs, vacuum and the indexes of the
current month stay the size of a month, and a read bounded in time touches its months only.

- `partition_by_month` turns a plain table into a partitioned one, data kept (a migration
  calls it; SQLite keeps plain tables: it has no partitions and the zero-setup install is one
  studio's data). PostgreSQL wants the partition key in the primary key, so the database's
  key becomes (id, timestamp) while Django keeps `id` as the model's primary key: the ids
  still come from one sequence, so they stay unique, and a lookup by id uses the key's index.
- `ensure_months` creates the coming months ahead (the worker's `manage_partitions` job).
- Each table also has a DEFAULT partition, so a row of a month nobody created (the worker
  down for months, a clock gone wrong) is still written: a sale never fails for a partition.
  Creating that month later moves its rows out of DEFAULT first (`_create_month`).
- `drop_months_before` is the retention: whole months, dropped.

Partition names are the parent's plus `_pYYYYMM` (UTC months) and `_default`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from django.db import migrations
from django.db.backends.base.base import BaseDatabaseWrapper


def month_start(moment: datetime | date) -> date:
    return date(moment.year, moment.month, 1)


def add_months(month: date, count: int) -> date:
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def _bound(month: date) -> str:
    return datetime(month.year, month.month, 1, tzinfo=UTC).isoformat()


def partition_name(table: str, month: date) -> str:
    return f"{table}_p{month:%Y%m}"


def partitioned_tables(connection: BaseDatabaseWrapper) -> dict[str, str]:
    """Every partitioned table of the schema and its partition key's column."""
    if connection.vendor != "postgresql":
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname, a.attname
            FROM pg_partitioned_table p
            JOIN pg_class c ON c.oid = p.partrelid
            JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0]
            WHERE c.relnamespace = current_schema()::regnamespace
            ORDER BY c.relname
            """
        )
        return dict(cursor.fetchall())


def months_of(connection: BaseDatabaseWrapper, table: str) -> list[date]:
    """The months that have a partition of their own, oldest first."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = %s::regclass
            """,
            [table],
        )
        names = [name for (name,) in cursor.fetchall()]
    prefix = f"{table}_p"
    return sorted(
        date(int(n[-6:-2]), int(n[-2:]), 1)
        for n in names
        if n.startswith(prefix) and n[len(prefix) :].isdigit()
    )


def ensure_months(
    connection: BaseDatabaseWrapper, table: str, first: date, count: int
) -> list[str]:
    """Create the partitions of `count` months from `first` that are missing; return those
    created. Safe to run any number of times, by several workers at once."""
    created = []
    with connection.cursor() as cursor:
        # Serialises workers on this table; released at the end of the caller's transaction.
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"partitions:{table}"])
        existing = set(months_of(connection, table))
        for n in range(count):
            month = add_months(first, n)
            if month not in existing:
                _create_month(cursor, table, month)
                created.append(partition_name(table, month))
    return created


def _create_month(cursor, table: str, month: date) -> None:
    """One month's partition. Its rows may already sit in DEFAULT (written while it did not
    exist): PostgreSQL refuses to attach a range DEFAULT holds rows of, so they move first."""
    key = _key_column(cursor, table)
    name = partition_name(table, month)
    low, high = _bound(month), _bound(add_months(month, 1))
    default = f"{table}_default"
    # DDL takes no parameters; both bounds are ISO dates made here.
    bounds = f"FOR VALUES FROM ('{low}') TO ('{high}')"
    cursor.execute(
        f'SELECT 1 FROM "{default}" WHERE "{key}" >= %s AND "{key}" < %s LIMIT 1', [low, high]
    )
    if cursor.fetchone() is None:
        cursor.execute(f'CREATE TABLE "{name}" PARTITION OF "{table}" {bounds}')
        return
    cursor.execute(f'CREATE TABLE "{name}" (LIKE "{table}" INCLUDING DEFAULTS)')
    cursor.execute(
        f'WITH moved AS (DELETE FROM "{default}" WHERE "{key}" >= %s AND "{key}" < %s '
        f'RETURNING *) INSERT INTO "{name}" SELECT * FROM moved',
        [low, high],
    )
    cursor.execute(f'ALTER TABLE "{table}" ATTACH PARTITION "{name}" {bounds}')


def drop_months_before(connection: BaseDatabaseWrapper, table: str, cutoff: datetime) -> list[str]:
    """Drop the partitions whose whole month ends at or before `cutoff`; return their names.
    Rows of a later month, and any in DEFAULT, are the row-by-row purge's (ops/retention.py)."""
    dropped = []
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"partitions:{table}"])
        for month in months_of(connection, table):
            end = datetime.combine(add_months(month, 1), datetime.min.time(), tzinfo=UTC)
            if end <= cutoff:
                name = partition_name(table, month)
                cursor.execute(f'DROP TABLE "{name}"')
                dropped.append(name)
    return dropped


def _key_column(cursor, table: str) -> str:
    cursor.execute(
        """
        SELECT a.attname FROM pg_partitioned_table p
        JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0]
        WHERE p.partrelid = %s::regclass
        """,
        [table],
    )
    return cursor.fetchone()[0]


# --- the migration ----------------------------------------------------------------------------

AHEAD = 2  # months created beyond the current one, as the worker keeps them


def partition_by_month(schema_editor, table: str, column: str, pk: str) -> None:
    """Rebuild `table` partitioned by month on `column`, its rows, indexes, foreign keys and
    checks kept, with a partition for every month its rows cover and `AHEAD` more, and a
    DEFAULT one. The key becomes (pk, column) and an integer pk a bigint (history ids run
    out of 2³¹ in months at the growth target). No-op off PostgreSQL."""
    if schema_editor.connection.vendor != "postgresql":
        return
    old = f"{table}__plain"
    with schema_editor.connection.cursor() as cursor:
        _refuse_references(cursor, table)
        indexes, constraints, primary = _set_aside(cursor, table, old)
        # The old key's sequence (identity, or serial after a reverse) makes way for the
        # new one, which continues from the rows' highest id.
        sequence = f"{table}_{pk}_seq"
        cursor.execute(f'ALTER TABLE "{old}" ALTER COLUMN "{pk}" DROP IDENTITY IF EXISTS')
        cursor.execute(f'ALTER TABLE "{old}" ALTER COLUMN "{pk}" DROP DEFAULT')
        cursor.execute(f'DROP SEQUENCE IF EXISTS "{sequence}"')
        cursor.execute(
            f'CREATE TABLE "{table}" (LIKE "{old}" INCLUDING DEFAULTS, '
            f'CONSTRAINT "{primary}" PRIMARY KEY ("{pk}", "{column}")) '
            f'PARTITION BY RANGE ("{column}")'
        )
        cursor.execute(f'ALTER TABLE "{table}" ALTER COLUMN "{pk}" TYPE bigint')
        # Owned by the column, so Django's sequence resets (tests, loaddata) still find it.
        cursor.execute(f'CREATE SEQUENCE "{sequence}" OWNED BY "{table}"."{pk}"')
        cursor.execute(
            f'ALTER TABLE "{table}" ALTER COLUMN "{pk}" SET DEFAULT nextval(\'"{sequence}"\')'
        )
        cursor.execute(f'SELECT min("{column}") FROM "{old}"')
        (oldest,) = cursor.fetchone()
        current = month_start(datetime.now(UTC))
        first = month_start(oldest.astimezone(UTC)) if oldest else current
        months = (current.year - first.year) * 12 + current.month - first.month + 1 + AHEAD
        cursor.execute(f'CREATE TABLE "{table}_default" PARTITION OF "{table}" DEFAULT')
        for n in range(months):
            _create_month(cursor, table, add_months(first, n))
        # Rows first, indexes after: one sorted build per index instead of a row at a time.
        cursor.execute(f'INSERT INTO "{table}" SELECT * FROM "{old}"')
        _restore(cursor, table, indexes, constraints)
        cursor.execute(
            f'SELECT setval(%s, greatest((SELECT max("{pk}") FROM "{table}"), 1))', [sequence]
        )
        cursor.execute(f'DROP TABLE "{old}"')


def unpartition(schema_editor, table: str, column: str, pk: str) -> None:
    """The reverse: one plain table again, keyed by `pk` alone."""
    if schema_editor.connection.vendor != "postgresql":
        return
    old = f"{table}__partitioned"
    with schema_editor.connection.cursor() as cursor:
        indexes, constraints, primary = _set_aside(cursor, table, old)
        cursor.execute(
            f'CREATE TABLE "{table}" (LIKE "{old}" INCLUDING DEFAULTS, '
            f'CONSTRAINT "{primary}" PRIMARY KEY ("{pk}"))'
        )
        sequence = f"{table}_{pk}_seq"
        cursor.execute(f'ALTER SEQUENCE "{sequence}" OWNED BY "{table}"."{pk}"')
        cursor.execute(f'INSERT INTO "{table}" SELECT * FROM "{old}"')
        _restore(cursor, table, indexes, constraints)
        cursor.execute(f'DROP TABLE "{old}" CASCADE')


def monthly_partitions(tables: list[tuple[str, str, str]]) -> migrations.RunPython:
    """The migration operation: each (table, timestamp column, key) partitioned by month,
    and back to a plain table when reversed."""

    def forward(apps, schema_editor) -> None:
        for table, column, pk in tables:
            partition_by_month(schema_editor, table, column, pk)

    def backward(apps, schema_editor) -> None:
        for table, column, pk in tables:
            unpartition(schema_editor, table, column, pk)

    return migrations.RunPython(forward, backward, elidable=False)


def _set_aside(cursor, table: str, old: str) -> tuple[list, list, str]:
    """Rename `table` to `old` and free the names of its indexes and constraints (they are
    the schema's) for the table that replaces it; return their definitions."""
    indexes, constraints, primary = _definitions(cursor, table)
    cursor.execute(f'ALTER TABLE "{table}" RENAME TO "{old}"')
    for name, _definition in indexes:
        cursor.execute(f'DROP INDEX "{name}"')
    for name, _definition in constraints:
        cursor.execute(f'ALTER TABLE "{old}" DROP CONSTRAINT "{name}"')
    cursor.execute(f'ALTER TABLE "{old}" DROP CONSTRAINT "{primary}"')
    return indexes, constraints, primary


def _restore(cursor, table: str, indexes: list, constraints: list) -> None:
    # A partitioned table's index reads "ON ONLY"; on a plain table that means nothing.
    for _name, definition in indexes:
        cursor.execute(definition.replace(" ON ONLY ", " ON "))
    for name, definition in constraints:
        cursor.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}')


def _refuse_references(cursor, table: str) -> None:
    # A foreign key to a partitioned table must name its whole key; nothing points at these
    # logs, and a future one should be a decision, not a migration failing half-way.
    cursor.execute(
        "SELECT conname FROM pg_constraint WHERE confrelid = %s::regclass AND contype = 'f'",
        [table],
    )
    if cursor.fetchall():
        raise RuntimeError(f"{table} is referenced by a foreign key: it cannot be partitioned")


def _definitions(cursor, table: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]], str]:
    """The table's own indexes (CREATE statements), its foreign keys and checks, and the
    name of its primary key."""
    cursor.execute(
        """
        SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint
        WHERE conrelid = %s::regclass AND contype IN ('p', 'f', 'c', 'u')
        """,
        [table],
    )
    constraints, primary = [], ""
    for name, kind, definition in cursor.fetchall():
        if kind == "p":
            primary = name
        elif kind == "u":
            raise RuntimeError(f"{table} has a unique constraint without the partition key")
        else:
            constraints.append((name, definition))
    cursor.execute(
        """
        SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x
        JOIN pg_class i ON i.oid = x.indexrelid
        WHERE x.indrelid = %s::regclass AND NOT x.indisprimary
        """,
        [table],
    )
    return cursor.fetchall(), constraints, primary
