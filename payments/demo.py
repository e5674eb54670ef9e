"""The demo without a MercadoPago account: "simular pagamento" and "simular recusa".

Only with the fake MercadoPago configured (`is_demo_api`: the SDK talks to a server on this
machine, never the real API). A button on the kiosk's PIX and card screens asks the fake to
end the payment as the customer's bank or card would — approved, or refused — and the fake
then notifies the app with a signed webhook. The result comes back through the same
verification, lookup and confirmation a real payment takes (payments/views.py,
payments/webhooks.py): nothing here changes a session.
"""

from __future__ import annotations

import requests
from django.conf import settings

from payments.models import Method, PaymentSession, Provider, SessionStatus
from payments.providers import ProviderError, ProviderUnavailable
from payments.providers.mercadopago import is_demo_api
from payments.providers.mercadopago_orders import is_order_session
from payments.sessions import provider_of

APPROVE = "approve"
REFUSE = "refuse"
OUTCOMES = (APPROVE, REFUSE)

# A card order of the Orders API: the final status the sandbox's own endpoint moves it to
# (POST /v1/orders/{id}/events; payments/fake_mercadopago_orders.py).
ORDER_STATUS = {APPROVE: "processed", REFUSE: "failed"}
# A PIX payment or a legacy Point intent: the fake's control endpoint for each outcome
# (`/_fake/<payments|intents>/<id>/<approve|reject>`, payments/fake_mercadopago.py).
CONTROL = {APPROVE: "approve", REFUSE: "reject"}


def can_simulate(session: PaymentSession | None) -> bool:
    """Whether the demo buttons apply: demo mode, and a MercadoPago payment created at the
    provider that still waits."""
    return (
        is_demo_api()
        and session is not None
        and session.provider == Provider.MERCADOPAGO
        and bool(session.external_id)
        and session.status == SessionStatus.PENDING
    )


def simulate(session: PaymentSession, outcome: str) -> None:
    """Ask the fake MercadoPago to end `session`'s payment with `outcome` (APPROVE or
    REFUSE); it then notifies the app. Call only where `can_simulate(session)`.

    Raises ProviderUnavailable when the fake does not answer, ProviderError when it refuses
    (or, as a last guard, when the SDK talks to the real API).
    """
    if not is_demo_api():
        raise ProviderError("payments are simulated only against the fake MercadoPago")
    if is_order_session(session):
        provider_of(session).simulate_order(session.external_id, ORDER_STATUS[outcome])
        return
    kind = "intents" if session.method == Method.CARD else "payments"
    base = settings.MERCADOPAGO_BASE_URL.rstrip("/")
    url = f"{base}/_fake/{kind}/{session.external_id}/{CONTROL[outcome]}"
    try:
        answer = requests.post(url, timeout=5)
    except requests.RequestException as error:
        raise ProviderUnavailable(f"fake MercadoPago at {url}: {error}") from error
    if answer.status_code >= 300:
        raise ProviderError(f"fake MercadoPago at {url}: HTTP {answer.status_code}")
