"""Hot reads of a fixed shape whose SQL the ORM builds once per process.

Building and compiling a queryset costs ~0.3–1.5 ms of Python per statement, most of what a
small read costs; the kiosk's taps and the operator panel's refreshes paid it on every request
(bench/README.md, "Seventh round"). A `CompiledRead` asks the ORM for its statement once per
database vendor and number of ids, with marker ids no row has, then runs that SQL with each
call's ids where the markers were. Rows become instances (`Model.from_db`, annotations as
attributes) or, for a `.values()` read, dicts — through the converters the ORM applies
(SQLite's dates and booleans). Every call still reads the database: only the text is kept.

The ids are ints, in the order the builder takes them; the builder scopes the read to a
tenant itself (its first id, by convention). Every other value is fixed when the statement is
built, so a builder must not read the clock or anything else that changes between calls.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable

from django.db import connection
from django.db.models import QuerySet
from django.db.models.query import ValuesIterable

# Ids no row has: where each call's ids go in the statement built for them.
MARK = -739_193_317


def _is_key(value: object) -> bool:
    """Whether a key column (a 64-bit integer) can hold `value`. One it cannot finds
    nothing, as in the ORM, instead of an error that would abort the caller's transaction."""
    return isinstance(value, int) and -(2**63) <= value < 2**63


TIMES = (datetime.date, datetime.time)


def _fixes_time(node) -> bool:
    """A filter (or a subquery's) compares with a date or time given when built. Looked for
    in the query, not in the parameters: SQLite's backend has made those strings by then."""
    if isinstance(getattr(node, "rhs", None), TIMES):
        return True
    inner = getattr(node, "query", None)
    if inner is not None and _fixes_time(inner.where):
        return True
    return any(_fixes_time(child) for child in getattr(node, "children", ()))


class CompiledRead:
    """`CompiledRead(build)` (or `@CompiledRead` on `build`): `read(*ids)` returns the rows of
    `build(*ids)`; `read.each([ids, ...])` the rows of several in one statement."""

    def __init__(self, build: Callable[..., QuerySet]) -> None:
        self.build = build
        self.__doc__ = build.__doc__
        self._statements: dict[tuple[str, int], tuple] = {}

    def __call__(self, *ids: int) -> list:
        if not all(_is_key(i) for i in ids):
            return []
        sql, slots, _converters, _shape = self._compiled(len(ids))
        params = [value if slot is None else ids[slot] for slot, value in slots]
        return self._run(sql, params, len(ids))

    def each(self, ids: list[tuple[int, ...]]) -> list[list]:
        """The read once for each tuple of `ids`, in one statement: a UNION ALL of its
        statement, each part a subquery (SQLite refuses a LIMIT in a compound's part). A
        part's rows come in no set order: the caller sorts them if it needs to."""
        if not ids:
            return []
        count = len(ids[0])
        # A part whose ids a key cannot hold reads for the markers: nothing.
        nowhere = tuple(MARK - k for k in range(count))
        ids = [one if all(_is_key(i) for i in one) else nowhere for one in ids]
        sql, slots, _converters, _shape = self._compiled(count)
        q = connection.ops.quote_name
        union = " UNION ALL ".join(
            f"SELECT {i} AS {q('part')}, * FROM ({sql}) AS {q(f'part{i}')}" for i in range(len(ids))
        )
        params = [value if slot is None else one[slot] for one in ids for slot, value in slots]
        parts: list[list] = [[] for _ in ids]
        for part, row in self._run(union, params, count, parted=True):
            parts[part].append(row)
        return parts

    def _compiled(self, count: int) -> tuple:
        key = (connection.vendor, count)
        return self._statements.get(key) or self._compile(key)

    def _compile(self, key: tuple[str, int]) -> tuple:
        marks = [MARK - k for k in range(key[1])]
        queryset = self.build(*marks)
        query = queryset.query
        if query.select_related or query.extra_select:
            raise ValueError(f"{self.build!r}: a compiled read makes one model's rows")
        compiler = query.get_compiler(connection=connection)
        sql, params = compiler.as_sql()
        slots = tuple((marks.index(v), None) if v in marks else (None, v) for v in params)
        # An id inlined into the text, or not used at all, would read for the marker (no row)
        # or for every tenant; a date fixed when built would be the first call's forever.
        if {slot for slot, _ in slots} - {None} != set(range(key[1])) or any(
            str(m) in sql for m in marks
        ):
            raise ValueError(f"{self.build!r}: every id must be a parameter of the statement")
        if _fixes_time(query.where) or any(isinstance(v, TIMES) for _, v in slots):
            raise ValueError(f"{self.build!r}: a compiled read must not fix a date or time")
        converters = compiler.get_converters([col for col, _sql, _alias in compiler.select])
        if queryset._iterable_class is ValuesIterable:
            shape = (dict, [*query.values_select, *query.annotation_select], [])
        else:
            # The model's columns first, then the annotations (SQLCompiler.get_select).
            names = [alias or col.target.attname for col, _sql, alias in compiler.select]
            split = len(names) - len(query.annotation_select)
            shape = (queryset.model, names[:split], names[split:])
        self._statements[key] = statement = (sql, slots, converters, shape)
        return statement

    def _run(self, sql: str, params: list, count: int, *, parted: bool = False) -> list:
        _sql, _slots, converters, (kind, names, annotated) = self._compiled(count)
        with connection.cursor() as cursor:
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
                made = kind.from_db(connection.alias, names, values[: len(names)])
                for name, value in zip(annotated, values[len(names) :], strict=True):
                    setattr(made, name, value)
            result.append((part, made) if parted else made)
        return result
