"""MercadoPago notifications: a trigger to look the payment up, never the truth itself."""

from __future__ import annotations

from payments.models import Notification, PaymentSession, PaymentSettings, Provider
from payments.providers import ProviderError, ProviderUnavailable
from payments.providers.mercadopago_orders import MercadoPagoOrdersProvider
from payments.sessions import apply_remote
from tenants.models import Tenant

Out = Notification.Outcome


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
