"""Cursor pagination: `limit` and the `next_cursor` of the page before, as Stripe's lists.

The cursor is the last row's values of the list's ORDER BY (keyset pagination): a page
costs the same deep in the list as at its start, and rows added meanwhile never shift a
page. It is opaque to clients (base64 of JSON); a cursor from another list or a damaged
one is refused with 400.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _

from api.problems import ApiError

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


def _encode(values: list) -> str:
    raw = json.dumps([v.isoformat() if isinstance(v, datetime) else v for v in values])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode(cursor: str, fields: list[models.Field]) -> list:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(values, list) or len(values) != len(fields):
            raise ValueError("not this list's cursor")
        decoded = []
        for field, value in zip(fields, values, strict=True):
            if isinstance(field, models.DateTimeField):
                value = datetime.fromisoformat(value)
                if value.tzinfo is None:
                    raise ValueError("naive time")
            else:
                value = field.to_python(value)
            # What the database would refuse with an error rather than a row: past a bigint,
            # a NUL in text (PostgreSQL).
            if isinstance(value, int) and abs(value) >= 2**63:
                raise ValueError("out of range")
            if isinstance(value, str) and "\x00" in value:
                raise ValueError("NUL")
            decoded.append(value)
        return decoded
    except (ValueError, TypeError, binascii.Error, ValidationError):
        raise ApiError("invalid_cursor", _("This cursor is not one this list gave.")) from None


def _after(ordering: list[str], values: list) -> Q:
    """Rows after `values` in `ordering` ("-field" descending): (a > x) or (a = x and b > y)…"""
    after = Q(pk__in=[])
    for i, name in enumerate(ordering):
        field = name.lstrip("-")
        step = Q(**{f"{field}__{'lt' if name.startswith('-') else 'gt'}": values[i]})
        for earlier, value in zip(ordering[:i], values[:i], strict=True):
            step &= Q(**{earlier.lstrip("-"): value})
        after |= step
    return after


def page(
    queryset: QuerySet,
    ordering: list[str],
    *,
    cursor: str | None,
    limit: int,
    render: Callable,
) -> dict:
    """One page of `queryset` in `ordering` (which ends with a unique field, e.g. "id")."""
    model = queryset.model
    fields = [model._meta.get_field(name.lstrip("-")) for name in ordering]
    queryset = queryset.order_by(*ordering)
    if cursor:
        queryset = queryset.filter(_after(ordering, _decode(cursor, fields)))
    rows = list(queryset[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = None
    if more:
        last = rows[-1]
        next_cursor = _encode([getattr(last, f.attname) for f in fields])
    return {
        "object": "list",
        "data": [render(row) for row in rows],
        "has_more": more,
        "next_cursor": next_cursor,
    }
