"""NFS-e providers by name: the registry the rest of the app goes through."""

from __future__ import annotations

from fiscal.models import FiscalProvider, FiscalSettings
from fiscal.providers.base import (
    FiscalProviderError,
    FiscalProviderUnavailable,
    InvoiceProvider,
    NotSupported,
    RemoteInvoice,
)
from fiscal.providers.focusnfe import FocusNFeProvider
from fiscal.providers.manual import ManualProvider

REGISTRY: dict[str, type[InvoiceProvider]] = {
    FiscalProvider.FOCUSNFE: FocusNFeProvider,
    FiscalProvider.MANUAL: ManualProvider,
}

__all__ = [
    "REGISTRY",
    "FiscalProviderError",
    "FiscalProviderUnavailable",
    "InvoiceProvider",
    "NotSupported",
    "RemoteInvoice",
    "get_provider",
]


def get_provider(name: str, config: FiscalSettings) -> InvoiceProvider:
    """The provider called `name`, bound to a tenant's settings."""
    return REGISTRY[name](config)
