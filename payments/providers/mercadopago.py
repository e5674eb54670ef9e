"""MercadoPago through its official SDK: PIX (Checkout API payment) and card (Point terminal).

Card: **Point**, not Checkout Pro. The customer stands at a kiosk in the studio with a card in
hand. Checkout Pro is a web checkout: it would make them type a card number on a public touch
screen (or scan a link and pay on their phone), with online-card fees and the fraud checks of
a card-not-present sale. A Point terminal beside the kiosk takes a tap or chip-and-PIN: the
sale is card-present (debit works, lower fees, no card data ever touches our screens), and
the integration API lets us push the exact amount to the terminal and read the result back,
so the kiosk flow stays "choose, pay, get the ticket". The terminal's payment carries our
`external_reference`, so its webhook lands in the same confirmation as a PIX.

Every create sends our own `x-idempotency-key` (the session's), so a retry after a timeout
returns the first payment instead of making a second. The API root is private in the SDK;
`BaseUrlHttpClient` rewrites it to `settings.MERCADOPAGO_BASE_URL` (the fake server in tests
and demo mode).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from urllib.parse import urlsplit

import mercadopago
import requests
from django.conf import settings
from django.utils import timezone
from mercadopago.config import RequestOptions
from mercadopago.errors.exceptions import MercadoPagoError
from mercadopago.http import HttpClient

from payments.models import Method, PaymentSession, Provider, SessionStatus
from payments.providers.base import (
    Created,
    PaymentProvider,
    ProviderError,
    ProviderUnavailable,
    RemotePayment,
)

log = logging.getLogger(__name__)

REAL_API = "https://api.mercadopago.com"
S = SessionStatus

# MercadoPago payment statuses → ours. Anything else (pending, in_process, authorized,
# in_mediation) means "still waiting" and changes nothing.
PAYMENT_STATUS = {
    "approved": S.PAID,
    "rejected": S.FAILED,
    "cancelled": S.CANCELED,
    "refunded": S.REFUNDED,
    "charged_back": S.REFUNDED,
}
# Point payment-intent states that end without a payment.
INTENT_ENDED = {"CANCELED": S.CANCELED, "ABANDONED": S.CANCELED, "ERROR": S.FAILED}


# MercadoPago takes a PIX expiry between 30 minutes and 30 days after it receives the create
# (docs: checkout-api/integration-configuration/integrate-pix); the extra minute covers the
# request's way there and clock drift. The longest payment timeout a tenant can set (32767
# minutes, a small integer) stays under 30 days.
PIX_SHORTEST_EXPIRY = timedelta(minutes=31)


def pix_expiry(session: PaymentSession) -> datetime:
    """The expiry sent to MercadoPago: the session's own when MercadoPago accepts it, else the
    shortest it does. The kiosk keeps the session's shorter wait and, when that ends, cancels
    the payment at MercadoPago (payments.sessions), so the QR is never paid for nothing."""
    return max(session.expires_at, timezone.now() + PIX_SHORTEST_EXPIRY)


class BaseUrlHttpClient(HttpClient):
    """The SDK's HTTP client with the API root replaced by a configurable one."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    def request(self, method, url, maxretries=None, retry_on=None, backoff_factor=None, **kwargs):
        if url.startswith(REAL_API):
            url = self.base_url + url[len(REAL_API) :]
        return super().request(method, url, maxretries, retry_on, backoff_factor, **kwargs)


def is_demo_api() -> bool:
    """True when the SDK talks to a server on this machine (the fake), never the real API."""
    host = urlsplit(settings.MERCADOPAGO_BASE_URL).hostname or ""
    return host in {"127.0.0.1", "localhost", "::1"}


class MercadoPagoProvider(PaymentProvider):
    name = Provider.MERCADOPAGO

    def sdk(self, idempotency_key: str = "") -> mercadopago.SDK:
        options = RequestOptions(
            connection_timeout=float(settings.MERCADOPAGO_TIMEOUT),
            # The SDK's own retries would hide a slow provider from our timeout budget; the
            # caller retries (kiosk, expiry command, MercadoPago's own webhook retries).
            max_retries=0,
            custom_headers={"x-idempotency-key": idempotency_key} if idempotency_key else None,
        )
        return mercadopago.SDK(
            self.config.mercadopago_access_token,
            http_client=BaseUrlHttpClient(settings.MERCADOPAGO_BASE_URL),
            request_options=options,
        )

    def call(self, what: str, do) -> dict:
        """Run one SDK call; turn transport failures and error statuses into our errors."""
        try:
            result = do()
        except (requests.ConnectionError, requests.Timeout) as error:
            raise ProviderUnavailable(f"MercadoPago {what}: {error.__class__.__name__}") from error
        except MercadoPagoError as error:
            raise ProviderUnavailable(f"MercadoPago {what}: {error}") from error
        status = result.get("status", 0)
        body = result.get("response") or {}
        if status >= 500 or status == 429:
            raise ProviderUnavailable(f"MercadoPago {what}: HTTP {status}")
        if status >= 300:
            message = body.get("message", "") if isinstance(body, dict) else ""
            raise ProviderError(f"MercadoPago {what}: HTTP {status} {message}".strip())
        return body

    # --- create ---------------------------------------------------------------------------

    def create(self, session: PaymentSession) -> Created:
        if session.method == Method.CARD:
            return self.create_point_intent(session)
        return self.create_pix(session)

    def create_pix(self, session: PaymentSession) -> Created:
        ticket = session.ticket
        body = {
            "transaction_amount": float(session.amount),
            "payment_method_id": "pix",
            "description": f"{session.tenant.name} · {ticket.number}",
            "external_reference": str(session.pk),
            "payer": {"email": self.payer_email(session), "first_name": ticket.first_name},
            "date_of_expiration": pix_expiry(session).isoformat(timespec="milliseconds"),
        }
        sdk = self.sdk(session.idempotency_key)
        payment = self.call("create PIX", lambda: sdk.payment().create(body))
        data = (payment.get("point_of_interaction") or {}).get("transaction_data") or {}
        return Created(
            external_id=str(payment["id"]),
            qr_code=data.get("qr_code", ""),
            ticket_url=data.get("ticket_url", ""),
            provider_status=payment.get("status", ""),
        )

    def payer_email(self, session: PaymentSession) -> str:
        """Who pays, as MercadoPago needs it for a PIX: never the collector's own e-mail (it
        refuses "the customer can't be equal to the collector"), and the kiosk asks customers
        for none. So the studio's payer e-mail where it typed one (never its contact e-mail,
        usually the MercadoPago account's own), else an address of this sale's ticket on the
        platform's PIX_PAYER_EMAIL_DOMAIN."""
        typed = self.config.payer_email.strip()
        if typed and typed.casefold() != session.tenant.contact_email.strip().casefold():
            return typed
        if settings.PIX_PAYER_EMAIL_DOMAIN:
            return f"senha-{session.ticket_id}@{settings.PIX_PAYER_EMAIL_DOMAIN}"
        raise ProviderError(
            "MercadoPago PIX needs a payer e-mail: set PIX_PAYER_EMAIL_DOMAIN, "
            "or a payer e-mail in the studio's payment settings"
        )

    def create_point_intent(self, session: PaymentSession) -> Created:
        device = self.config.mercadopago_point_device
        if not device:
            raise ProviderError("no MercadoPago Point device is configured")
        body = {
            # Point takes the amount in cents.
            "amount": int(session.amount * 100),
            "description": f"{session.tenant.name} · {session.ticket.number}",
            "additional_info": {
                "external_reference": str(session.pk),
                "print_on_terminal": True,
            },
        }
        sdk = self.sdk(session.idempotency_key)
        intent = self.call("create Point intent", lambda: sdk.point().create(device, body))
        return Created(external_id=str(intent["id"]), provider_status=intent.get("state", ""))

    # --- read -----------------------------------------------------------------------------

    def get_payment(self, payment_id: str) -> RemotePayment:
        """Look a payment up by its id (what a webhook names), as the API says it is."""
        sdk = self.sdk()
        payment = self.call("get payment", lambda: sdk.payment().get(payment_id))
        try:
            amount = Decimal(str(payment.get("transaction_amount")))
        except InvalidOperation:
            amount = Decimal("-1")
        return RemotePayment(
            status=PAYMENT_STATUS.get(payment.get("status", ""), ""),
            external_id=str(payment.get("id", "")),
            external_reference=str(payment.get("external_reference") or ""),
            amount=amount,
            currency=payment.get("currency_id", ""),
            provider_status=payment.get("status", ""),
            payment_id=str(payment.get("id", "")),
            raw=payment,
        )

    def get_intent(self, intent_id: str) -> dict:
        sdk = self.sdk()
        return self.call("get Point intent", lambda: sdk.point().get(intent_id))

    def fetch(self, session: PaymentSession) -> RemotePayment | None:
        if not session.external_id:
            return None
        if session.method != Method.CARD:
            return self.get_payment(session.external_id)
        intent = self.get_intent(session.external_id)
        payment_id = str((intent.get("payment") or {}).get("id") or "")
        if payment_id:
            return self.get_payment(payment_id)
        state = intent.get("state", "")
        return RemotePayment(
            status=INTENT_ENDED.get(state, ""),
            external_id=session.external_id,
            external_reference=str(session.pk),
            amount=session.amount,
            currency=session.currency,
            provider_status=state,
            raw=intent,
        )

    # --- cancel and refund ----------------------------------------------------------------

    def cancel(self, session: PaymentSession) -> None:
        if not session.external_id:
            return
        sdk = self.sdk()
        if session.method == Method.CARD:
            device = self.config.mercadopago_point_device
            self.call(
                "cancel Point intent", lambda: sdk.point().cancel(device, session.external_id)
            )
        else:
            self.call(
                "cancel payment",
                lambda: sdk.payment().update(session.external_id, {"status": "cancelled"}),
            )

    def refund(self, session: PaymentSession) -> str:
        payment_id = session.provider_payment_id or session.external_id
        if not payment_id:
            raise ProviderError("this session has no MercadoPago payment to refund")
        # Derived from the session's key: a second click on "refund" cannot refund twice.
        sdk = self.sdk(f"refund-{session.idempotency_key}")
        refund = self.call("refund", lambda: sdk.refund().create(payment_id))
        return str(refund.get("id", ""))
