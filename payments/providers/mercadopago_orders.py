"""Card at the counter through MercadoPago's Orders API: a Point terminal in PDV mode.

The kiosk creates an order of type `point` for the tenant's terminal; the terminal loads it,
the customer pays there, and MercadoPago notifies the topic `order`. The webhook, the kiosk's
polling and the expiry command all look the order up (`GET /v1/orders/{id}`) and apply what
it says through `payments.sessions.apply_remote`, like any payment: a notification is a
trigger, never the truth. Cancel and refund go through the same API.

The Orders API replaces the Point "integration API" payment intents, which MercadoPago is
discontinuing (`MercadoPagoProvider` keeps them for the settings that chose
`PointApi.LEGACY_INTENTS`). A session keeps the API it was created on whatever the setting
says later: its provider id is an order id (`ORD` + 26 characters) or an intent's UUID.

Pages followed (the fake, payments/fake_mercadopago.py, cites one per rule):
- payment processing: https://www.mercadopago.com.br/developers/en/docs/mp-point/payment-processing
- order states: https://www.mercadopago.com.br/developers/en/docs/mp-point/resources/status-order-transaction
- notifications: https://www.mercadopago.com.br/developers/en/docs/mp-point/notifications
- reference: https://www.mercadopago.com.br/developers/en/reference/in-person-payments/point/orders/create-order/post
  (and get-order, cancel-order, refund-order, simulate-order; terminals/get-terminals)
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from payments.models import TERMINAL_ID, Method, PaymentSession, PointApi, SessionStatus
from payments.providers.base import Created, ProviderError, ProviderUnavailable, RemotePayment
from payments.providers.mercadopago import REAL_API, MercadoPagoProvider

S = SessionStatus

# "It must start with the prefix ORD followed by 26 characters" (refund errors,
# https://www.mercadopago.com.br/developers/en/docs/qr-code/resources/refund-errors).
ORDER_ID = re.compile(r"ORD[0-9A-Z]{26}")

# Every order status of the Point state page, as a session status; "" keeps the session
# pending: the terminal, the customer or a person at the counter still has to act.
ORDER_STATUS: dict[str, str] = {
    "created": "",  # not yet loaded by the terminal
    "at_terminal": "",  # on the terminal's screen: the customer pays there
    # "Check the terminal to verify the final status… this status will not change": someone
    # must look at the terminal (the session is flagged for a manager, see `attention`).
    "action_required": "",
    "processed": S.PAID,
    "failed": S.FAILED,
    "canceled": S.CANCELED,
    "expired": S.CANCELED,
    "refunded": S.REFUNDED,
}
# A detail that changes what its status means. Totem refunds in full only, so a partial
# refund was made outside it (MercadoPago's panel or the terminal): refunded, and flagged.
STATUS_BY_DETAIL: dict[tuple[str, str], str] = {
    ("processed", "partially_refunded"): S.REFUNDED,
}
# Where the API may still cancel an order: `created` at once (200), `at_terminal` when asked
# with `x-allow-cancelable-status: at_terminal` (202: the terminal confirms it later with an
# `order.canceled` notification). Cancel order reference:
# https://www.mercadopago.com.br/developers/en/reference/in-person-payments/point/orders/cancel-order/post
CANCELABLE = ("created", "at_terminal")
ALREADY_OVER = ("canceled", "expired", "failed")

# What the kiosk and the operator read while a card session waits, by detail or status.
WAITING_MESSAGES = {
    "created": _("Sending the amount to the card machine…"),
    "at_terminal": _("Insert, tap or swipe the card on the card machine."),
    "cancellation_requested": _("Cancelling on the card machine…"),
    "action_required": _("The card machine asks a staff member to check the payment."),
}


class OrderRefused(ProviderError):
    """The Orders API refused with one of its documented error codes (`code`)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


def is_order_session(session: PaymentSession) -> bool:
    """Whether this card session lives on the Orders API (else: the legacy intents)."""
    return session.method == Method.CARD and bool(ORDER_ID.fullmatch(session.external_id))


def order_state(order: dict[str, Any]) -> tuple[str, str]:
    """(status, detail) of an order: the detail is the order's when it says more than its
    status (`partially_refunded`), else its payment's (`check_on_terminal`,
    `rejected_by_issuer`, `canceled_on_terminal`, `cancellation_requested`)."""
    status = str(order.get("status") or "")
    own = str(order.get("status_detail") or "")
    payment = _payment(order)
    if own and own != status:
        return status, own
    return status, str(payment.get("status_detail") or own or status)


def session_status(status: str, detail: str) -> str:
    """Our session status for an order state; "" while it waits (or is unknown to us)."""
    return STATUS_BY_DETAIL.get((status, detail), ORDER_STATUS.get(status, ""))


def waiting_message(provider_status: str) -> str:
    """The sentence for a card session still pending at the terminal ("" if none fits)."""
    status, _sep, detail = provider_status.partition("/")
    return str(WAITING_MESSAGES.get(detail) or WAITING_MESSAGES.get(status) or "")


def order_body(session: PaymentSession, terminal_id: str) -> dict[str, Any]:
    """The create-order body: the same for every retry of a session, since MercadoPago
    refuses a reused idempotency key with a different body (409)."""
    # The order leaves the terminal when the kiosk stops waiting, so the next customer's
    # card is not refused with `already_queued_order_for_terminal`. Allowed: PT30S to PT3H.
    minutes = round((session.expires_at - session.created_at).total_seconds() / 60)
    return {
        "type": "point",
        # Our session id: digits only, unique per order, no personal data (all required).
        "external_reference": str(session.pk),
        "expiration_time": f"PT{min(max(minutes, 1), 180)}M",
        "description": f"{session.tenant.name} · {session.ticket.number}"[:150],
        # A string with two decimals, never a float: "125.00".
        "transactions": {"payments": [{"amount": f"{session.amount:.2f}"}]},
        "config": {"point": {"terminal_id": terminal_id}},
    }


def remote_from_order(order: dict[str, Any]) -> RemotePayment:
    """What an order says, as the RemotePayment `apply_remote` takes."""
    status, detail = order_state(order)
    payment = _payment(order)
    try:
        # What the customer paid (a tip on the terminal makes it more than the amount asked:
        # then it is flagged as a mismatch, never confirmed).
        amount = Decimal(str(payment.get("paid_amount") or payment.get("amount")))
    except InvalidOperation:
        amount = Decimal("-1")
    attention = ""
    if status == "action_required":
        attention = (
            f"MercadoPago order {order.get('id')} asks for a check on the terminal "
            "(action_required): see there whether the card payment was approved; the order "
            "will not change by itself."
        )
    elif status not in ORDER_STATUS:
        attention = f"MercadoPago order {order.get('id')} is in an unknown state {status!r}."
    return RemotePayment(
        status=session_status(status, detail),
        external_id=str(order.get("id") or ""),
        external_reference=str(order.get("external_reference") or ""),
        amount=amount,
        # A Point terminal charges only its account's currency; an order without the field is
        # taken as BRL rather than left unconfirmable.
        currency=str(order.get("currency") or "BRL"),
        provider_status=f"{status}/{detail}"[:40],
        payment_id=str(payment.get("id") or ""),
        attention=attention,
        raw=order,
    )


def _payment(order: dict[str, Any]) -> dict[str, Any]:
    # A Point order carries exactly one payment transaction.
    payments = (order.get("transactions") or {}).get("payments") or [{}]
    return payments[0] if isinstance(payments[0], dict) else {}


def _error_code(response: Any) -> str:
    """The code of an Orders API error, in either envelope it answers with:
    `{"errors": [{"code": …}]}` or `{"code": …}` (authentication)."""
    if not isinstance(response, dict):
        return ""
    errors = response.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        return str(errors[0].get("code") or "")
    return str(response.get("code") or "")


class MercadoPagoOrdersProvider(MercadoPagoProvider):
    """MercadoPago, with card on the Point terminal through the Orders API.

    PIX, and card for the settings that kept the legacy payment intents, are the base
    class's; this class only takes the card sessions of the Orders API.
    """

    def create(self, session: PaymentSession) -> Created:
        if session.method == Method.CARD and self.config.point_api == PointApi.ORDERS:
            return self.create_order(session)
        return super().create(session)

    def fetch(self, session: PaymentSession) -> RemotePayment | None:
        if is_order_session(session):
            return self.get_order(session.external_id)
        return super().fetch(session)

    def cancel(self, session: PaymentSession) -> None:
        if is_order_session(session):
            return self.cancel_order(session)
        return super().cancel(session)

    def refund(self, session: PaymentSession) -> str:
        if is_order_session(session):
            return self.refund_order(session)
        return super().refund(session)

    # --- the Orders API ---------------------------------------------------------------------

    def order_call(self, what: str, do: Callable[[], dict]) -> dict:
        """`call`, plus the Orders API's error code on a refusal (`OrderRefused.code`)."""
        seen: dict[str, Any] = {}

        def run() -> dict:
            seen["result"] = do()
            return seen["result"]

        try:
            return self.call(what, run)
        except ProviderUnavailable:
            raise  # the caller retries with the same key
        except ProviderError as error:
            code = _error_code((seen.get("result") or {}).get("response"))
            raise OrderRefused(f"{error} {code}".strip(), code) from error

    def create_order(self, session: PaymentSession) -> Created:
        terminal = self.config.mercadopago_point_device
        try:
            TERMINAL_ID(terminal)  # checked when saved, and again here: older rows were not
        except ValidationError:
            raise ProviderError(f"the Point terminal id {terminal!r} is not valid") from None
        body = order_body(session, terminal)
        sdk = self.sdk(session.idempotency_key)
        order = self.order_call("create order", lambda: sdk.order().create(body))
        status, detail = order_state(order)
        return Created(external_id=str(order["id"]), provider_status=f"{status}/{detail}"[:40])

    def get_order(self, order_id: str) -> RemotePayment:
        """Look an order up by its id (what an `order` notification names)."""
        sdk = self.sdk()
        return remote_from_order(self.order_call("get order", lambda: sdk.order().get(order_id)))

    def cancel_order(self, session: PaymentSession) -> None:
        """Cancel where the API still can; report (ProviderError) where only the terminal or
        a refund can decide now (`action_required`, `processed`)."""
        remote = self.get_order(session.external_id)
        status = remote.provider_status.partition("/")[0]
        if status in ALREADY_OVER:
            return
        if status not in CANCELABLE:
            raise ProviderError(f"MercadoPago order {session.external_id} is {status}")
        sdk = self.sdk(f"cancel-{session.idempotency_key}")
        # Ignored for `created`; for `at_terminal` it asks the terminal to drop the order.
        sdk.request_options.custom_headers = {
            **sdk.request_options.custom_headers,
            "x-allow-cancelable-status": "at_terminal",
        }
        try:
            self.order_call("cancel order", lambda: sdk.order().cancel(session.external_id))
        except OrderRefused as refused:
            if refused.code != "order_already_canceled":
                raise

    def refund_order(self, session: PaymentSession) -> str:
        """Refund the whole order (no body: a total refund); gives the refund's id."""
        # Derived from the session's key: a second click on "refund" cannot refund twice.
        sdk = self.sdk(f"refund-{session.idempotency_key}")
        order = self.order_call("refund order", lambda: sdk.order().refund(session.external_id))
        refunds = (order.get("transactions") or {}).get("refunds") or [{}]
        return str(refunds[0].get("id") or "")

    def simulate_order(self, order_id: str, status: str) -> None:
        """Sandbox only: MercadoPago moves a test order to a final `status`
        (POST /v1/orders/{id}/events), as if the terminal had done it."""
        self.api("simulate order", "POST", f"/v1/orders/{order_id}/events", {"status": status})

    def terminal_mode(self) -> str | None:
        """The operating mode of this tenant's terminal (`PDV`, `STANDALONE`, `UNDEFINED`),
        or None when the account lists no such terminal (GET /terminals/v1/list)."""
        wanted, offset = self.config.mercadopago_point_device, 0
        while True:
            query = {"limit": 50, "offset": offset}
            page = self.api("list terminals", "GET", "/terminals/v1/list", params=query)
            terminals = (page.get("data") or {}).get("terminals") or []
            for terminal in terminals:
                if terminal.get("id") == wanted:
                    return str(terminal.get("operating_mode") or "UNDEFINED")
            offset += len(terminals)
            if not terminals or offset >= int((page.get("paging") or {}).get("total") or 0):
                return None

    def api(
        self,
        what: str,
        method: str,
        path: str,
        body: dict | None = None,
        params: dict | None = None,
    ) -> dict:
        """An endpoint the SDK has no method for, through the SDK's own client and headers."""
        sdk = self.sdk()
        options = sdk.request_options
        headers = {**options.get_headers(), "Content-Type": "application/json"}
        return self.call(
            what,
            lambda: sdk.http_client.request(
                method,
                REAL_API + path,
                maxretries=0,
                headers=headers,
                params=params,
                data=None if body is None else json.dumps(body),
                timeout=options.connection_timeout,
            ),
        )
