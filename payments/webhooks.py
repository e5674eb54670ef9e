"""MercadoPago notifications: a trigger to look the payment up, never the truth itself."""

from __future__ import annotations

import time

from django.conf import settings
from mercadopago.webhook import (
    InvalidWebhookSignatureError,
    SignatureFailureReason,
    WebhookSignatureValidator,
)

from payments.models import Notification, PaymentSession, PaymentSettings, Provider
from payments.providers import ProviderError, ProviderUnavailable
from payments.providers.mercadopago_orders import MercadoPagoOrdersProvider
from payments.sessions import apply_remote
from tenants.models import Tenant

Out = Notification.Outcome

# A `ts` at or above this is milliseconds: as seconds it would be past the year 5000, and a
# millisecond `ts` below it was in 1973. Either misreading lands far outside any tolerance.
MILLISECONDS_FROM = 10**11


def verify_signature(x_signature: str | None, request_id: str, data_id: str, secret: str) -> None:
    """Raise InvalidWebhookSignatureError unless MercadoPago signed this notification lately.

    The manifest, the HMAC and the constant-time comparison are the official SDK's
    (`mercadopago.webhook.WebhookSignatureValidator`): `id:<data.id of the query string>;
    request-id:<x-request-id>;ts:<ts>;`, absent parts left out, HMAC-SHA256 in hex with the
    tenant's secret. Two points on which MercadoPago's own sources disagree are settled here:

    - The unit of `ts`. The notifications page (your-integrations/notifications/webhooks)
      says milliseconds and now shows `ts=1742505638683`; an earlier version said
      milliseconds beside `ts=1704908010`, seconds; the SDKs (3.6 here, and sdk-nodejs#458,
      August 2026) read seconds. Either is accepted, converted to seconds, and must be within
      the same MERCADOPAGO_WEBHOOK_TOLERANCE of our clock, so a replay window is no wider
      for one unit than for the other (the SDK's own tolerance check, seconds only, would
      refuse every millisecond `ts`).
    - The case of data.id. The page says an alphanumeric data.id goes lower-cased into the
      manifest; the SDKs sign it as received since June 2026 ("MercadoPago signs using the
      original casing", sdk-python#118). Both are tried: each still needs the secret, and
      the id only names what to look up at the API, never anything trusted.
    """
    lowered = data_id.lower() if data_id.isalnum() else data_id
    candidates = [lowered, data_id] if lowered != data_id else [data_id]
    for tried, candidate in enumerate(candidates, 1):
        try:
            WebhookSignatureValidator.validate(x_signature, request_id, candidate, secret)
            break
        except InvalidWebhookSignatureError as error:
            mismatch = error.reason == SignatureFailureReason.SIGNATURE_MISMATCH
            if not mismatch or tried == len(candidates):
                raise
    ts = _signature_ts(x_signature or "")
    seconds = ts / 1000 if ts >= MILLISECONDS_FROM else ts
    if abs(time.time() - seconds) > settings.MERCADOPAGO_WEBHOOK_TOLERANCE:
        raise InvalidWebhookSignatureError(
            SignatureFailureReason.TIMESTAMP_OUT_OF_TOLERANCE, request_id, str(ts)
        )


def _signature_ts(x_signature: str) -> int:
    """`ts` of a header the SDK has already validated (so it is there, and digits)."""
    for part in x_signature.split(","):
        key, _sep, value = part.partition("=")
        if key.strip().lower() == "ts":
            return int(value.strip())
    raise InvalidWebhookSignatureError(SignatureFailureReason.MISSING_TIMESTAMP)


def process_mercadopago(
    tenant: Tenant, config: PaymentSettings, kind: str, data_id: str
) -> tuple[str, PaymentSession | None, str]:
    """Look up what a verified notification names and apply it. Returns (outcome, session, detail).

    `payment` names a payment (PIX or the payment a Point terminal made); `order` names a
    Point order (Orders API); `point_integration_wh` names a legacy Point payment intent.
    Everything else is ignored. When the API does not answer the outcome is RETRY and nothing
    changed: MercadoPago sends the notification again.
    """
    provider = MercadoPagoOrdersProvider(config)
    if not data_id:
        return Out.IGNORED, None, "no data.id"
    try:
        if kind == "payment":
            return apply_remote(tenant, provider.get_payment(data_id))
        if kind == "order":
            return apply_remote(tenant, provider.get_order(data_id))
        if kind == "point_integration_wh":
            session = PaymentSession.objects.filter(
                tenant=tenant, provider=Provider.MERCADOPAGO, external_id=data_id
            ).first()
            if session is None:
                return Out.IGNORED, None, "unknown payment intent"
            remote = provider.fetch(session)
            if remote is None:
                return Out.IGNORED, session, "nothing to look up"
            return apply_remote(tenant, remote, session_id=session.pk)
    except ProviderUnavailable as error:
        return Out.RETRY, None, str(error)[:300]
    except ProviderError as error:
        return Out.IGNORED, None, str(error)[:300]
    return Out.IGNORED, None, f"type {kind or '(none)'} is not handled"
