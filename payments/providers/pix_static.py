"""Static PIX: the BR Code is built here from the tenant's key; an operator confirms it.

No provider account, no network: the studio checks its bank app and confirms in the panel.
The session id goes in the txid so the bank statement names the session.
"""

from __future__ import annotations

from payments.brcode import build_brcode
from payments.models import PaymentSession, Provider
from payments.providers.base import Created, PaymentProvider, ProviderError


class StaticPixProvider(PaymentProvider):
    name = Provider.PIX_STATIC
    # Returned from the studio's bank app; the refund records who did it and why.
    refunds_by_hand = True

    def create(self, session: PaymentSession) -> Created:
        config = self.config
        if not config.static_pix_ready:
            raise ProviderError("static PIX needs a key, a merchant name and a city")
        code = build_brcode(
            key=config.pix_key,
            name=config.merchant_name,
            city=config.merchant_city,
            amount=session.amount,
            txid=f"TOTEM{session.pk}",
        )
        return Created(qr_code=code)

    def refund(self, session: PaymentSession) -> str:
        return ""
