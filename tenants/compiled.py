"""Hot reads of a fixed shape whose SQL the ORM builds once per process.

Building and compiling a queryset costs ~0.3–1.5 ms of Python per statement, most of what a
small read costs; the kiosk's taps and the operator panel's refreshes paid it on every request
(bench/README.md, "Seventh round"). A `CompiledRead` asks the ORM for its statement once per
database vendor and shape of keys (how many, of which kinds), with marker keys no row has, then
runs that SQL with each call's keys where the markers were. Rows become instances
(`Model.from_db`, annotations as attributes, select_related()'s instances joined as the ORM
joins them) or, for a `.values()` read, dicts — through the converters the ORM applies
(SQLite's dates and booleans). Every call still reads the database: only the text is kept.

The keys are ids (ints), slugs (strings), or the datetimes and dates a read is bounded by
(start of the day…: the caller's clock, never the builder's), in the order the builder takes
them; the builder scopes the read to a tenant itself (its first key, by convention). Every other
value is fixed when the statement is built, so a builder must not read the clock or anything
else that changes between calls. A list of ids makes a statement per length: pad it
(`padded`) so that a few are built, not one per length.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable

from django.db import connection
from django.db.models import QuerySet
from django.db.models.query import ValuesIterable, get_related_populators

# Ids no row has (and slugs none has): where each call's keys go in the statement built for them.
MARK = -739_193_317


def _fits(key: object) -> bool:
    """Whether the database can take `key`: an id must fit a key column (64 bits). An id that
    cannot finds nothing, as in the ORM, instead of an error that would abort the caller's
    transaction (a URL's twenty digits)."""
    return not isinstance(key, int) or -(2**63) <= key < 2**63


TIMES = (datetime.date, datetime.time)
Key = int | str | datetime.date


def _marker(kind: type, k: int) -> Key:
    if kind is datetime.datetime:
        return datetime.datetime(1901, 2, 3, tzinfo=datetime.UTC) + datetime.timedelta(seconds=k)
    if kind is datetime.date:
        return datetime.date(1901, 2, 3) + datetime.timedelta(days=k)
    return kind(MARK - k)


def _adapter(kind: type) -> Callable | None:
    """How the backend passes a key of this kind (SQLite: dates and datetimes as text, the
    latter in UTC), as the ORM does for a date or datetime field's lookup."""
    if kind is datetime.datetime:
        return connection.ops.adapt_datetimefield_value
    if kind is datetime.date:
        return connection.ops.adapt_datefield_value
    return None


def _kinds(keys: tuple[Key, ...]) -> tuple[type, ...]:
    """What a statement is built for: how many keys, and of which kind each is."""
    return tuple(_kind(key) for key in keys)


def _kind(key: Key) -> type:
    # A datetime is a date too: asked first.
    for kind in (datetime.datetime, datetime.date, str):
        if isinstance(key, kind):
            return kind
    return int


def _fixes_time(node, marks: list) -> bool:
    """A filter (or a subquery's) compares with a date or time given when built, other than a
    marker. Looked for in the query, not in the parameters: SQLite's backend has made those
    strings by then."""
    rhs = getattr(node, "rhs", None)
    if isinstance(rhs, TIMES) and rhs not in marks:
        return True
    inner = getattr(node, "query", None)
    if inner is not None and _fixes_time(inner.where, marks):
        return True
    return any(_fixes_time(child, marks) for child in getattr(node, "children", ()))


def padded(ids: list[int], size: int = 32) -> list[int]:
    """`ids` and as many zeros (no row's id) as bring them to a multiple of `size`: a read
    over a list of ids is then one of a few statements, built once each."""
    return [*ids, *[0] * (-len(ids) % size)] if ids else [0] * size


class CompiledRead:
    """`CompiledRead(build)` (or `@CompiledRead` on `build`): `read(*keys)` returns the rows of
    `build(*keys)`; `read.each([keys, ...])` the rows of several in one statement."""

    def __init__(self, build: Callable[..., QuerySet], *, planned_per_call: bool = False) -> None:
        self.build = build
        self.__doc__ = build.__doc__
        # PostgreSQL plans a prepared statement once for any parameters (its generic plan)
        # when that looks no dearer than planning each call. For a read whose best plan
        # depends on how many rows its key has (one service's queue of 2,500 among thousands
        # of services, which average a few), that plan can be ~50 times slower; such a read
        # is never prepared, and planned at each call for its keys.
        self.planned_per_call = planned_per_call
        self._statements: dict[tuple[str, tuple[type, ...]], tuple] = {}

    def __call__(self, *keys: Key) -> list:
        if not all(_fits(key) for key in keys):
            return []
        kinds = _kinds(keys)
        sql, slots, adapters, _converters, _shape = self._compiled(kinds)
        params = _params(slots, adapters, keys)
        return self._run(sql, params, kinds)

    def each(self, keys: list[tuple[Key, ...]]) -> list[list]:
        """The read once for each tuple of `keys`, in one statement: a UNION ALL of its
        statement, each part a subquery (SQLite refuses a LIMIT in a compound's part). A
        part's rows come in no set order: the caller sorts them if it needs to."""
        if not keys:
            return []
        kinds = _kinds(keys[0])
        # A part whose keys the database cannot take reads for the markers: nothing.
        nowhere = tuple(_marker(kind, k) for k, kind in enumerate(kinds))
        keys = [one if all(_fits(key) for key in one) else nowhere for one in keys]
        sql, slots, adapters, _converters, _shape = self._compiled(kinds)
        q = connection.ops.quote_name
        union = " UNION ALL ".join(
            f"SELECT {i} AS {q('part')}, * FROM ({sql}) AS {q(f'part{i}')}"
            for i in range(len(keys))
        )
        params = [value for one in keys for value in _params(slots, adapters, one)]
        parts: list[list] = [[] for _ in keys]
        for part, row in self._run(union, params, kinds, parted=True):
            parts[part].append(row)
        return parts

    def _compiled(self, kinds: tuple[type, ...]) -> tuple:
        key = (connection.vendor, kinds)
        return self._statements.get(key) or self._compile(key)

    def _compile(self, key: tuple[str, tuple[type, ...]]) -> tuple:
        kinds = key[1]
        marks = [_marker(kind, k) for k, kind in enumerate(kinds)]
        adapters = tuple(_adapter(kind) for kind in kinds)
        # The markers as the backend passes them: where each key sits among the parameters.
        passed = [
            m if adapt is None else adapt(m) for m, adapt in zip(marks, adapters, strict=True)
        ]
        queryset = self.build(*marks)
        query = queryset.query
        if query.extra_select:
            raise ValueError(f"{self.build!r}: a compiled read takes no extra()")
        compiler = query.get_compiler(connection=connection)
        sql, params = compiler.as_sql()
        slots = tuple((passed.index(v), None) if v in passed else (None, v) for v in params)
        # A key inlined into the text, or not used at all, would read for the marker (no row)
        # or for every tenant; a date fixed when built would be the first call's forever.
        if {slot for slot, _ in slots} - {None} != set(range(len(marks))) or any(
            str(m) in sql for m in passed
        ):
            raise ValueError(f"{self.build!r}: every key must be a parameter of the statement")
        if _fixes_time(query.where, marks) or any(
            slot is None and isinstance(v, TIMES) for slot, v in slots
        ):
            raise ValueError(f"{self.build!r}: a compiled read must not fix a date or time")
        converters = compiler.get_converters([col for col, _sql, _alias in compiler.select])
        if queryset._iterable_class is ValuesIterable:
            shape = (dict, [*query.values_select, *query.annotation_select], (), ())
        else:
            # Where the model's columns and each annotation are (SQLCompiler.get_select), and
            # the instances select_related() joins, made as the ORM makes them (ModelIterable).
            info = compiler.klass_info
            first, last = info["select_fields"][0], info["select_fields"][-1] + 1
            names = [col.target.attname for col, _sql, _alias in compiler.select[first:last]]
            joined = (info, compiler.select, queryset._fetch_mode) if query.select_related else ()
            shape = (
                (queryset.model, first, last),
                names,
                tuple(compiler.annotation_col_map.items()),
                joined,
            )
        self._statements[key] = statement = (sql, slots, adapters, converters, shape)
        return statement

    def _run(self, sql: str, params: list, kinds: tuple, *, parted: bool = False) -> list:
        _sql, _slots, _adapters, converters, (kind, names, annotated, joined) = self._compiled(
            kinds
        )
        # Made for each call: a populator may keep what it made (a fetch mode's peers).
        related = get_related_populators(*joined[:2], connection.alias, joined[2]) if joined else []
        with connection.cursor() as cursor:
            if self.planned_per_call and connection.vendor == "postgresql":
                raw = connection.connection
                threshold, raw.prepare_threshold = raw.prepare_threshold, None
                try:
                    cursor.execute(sql, params)
                finally:
                    raw.prepare_threshold = threshold
            else:
                cursor.execute(sql, params)
            rows = cursor.fetchall()
        result: list = []
        for row in rows:
            # A part's number first, in a union (`each`).
            part, values = (row[0], list(row[1:])) if parted else (None, list(row))
            for i, (functions, expression) in converters.items():
                for convert in functions:
                    values[i] = convert(values[i], expression, connection)
            if kind is dict:
                made = dict(zip(names, values, strict=True))
            else:
                model, first, last = kind
                made = model.from_db(connection.alias, names, values[first:last])
                for populator in related:
                    populator.populate(values, made)
                for name, at in annotated:
                    setattr(made, name, values[at])
            result.append((part, made) if parted else made)
        return result


def _params(slots: tuple, adapters: tuple, keys: tuple[Key, ...]) -> list:
    passed = [
        key if adapt is None else adapt(key) for key, adapt in zip(keys, adapters, strict=True)
    ]
    return [value if slot is None else passed[slot] for slot, value in slots]
