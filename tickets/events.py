"""Real-time events: built by the domain functions, sent after their transaction commits.

Every event goes to the tenant's group and, when it concerns a service, to that service's
group, so a display or a station receives only what concerns it. The database stays the
source of truth: a broadcast that fails is logged, never raised, and screens re-read their
state when they reconnect.
"""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.utils import timezone

log = logging.getLogger(__name__)

EVENT_TYPES = (
    "queue_update",
    "ticket_update",
    "ticket_called",
    "service_called",
    "service_started",
    "payment_update",
    "equipment_update",
)


def tenant_group(tenant_id: int) -> str:
    return f"tenant.{tenant_id}"


def service_group(tenant_id: int, service_id: int) -> str:
    return f"tenant.{tenant_id}.service.{service_id}"


def ticket_group(token: str) -> str:
    return f"ticket.{token}"


def event_payload(kind: str, *, tenant_id: int, ticket=None, line=None, **data) -> dict:
    """Small JSON: type, tenant, ticket id and number, service, device, status and time."""
    payload: dict = {"type": kind, "tenant": tenant_id, "at": timezone.now().isoformat()}
    if ticket is not None:
        payload.update(ticket_id=ticket.id, number=ticket.number, ticket_status=ticket.status)
    if line is not None:
        payload.update(line_id=line.id, service_id=line.service_id, status=line.status)
        if line.equipment_id:
            payload["equipment_id"] = line.equipment_id
    payload.update(data)
    return payload


def publish(kind: str, *, tenant_id: int, ticket=None, line=None, token: str = "", **data) -> None:
    """Queue an event to be broadcast once the surrounding transaction commits."""
    assert kind in EVENT_TYPES, kind
    payload = event_payload(kind, tenant_id=tenant_id, ticket=ticket, line=line, **data)
    groups = [tenant_group(tenant_id)]
    if payload.get("service_id"):
        groups.append(service_group(tenant_id, payload["service_id"]))
    if token or ticket is not None:
        groups.append(ticket_group(token or ticket.token))
    transaction.on_commit(lambda: _send(groups, payload))


def _send(groups: list[str], payload: dict) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        for group in groups:
            async_to_sync(layer.group_send)(group, {"type": "event", "event": payload})
    except Exception:  # noqa: BLE001 — a broadcast must never undo or fail a committed change
        log.exception("broadcast of %s failed; screens will catch up on reconnect", payload["type"])
