"""Joining the queue from the phone: the page the door's QR poster opens, its PIX payment page,
and the poster itself. The rules are messaging/remote.py's; the sale is create_ticket's."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods

from messaging import optin, remote
from messaging.models import RemoteJoin, sends_whatsapp
from payments.models import Method
from payments.sessions import PaymentError, issue_free_ticket, session_for_ticket, start_payment
from payments.sessions import settings_for as payment_settings_for
from tenants import throttle
from tenants.access import get_tenant
from tenants.errors import DomainError
from tenants.models import Tenant
from tickets.issuing import runnable_services
from tickets.models import Ticket, TicketStatus
from totem import consent
from totem.forms import RemoteJoinForm

# How often the PIX page re-reads itself while the customer pays in the bank's app.
PAYMENT_REFRESH_SECONDS = 5


def methods_for(tenant: Tenant, join: RemoteJoin | None) -> list[tuple[str, str]]:
    """PIX on the phone when the tenant takes PIX; "pay at the front desk" when allowed."""
    offered = payment_settings_for(tenant).enabled_methods()
    methods = [(m, label) for m, label in Method.choices if m == Method.PIX and m in offered]
    if join is not None and join.pay_at_counter and Method.CASH in offered:
        methods.append((Method.CASH, _("Pay at the front desk")))
    return methods


@sensitive_post_parameters("customer_phone")
@require_http_methods(["GET", "POST"])
def join(request: HttpRequest, slug: str) -> HttpResponse:
    tenant = get_tenant(slug)
    settings_ = remote.settings_of(tenant)
    services = list(runnable_services(tenant).order_by("display_order", "name"))
    methods = methods_for(tenant, settings_)
    closed = ""
    try:
        remote.check_open(settings_)
    except DomainError as refused:
        closed = str(refused)
    form = RemoteJoinForm(request.POST or None, services=services, methods=methods)
    if request.method == "POST" and not closed and form.is_valid():
        data = form.cleaned_data
        try:
            ticket = remote.join(
                tenant,
                service_ids=data["services"],
                customer_name=data["customer_name"],
                phone=data["customer_phone"],
                ip=throttle.client_ip(request),
                whatsapp=data["whatsapp"],
                consent_version=consent.CONSENT_VERSION,
                idempotency_key=request.POST.get("key", "")[:64],
            )
        except DomainError as refused:
            form.add_error(None, str(refused))
        except ValidationError as refused:
            for message in refused.messages:
                form.add_error(None, message)
        else:
            return _pay(request, tenant, ticket, data["method"])
    return render(
        request,
        "totem/join.html",
        {
            "tenant": tenant,
            "form": form,
            "closed": closed,
            "key": request.POST.get("key") or uuid.uuid4().hex,
            "consent": consent,
            "whatsapp_consent": optin if sends_whatsapp(tenant) else None,
        },
    )


def _pay(request: HttpRequest, tenant: Tenant, ticket: Ticket, method: str) -> HttpResponse:
    """Start the payment; the PIX page, or the ticket's page for the front desk or free."""
    status = reverse("ticket_status", args=[tenant.slug, ticket.token])
    if ticket.status != TicketStatus.PENDING_PAYMENT:
        return redirect(status)
    if not ticket.total:
        issue_free_ticket(ticket)
        return redirect(status)
    if session_for_ticket(ticket) is None:
        _start(request, ticket, method)
    if method == Method.PIX:
        return redirect("join_payment", slug=tenant.slug, token=ticket.token)
    return redirect(status)


def _start(request: HttpRequest, ticket: Ticket, method: str) -> None:
    try:
        start_payment(ticket, method)
    except PaymentError as refused:
        # Shown on the payment page, beside "try again".
        messages.error(request, str(refused))


@require_http_methods(["GET", "POST"])
def payment(request: HttpRequest, slug: str, token: str) -> HttpResponse:
    """The PIX QR and copia e cola on the phone; moves to the ticket's page once paid."""
    tenant = get_tenant(slug)
    ticket = get_object_or_404(Ticket.objects.for_tenant(tenant), token=token)
    status = reverse("ticket_status", args=[tenant.slug, ticket.token])
    if ticket.status != TicketStatus.PENDING_PAYMENT:
        return redirect(status)
    session = session_for_ticket(ticket)
    if request.method == "POST":  # try again after a failure or an expiry
        _start(request, ticket, Method.PIX)
        return redirect("join_payment", slug=tenant.slug, token=ticket.token)
    pending = session is not None and session.method == Method.PIX and session.status == "pending"
    response = render(
        request,
        "totem/join_payment.html",
        {
            "tenant": tenant,
            "ticket": ticket,
            "session": session if pending else None,
            "refresh": PAYMENT_REFRESH_SECONDS,
            "status_url": status,
        },
    )
    response["Cache-Control"] = "no-store"
    return response


@require_GET
def poster(request: HttpRequest, slug: str) -> HttpResponse:
    """The printable poster for the door: the studio's name and the QR code to join."""
    tenant = get_tenant(slug)
    url = settings.PUBLIC_BASE_URL + reverse("join", args=[tenant.slug])
    return render(request, "totem/join_poster.html", {"tenant": tenant, "join_url": url})
