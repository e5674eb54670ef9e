"""The ticket's page as the customer's companion away from the room: "estou chegando" (the panel
shows them on the way) and "desisti" (their place goes to the next customer)."""

from __future__ import annotations

from django.db import transaction
from django.utils.translation import gettext as _

from messaging.models import Arrival
from tenants.errors import DomainError
from tickets import queue
from tickets.models import LineStatus, Ticket, TicketStatus

# A ticket whose customer may still be on the way or give up: in the queue, some service open.
LIVE = (TicketStatus.IN_QUEUE, TicketStatus.CALLED, TicketStatus.EXPIRED)
GIVE_UP_LINES = (LineStatus.WAITING, LineStatus.CALLED, LineStatus.NO_SHOW)


def may_act(ticket: Ticket) -> bool:
    return ticket.status in LIVE


def on_my_way(ticket: Ticket) -> Arrival:
    """Record "estou chegando" (repeat-safe)."""
    if not may_act(ticket):
        raise DomainError(_("Your ticket is not in the queue."))
    arrival, _created = Arrival.objects.get_or_create(
        ticket=ticket, defaults={"tenant_id": ticket.tenant_id}
    )
    return arrival


def give_up(ticket: Ticket) -> int:
    """Leave the queue: every service not yet started is cancelled, with the reason in its
    history, and its place goes to the next customer. A service in progress is left to the
    operator. The number of services cancelled (0: nothing was left to give up).

    Money is not this page's business: the front desk refunds by the studio's policy."""
    if not may_act(ticket):
        raise DomainError(_("Your ticket is not in the queue."))
    reason = _("The customer gave up on the ticket's page.")
    cancelled = 0
    with transaction.atomic():
        for line_id in ticket.lines.filter(status__in=GIVE_UP_LINES).values_list("pk", flat=True):
            queue.cancel_line(ticket.tenant, line_id, reason=reason)
            cancelled += 1
    return cancelled
