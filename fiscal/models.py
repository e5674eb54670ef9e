"""Per-tenant fiscal settings, the service codes per service, and the NFS-e requests.

An `Invoice` is one NFS-e Totem asks a provider for: one or more paid sales (`InvoiceItem`,
one per payment session and service code) of one tenant. Its state machine is one table
(`INVOICE_TRANSITIONS`) beside it; every status change goes through `change_invoice_status`.
The operations (enqueue, send, poll, apply a webhook, cancel) live in `fiscal/issuing.py`.
"""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from payments.models import PaymentSession
from tenants.br import normalize_cnpj
from tenants.crypto import EncryptedCharField
from tenants.errors import InvalidTransition
from tenants.history import HistoricalRecords
from tenants.models import Tenant, TenantQuerySet
from tickets.models import Service

money = {"max_digits": 10, "decimal_places": 2, "validators": [MinValueValidator(Decimal("0"))]}

# LC 116/2003's list: item and sub-item, "06.02" (the national code's first four digits).
LC116_ITEM = RegexValidator(
    r"^\d{2}\.\d{2}\Z", _("Type the item of the service list as 06.02 (item.sub-item).")
)
# Código de tributação nacional: six digits, item + sub-item + desdobro ("060201").
NATIONAL_CODE = RegexValidator(
    r"^\d{6}\Z", _("Type the national taxation code with its six digits, e.g. 060201.")
)
IBGE_CODE = RegexValidator(r"^\d{7}\Z", _("Type the municipality's seven-digit IBGE code."))
# LC 116/2003 art. 8-A: ISS at least 2%; art. 8, II: at most 5%.
ISS_RATE = [
    MinValueValidator(Decimal("2.00"), _("The ISS rate is at least 2%% (LC 116/2003, art. 8-A).")),
    MaxValueValidator(Decimal("5.00"), _("The ISS rate is at most 5%% (LC 116/2003, art. 8).")),
]


class FiscalProvider(models.TextChoices):
    FOCUSNFE = "focusnfe", _("Focus NFe (national NFS-e)")
    MANUAL = "manual", _("Manual (issued outside Totem, number typed in admin)")


class Environment(models.TextChoices):
    SANDBOX = "homologacao", _("Sandbox (homologação, no fiscal value)")
    PRODUCTION = "producao", _("Production")


class IssueMode(models.TextChoices):
    PER_SALE = "per_sale", _("One NFS-e per sale")
    DAILY = "daily", _("One NFS-e per customer per day (where the municipality allows)")


class SimplesNacional(models.IntegerChoices):
    """codigo_opcao_simples_nacional of the DPS."""

    NOT_OPTING = 1, _("Not in the Simples Nacional")
    MEI = 2, _("MEI")
    ME_EPP = 3, _("ME/EPP in the Simples Nacional")


class FiscalSettings(models.Model):
    """How a tenant issues NFS-e. The token and the webhook secret are never shown back."""

    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, related_name="fiscal_settings")
    enabled = models.BooleanField(
        _("issue NFS-e"),
        default=False,
        help_text=_("Sales paid from the moment this is switched on get an NFS-e."),
    )
    # Set when `enabled` is switched on: sales paid before are never invoiced by Totem.
    enabled_since = models.DateTimeField(_("issuing since"), null=True, blank=True)
    provider = models.CharField(
        _("provider"), max_length=16, choices=FiscalProvider.choices, default=FiscalProvider.MANUAL
    )
    environment = models.CharField(
        _("environment"), max_length=12, choices=Environment.choices, default=Environment.SANDBOX
    )
    api_token = EncryptedCharField(_("provider API token"), max_length=200, blank=True)
    webhook_secret = EncryptedCharField(
        _("webhook secret"),
        max_length=200,
        blank=True,
        help_text=_(
            "The value registered as “authorization” in the provider's webhook (gatilho); "
            "a notification without it is refused."
        ),
    )
    # Stored as its 14 digits (the admin form normalizes what was typed); check digits verified.
    cnpj = models.CharField(_("CNPJ"), max_length=14, blank=True, validators=[normalize_cnpj])
    legal_name = models.CharField(_("legal name"), max_length=150, blank=True)
    municipal_registration = models.CharField(
        _("municipal registration"), max_length=20, blank=True
    )
    municipality_code = models.CharField(
        _("municipality (IBGE code)"), max_length=7, blank=True, validators=[IBGE_CODE]
    )
    simples_nacional = models.PositiveSmallIntegerField(
        _("Simples Nacional"), choices=SimplesNacional.choices, default=SimplesNacional.ME_EPP
    )
    iss_rate = models.DecimalField(
        _("ISS rate (%)"),
        max_digits=4,
        decimal_places=2,
        default=Decimal("2.00"),
        validators=ISS_RATE,
    )
    lc116_item = models.CharField(
        _("default service-list item (LC 116)"), max_length=5, blank=True, validators=[LC116_ITEM]
    )
    national_code = models.CharField(
        _("default national taxation code"),
        max_length=6,
        blank=True,
        validators=[NATIONAL_CODE],
        help_text=_("Used for services without their own code, and for extras."),
    )
    issue_mode = models.CharField(
        _("issue"), max_length=10, choices=IssueMode.choices, default=IssueMode.PER_SALE
    )
    cancel_window_days = models.PositiveSmallIntegerField(
        _("cancellation window (days)"),
        default=30,
        validators=[MinValueValidator(1)],
        help_text=_(
            "How long after issue the municipality lets an NFS-e be cancelled; a refund after "
            "that alerts a person instead. Ask your accountant."
        ),
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    history = HistoricalRecords(excluded_fields=["api_token", "webhook_secret", "updated_at"])
    objects = TenantQuerySet.as_manager()

    class Meta:
        verbose_name = _("fiscal settings")
        verbose_name_plural = _("fiscal settings")
        constraints = [
            models.CheckConstraint(
                condition=Q(iss_rate__gte=Decimal("2.00"), iss_rate__lte=Decimal("5.00")),
                name="fiscal_iss_rate_range",
            ),
            models.CheckConstraint(
                condition=Q(provider__in=FiscalProvider.values), name="fiscal_provider_valid"
            ),
        ]

    def __str__(self) -> str:
        return str(self.tenant)

    def save(self, *args, **kwargs) -> None:
        # Switched on: sales paid from now on are invoiced; switched off and on again, the
        # sales in between are not (the studio issued them elsewhere).
        if self.enabled and self.enabled_since is None:
            self.enabled_since = timezone.now()
        elif not self.enabled:
            self.enabled_since = None
        super().save(*args, **kwargs)

    def clean(self) -> None:
        if not self.enabled:
            return
        missing = [
            str(self._meta.get_field(name).verbose_name)
            for name in ("cnpj", "municipality_code", "national_code")
            if not getattr(self, name)
        ]
        if self.provider == FiscalProvider.FOCUSNFE and not self.api_token:
            missing.append(str(self._meta.get_field("api_token").verbose_name))
        if missing:
            raise ValidationError(
                _("To issue NFS-e, fill in: %(fields)s.") % {"fields": ", ".join(missing)}
            )


class ServiceTaxCode(models.Model):
    """A service's own codes, where it differs from the tenant's default."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    service = models.OneToOneField(
        Service, on_delete=models.CASCADE, related_name="tax_code", verbose_name=_("service")
    )
    lc116_item = models.CharField(
        _("service-list item (LC 116)"), max_length=5, blank=True, validators=[LC116_ITEM]
    )
    national_code = models.CharField(
        _("national taxation code"), max_length=6, validators=[NATIONAL_CODE]
    )

    objects = TenantQuerySet.as_manager()

    class Meta:
        verbose_name = _("service tax code")
        verbose_name_plural = _("service tax codes")

    def __str__(self) -> str:
        return f"{self.service} · {self.national_code}"


class InvoiceStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    PROCESSING = "processing", _("Processing at the provider")
    AUTHORIZED = "authorized", _("Authorized")
    ERROR = "error", _("Error")
    CANCELLED = "cancelled", _("Cancelled")
    # Refunded before it was sent: no NFS-e exists and none is owed.
    DROPPED = "dropped", _("Not issued (refunded before)")


St = InvoiceStatus
INVOICE_TRANSITIONS: dict[str, frozenset[str]] = {
    # queued -> authorized: a number typed by hand (manual provider).
    St.QUEUED: frozenset({St.PROCESSING, St.ERROR, St.AUTHORIZED, St.DROPPED}),
    # processing -> queued: the provider did not take it after all; sent again, same ref.
    St.PROCESSING: frozenset({St.AUTHORIZED, St.ERROR, St.QUEUED}),
    # error -> queued: a person fixed the settings and asked to send again (the same
    # reference may be sent again after erro_autorizacao, Focus NFe's "Referência").
    St.ERROR: frozenset({St.QUEUED, St.DROPPED}),
    St.AUTHORIZED: frozenset({St.CANCELLED}),
    St.CANCELLED: frozenset(),
    St.DROPPED: frozenset(),
}
INVOICE_STAMPS = {
    St.PROCESSING: "sent_at",
    St.AUTHORIZED: "authorized_at",
    St.ERROR: "failed_at",
    St.CANCELLED: "cancelled_at",
    St.DROPPED: "cancelled_at",
}


class Invoice(models.Model):
    """One NFS-e requested from a provider for one or more paid sales of a tenant."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    provider = models.CharField(_("provider"), max_length=16, choices=FiscalProvider.choices)
    # Focus NFe's `ref`: unique per token, letters and digits only, never reused once
    # authorized ("Referência" in its API docs). Set from the primary key after insert.
    reference = models.CharField(_("reference"), max_length=40, blank=True)
    status = models.CharField(
        _("status"), max_length=12, choices=InvoiceStatus.choices, default=St.QUEUED
    )
    issue_mode = models.CharField(_("issue"), max_length=10, choices=IssueMode.choices)
    day = models.DateField(_("day of the sales"))
    # Who the NFS-e is for, for grouping a day's sales: the CPF when the customer asked for
    # it on the NFS-e, else the ticket ("" groups a day's unidentified sales).
    customer_key = models.CharField(max_length=40, blank=True)
    customer_name = models.CharField(_("customer"), max_length=80, blank=True)
    # Only when the customer asked for their CPF on the NFS-e (see fiscal/issuing.py).
    customer_cpf = models.CharField(_("CPF on the NFS-e"), max_length=11, blank=True)
    national_code = models.CharField(_("national taxation code"), max_length=6)
    lc116_item = models.CharField(_("service-list item"), max_length=5, blank=True)
    iss_rate = models.DecimalField(_("ISS rate (%)"), max_digits=4, decimal_places=2)
    amount = models.DecimalField(_("amount (R$)"), **money)
    description = models.CharField(_("description"), max_length=1000)

    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    # Failed calls in a row after sending (asking how it stands, cancelling): they space out
    # the next call (issuing.BACKOFF) and, past POLL_ALERT_AFTER, bring a person in.
    failures = models.PositiveSmallIntegerField(_("failed calls in a row"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"), default=timezone.now)
    provider_status = models.CharField(_("provider status"), max_length=40, blank=True)
    # The provider's own words on the last refusal or error, for the manager.
    provider_message = models.TextField(_("provider message"), blank=True)
    number = models.CharField(_("NFS-e number"), max_length=20, blank=True)
    verification_code = models.CharField(_("verification code"), max_length=60, blank=True)
    public_url = models.URLField(_("public page"), max_length=500, blank=True)
    pdf_url = models.URLField(_("PDF (DANFSe)"), max_length=500, blank=True)
    xml_url = models.URLField(_("XML"), max_length=500, blank=True)
    needs_attention = models.BooleanField(_("needs attention"), default=False)

    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    authorized_at = models.DateTimeField(_("authorized at"), null=True, blank=True)
    failed_at = models.DateTimeField(_("failed at"), null=True, blank=True)
    cancelled_at = models.DateTimeField(_("cancelled at"), null=True, blank=True)

    history = HistoricalRecords()
    objects = TenantQuerySet.as_manager()

    class Meta:
        verbose_name = _("NFS-e")
        verbose_name_plural = _("NFS-e")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=St.values), name="invoice_status_valid"),
            # The provider's reference is the idempotency key of a send: one per invoice.
            models.UniqueConstraint(
                fields=["provider", "reference"],
                condition=~Q(reference=""),
                name="invoice_reference_unique",
            ),
        ]
        indexes = [
            # The worker: what is due to be sent or asked about, oldest first.
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status__in=[St.QUEUED, St.PROCESSING]),
                name="invoice_due",
            ),
            # Admin and alerts: a tenant's invoices needing a person.
            models.Index(
                fields=["tenant"], condition=Q(needs_attention=True), name="invoice_attention"
            ),
        ]

    def __str__(self) -> str:
        return self.number or self.reference or f"#{self.pk}"


class InvoiceItem(models.Model):
    """One paid sale's part of an invoice (one payment session under one service code)."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="items")
    # SET_NULL: the retention purge deletes year-old tickets and their payments, while the
    # NFS-e record (kept five years, like the document) stays with its description and amount.
    session = models.ForeignKey(
        PaymentSession,
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
        verbose_name=_("payment"),
    )
    description = models.CharField(_("description"), max_length=300)
    amount = models.DecimalField(_("amount (R$)"), **money)

    class Meta:
        verbose_name = _("NFS-e item")
        verbose_name_plural = _("NFS-e items")
        constraints = [
            # The outbox's memory: a sale's part under a code is invoiced once, whatever
            # two workers scanning at once do.
            models.UniqueConstraint(fields=["session", "invoice"], name="invoice_item_once"),
        ]

    def __str__(self) -> str:
        return self.description


def change_invoice_status(invoice: Invoice, target: str, *, reason: str = "", **changes) -> None:
    """Move `invoice` to `target` if the table allows it; stamp; record why in the history.

    The caller holds the invoice's row lock inside a transaction.
    """
    current = invoice.status
    if target not in INVOICE_TRANSITIONS[current]:
        raise InvalidTransition.between(
            InvoiceStatus,
            current,
            target,
            _("NFS-e #%(id)s cannot go from “%(current)s” to “%(target)s”."),
            id=invoice.pk,
        )
    invoice.status = target
    fields = ["status", *changes]
    if target in INVOICE_STAMPS:
        setattr(invoice, INVOICE_STAMPS[target], timezone.now())
        fields.append(INVOICE_STAMPS[target])
    for field, value in changes.items():
        setattr(invoice, field, value)
    invoice._change_reason = reason[:100] if reason else None
    invoice.save(update_fields=fields)
