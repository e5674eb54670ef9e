"""Who may watch a tenant's public display: one answer for its page, its state and its socket.

A browser may when it is paired as one of the tenant's display devices (a one-time code typed
on the TV, then a signed cookie: totem/pairing.py). Pages use `device_required(Kind.DISPLAY)`
from there; the socket asks `display_device` with the cookies of its scope. Both end in
`paired_device_from_cookies`, so revoking a pairing in admin stops the page and the socket.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.db.models import Exists, OuterRef

from equipment.models import Equipment, Kind
from tenants.models import Tenant
from tickets.models import Service
from totem.pairing import paired_device_from_cookies


def display_device(tenant: Tenant, cookies: Mapping[str, str]) -> Equipment | None:
    """The display device of `tenant` these cookies were paired as, or None (blocking: DB)."""
    if not tenant.is_active or tenant.deleted_at is not None:
        return None
    return paired_device_from_cookies(cookies, tenant, Kind.DISPLAY)


def display_services(device: Equipment) -> list[int]:
    """The services a display device is set to show, among those on sale ([]: all of them).

    The display page and its socket both ask here (the page through `shown_on`, folded into
    its read of the services), so the board and the events it listens to are about the same
    services.
    """
    return list(Service.objects.sellable().filter(shown_on(device)).values_list("pk", flat=True))


def shown_on(device: Equipment) -> Exists:
    """Of a Service row: whether display `device` is set to show that service."""
    through = Equipment.services.through
    return Exists(through.objects.filter(equipment_id=device.pk, service_id=OuterRef("pk")))
