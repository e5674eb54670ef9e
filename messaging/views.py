"""Meta's webhook for a tenant's WhatsApp number; the customer's "stop" and score, posted from
the ticket's page (the token is the key, as for the page)."""

from __future__ import annotations

import json

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from messaging import companion, inbound
from messaging import feedback as feedbacks
from messaging.models import OptOutVia, WhatsAppAccount
from messaging.optin import opt_out
from tenants.access import get_tenant
from tenants.errors import DomainError
from tickets.models import Ticket


@csrf_exempt
@require_http_methods(["GET", "POST"])
def webhook(request: HttpRequest, slug: str) -> HttpResponse:
    """GET: Meta's verification of the URL. POST: a signed notification, applied at once
    (a status update and a reply are two small UPDATEs: no reason to queue them)."""
    tenant = get_tenant(slug)
    account = get_object_or_404(WhatsAppAccount, tenant=tenant)
    if request.method == "GET":
        challenge = inbound.verified_challenge(account, request.GET)
        if challenge is None:
            return HttpResponseForbidden()
        return HttpResponse(challenge, content_type="text/plain")
    body = request.body
    if not inbound.signed(account, body, request.headers.get("X-Hub-Signature-256", "")):
        return HttpResponseForbidden()
    try:
        payload = json.loads(body)
    except ValueError:
        return HttpResponse(status=400)
    inbound.handle(account, payload)
    return HttpResponse("ok", content_type="text/plain")


@require_POST
def stop(request: HttpRequest, slug: str, token: str) -> HttpResponse:
    """The ticket page's "stop WhatsApp notices" (the token is the key, as for the page)."""
    tenant = get_tenant(slug)
    ticket = get_object_or_404(Ticket.objects.for_tenant(tenant), token=token)
    opt_out(ticket, via=OptOutVia.PAGE)
    return redirect("ticket_status", slug=tenant.slug, token=ticket.token)


def _scores(request: HttpRequest) -> dict[int, int]:
    """`score_<line id>` fields as numbers; what is not a number is left out (and refused)."""
    scores = {}
    for name, value in request.POST.items():
        line_id, score = name.removeprefix("score_"), value.strip()
        if name.startswith("score_") and line_id.isdigit() and score.isdigit():
            scores[int(line_id)] = int(score)
    return scores


@require_POST
def feedback(request: HttpRequest, slug: str, token: str) -> HttpResponse:
    """The customer's 0–10 per service and comment, once per ticket."""
    tenant = get_tenant(slug)
    ticket = get_object_or_404(Ticket.objects.for_tenant(tenant), token=token)
    try:
        feedbacks.record(ticket, _scores(request), request.POST.get("comment", ""))
    except DomainError as refused:
        messages.error(request, str(refused))
    return redirect("ticket_status", slug=tenant.slug, token=ticket.token)


@require_POST
def arriving(request: HttpRequest, slug: str, token: str) -> HttpResponse:
    """ "Estou chegando": the operator sees the customer on the way."""
    tenant = get_tenant(slug)
    ticket = get_object_or_404(Ticket.objects.for_tenant(tenant), token=token)
    try:
        companion.on_my_way(ticket)
    except DomainError as refused:
        messages.error(request, str(refused))
    return redirect("ticket_status", slug=tenant.slug, token=ticket.token)


@require_POST
def give_up(request: HttpRequest, slug: str, token: str) -> HttpResponse:
    """ "Desisti": the services not started leave the queue (asked twice on the page)."""
    tenant = get_tenant(slug)
    ticket = get_object_or_404(Ticket.objects.for_tenant(tenant), token=token)
    if request.POST.get("confirm") != "1":
        return redirect("ticket_status", slug=tenant.slug, token=ticket.token)
    try:
        companion.give_up(ticket)
    except DomainError as refused:
        messages.error(request, str(refused))
    return redirect("ticket_status", slug=tenant.slug, token=ticket.token)
