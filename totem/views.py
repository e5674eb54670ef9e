"""The public screens that follow the queue live: the TV display and a ticket's own page.

The display is for browsers paired as one of the tenant's displays (a code typed once on the
TV: totem/pairing.py); a ticket's page needs only its unguessable token. Both render
server-side and re-read themselves through a partial (`display/state/`, or the
ticket page asked by HTMX) when their socket says something changed, reconnects, or loses an
event (totem/consumers.py, static/js/live.js).
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from equipment.models import Kind
from payments.receipts import receipt_url, receipts_of
from tenants.access import get_tenant
from tenants.models import Tenant
from tickets.models import LineStatus, Service, Ticket, TicketLine, TicketStatus
from tickets.queue import place_of, service_stats
from totem.access import display_services
from totem.pairing import device_required

CURRENT_CALLS = 4
LAST_CALLS = 6


def _chosen_services(request: HttpRequest, tenant: Tenant) -> list[Service] | None:
    """The services this display shows: `?services=1,2`, else those set on the paired device,
    else all sellable ones; None when the query names unknown services."""
    services = list(Service.objects.for_tenant(tenant).sellable().order_by("display_order", "name"))
    raw = request.GET.get("services", "")
    if not raw:
        # A display device set in admin to some services shows those (a screen per area).
        own = set(display_services(request.device))
        return [service for service in services if service.id in own] if own else services
    try:
        wanted = {int(part) for part in raw.split(",") if part.strip()}
    except ValueError:
        return None
    chosen = [service for service in services if service.id in wanted]
    return chosen if chosen and len(chosen) == len(wanted) else None


def board(tenant: Tenant, services: list[Service]) -> dict:
    """What the display shows: calls now, the last calls of the day, queue length per service.

    Only numbers, services and rooms: nothing about the person.
    """
    start_of_day = tenant.local_now().replace(hour=0, minute=0, second=0, microsecond=0)
    today = (
        TicketLine.objects.for_tenant(tenant)
        .filter(service__in=services, called_at__gte=start_of_day)
        .select_related("ticket", "service", "equipment")
        .order_by("-called_at")
    )
    current = list(today.filter(status=LineStatus.CALLED)[:CURRENT_CALLS])
    now = timezone.now()
    for line in current:
        # Seconds since the call, by the server's clock: a display that missed the event (a
        # Wi-Fi blip, a lost message) still announces a call this recent when it re-reads.
        line.age = int((now - line.called_at).total_seconds())
    last = list(today.exclude(pk__in=[line.pk for line in current])[:LAST_CALLS])
    return {
        "current": current,
        "last": last,
        "queues": service_stats(tenant, services),
    }


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
        # The spoken call; {number} is spelled out letter by letter ("C 0 2 7").
        "phrase": _("Ticket {number}, {service}, {room}"),
    }
    return render(
        request,
        "totem/display.html",
        {"tenant": tenant, "config": config, **board(tenant, services)},
    )


@require_GET
@device_required(Kind.DISPLAY)
def display_state(request: HttpRequest, slug: str) -> HttpResponse:
    tenant = request.tenant
    services = _chosen_services(request, tenant)
    if services is None:
        return HttpResponseBadRequest(_("Unknown services for this display."))
    response = render(request, "totem/display.html#state", board(tenant, services))
    response["Cache-Control"] = "no-store"
    return response


@require_GET
def ticket_status(request: HttpRequest, slug: str, token: str) -> HttpResponse:
    """A ticket's live page, reached from the QR code printed on it (the token is the key)."""
    tenant = get_tenant(slug)
    ticket = get_object_or_404(Ticket.objects.for_tenant(tenant), token=token)
    lines = list(ticket.lines.select_related("service", "equipment").order_by("position", "id"))
    rows = [{"line": line, "place": place_of(line)} for line in lines]
    unpaid = ticket.status == TicketStatus.PENDING_PAYMENT
    # A free ticket (R$ 0,00) has no payment and so no receipt.
    has_receipt = not unpaid and receipts_of(ticket).exists()
    context = {
        "tenant": tenant,
        "ticket": ticket,
        "rows": rows,
        "called": [line for line in lines if line.status == LineStatus.CALLED],
        "unpaid": unpaid,
        "receipt_url": receipt_url(ticket) if has_receipt else "",
        "config": {
            "socket": f"/ws/t/{tenant.slug}/senha/{ticket.token}/",
            "ticket": ticket.id,
            "title": _("Your turn!"),
        },
    }
    template = "totem/ticket_status.html#status" if request.htmx else "totem/ticket_status.html"
    response = render(request, template, context)
    response["Cache-Control"] = "no-store"
    return response
