"""What outgoing webhooks say about tickets and their lines (tenants/webhooks.py sends them)."""

from __future__ import annotations

from equipment.models import Equipment
from tickets.models import Ticket, TicketLine


def ticket_payload(ticket: Ticket) -> dict:
    """What a receiver learns of a ticket: no name, CPF or phone (they are the studio's to
    share, not the integration's)."""
    return {
        "ticket_id": ticket.pk,
        "number": ticket.number,
        "day": ticket.day,
        "status": ticket.status,
        "priority": ticket.priority,
        "total": ticket.total,
        "created_at": ticket.created_at,
        "services": [
            {"line_id": line.pk, "service_id": line.service_id, "status": line.status}
            for line in ticket.lines.all()
        ],
    }


def line_payload(line: TicketLine, device: Equipment | None = None) -> dict:
    device = device or line.equipment
    return {
        "ticket_id": line.ticket_id,
        "number": line.ticket.number,
        "line_id": line.pk,
        "service_id": line.service_id,
        "service": line.service.name,
        "status": line.status,
        "equipment_id": device.pk if device else None,
        "equipment": device.name if device else None,
        "call_count": line.call_count,
        "called_at": line.called_at,
    }
