"""The sockets of the public screens: thin, they join groups at connect and forward events.

Two sockets here (the operator panel's is panel/consumers.py; all extend tickets.live):

- `ws/t/<slug>/display/` — the public display: read-only, no login, but only from a browser
  paired as one of the tenant's displays (`totem.access.display_device`). Joins the groups of
  `?services=1,2`, else of the services set on that display device in admin, else the
  tenant's group.
- `ws/t/<slug>/senha/<token>/` — one ticket, by its unguessable token: the ticket's group and
  the groups of its services (others moving in those queues change its position).

Each socket first sends `{"type": "hello", "seqs": {group: last number}}`, then every event.
"""

from __future__ import annotations

from channels.db import database_sync_to_async

from tenants.models import Tenant
from tickets import events
from tickets.live import LiveConsumer, known_services
from tickets.models import Ticket
from totem.access import display_device, display_services


@database_sync_to_async
def _display(slug: str, cookies: dict) -> tuple[Tenant, list[int]] | None:
    """The tenant and the services its paired display is set to show ([] for all), or None."""
    tenant = Tenant.objects.alive().filter(slug=slug, is_active=True).first()
    device = tenant and display_device(tenant, cookies)
    if not device:
        return None
    return tenant, display_services(device)


class DisplayConsumer(LiveConsumer):
    async def resolve(self) -> list[str]:
        found = await _display(
            self.scope["url_route"]["kwargs"]["slug"], self.scope.get("cookies", {})
        )
        if found is None:
            return []
        tenant, device_services = found
        wanted = self.query_ids("services")
        if wanted is None and device_services:
            return [events.service_group(tenant.id, pk) for pk in device_services]
        if wanted is None:
            return [events.tenant_group(tenant.id)]
        ids = await database_sync_to_async(known_services)(tenant, wanted)
        return [events.service_group(tenant.id, pk) for pk in ids or []]


@database_sync_to_async
def _ticket_groups(slug: str, token: str) -> list[str]:
    ticket = (
        Ticket.objects.filter(
            token=token, tenant__slug=slug, tenant__is_active=True, tenant__deleted_at=None
        )
        .only("id", "tenant_id", "token")
        .first()
    )
    if ticket is None:
        return []
    service_ids = sorted(set(ticket.lines.values_list("service_id", flat=True)))
    return [events.ticket_group(ticket.token)] + [
        events.service_group(ticket.tenant_id, pk) for pk in service_ids
    ]


class TicketConsumer(LiveConsumer):
    async def resolve(self) -> list[str]:
        kwargs = self.scope["url_route"]["kwargs"]
        token = kwargs["token"]
        if not 16 <= len(token) <= 40:
            return []
        return await _ticket_groups(kwargs["slug"], token)
