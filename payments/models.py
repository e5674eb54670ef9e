"""Payment sessions, the provider notifications we received, receipts, per-tenant settings.

The session's state machine is one table (`SESSION_TRANSITIONS`) beside its model; every
status change goes through `change_session_status`. The operations that call it (start,
confirm, refund, expire) live in `payments/payments.py`.
"""

from __future__ import annotations

import secrets
from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from payments.brcode import CITY_LIMIT, NAME_LIMIT, has_letter, is_canonical_pix_key, plain
from tenants.crypto import EncryptedCharField
from tenants.errors import InvalidTransition
from tenants.history import HistoricalRecords
from tenants.models import Tenant, TenantQuerySet
from tickets.models import Ticket

money = {"max_digits": 10, "decimal_places": 2, "validators": [MinValueValidator(Decimal("0"))]}


class Method(models.TextChoices):
    PIX = "pix", _("PIX")
    CARD = "card", _("Card")
    CASH = "cash", _("Cash")


class Provider(models.TextChoices):
    MERCADOPAGO = "mercadopago", _("MercadoPago")
    PIX_STATIC = "pix_static", _("Static PIX (confirmed by an operator)")
    MANUAL = "manual", _("Cash at the counter")
    # An integration's own checkout (the API's "paid elsewhere"): payments/providers/external.py.
    EXTERNAL = "external", _("Paid elsewhere (integration)")


class PointApi(models.TextChoices):
    """Which MercadoPago API drives the Point card terminal."""

    ORDERS = "orders", _("Orders API (terminal in PDV mode)")
    LEGACY_INTENTS = (
        "legacy_intents",
        _("Payment intents — LEGACY, being discontinued by MercadoPago"),
    )


# MercadoPago's terminal id: the model, two underscores, the serial on the terminal's label
# (`NEWLAND_N950__SBX0000001`), exactly as GET /terminals/v1/list gives it. Create order
# reference: https://www.mercadopago.com.br/developers/en/reference/in-person-payments/point/orders/create-order/post
TERMINAL_ID = RegexValidator(
    r"^[A-Z0-9]+(?:_[A-Z0-9]+)*__[A-Z0-9]+\Z",
    _(
        "Type the terminal id as MercadoPago lists it: the model, two underscores and the "
        "serial number, e.g. NEWLAND_N950__SBX0000001."
    ),
)


class PaymentSettings(models.Model):
    """What a tenant accepts and the credentials it needs. Secrets are never shown back."""

    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, related_name="payment_settings")
    pix_enabled = models.BooleanField(_("accept PIX"), default=True)
    card_enabled = models.BooleanField(_("accept card"), default=False)
    cash_enabled = models.BooleanField(_("accept cash at the counter"), default=True)
    pix_provider = models.CharField(
        _("PIX through"),
        max_length=16,
        choices=[
            (Provider.MERCADOPAGO, Provider.MERCADOPAGO.label),
            (Provider.PIX_STATIC, Provider.PIX_STATIC.label),
        ],
        default=Provider.PIX_STATIC,
        help_text=_(
            "MercadoPago confirms by itself; a static PIX must be confirmed by an operator "
            "after checking the bank app."
        ),
    )
    mercadopago_access_token = EncryptedCharField(
        _("MercadoPago access token"), max_length=200, blank=True
    )
    mercadopago_webhook_secret = EncryptedCharField(
        _("MercadoPago webhook secret"), max_length=200, blank=True
    )
    mercadopago_point_device = models.CharField(
        _("MercadoPago Point device id"),
        max_length=100,
        blank=True,
        validators=[TERMINAL_ID],
        help_text=_("The card terminal beside the kiosk, e.g. PAX_A910__SMARTPOS1234567890."),
    )
    # Settings saved before the Orders API existed keep the legacy intents (migration 0003):
    # their MercadoPago application notifies "Point integrations", not "Order".
    point_api = models.CharField(
        _("Point integration"),
        max_length=16,
        choices=PointApi.choices,
        default=PointApi.ORDERS,
        help_text=_(
            "Orders API: the terminal must be in PDV mode and the MercadoPago application must "
            "send notifications of the event “Order (Mercado Pago)”. Payment intents are "
            "legacy: MercadoPago is discontinuing them; switch once the terminal works with "
            "orders."
        ),
    )
    payer_email = models.EmailField(
        _("payer e-mail for PIX"),
        blank=True,
        help_text=_(
            "MercadoPago requires one and kiosk customers give none. "
            "Defaults to the contact e-mail."
        ),
    )
    pix_key = models.CharField(_("PIX key"), max_length=77, blank=True)
    merchant_name = models.CharField(
        _("merchant name (PIX)"), max_length=25, blank=True, help_text=_("At most 25 letters.")
    )
    merchant_city = models.CharField(
        _("merchant city (PIX)"), max_length=15, blank=True, help_text=_("At most 15 letters.")
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    # Secrets stay out of the history table: a history row would show them in full again.
    history = HistoricalRecords(
        excluded_fields=["mercadopago_access_token", "mercadopago_webhook_secret", "updated_at"]
    )
    objects = TenantQuerySet.as_manager()

    class Meta:
        verbose_name = _("payment settings")
        verbose_name_plural = _("payment settings")

    def __str__(self) -> str:
        return str(self.tenant)

    @property
    def mercadopago_ready(self) -> bool:
        return bool(self.mercadopago_access_token and self.mercadopago_webhook_secret)

    @property
    def static_pix_ready(self) -> bool:
        """Key, name and city set and fit for a BR Code. Checked again here, not only when the
        form saves them: a key stored before keys were made canonical, which migration 0003
        could not fix, would print a code the payer's bank cannot resolve."""
        return (
            is_canonical_pix_key(self.pix_key)
            and has_letter(plain(self.merchant_name, NAME_LIMIT))
            and has_letter(plain(self.merchant_city, CITY_LIMIT))
        )

    def enabled_methods(self) -> list[str]:
        """The methods the kiosk may offer now: enabled and with what they need configured."""
        methods = []
        if self.pix_enabled and (
            self.mercadopago_ready
            if self.pix_provider == Provider.MERCADOPAGO
            else self.static_pix_ready
        ):
            methods.append(Method.PIX)
        if self.card_enabled and self.mercadopago_ready and self.mercadopago_point_device:
            methods.append(Method.CARD)
        if self.cash_enabled:
            methods.append(Method.CASH)
        return methods


class SessionStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    PAID = "paid", _("Paid")
    FAILED = "failed", _("Failed")
    CANCELED = "canceled", _("Canceled")
    REFUNDED = "refunded", _("Refunded")


S = SessionStatus
SESSION_TRANSITIONS: dict[str, frozenset[str]] = {
    S.PENDING: frozenset({S.PAID, S.FAILED, S.CANCELED}),
    S.PAID: frozenset({S.REFUNDED}),
    # failed | canceled -> refunded: the provider reported money after we gave up on the
    # session (a PIX paid as it expired); it is returned, never used to revive the ticket.
    S.FAILED: frozenset({S.REFUNDED}),
    S.CANCELED: frozenset({S.REFUNDED}),
    S.REFUNDED: frozenset(),
}
SESSION_STAMPS = {
    S.PAID: "paid_at",
    S.FAILED: "failed_at",
    S.CANCELED: "canceled_at",
    S.REFUNDED: "refunded_at",
}


def new_idempotency_key() -> str:
    return secrets.token_hex(16)


class PaymentSession(models.Model):
    """One attempt to pay a ticket. A ticket may have several (retries); at most one is paid."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    ticket = models.ForeignKey(
        Ticket, on_delete=models.PROTECT, related_name="payment_sessions", verbose_name=_("ticket")
    )
    method = models.CharField(_("method"), max_length=8, choices=Method.choices)
    provider = models.CharField(_("provider"), max_length=16, choices=Provider.choices)
    status = models.CharField(
        _("status"), max_length=10, choices=SessionStatus.choices, default=S.PENDING
    )
    amount = models.DecimalField(_("amount (R$)"), **money)
    currency = models.CharField(_("currency"), max_length=3, default="BRL")
    # Sent on every create at the provider: a retry after a timeout finds the first attempt
    # instead of charging twice.
    idempotency_key = models.CharField(max_length=64, unique=True, default=new_idempotency_key)
    external_id = models.CharField(_("provider id"), max_length=64, blank=True)
    # Point: the payment behind the terminal's payment intent (external_id is the intent).
    provider_payment_id = models.CharField(_("provider payment id"), max_length=64, blank=True)
    provider_status = models.CharField(_("provider status"), max_length=40, blank=True)
    qr_code = models.TextField(_("PIX copia e cola"), blank=True)
    ticket_url = models.URLField(_("provider payment page"), max_length=500, blank=True)
    expires_at = models.DateTimeField(_("expires at"))

    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)
    failed_at = models.DateTimeField(_("failed at"), null=True, blank=True)
    canceled_at = models.DateTimeField(_("canceled at"), null=True, blank=True)
    refunded_at = models.DateTimeField(_("refunded at"), null=True, blank=True)

    confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("confirmed by"),
    )
    amount_received = models.DecimalField(_("cash received (R$)"), null=True, blank=True, **money)
    refunded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("refunded by"),
    )
    refund_reason = models.CharField(_("refund reason"), max_length=200, blank=True)
    refund_external_id = models.CharField(_("provider refund id"), max_length=64, blank=True)
    # Something a manager must look at: money for a cancelled ticket, a wrong amount…
    needs_attention = models.BooleanField(_("needs attention"), default=False)
    attention_note = models.TextField(_("attention note"), blank=True)

    history = HistoricalRecords()
    objects = TenantQuerySet.as_manager()

    class Meta:
        verbose_name = _("payment session")
        verbose_name_plural = _("payment sessions")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=S.values), name="session_status_valid"),
            models.CheckConstraint(
                condition=Q(method__in=Method.values), name="session_method_valid"
            ),
            models.CheckConstraint(
                condition=Q(provider__in=Provider.values), name="session_provider_valid"
            ),
            models.CheckConstraint(condition=Q(amount__gte=0), name="session_amount_not_negative"),
            # The last guard against charging a ticket twice, whatever races above it.
            models.UniqueConstraint(
                fields=["ticket"], condition=Q(status=S.PAID), name="session_one_paid_per_ticket"
            ),
            # A provider's payment belongs to one session; also the webhook's lookup key.
            models.UniqueConstraint(
                fields=["provider", "external_id"],
                condition=~Q(external_id=""),
                name="session_external_id_unique",
            ),
        ]
        indexes = [
            # The expiry command: pending sessions past their time, oldest first.
            models.Index(
                fields=["expires_at"], condition=Q(status=S.PENDING), name="session_pending_expiry"
            ),
            # Admin and the day's reconciliation: a tenant's sessions by status and day.
            models.Index(fields=["tenant", "status", "created_at"], name="session_tenant_status"),
            models.Index(
                fields=["tenant"], condition=Q(needs_attention=True), name="session_attention"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.get_method_display()} {self.ticket}"

    @property
    def change_given(self) -> Decimal | None:
        if self.amount_received is None:
            return None
        return self.amount_received - self.amount

    def flag(self, note: str) -> None:
        """Mark for a manager with a dated note (the caller saves)."""
        stamp = timezone.now().strftime("%Y-%m-%d %H:%M:%S UTC")
        self.needs_attention = True
        self.attention_note = f"{self.attention_note}\n[{stamp}] {note}".strip()


def change_session_status(
    session: PaymentSession, target: str, *, user=None, reason: str = "", **changes
) -> None:
    """Move `session` to `target` if the table allows it; stamp; record who and why.

    `changes` are other fields saved with it. The caller holds the session's row lock (and the
    ticket's, taken first) inside a transaction.
    """
    current = session.status
    if target not in SESSION_TRANSITIONS[current]:
        raise InvalidTransition.between(
            SessionStatus,
            current,
            target,
            _("Payment #%(id)s cannot go from “%(current)s” to “%(target)s”."),
            id=session.pk,
        )
    session.status = target
    setattr(session, SESSION_STAMPS[target], timezone.now())
    for field, value in changes.items():
        setattr(session, field, value)
    session._history_user = user if user is not None and user.is_authenticated else None
    session._change_reason = reason[:100] if reason else None
    session.save(update_fields=["status", SESSION_STAMPS[target], *changes])


class Notification(models.Model):
    """Every verified webhook we received, with what we did with it (audit and idempotency)."""

    class Outcome(models.TextChoices):
        RECEIVED = "received", _("Received")
        CONFIRMED = "confirmed", _("Confirmed a payment")
        UPDATED = "updated", _("Updated a payment")
        DUPLICATE = "duplicate", _("Nothing new")
        IGNORED = "ignored", _("Ignored")
        MISMATCH = "mismatch", _("Amount or currency did not match")
        LATE = "late", _("Money for a closed session")
        RETRY = "retry", _("Provider unreachable, asked to retry")

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    provider = models.CharField(_("provider"), max_length=16, choices=Provider.choices)
    kind = models.CharField(_("type"), max_length=60, blank=True)
    action = models.CharField(_("action"), max_length=60, blank=True)
    data_id = models.CharField(_("data id"), max_length=64, blank=True)
    request_id = models.CharField(_("request id"), max_length=100, blank=True)
    body = models.JSONField(_("body"), default=dict, blank=True)
    session = models.ForeignKey(
        PaymentSession,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="notifications",
        verbose_name=_("payment session"),
    )
    outcome = models.CharField(
        _("outcome"), max_length=10, choices=Outcome.choices, default=Outcome.RECEIVED
    )
    detail = models.CharField(_("detail"), max_length=300, blank=True)
    received_at = models.DateTimeField(_("received at"), default=timezone.now)

    objects = TenantQuerySet.as_manager()

    class Meta:
        verbose_name = _("provider notification")
        verbose_name_plural = _("provider notifications")
        ordering = ["-received_at"]
        indexes = [
            models.Index(fields=["tenant", "-received_at"], name="notification_recent"),
            models.Index(fields=["provider", "data_id"], name="notification_data_id"),
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.kind} {self.data_id}"


def new_receipt_code() -> str:
    # Short enough to read aloud at the counter; 40 bits of randomness, unique by index.
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "".join(secrets.choice(alphabet) for _ in range(8))


class Receipt(models.Model):
    """What was paid, frozen at confirmation: itemised content and the printable text."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    session = models.OneToOneField(PaymentSession, on_delete=models.PROTECT, related_name="receipt")
    code = models.CharField(_("code"), max_length=12, unique=True, default=new_receipt_code)
    content = models.JSONField(_("content"))
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    # The sale's NFS-e once authorized, written by the fiscal app (above payments; it owns
    # the request): the receipt page, its PDF and a reprint show it. Outside `content`,
    # which stays as frozen at payment.
    nfse_number = models.CharField(_("NFS-e number"), max_length=20, blank=True)
    nfse_url = models.URLField(_("NFS-e page"), max_length=500, blank=True)
    nfse_cancelled = models.BooleanField(_("NFS-e cancelled"), default=False)

    objects = TenantQuerySet.as_manager()

    class Meta:
        verbose_name = _("receipt")
        verbose_name_plural = _("receipts")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.code
