"""Cash at the counter: nothing to create anywhere; an operator confirms what was received."""

from __future__ import annotations

from payments.models import PaymentSession, Provider
from payments.providers.base import Created, PaymentProvider


class CashProvider(PaymentProvider):
    name = Provider.MANUAL
    # The operator hands the money back; the refund only records it.
    refunds_by_hand = True

    def create(self, session: PaymentSession) -> Created:
        return Created()

    def refund(self, session: PaymentSession) -> str:
        return ""
