"""The small interface every NFS-e provider implements, and its one exception family."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fiscal.models import FiscalSettings, Invoice


class FiscalProviderError(Exception):
    """The provider refused (bad token, invalid data): sending the same again won't help."""


class FiscalProviderUnavailable(FiscalProviderError):
    """The provider did not answer (timeout, 5xx, 429): try again later, same reference."""


class NotSupported(FiscalProviderError):
    """This provider has no API for that (the manual provider)."""


@dataclass
class RemoteInvoice:
    """The provider's truth about an NFS-e, read from its API.

    `status` is one of our InvoiceStatus values, or "" while the provider still processes.
    `message` is the provider's own explanation of an error, kept for the manager.
    """

    status: str
    provider_status: str
    number: str = ""
    verification_code: str = ""
    public_url: str = ""
    pdf_url: str = ""
    xml_url: str = ""
    message: str = ""
    raw: dict[str, Any] = field(default_factory=dict)


class InvoiceProvider:
    """Send an NFS-e request, learn how it stands, cancel it."""

    name: str = ""
    # Issued by a person outside Totem: the worker sends nothing, admin records the number.
    issues_by_hand: bool = False

    def __init__(self, config: FiscalSettings) -> None:
        self.config = config

    def send(self, invoice: Invoice, payload: dict[str, Any]) -> RemoteInvoice:
        raise NotSupported(self.name)

    def fetch(self, invoice: Invoice) -> RemoteInvoice:
        raise NotSupported(self.name)

    def cancel(self, invoice: Invoice, reason: str) -> RemoteInvoice:
        raise NotSupported(self.name)
