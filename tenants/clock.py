"""A moment as a tenant's own clock showed it.

The server runs in São Paulo's zone, but a studio in Manaus reads its tickets, payments and
audit log at Manaus time: every admin column, page and label that shows a moment of a
tenant's row goes through `local_time`.
"""

from __future__ import annotations

import zoneinfo
from datetime import datetime
from typing import Protocol

from django.utils import timezone
from django.utils.formats import date_format

EMPTY = "—"


class Zoned(Protocol):
    """A Tenant, as far as this module needs one (tenants.models imports this module)."""

    @property
    def tzinfo(self) -> zoneinfo.ZoneInfo: ...


def local_time(value: datetime | None, tenant: Zoned | None = None) -> str:
    """ "01/12/2026 15:04" in the tenant's zone (the active zone without a tenant); a dash
    when there is no moment."""
    if value is None:
        return EMPTY
    zone = tenant.tzinfo if tenant is not None else None
    return date_format(timezone.localtime(value, zone), "SHORT_DATETIME_FORMAT")
