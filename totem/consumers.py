"""WebSocket consumers: thin, they join groups at connect and forward events.

Three sockets, one per kind of screen:

- `ws/t/<slug>/display/` — the public display: read-only, no login, but only from a browser
  paired as one of the tenant's displays (`totem.access.display_device`). Joins the groups of
  `?services=1,2`, else of the services set on that display device in admin, else the
  tenant's group.
- `ws/t/<slug>/panel/` — the operator panel: members of the tenant only. With `?equipment=<id>`
  it joins the groups of the services that device runs, with `?services=…` those services,
  else the whole tenant.
- `ws/t/<slug>/senha/<token>/` — one ticket, by its unguessable token: the ticket's group and
  the groups of its services (others moving in those queues change its position).

Each socket first sends `{"type": "hello", "seqs": {group: last number}}`, then every event.
A client answers a `{"type": "ping"}` with nothing but a `pong`; nothing else it sends is
read. The database is reached only through `database_sync_to_async`.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from equipment.models import Equipment
from tenants.access import role_in
from tenants.models import Tenant
from tickets import events
from tickets.models import Service, Ticket
from totem.access import display_device, display_services

# Close codes a client can tell apart (4000-4999 are the application's).
REFUSED = 4403
NOT_FOUND = 4404


class LiveConsumer(AsyncWebsocketConsumer):
    """Join the groups `resolve` names, greet with their sequence numbers, forward events."""

    public = True  # strip events to `events.PUBLIC_FIELDS`

    async def connect(self) -> None:
        self.joined: list[str] = []
        groups = await self.resolve()
        if not groups:
            # Before accept: the handshake is refused (HTTP 403), nothing is sent.
            await self.close(code=REFUSED)
            return
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)
        self.joined = groups
        await self.accept()
        # Read after joining: whatever is numbered later reaches this socket.
        seqs = await sync_to_async(events.current_sequences, thread_sensitive=False)(groups)
        await self.send(text_data=json.dumps({"type": "hello", "seqs": seqs}))

    async def resolve(self) -> list[str]:
        """The groups this socket may join, or [] to refuse it."""
        raise NotImplementedError

    async def disconnect(self, code: int) -> None:
        for group in self.joined:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data and '"ping"' in text_data:
            await self.send(text_data='{"type": "pong"}')

    async def event(self, message: dict) -> None:
        payload = message["event"]
        if self.public:
            payload = events.public(payload)
        await self.send(text_data=json.dumps(payload))

    # --- helpers ------------------------------------------------------------------------

    def query(self, name: str) -> str:
        values = parse_qs(self.scope.get("query_string", b"").decode()).get(name)
        return values[0] if values else ""

    def query_ids(self, name: str) -> list[int] | None:
        """`?name=1,2` as ints; None when absent, [] when malformed (which refuses)."""
        raw = self.query(name)
        if not raw:
            return None
        try:
            return sorted({int(part) for part in raw.split(",") if part.strip()})
        except ValueError:
            return []


@database_sync_to_async
def _display(slug: str, cookies: dict) -> tuple[Tenant, list[int]] | None:
    """The tenant and the services its paired display is set to show ([] for all), or None."""
    tenant = Tenant.objects.alive().filter(slug=slug, is_active=True).first()
    device = tenant and display_device(tenant, cookies)
    if not device:
        return None
    return tenant, display_services(device)


def _known_services(tenant: Tenant, wanted: list[int]) -> list[int] | None:
    """`wanted` when each is a service `tenant` has on sale (and there is one), else None."""
    ids = list(
        Service.objects.for_tenant(tenant)
        .sellable()
        .filter(pk__in=wanted)
        .values_list("pk", flat=True)
    )
    return ids if wanted and len(ids) == len(wanted) else None


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
        ids = await database_sync_to_async(_known_services)(tenant, wanted)
        return [events.service_group(tenant.id, pk) for pk in ids or []]


@database_sync_to_async
def _panel_groups(slug: str, user, equipment_id: str, wanted: list[int] | None) -> list[str]:
    tenant = Tenant.objects.alive().filter(slug=slug, is_active=True).first()
    if tenant is None or role_in(user, tenant) is None:
        return []
    if equipment_id:
        device = (
            Equipment.objects.for_tenant(tenant)
            .service_devices()
            .filter(pk=int(equipment_id) if equipment_id.isdigit() else 0)
            .first()
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
    return [events.service_group(tenant.id, pk) for pk in _known_services(tenant, wanted) or []]


class PanelConsumer(LiveConsumer):
    public = False  # members of the tenant see what the panel shows

    async def resolve(self) -> list[str]:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            return []
        return await _panel_groups(
            self.scope["url_route"]["kwargs"]["slug"],
            user,
            self.query("equipment"),
            self.query_ids("services"),
        )


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
