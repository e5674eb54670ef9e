"""Focus NFe's webhook (gatilho): a trigger to look the NFS-e up, never the truth."""

from __future__ import annotations

import hmac
import json
import logging

from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from fiscal.issuing import refresh
from fiscal.models import FiscalProvider, FiscalSettings, Invoice
from fiscal.providers import FiscalProviderError, FiscalProviderUnavailable
from tenants.access import get_tenant

log = logging.getLogger(__name__)


# Focus NFe authenticates its calls with the value we registered as the hook's
# `authorization`, sent back in the "Authorization" header (its "Gatilhos / Webhooks" page,
# "Criação"); there is no CSRF token to send. Only this view is exempt.
@csrf_exempt
@require_POST
def focusnfe_webhook(request: HttpRequest, slug: str) -> HttpResponse:
    """401 without our secret, 200 handled or ignored, 503 when Focus NFe should retry
    (it does, at 1 min, 30 min, 1 h, 3 h and 24 h)."""
    tenant = get_tenant(slug)
    config = FiscalSettings.objects.filter(tenant=tenant, provider=FiscalProvider.FOCUSNFE).first()
    if config is None or not config.webhook_secret:
        raise Http404("Focus NFe is not configured for this tenant")
    sent = request.headers.get("Authorization", "")
    if not hmac.compare_digest(sent.encode(), config.webhook_secret.encode()):
        log.warning("Focus NFe webhook for %s refused: wrong authorization", slug)
        return HttpResponse("unauthorized", status=401, content_type="text/plain")
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, RecursionError):
        body = {}
    reference = str(body.get("ref", "")) if isinstance(body, dict) else ""
    invoice = (
        Invoice.objects.filter(
            tenant=tenant, provider=FiscalProvider.FOCUSNFE, reference=reference
        ).first()
        if reference
        else None
    )
    if invoice is None:
        return HttpResponse("ignored", content_type="text/plain")
    try:
        refresh(invoice)
    except FiscalProviderUnavailable:
        return HttpResponse("retry", status=503, content_type="text/plain")
    except FiscalProviderError as error:
        log.warning("Focus NFe webhook for invoice %s: lookup refused: %s", invoice.pk, error)
    return HttpResponse("ok", content_type="text/plain")
