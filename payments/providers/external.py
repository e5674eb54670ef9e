"""Paid elsewhere: an integration's own checkout (a booking site) took the money.

Nothing is created here; the session is born paid (sessions.record_paid_elsewhere) with the
integration's reference as its external id. A refund is made where the money was paid and
recorded here by hand: in that, it is cash.
"""

from __future__ import annotations

from payments.models import Provider
from payments.providers.cash import CashProvider


class ExternalProvider(CashProvider):
    name = Provider.EXTERNAL
