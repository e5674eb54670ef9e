"""The sockets of the public screens: thin, they join groups at connect and forward events.

Two sockets here (the operator panel's is panel/consumers.py; all extend tickets.live):

- `ws/t/<slug>/display/` — the public display: read-only, no login, but only from a browser
  paired as one of the tenant's displays (`totem.access.display_device`). Joins the groups of
  `?services=1,2`, else of the services set on that display device in admin, else the
  tenant's group.
- `ws/t/<slug>/senha/<token>/` — one ticket, by its unguessable token: the ticket's group and
  the groups of its services (others moving in those queues change its position).

Each socket first sends `{"type": "hello", "seqs": {group: last number}}`, then every event.

A display socket lives only as long as its pairing. It also joins its device's group
(`events.device_group`), where revoking a pairing or deleting the device sends
`device.changed` after commit: the socket re-checks its cookie at once (one query) and, no
longer paired, closes with `REVOKED` — the TV's page then reloads into the pairing screen.
That message is lost when Redis is down at that moment, so each socket also re-checks every
`DEVICE_RECHECK_SECONDS` (spread at random, so displays that reconnected together do not
query together): the bound on a revoked display's socket whatever happens, and the only path
for what sends no message (a tenant switched off). A database that does not answer keeps the
socket open: an outage must not blank every TV.
"""

from __future__ import annotations

import asyncio
import random

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import DatabaseError, InterfaceError

from tenants.models import Tenant
from tickets import events
from tickets.live import REVOKED, LiveConsumer, known_services
from tickets.models import Ticket
from totem.access import display_device, display_services


@database_sync_to_async
def _display(slug: str, cookies: dict) -> tuple[Tenant, int, list[int]] | None:
    """The tenant, its display these cookies were paired as and the services that display is
    set to show ([] for all), or None."""
    tenant = Tenant.objects.alive().filter(slug=slug, is_active=True).first()
    device = tenant and display_device(tenant, cookies)
    if not device:
        return None
    return tenant, device.pk, display_services(device)


class DisplayConsumer(LiveConsumer):
    async def connect(self) -> None:
        self.tenant: Tenant | None = None
        self.rechecking: asyncio.Task | None = None
        self.revoked = False
        await super().connect()
        if not self.joined:
            return  # refused
        # Joined after the check at connect: a revoke in between is caught by the re-check.
        group = events.device_group(self.device_id)
        await self.channel_layer.group_add(group, self.channel_name)
        self.joined.append(group)
        self.rechecking = asyncio.create_task(self._recheck_every(settings.DEVICE_RECHECK_SECONDS))

    async def disconnect(self, code: int) -> None:
        if self.rechecking is not None:
            self.rechecking.cancel()
        await super().disconnect(code)

    async def device_changed(self, message: dict) -> None:
        await self.recheck()

    async def recheck(self) -> bool:
        """Close the socket unless its browser is still paired as this display; True if closed."""
        if self.revoked:
            return True
        try:
            device = await database_sync_to_async(display_device)(
                self.tenant, self.scope.get("cookies", {})
            )
        except (DatabaseError, InterfaceError):
            return False  # the next check decides; the outage is reported where it is handled
        if device is None and not self.revoked:  # not closed meanwhile by the other path
            self.revoked = True
            await self.close(code=REVOKED)
        return self.revoked

    async def _recheck_every(self, seconds: float) -> None:
        await asyncio.sleep(seconds * random.uniform(0.5, 1))
        while not await self.recheck():
            await asyncio.sleep(seconds)

    async def resolve(self) -> list[str]:
        found = await _display(
            self.scope["url_route"]["kwargs"]["slug"], self.scope.get("cookies", {})
        )
        if found is None:
            return []
        tenant, self.device_id, device_services = found
        self.tenant = tenant
        wanted = self.query_ids("services")
        if wanted is None and device_services:
            return [events.service_group(tenant.id, pk) for pk in device_services]
        if wanted is None:
            return [events.tenant_group(tenant.id)]
        ids = await database_sync_to_async(known_services)(tenant, wanted)
        return [events.service_group(tenant.id, pk) for pk in ids or []]


def ticket_socket_path(ticket: Ticket) -> str:
    """Where a screen following one ticket opens its socket (config/routing.py): the phone's
    page and the kiosk's payment screen alike."""
    return f"/ws/t/{ticket.tenant.slug}/senha/{ticket.token}/"


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
        return await _ticket_groups(kwargs["slug"], kwargs["token"])
