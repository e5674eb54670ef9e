"""Payment providers by name: the registry the rest of the app goes through."""

from __future__ import annotations

from payments.models import Method, PaymentSettings, Provider
from payments.providers.base import (
    NotSupported,
    PaymentProvider,
    ProviderError,
    ProviderUnavailable,
    RemotePayment,
)
from payments.providers.cash import CashProvider
from payments.providers.external import ExternalProvider
from payments.providers.mercadopago_orders import MercadoPagoOrdersProvider
from payments.providers.pix_static import StaticPixProvider

REGISTRY: dict[str, type[PaymentProvider]] = {
    # PIX through the base MercadoPagoProvider; card on Point through the Orders API.
    Provider.MERCADOPAGO: MercadoPagoOrdersProvider,
    Provider.PIX_STATIC: StaticPixProvider,
    Provider.MANUAL: CashProvider,
    Provider.EXTERNAL: ExternalProvider,
}

__all__ = [
    "REGISTRY",
    "NotSupported",
    "PaymentProvider",
    "ProviderError",
    "ProviderUnavailable",
    "RemotePayment",
    "get_provider",
    "provider_for_method",
]


def get_provider(name: str, config: PaymentSettings) -> PaymentProvider:
    """The provider called `name`, bound to a tenant's settings."""
    return REGISTRY[name](config)


def provider_for_method(method: str, config: PaymentSettings) -> str:
    """Which provider takes `method` for this tenant."""
    if method == Method.CASH:
        return Provider.MANUAL
    if method == Method.CARD:
        return Provider.MERCADOPAGO
    return config.pix_provider
