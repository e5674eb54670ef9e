"""The fake MercadoPago's Point Orders API: `/v1/orders` and `/terminals/v1/list`.

Part of `FakeMercadoPago` (it dispatches these paths here, with its lock held). It refuses
what the real API documents that it refuses, with the documented status and error code, so
the suite fails where production would. Each rule cites its page:

- CREATE  https://www.mercadopago.com.br/developers/en/reference/in-person-payments/point/orders/create-order/post
- GET     https://www.mercadopago.com.br/developers/en/reference/in-person-payments/point/orders/get-order/get
- CANCEL  https://www.mercadopago.com.br/developers/en/reference/in-person-payments/point/orders/cancel-order/post
- REFUND  https://www.mercadopago.com.br/developers/en/reference/in-person-payments/point/orders/refund-order/post
  and its errors: https://www.mercadopago.com.br/developers/en/docs/mp-point/resources/refund-errors
- EVENTS  https://www.mercadopago.com.br/developers/en/reference/in-person-payments/point/orders/simulate-order/post
- STATES  https://www.mercadopago.com.br/developers/en/docs/mp-point/resources/status-order-transaction
- NOTIFY  https://www.mercadopago.com.br/developers/en/docs/mp-point/notifications
- TERMINALS https://www.mercadopago.com.br/developers/en/reference/in-person-payments/point/terminals/get-terminals/get

Errors answer `{"errors": [{"code": …, "message": …}]}`, and a refused token
`{"code": "unauthorized", "message": …}`: the reference pages list the codes and statuses
but not the envelope, which is the one the API is publicly reported to answer.

What the fake does not do: the 24-hour life of an idempotency key (keys live as long as the
fake), partial refunds (Totem refunds in full), tips, an order expiring by the clock
(`expire` through the events endpoint or `finish`), rate limits.

Tests and the demo move an order as the terminal would: `pick_up` (the terminal loads it),
`finish` (paid, declined, cancelled on the terminal, action_required, expired), or
MercadoPago's own sandbox endpoint `POST /v1/orders/{id}/events`. Every final state is
notified to the app as the topic `order`, signed like any notification.
"""

from __future__ import annotations

import copy
import json
import re
import secrets
import threading
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

# The docs' sandbox terminal (create order and get terminals examples), in PDV mode.
DEMO_TERMINAL = "NEWLAND_N950__SBX0000001"

Answer = tuple[int, Any]
ORDER_PATH = re.compile(r"/v1/orders(?:/(?P<id>[^/]+)(?:/(?P<action>cancel|refund|events))?)?")
ORDER_ID = re.compile(r"ORD[0-9A-Z]{26}")
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

# STATES: the order's state diagram. `refunded` only from `processed`; nothing leaves
# `action_required`, `failed`, `canceled`, `expired` or `refunded`.
TRANSITIONS: dict[str, frozenset[str]] = {
    "created": frozenset({"at_terminal", "canceled", "expired"}),
    "at_terminal": frozenset({"processed", "failed", "canceled", "action_required", "expired"}),
    "processed": frozenset({"refunded"}),
}
# STATES: (order status_detail, transaction status, transaction status_detail) per status.
DETAILS: dict[str, tuple[str, str, str]] = {
    "created": ("created", "created", "created"),
    "at_terminal": ("at_terminal", "at_terminal", "at_terminal"),
    "processed": ("processed", "processed", "accredited"),
    "action_required": ("action_required", "action_required", "check_on_terminal"),
    "failed": ("failed", "failed", "failed"),
    "canceled": ("canceled", "canceled", "canceled_on_terminal"),
    "expired": ("expired", "expired", "expired"),
    "refunded": ("refunded", "refunded", "refunded"),
}
# EVENTS: the failed details the sandbox accepts.
FAILED_DETAILS = frozenset(
    {
        "bad_filled_card_data",
        "required_call_for_authorize",
        "card_disabled",
        "high_risk",
        "insufficient_amount",
        "invalid_installments",
        "max_attempts_exceeded",
        "rejected_other_reason",
        "processing_error",
    }
)
# CREATE: every property the body may carry, nested; anything else is unsupported.
CREATE_SHAPE: dict[str, Any] = {
    "type": str,
    "external_reference": str,
    "expiration_time": str,
    "description": str,
    "transactions": {"payments": [{"amount": str}]},
    "config": {
        "point": {"terminal_id": str, "print_on_terminal": str},
        "payment_method": {"default_type": str},
    },
    "integration_data": {
        "platform_id": str,
        "integrator_id": str,
        "sponsor": {"id": str},
    },
}


def error(status: int, code: str, message: str) -> Answer:
    return status, {"errors": [{"code": code, "message": message}]}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _ulid(prefix: str) -> str:
    """An id like the API's: a prefix and 26 Crockford base-32 characters."""
    number = secrets.randbits(130)
    return prefix + "".join(CROCKFORD[(number >> (5 * i)) & 31] for i in range(26))


def _shape_errors(body: Any, shape: Any, where: str = "") -> Answer | None:
    """CREATE: unsupported_properties, property_type and min/maximum_items, in that order."""
    if isinstance(shape, dict):
        if not isinstance(body, dict):
            return error(400, "property_type", f"{where or 'body'} expected object")
        for key, value in body.items():
            if key not in shape:
                return error(400, "unsupported_properties", f"{where}{key} is not supported")
            found = _shape_errors(value, shape[key], f"{where}{key}.")
            if found:
                return found
        return None
    if isinstance(shape, list):
        if not isinstance(body, list):
            return error(400, "property_type", f"{where[:-1]} expected array")
        # CREATE: "When the type is point, it is only possible to include 1 transaction."
        if not body:
            return error(400, "minimum_items", f"{where[:-1]} needs 1 item")
        if len(body) > 1:
            return error(400, "maximum_items", f"maximum 1 items required, but found {len(body)}")
        return _shape_errors(body[0], shape[0], f"{where[:-1]}[0].")
    if not isinstance(body, shape):
        return error(400, "property_type", f"{where[:-1]} expected {shape.__name__}")
    return None


def _duration_seconds(value: str) -> int | None:
    found = re.fullmatch(r"PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?", value)
    if not found or not any(found.groups()):
        return None
    hours, minutes, seconds = (int(part or 0) for part in found.groups())
    return hours * 3600 + minutes * 60 + seconds


class FakePointOrders:
    """Orders, terminals and idempotency keys of the fake Orders API."""

    def __init__(self, fake: Any) -> None:
        self.fake = fake  # the FakeMercadoPago it belongs to: its lock, webhooks
        self.orders: dict[str, dict[str, Any]] = {}
        # Every POST body received, in order: what the product sent, for its tests.
        self.bodies: list[tuple[str, str, Any]] = []
        # TERMINALS: the account's terminals and their operating mode.
        self.terminals: dict[str, str] = {DEMO_TERMINAL: "PDV"}
        # CANCEL: terminals whose software cancels an order at_terminal on request.
        self.cancels_at_terminal = True
        self.cancel_delay = 0.2
        self.keys: dict[str, tuple[str, str, str, int, str]] = {}

    # --- test and demo controls (they take the fake's lock) ---------------------------------

    def pick_up(self, order_id: str) -> dict[str, Any]:
        """The terminal loads the order (created -> at_terminal)."""
        with self.fake.lock:
            order = self.orders[order_id]
            self._move(order, "at_terminal")
            return copy.deepcopy(order)

    def finish(
        self, order_id: str, status: str, detail: str = "", *, notify: bool = True
    ) -> dict[str, Any]:
        """The terminal ends the order: processed, failed, canceled, action_required, expired."""
        with self.fake.lock:
            order = self.orders[order_id]
            if order["status"] == "created":
                self._move(order, "at_terminal")
            self._move(order, status, detail)
            snapshot = copy.deepcopy(order)
        if notify:
            self.notify(order_id, status)
        return snapshot

    def notify(self, order_id: str, status: str) -> None:
        """NOTIFY: topic `order`, action `order.<status>`, data.id the order id."""
        if self.fake.webhook_url:
            self.fake.notify_later(order_id, kind="order", action=f"order.{status}")

    # --- the API -----------------------------------------------------------------------------

    def serves(self, path: str) -> bool:
        return bool(ORDER_PATH.fullmatch(path)) or path == "/terminals/v1/list"

    def handle(self, method: str, path: str, headers: dict[str, str], body: Any) -> Answer:
        """(status, json) for one call. Called with the fake's lock held."""
        # CREATE/GET/CANCEL/REFUND/TERMINALS: 401 unauthorized without a valid Access Token.
        if not headers.get("authorization", "").startswith("Bearer "):
            return 401, {"code": "unauthorized", "message": "authorization value not present"}
        if path == "/terminals/v1/list" and method == "GET":
            return self._terminals()
        match = ORDER_PATH.fullmatch(path)
        order_id, action = match["id"], match["action"]
        if method == "POST":
            self.bodies.append((method, path, copy.deepcopy(body)))
        if method == "POST" and order_id is None:
            return self._idempotent(headers, method, path, body, lambda: self._create(body))
        if order_id is None or (method == "GET") != (action is None):
            return error(405, "method_not_allowed", f"{method} {path}")
        # GET/CANCEL/EVENTS: "The order_id provided … is not correct" (bad_request).
        if not ORDER_ID.fullmatch(order_id):
            return error(400, "bad_request", "path param order id is invalid")
        order = self.orders.get(order_id)
        if order is None:
            return error(404, "order_not_found", "Order not found.")
        if method == "GET":
            return 200, copy.deepcopy(order)
        if action == "events":
            return self._simulate(order, body)
        run = self._cancel if action == "cancel" else self._refund
        return self._idempotent(headers, method, path, body, lambda: run(order, headers, body))

    def _idempotent(self, headers, method: str, path: str, body: Any, run) -> Answer:
        """CREATE/CANCEL/REFUND: the header is required (400 empty_required_header); a key
        already used answers the resource it made, unless the request differs: "already been
        used with a different request within the last 24 hours" (409)."""
        key = headers.get("x-idempotency-key", "")
        if not key:
            return error(400, "empty_required_header", "Missing HTTP header: X-Idempotency-Key")
        request = json.dumps(body, sort_keys=True)
        if key in self.keys:
            used_method, used_path, used_body, status, order_id = self.keys[key]
            if (used_method, used_path, used_body) != (method, path, request):
                return error(
                    409,
                    "idempotency_key_already_used",
                    "The idempotency key has already been used with a different request.",
                )
            return status, copy.deepcopy(self.orders[order_id])
        status, answer = run()
        if status < 300:
            self.keys[key] = (method, path, request, status, answer["id"])
        return status, answer

    def _create(self, body: Any) -> Answer:
        found = _shape_errors(body, CREATE_SHAPE)
        if found:
            return found
        # CREATE (and the payment-processing guide): type, the payment's amount and the
        # terminal are required.
        payments = (body.get("transactions") or {}).get("payments") or [{}]
        terminal = ((body.get("config") or {}).get("point") or {}).get("terminal_id")
        for name, value in (
            ("type", body.get("type")),
            ("transactions.payments[0].amount", payments[0].get("amount")),
            ("config.point.terminal_id", terminal),
        ):
            if value is None:
                return error(400, "required_properties", f"required property '{name}' is missing")
        refused = self._create_values(body, payments[0]["amount"], terminal)
        if refused:
            return refused
        # CREATE: 403 forbidden_checking_terminal_owner, a terminal of another account.
        if terminal not in self.terminals:
            return error(
                403,
                "forbidden_checking_terminal_owner",
                "The terminal does not belong to the user who sent the request.",
            )
        # CREATE: 409 already_queued_order_for_terminal, "finalize or cancel it" first.
        for other in self.orders.values():
            if other["config"]["point"]["terminal_id"] == terminal and other["status"] in (
                "created",
                "at_terminal",
            ):
                return error(
                    409,
                    "already_queued_order_for_terminal",
                    "The terminal already has an order waiting.",
                )
        now = _now()
        order = {
            "id": _ulid("ORD"),
            "type": "point",
            "user_id": "123456789",
            "external_reference": body.get("external_reference", ""),
            "description": body.get("description", ""),
            "expiration_time": body.get("expiration_time", "PT15M"),
            "processing_mode": "automatic",
            "country_code": "BRA",
            "currency": "BRL",
            "status": "created",
            "status_detail": "created",
            "created_date": now,
            "last_updated_date": now,
            "config": {
                "point": {
                    "terminal_id": terminal,
                    "print_on_terminal": body["config"]["point"].get(
                        "print_on_terminal", "seller_ticket"
                    ),
                },
            },
            "transactions": {
                "payments": [
                    {
                        "id": _ulid("PAY"),
                        "amount": payments[0]["amount"],
                        "status": "created",
                        "status_detail": "created",
                    }
                ]
            },
        }
        if "payment_method" in body.get("config", {}):
            order["config"]["payment_method"] = dict(body["config"]["payment_method"])
        self.orders[order["id"]] = order
        return 201, copy.deepcopy(order)

    def _create_values(self, body: dict, amount: str, terminal: str) -> Answer | None:
        """CREATE: 400 property_value for every documented value rule."""
        rules = [
            # "For Mercado Pago Point payments, the only possible value is point."
            (body["type"] == "point", "type must be point"),
            # "up to 64 characters … letters, numbers, hyphen (-) and underscore (_)".
            (
                re.fullmatch(r"[A-Za-z0-9_-]{1,64}", body.get("external_reference", "x")),
                "external_reference must be 1-64 letters, digits, - or _",
            ),
            # "The maximum limit is 150 characters."
            (len(body.get("description", "")) <= 150, "description exceeds 150 characters"),
            # "It accepts up to 2 decimal places, and the decimal separator is optional"; an
            # amount of zero is refused too (Orders API: "Order total amount cannot be zero",
            # https://www.mercadopago.com.br/developers/en/docs/checkout-pro-orders/payment-management/integration-errors).
            (
                re.fullmatch(r"\d+(\.\d{1,2})?", amount) and Decimal(amount) > 0,
                "transactions.payments[0].amount must be a positive amount, 2 decimals at most",
            ),
            # "type of terminal + "__" + terminal serial", e.g. NEWLAND_N950__SBX0000001.
            (
                re.fullmatch(r"[A-Z0-9]+(?:_[A-Z0-9]+)*__[A-Z0-9]+", terminal),
                "config.point.terminal_id must be <terminal type>__<serial>",
            ),
            (
                body["config"]["point"].get("print_on_terminal", "seller_ticket")
                in ("seller_ticket", "no_ticket"),
                "config.point.print_on_terminal must be seller_ticket or no_ticket",
            ),
            (
                body["config"].get("payment_method", {}).get("default_type", "debit_card")
                in ("debit_card", "credit_card"),
                "config.payment_method.default_type must be debit_card or credit_card",
            ),
        ]
        # "The minimum allowed value is 30 seconds (PT30S) and the maximum is 3 hours (PT3H)."
        if "expiration_time" in body:
            seconds = _duration_seconds(body["expiration_time"])
            rules.append(
                (seconds is not None and 30 <= seconds <= 3 * 3600, "expiration_time out of range")
            )
        for holds, message in rules:
            if not holds:
                return error(400, "property_value", message)
        return None

    def _cancel(self, order: dict, headers: dict[str, str], body: Any) -> Answer:
        # CANCEL: 409 order_already_canceled.
        if order["status"] == "canceled":
            return error(409, "order_already_canceled", "The order has already been canceled.")
        # CANCEL: `created` is cancelled at once (200, detail canceled_by_api).
        if order["status"] == "created":
            self._move(order, "canceled", "canceled_by_api")
            return 200, copy.deepcopy(order)
        # CANCEL: `at_terminal` only with `x-allow-cancelable-status: at_terminal` and a
        # terminal whose software can: 202, still at_terminal (cancellation_requested) until
        # the terminal confirms, notified as order.canceled. Any other state: 409.
        if (
            order["status"] == "at_terminal"
            and headers.get("x-allow-cancelable-status") == "at_terminal"
            and self.cancels_at_terminal
        ):
            order["transactions"]["payments"][0]["status_detail"] = "cancellation_requested"
            order["last_updated_date"] = _now()
            timer = threading.Timer(self.cancel_delay, self._terminal_cancels, [order["id"]])
            timer.daemon = True
            timer.start()
            return 202, copy.deepcopy(order)
        return error(409, "cannot_cancel_order", "The order status does not allow cancellation.")

    def _terminal_cancels(self, order_id: str) -> None:
        with self.fake.lock:
            order = self.orders[order_id]
            if order["status"] != "at_terminal":
                return  # paid or declined before the terminal dropped it
            self._move(order, "canceled", "canceled_by_api")
        self.notify(order_id, "canceled")

    def _refund(self, order: dict, headers: dict[str, str], body: Any) -> Answer:
        # REFUND: a total refund is sent "without a body"; the fake does no partial refund.
        if body:
            return error(
                400, "unsupported_partially_refunds", "The order does not support partial refunds."
            )
        # REFUND errors: 409 order_already_refunded; 409 cannot_refund_order unless processed.
        if order["status"] == "refunded":
            return error(409, "order_already_refunded", "The order has already been refunded.")
        if order["status"] != "processed":
            return error(409, "cannot_refund_order", "The order status does not allow refund.")
        payment = order["transactions"]["payments"][0]
        self._move(order, "refunded")
        order["transactions"]["refunds"] = [
            {
                "id": _ulid("REF"),
                "transaction_id": payment["id"],
                "reference_id": payment.get("reference_id", ""),
                "amount": payment["amount"],
                "status": "processed",
            }
        ]
        self.notify(order["id"], "refunded")
        return 200, copy.deepcopy(order)

    def _simulate(self, order: dict, body: Any) -> Answer:
        """EVENTS: the sandbox moves an order to a final status (204), through at_terminal,
        except `refunded`, which needs `processed`. Every refusal is 400 bad_request."""
        if not isinstance(body, dict):
            return error(400, "bad_request", "invalid body")
        status, detail = body.get("status"), body.get("status_detail", "")
        kind = body.get("payment_method_type", "debit_card")
        fields = {"status", "status_detail", "payment_method_type", "installments"}
        refusals = [
            (status not in DETAILS or status in ("created", "at_terminal"), "invalid status"),
            (set(body) - fields - {"payment_method_id"}, "additional fields not allowed"),
            (kind not in ("debit_card", "credit_card"), "invalid payment_method_type"),
            (
                "installments" in body and kind != "credit_card",
                "installments apply to credit_card only",
            ),
            (
                ("payment_method_id" in body or detail) and status not in ("processed", "failed"),
                "payment_method_id and status_detail apply to processed or failed only",
            ),
            (
                detail
                and detail not in ({"accredited"} if status == "processed" else FAILED_DETAILS),
                "invalid status_detail",
            ),
        ]
        for refused, message in refusals:
            if refused:
                return error(400, "bad_request", message)
        steps = (
            [status]
            if status == "refunded" or order["status"] == "at_terminal"
            else [
                "at_terminal",
                status,
            ]
        )
        state = order["status"]
        for step in steps:
            if step not in TRANSITIONS.get(state, ()):
                return error(400, "bad_request", "Invalid order status transition.")
            state = step
        for step in steps:
            self._move(order, step, detail if step == status else "")
        if status == "processed":
            order["transactions"]["payments"][0]["payment_method"] = {
                "id": body.get("payment_method_id", "debvisa" if kind == "debit_card" else "visa"),
                "type": kind,
                "installments": body.get("installments", 1),
            }
        self.notify(order["id"], status)
        return 204, None

    def _terminals(self) -> Answer:
        """TERMINALS: the account's terminals with their operating mode."""
        terminals = [
            {
                "id": terminal,
                "pos_id": 47792476 + n,
                "store_id": "47792478",
                "external_pos_id": f"TOTEM{n}",
                "operating_mode": mode,
            }
            for n, (terminal, mode) in enumerate(self.terminals.items())
        ]
        return 200, {
            "data": {"terminals": terminals},
            "paging": {"total": len(terminals), "offset": 0, "limit": 50},
        }

    def _move(self, order: dict, status: str, detail: str = "") -> None:
        """STATES: one step of the diagram, or AssertionError (a test asked the impossible)."""
        assert status in TRANSITIONS.get(order["status"], ()), (order["status"], status)
        own, payment_status, payment_detail = DETAILS[status]
        payment = order["transactions"]["payments"][0]
        order.update(status=status, status_detail=own, last_updated_date=_now())
        payment.update(status=payment_status, status_detail=detail or payment_detail)
        if status == "processed":
            payment.update(paid_amount=payment["amount"], reference_id=str(secrets.randbits(40)))
