"""The live socket every screen extends: it joins the groups its screen may hear, greets with
their sequence numbers and forwards events (tickets/events.py numbers and sends them).

A client answers a `{"type": "ping"}` with nothing but a `pong`; nothing else it sends is
read. The database is reached only through `database_sync_to_async`.
"""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from tenants.models import Tenant
from tickets import events
from tickets.models import Service

ID = re.compile(r"[0-9]{1,18}")  # an id in a socket's query (query_ids)

# Close codes a client can tell apart (4000-4999 are the application's).
REFUSED = 4403
NOT_FOUND = 4404
# Its access ended while it was open (a device unpaired): static/js/live.js then stops
# reconnecting and reloads the page, whose own check sends it where it now belongs.
REVOKED = 4401


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
        # Bytes that are not UTF-8 (no browser sends them) become U+FFFD, which is no number
        # and no name: the socket is refused rather than crashed.
        raw = self.scope.get("query_string", b"").decode(errors="replace")
        values = parse_qs(raw).get(name)
        return values[0] if values else ""

    def query_ids(self, name: str) -> list[int] | None:
        """`?name=1,2` as ints; None when absent, [] when malformed (which refuses)."""
        raw = self.query(name)
        if not raw:
            return None
        parts = [part.strip() for part in raw.split(",") if part.strip()]
        # Ids as a URL writes them: ASCII digits, fewer than a bigint's. Anything else (a NUL,
        # "²", 5000 digits, a number no row has and SQLite cannot even bind) is malformed.
        if not all(ID.fullmatch(part) for part in parts):
            return []
        return sorted({int(part) for part in parts})


class NotFoundConsumer(AsyncWebsocketConsumer):
    """Every other path — a typo, a malformed token, a NUL — is refused like a stranger,
    instead of failing in the router with an error logged for each attempt."""

    async def connect(self) -> None:
        await self.close(code=NOT_FOUND)


def known_services(tenant: Tenant, wanted: list[int]) -> list[int] | None:
    """`wanted` when each is a service `tenant` has on sale (and there is one), else None."""
    ids = list(
        Service.objects.for_tenant(tenant)
        .sellable()
        .filter(pk__in=wanted)
        .values_list("pk", flat=True)
    )
    return ids if wanted and len(ids) == len(wanted) else None
