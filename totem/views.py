"""The public screens that follow the queue live: the TV display and a ticket's own page.

The display is for browsers paired as one of the tenant's displays (a code typed once on the
TV: totem/pairing.py); a ticket's page needs only its unguessable token. Both render
server-side and re-read themselves through a partial (`display/state/`, or the
ticket page asked by HTMX) when their socket says something changed, reconnects, or loses an
event (totem/consumers.py, static/js/live.js).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from equipment.models import DeviceState, Equipment, Kind, announced_as
from messaging.companion import may_act
from messaging.feedback import SCALE, asks_feedback, lines_to_score
from messaging.models import Arrival, Feedback
from messaging.optin import live_subscription
from payments.models import Method, SessionStatus
from payments.receipts import receipt_url, receipts_of
from payments.sessions import session_for_ticket
from tenants.access import get_tenant
from tenants.compiled import CompiledRead
from tenants.models import Tenant
from tickets import credits, devices
from tickets.models import LineStatus, Service, Ticket, TicketLine, TicketStatus
from tickets.queue import place_of, waiting_now
from totem.access import shown_on
from totem.consumers import ticket_socket_path
from totem.models import DisplaySlide
from totem.pairing import device_required

# Enough rows to fill the sidebar of a tall portrait TV; the page shows those that fit.
CURRENT_CALLS = 12
LAST_CALLS = 20
# How long the newest call holds the stage before the tenant's slides come back (it stays in
# "Calling now" until the customer is served), and how long each slide shows.
CALL_ON_STAGE_SECONDS = 30
SLIDE_SECONDS = 10


# The display's reads, on every re-read of the board (after every call of the day, on every
# TV): each compiled once per process (tenants/compiled.py), its keys the tenant first; the
# ORM built and compiled them on every request (~5 ms of its ~9 ms of Python, bench/README.md
# "Eighth round").
_SERVICES = CompiledRead(
    lambda tenant_id, device_id: (
        Service.objects.filter(tenant_id=tenant_id)
        .sellable()
        .annotate(shown=shown_on(Equipment(pk=device_id)), waiting=waiting_now())
        .order_by("display_order", "name")
    ),
)


def _chosen_services(request: HttpRequest, tenant: Tenant) -> list[Service] | None:
    """The services this display shows, each with its lines waiting now (`waiting`):
    `?services=1,2`, else those set on the paired device, else all sellable ones; None when
    the query names unknown services."""
    services = _SERVICES(tenant.pk, request.device.pk)
    raw = request.GET.get("services", "")
    if not raw:
        # A display device set in admin to some services shows those (a screen per area).
        own = [service for service in services if service.shown]
        return own or services
    try:
        wanted = {int(part) for part in raw.split(",") if part.strip()}
    except ValueError:
        return None
    chosen = [service for service in services if service.id in wanted]
    return chosen if chosen and len(chosen) == len(wanted) else None


def slides_for(tenant: Tenant, device: Equipment) -> list[DisplaySlide]:
    """The active slides of the device's tenant meant for it (none chosen: every display)."""
    return _SLIDES(tenant.pk, device.pk)


_SLIDES = CompiledRead(
    lambda tenant_id, device_id: (
        DisplaySlide.objects.filter(tenant_id=tenant_id, active=True)
        .filter(Q(displays=None) | Q(displays=device_id))
        .distinct()
    ),
)


def board(tenant: Tenant, services: list[Service], device: Equipment) -> dict:
    """What the display shows: calls now, the last calls of the day, queue length per service
    (`services` as `_chosen_services` reads them), and the tenant's slides for between calls.

    Only numbers, services and rooms: nothing about the person.
    """
    now = timezone.now()
    current, last = todays_calls(tenant, services, now)
    return {
        "current": current,
        "last": last,
        "queues": services,
        "slides": slides_for(tenant, device),
        "rooms": timed_rooms(tenant, services, now),
        "now": now,
    }


@dataclass(frozen=True)
class Call:
    """A line called today as the TV shows it: only numbers, services and rooms."""

    id: int
    number: str
    service: str
    room: str
    call_count: int
    # Seconds since the call, by the server's clock: a display that missed the event (a
    # Wi-Fi blip, a lost message) still announces a call this recent when it re-reads.
    age: int


@CompiledRead
def _calls(tenant_id: int, start_of_day: datetime, *service_ids: int):
    """`todays_calls`' rows: the day's lines called now, and its newest calls."""
    today = TicketLine.objects.filter(
        tenant_id=tenant_id, service__in=service_ids, called_at__gte=start_of_day
    )
    newest = today.order_by("-called_at", "-pk").values("pk")[: CURRENT_CALLS + LAST_CALLS]
    return (
        today.filter(Q(status=LineStatus.CALLED) | Q(pk__in=newest))
        .order_by("-called_at", "-pk")
        .values(
            "pk",
            "status",
            "called_at",
            "call_count",
            "ticket__number",
            "service_id",
            "equipment__location",
            "equipment__name",
        )
    )


def todays_calls(
    tenant: Tenant, services: list[Service], now: datetime
) -> tuple[list[Call], list[Call]]:
    """The calls on now (newest first, CURRENT_CALLS at most) and the day's other calls
    (LAST_CALLS at most), in one query: the day's lines called now, and its newest
    CURRENT_CALLS + LAST_CALLS calls, among which the newest LAST_CALLS of the others always
    are. Plain values of the few columns shown: the board is re-read after every event, and
    model instances of the line, ticket, service and device cost twice the time."""
    if not services:
        return [], []
    start_of_day = tenant.start_of_today()
    names = {service.id: service.name for service in services}
    current, last = [], []
    for row in _calls(tenant.pk, start_of_day, *(service.pk for service in services)):
        device = row["equipment__name"]
        on_now = row["status"] == LineStatus.CALLED and len(current) < CURRENT_CALLS
        (current if on_now else last).append(
            Call(
                id=row["pk"],
                number=row["ticket__number"],
                service=names[row["service_id"]],
                room=announced_as(row["equipment__location"], device) if device else "",
                call_count=row["call_count"],
                age=int((now - row["called_at"]).total_seconds()),
            )
        )
    return current, last[:LAST_CALLS]


_ROOMS = CompiledRead(
    lambda tenant_id, *service_ids: (
        Equipment.objects.service_devices()
        .filter(tenant_id=tenant_id, shows_timer_on_display=True, services__in=service_ids)
        .distinct()
        .order_by("location", "name")
    ),
)


def timed_rooms(tenant: Tenant, services: list[Service], now) -> list[devices.DeviceNow]:
    """The rooms whose session the studio shows on the TV (`shows_timer_on_display`) that
    are in a session or cooling down: those waiting see when it frees up. No one is named."""
    rooms = _ROOMS(tenant.pk, *(service.pk for service in services)) if services else []
    for room in rooms:
        room.tenant = tenant  # for the maintenance window; joining it cost ~0.5 ms per state
    return [
        room
        for room in devices.states(rooms, now)
        if room.ends_at or room.state == DeviceState.COOLING
    ]


@require_GET
@device_required(Kind.DISPLAY)
def display(request: HttpRequest, slug: str) -> HttpResponse:
    tenant = request.tenant
    services = _chosen_services(request, tenant)
    if services is None:
        return HttpResponseBadRequest(_("Unknown services for this display."))
    query = request.GET.get("services", "")
    suffix = f"?services={','.join(str(s.id) for s in services)}" if query else ""
    config = {
        "socket": f"/ws/t/{tenant.slug}/display/{suffix}",
        "state": reverse("display_state", args=[tenant.slug]) + suffix,
        "timezone": tenant.timezone,
        "lang": "pt-BR",
        # The spoken call; {number} is spelled out letter by letter ("C 0 2 7") for the
        # voice and shown as people read it ("C027") in the caption.
        "phrase": _("Ticket {number}, {service}, {room}"),
        "stage_seconds": CALL_ON_STAGE_SECONDS,
        "slide_seconds": SLIDE_SECONDS,
    }
    return render(
        request,
        "totem/display.html",
        {"tenant": tenant, "config": config, **board(tenant, services, request.device)},
    )


@require_GET
@device_required(Kind.DISPLAY)
def display_state(request: HttpRequest, slug: str) -> HttpResponse:
    tenant = request.tenant
    services = _chosen_services(request, tenant)
    if services is None:
        return HttpResponseBadRequest(_("Unknown services for this display."))
    response = render(request, "totem/display.html#state", board(tenant, services, request.device))
    response["Cache-Control"] = "no-store"
    return response


@require_GET
def ticket_status(request: HttpRequest, slug: str, token: str) -> HttpResponse:
    """A ticket's live page, reached from the QR code printed on it (the token is the key)."""
    tenant = get_tenant(slug)
    ticket = get_object_or_404(Ticket.objects.for_tenant(tenant), token=token)
    ticket.tenant = tenant  # found in it: the socket's and receipt's addresses read no more
    lines = list(ticket.lines.select_related("service", "equipment").order_by("position", "id"))
    rows = [{"line": line, "place": place_of(line)} for line in lines]
    unpaid = ticket.status == TicketStatus.PENDING_PAYMENT
    session = session_for_ticket(ticket) if unpaid else None
    # A free ticket (R$ 0,00) has no payment and so no receipt.
    has_receipt = not unpaid and receipts_of(ticket).exists()
    context = {
        "tenant": tenant,
        "ticket": ticket,
        "rows": rows,
        "called": [line for line in lines if line.status == LineStatus.CALLED],
        "unpaid": unpaid,
        "receipt_url": receipt_url(ticket) if has_receipt else "",
        "balances": credits.balances(ticket.customer),
        "whatsapp": live_subscription(ticket),
        # After the visit: a score per service received, asked once (messaging/feedback.py).
        "feedback_lines": lines_to_score(ticket) if asks_feedback(ticket) else [],
        "feedback_sent": Feedback.objects.filter(ticket=ticket).exists(),
        "feedback_scale": SCALE,
        # "Estou chegando" / "desisti" while the ticket is in the queue (messaging/companion.py).
        "companion": may_act(ticket),
        "arriving": Arrival.objects.filter(ticket=ticket).exists(),
        # Sent to the front desk to pay (from the phone, or the kiosk's cash): say so.
        "pay_at_counter": session is not None
        and session.method == Method.CASH
        and session.status == SessionStatus.PENDING,
        # The server's time: "ends in 12 min" counts from it, whatever the phone's clock says.
        "now": timezone.now(),
        "config": {
            "socket": ticket_socket_path(ticket),
            "ticket": ticket.id,
            "title": _("Your turn!"),
        },
    }
    template = "totem/ticket_status.html#status" if request.htmx else "totem/ticket_status.html"
    response = render(request, template, context)
    response["Cache-Control"] = "no-store"
    return response
