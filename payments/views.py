"""The webhook, the public receipt page and its PDF, and the demo's "simular pagamento" / "simular
recusa"."""

from __future__ import annotations

import json
import logging

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from mercadopago.webhook import InvalidWebhookSignatureError

from payments import demo
from payments.models import (
    Notification,
    PaymentSession,
    PaymentSettings,
    Provider,
    Receipt,
)
from payments.providers import ProviderError, ProviderUnavailable
from payments.providers.mercadopago import is_demo_api
from payments.receipts import receipts_of, render_receipt_pdf, render_receipt_text
from payments.webhooks import process_mercadopago, verify_signature
from tenants.access import get_tenant
from tickets.models import Ticket

log = logging.getLogger(__name__)


# MercadoPago signs its notifications; there is no CSRF token to send. Only this view is exempt.
@csrf_exempt
@require_POST
def mercadopago_webhook(request: HttpRequest, slug: str) -> HttpResponse:
    """Verify, record, look up, apply. 401 forged or stale, 200 handled or ignored, 503 retry."""
    tenant = get_tenant(slug)
    config = PaymentSettings.objects.filter(tenant=tenant).first()
    if config is None or not config.mercadopago_webhook_secret:
        raise Http404("MercadoPago is not configured for this tenant")
    data_id = request.GET.get("data.id") or request.GET.get("id") or ""
    request_id = request.headers.get("x-request-id", "")
    try:
        secret = config.mercadopago_webhook_secret
        verify_signature(request.headers.get("x-signature"), request_id, data_id, secret)
    except InvalidWebhookSignatureError as error:
        # Not recorded: a flood of forged requests must not fill the database.
        log.warning(
            "MercadoPago webhook for %s rejected: %s (request %s)",
            slug,
            error.reason.value,
            request_id or "-",
        )
        return HttpResponse("invalid signature", status=401, content_type="text/plain")
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, RecursionError):  # not JSON, or nested past what Python parses
        body = {}
    if not isinstance(body, dict) or _carries_nul(body):
        body = {}
    kind = (
        request.GET.get("type")
        or request.GET.get("topic")
        or body.get("type")
        or body.get("topic")
        or ""
    )
    notification = Notification.objects.create(
        tenant=tenant,
        provider=Provider.MERCADOPAGO,
        kind=str(kind)[:60],
        action=str(body.get("action", ""))[:60],
        data_id=data_id[:64],
        request_id=request_id[:100],
        body=body,
    )
    outcome, session, detail = process_mercadopago(tenant, config, kind, data_id)
    notification.outcome, notification.session, notification.detail = outcome, session, detail
    notification.save(update_fields=["outcome", "session", "detail"])
    if outcome == Notification.Outcome.RETRY:
        return HttpResponse("provider unreachable, retry", status=503, content_type="text/plain")
    return HttpResponse(outcome, content_type="text/plain")


def _carries_nul(value: object) -> bool:
    """Whether parsed JSON holds a NUL (`\\u0000`) anywhere. PostgreSQL stores none, in text or
    jsonb: such a body is recorded as empty, and the payment is looked up all the same."""
    pending = [value]  # a loop, not recursion: as deep as json.loads went, without a limit
    while pending:
        item = pending.pop()
        if isinstance(item, str) and "\x00" in item:
            return True
        if isinstance(item, dict):
            pending.extend(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def _receipts(slug: str, token: str) -> tuple[Ticket, list[Receipt]]:
    """A ticket and its receipts, by the token only; 404 without a receipt (unpaid, or free)."""
    tenant = get_tenant(slug)
    ticket = Ticket.objects.for_tenant(tenant).filter(token=token).select_related("tenant").first()
    if ticket is None:
        raise Http404("ticket")
    receipts = list(receipts_of(ticket))
    if not receipts:
        raise Http404("receipt")
    return ticket, receipts


@require_GET
def receipt_page(request: HttpRequest, slug: str, token: str) -> HttpResponse:
    """The receipt of a ticket, reachable from its QR (the token is the only key)."""
    ticket, receipts = _receipts(slug, token)
    response = render(
        request,
        "payments/receipt.html",
        {
            "tenant": ticket.tenant,
            "ticket": ticket,
            "receipts": [(r, render_receipt_text(r)) for r in receipts],
        },
    )
    # What was bought and how it was paid: no shared cache keeps it.
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
def receipt_pdf(request: HttpRequest, slug: str, token: str) -> HttpResponse:
    """The same receipt as a PDF to keep or send on, by the same token."""
    ticket, receipts = _receipts(slug, token)
    title = _("Receipt · ticket %(number)s") % {"number": ticket.number}
    response = HttpResponse(
        render_receipt_pdf(receipts, title=f"{title} · {ticket.tenant.name}"),
        content_type="application/pdf",
    )
    # Inline: the phone opens it in its viewer, which offers to save or share it.
    filename = f"{_('receipt')}-{ticket.number}.pdf"
    response["Content-Disposition"] = content_disposition_header(False, filename)
    response["Cache-Control"] = "private, no-store"
    return response


@require_POST
def simulate_payment(request: HttpRequest, slug: str, session_id: int) -> HttpResponse:
    """Demo only: ask the fake MercadoPago to approve this payment, or refuse it with
    `outcome=refuse`, and notify us (payments/demo.py).

    The result then comes back as a signed webhook, through the same verification, lookup
    and confirmation a real payment takes. Refused (404) unless the SDK talks to a server on
    this machine.
    """
    if not is_demo_api():
        raise Http404("not in demo mode")
    tenant = get_tenant(slug)
    outcome = request.POST.get("outcome", demo.APPROVE)
    if outcome not in demo.OUTCOMES:
        return JsonResponse(
            {"error": f"outcome must be one of {', '.join(demo.OUTCOMES)}"}, status=400
        )
    session = PaymentSession.objects.filter(
        tenant=tenant, pk=session_id, provider=Provider.MERCADOPAGO
    ).first()
    if session is None or not session.external_id:
        raise Http404("payment")
    if not demo.can_simulate(session):
        return JsonResponse({"status": session.status}, status=409)
    try:
        demo.simulate(session, outcome)
    except ProviderUnavailable as error:
        log.warning("fake MercadoPago did not simulate payment %s: %s", session.pk, error)
        return JsonResponse({"error": "fake MercadoPago is not running"}, status=503)
    except ProviderError as error:
        return JsonResponse({"error": str(error)}, status=409)
    return JsonResponse({"status": "sent", "outcome": outcome}, status=202)
