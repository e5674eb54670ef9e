"""The operator panel's socket: members of the tenant only.

With `?equipment=<id>` it joins the groups of the services that device runs, with
`?services=…` those services, else the whole tenant.
"""

from __future__ import annotations

from channels.db import database_sync_to_async

from equipment.models import Equipment
from tenants.access import role_in
from tenants.models import Tenant
from tickets import events
from tickets.live import LiveConsumer, known_services


@database_sync_to_async
def _panel_groups(slug: str, user, equipment_id: int | None, wanted: list[int] | None) -> list[str]:
    tenant = Tenant.objects.alive().filter(slug=slug, is_active=True).first()
    if tenant is None or role_in(user, tenant) is None:
        return []
    if equipment_id is not None:
        device = (
            Equipment.objects.for_tenant(tenant).service_devices().filter(pk=equipment_id).first()
        )
        if device is None:
            return []
        ids = list(device.services.alive().values_list("pk", flat=True))
        # A station that runs nothing yet still hears the tenant (it may be set up live).
        if not ids:
            return [events.tenant_group(tenant.id)]
        return [events.service_group(tenant.id, pk) for pk in ids]
    if wanted is None:
        return [events.tenant_group(tenant.id)]
    return [events.service_group(tenant.id, pk) for pk in known_services(tenant, wanted) or []]


class PanelConsumer(LiveConsumer):
    public = False  # members of the tenant see what the panel shows

    async def resolve(self) -> list[str]:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            return []
        equipment = self.query_ids("equipment")
        if equipment is not None and len(equipment) != 1:
            return []  # one station, or a malformed query
        return await _panel_groups(
            self.scope["url_route"]["kwargs"]["slug"],
            user,
            equipment[0] if equipment else None,
            self.query_ids("services"),
        )
