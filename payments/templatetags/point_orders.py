"""`{{ session|terminal_message }}`: what a card session waits for at the Point terminal."""

from __future__ import annotations

from django import template

from payments.models import PaymentSession, SessionStatus
from payments.providers.mercadopago_orders import is_order_session, waiting_message

register = template.Library()


@register.filter
def terminal_message(session: PaymentSession | None) -> str:
    """The sentence for the kiosk and the operator while the terminal has the order ("" when
    the session is not a pending Point order, or its state needs no words)."""
    if session is None or session.status != SessionStatus.PENDING:
        return ""
    if not is_order_session(session):
        return ""
    return waiting_message(session.provider_status)
