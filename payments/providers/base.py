"""The small interface every payment provider implements, and its one exception family."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from payments.models import PaymentSession, PaymentSettings


class ProviderError(Exception):
    """The provider refused (bad credentials, invalid data): retrying the same call won't help."""


class ProviderUnavailable(ProviderError):
    """The provider did not answer (timeout, 5xx): try again later with the same key."""


class NotSupported(ProviderError):
    """This provider cannot do that (cancel or refund at a provider that has no API)."""


@dataclass
class Created:
    """What a provider gives back when a session is created there."""

    external_id: str = ""
    qr_code: str = ""
    ticket_url: str = ""
    provider_status: str = ""


@dataclass
class RemotePayment:
    """The provider's truth about a payment, read from its API (never from a webhook body).

    `status` is one of our SessionStatus values, or "" while the provider still waits.
    `attention` is a note for a manager when the provider waits on a person (a Point terminal
    asking for a check), flagged once on the session.
    """

    status: str
    external_id: str
    external_reference: str
    amount: Decimal
    currency: str
    provider_status: str
    payment_id: str = ""
    attention: str = ""
    raw: dict[str, Any] = field(default_factory=dict)


class PaymentProvider:
    """Create a session at the provider, learn its true status, cancel it, refund it.

    Providers without an API (static PIX, cash) answer `fetch` with None: an operator's
    confirmation is their only truth.
    """

    name: str = ""
    refunds_by_hand: bool = False

    def __init__(self, config: PaymentSettings) -> None:
        self.config = config

    def create(self, session: PaymentSession) -> Created:
        raise NotImplementedError

    def fetch(self, session: PaymentSession) -> RemotePayment | None:
        return None

    def cancel(self, session: PaymentSession) -> None:
        """Cancel at the provider; nothing to do where nothing was created there."""

    def refund(self, session: PaymentSession) -> str:
        """Return the money; gives the provider's refund id ("" when returned by hand)."""
        raise NotSupported(self.name)
