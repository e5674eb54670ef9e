"""Paid elsewhere: an integration's own checkout (a booking site) took the money.

Nothing is created here; the session is born paid (sessions.record_paid_elsewhere) with the
integration's reference as its external id. A refund is made where the money was paid, and
recorded here by hand like cash.
"""

from __future__ import annotations

from payments.models import PaymentSession, Provider
from payments.providers.base import Created, PaymentProvider


class ExternalProvider(PaymentProvider):
    name = Provider.EXTERNAL
    refunds_by_hand = True

    def create(self, session: PaymentSession) -> Created:
        return Created()

    def refund(self, session: PaymentSession) -> str:
        return ""
