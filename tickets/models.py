"""Catalog (services, extras) and tickets with their per-service lines.

Two state machines live here, each as one table beside its model: the ticket's
(`TICKET_TRANSITIONS`) and the service line's (`LINE_TRANSITIONS`). Every status change goes
through `change_ticket_status` or `change_line_status`; no other code assigns `status`.
"""

from __future__ import annotations

import secrets
from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import F, Q
from django.db.models.expressions import RawSQL
from django.db.models.lookups import Exact, In
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from customers.models import Customer, first_name
from tenants.br import mask_cpf, mask_phone
from tenants.errors import InvalidTransition
from tenants.history import HistoricalRecords
from tenants.images import SERVICE_SIZE, PictureField
from tenants.models import SoftDeleteQuerySet, Tenant, TenantQuerySet

money = {"max_digits": 10, "decimal_places": 2, "validators": [MinValueValidator(Decimal("0"))]}
prefix_validator = RegexValidator(r"^[A-Z]{1,3}$", _("One to three capital letters."))


class CatalogQuerySet(SoftDeleteQuerySet, TenantQuerySet):
    def sellable(self) -> CatalogQuerySet:
        return self.alive().filter(is_active=True)


def status_is(model: type[models.Model], *statuses: str) -> Exact | In:
    """`status = '…'` (or `status IN ('…', …)` for several) of a `model` query with the values
    written into the statement, not bound as parameters (the column keeps the query's alias:
    it works in a subquery too).

    Reads run as prepared statements (config/settings.py), and a generic plan cannot tell a
    rare status from a common one, nor prove a partial index's condition from a parameter:
    the panel's pending tickets walked ticket_tenant_recent over a year (~200 ms a render),
    and the TV's waiting count seq-scanned every line ever sold instead of counting
    line_queue_order (bench/README.md, fifth and sixth rounds). With the values in the text
    the generic plan is the good one, and PostgreSQL keeps it instead of planning the
    statement again on every run (the panel's reads with bound statuses were planned on each
    render: ~6 ms of its backend's CPU over a year, seventh round). The values must be
    choices of the field (ValueError otherwise), so no input reaches the SQL.
    """
    field = model._meta.get_field("status")
    choices = {value for value, _label in field.choices}
    if not statuses or not choices.issuperset(statuses):
        raise ValueError(f"{statuses!r} are not statuses of {model.__name__}")
    text = ", ".join(f"'{status}'" for status in statuses)
    if len(statuses) == 1:
        return Exact(F("status"), RawSQL(text, (), output_field=field))
    return In(F("status"), RawSQL(text, (), output_field=field))


class Service(models.Model):
    tenant = models.ForeignKey(
        Tenant, on_delete=models.PROTECT, related_name="services", verbose_name=_("company/branch")
    )
    name = models.CharField(_("name"), max_length=120)
    description = models.TextField(_("description"), blank=True)
    picture = PictureField(
        _("picture"),
        upload_to="services/",
        blank=True,
        max_size=SERVICE_SIZE,
        width_field="picture_width",
        height_field="picture_height",
        help_text=_("Optional; JPEG, PNG or WebP. Without one the kiosk draws an illustration."),
    )
    # Kept by the ImageField on upload: the kiosk's <img> carries its size without opening it.
    picture_width = models.PositiveIntegerField(null=True, blank=True, editable=False)
    picture_height = models.PositiveIntegerField(null=True, blank=True, editable=False)
    price = models.DecimalField(_("price (R$)"), **money)
    duration_minutes = models.PositiveSmallIntegerField(
        _("expected duration (min)"), validators=[MinValueValidator(1)]
    )
    hard_maximum = models.BooleanField(
        _("session length is a hard maximum"),
        default=False,
        help_text=_(
            "E.g. cryotherapy: when the time is up the panel insists until the operator "
            "completes the session."
        ),
    )
    cooldown_minutes = models.PositiveSmallIntegerField(
        _("cool-down / cleaning (min)"),
        default=0,
        help_text=_("After each session nothing is called onto the device for this long."),
    )
    prefix = models.CharField(
        _("ticket prefix"), max_length=3, blank=True, validators=[prefix_validator]
    )
    display_order = models.PositiveSmallIntegerField(_("display order"), default=0)
    is_active = models.BooleanField(_("active"), default=True)
    # The average of its last completed services, kept by tickets.queue.complete so that
    # every screen showing a wait reads it instead of scanning history per service. Empty
    # until there are enough samples (the expected duration is used meanwhile).
    measured_duration_seconds = models.PositiveIntegerField(
        _("measured duration (s)"), null=True, blank=True, editable=False
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    deleted_at = models.DateTimeField(_("deleted at"), null=True, blank=True)

    history = HistoricalRecords(excluded_fields=["measured_duration_seconds"])
    objects = CatalogQuerySet.as_manager()

    class Meta:
        verbose_name = _("service")
        verbose_name_plural = _("services")
        ordering = ["tenant", "display_order", "name"]
        constraints = [
            models.CheckConstraint(condition=Q(price__gte=0), name="service_price_not_negative"),
        ]

    def __str__(self) -> str:
        return self.name


class Extra(models.Model):
    tenant = models.ForeignKey(
        Tenant, on_delete=models.PROTECT, related_name="extras", verbose_name=_("company/branch")
    )
    name = models.CharField(_("name"), max_length=120)
    price = models.DecimalField(_("price (R$)"), **money)
    stock = models.PositiveIntegerField(
        _("stock"), null=True, blank=True, help_text=_("Empty means unlimited.")
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    deleted_at = models.DateTimeField(_("deleted at"), null=True, blank=True)

    history = HistoricalRecords()
    objects = CatalogQuerySet.as_manager()

    class Meta:
        verbose_name = _("extra")
        verbose_name_plural = _("extras")
        ordering = ["tenant", "name"]
        constraints = [
            # Stock is decremented with an UPDATE … WHERE stock >= n; this is the last guard.
            models.CheckConstraint(
                condition=Q(stock__isnull=True) | Q(stock__gte=0), name="extra_stock_not_negative"
            ),
            models.CheckConstraint(condition=Q(price__gte=0), name="extra_price_not_negative"),
        ]

    def __str__(self) -> str:
        return self.name


class DailyCounter(models.Model):
    """The last ticket sequence issued per tenant and local day; locked to number tickets."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, verbose_name=_("company/branch"))
    day = models.DateField(_("day"))
    last = models.PositiveIntegerField(_("last number issued"), default=0)

    class Meta:
        verbose_name = _("daily counter")
        verbose_name_plural = _("daily counters")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "day"], name="daily_counter_one_per_day")
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.day}: {self.last}"


class Priority(models.TextChoices):
    """The priority class only — never the health reason behind it (LGPD art. 11).

    The class is what the operator needs to ask for the right document: an ID for 80+, the
    donation certificate (valid 120 days) for a blood donor, and for the other legal groups
    whatever the customer shows, which the operator sees and the system never keeps.
    """

    NORMAL = "normal", _("Normal")
    PRIORITY = "priority", _("Priority")
    PRIORITY_80 = "priority_80", _("Priority 80+")
    # Lei 14.626/2023 gave blood donors priority under Lei 10.048/2000, after every other group.
    BLOOD_DONOR = "blood_donor", _("Blood donor")

    @classmethod
    def rank(cls, value: str) -> int:
        """Queue order, 0 first: 80+ (Lei 13.466/2017), the other legal groups, blood donors,
        then everyone else. TicketLine.priority_rank keeps it (normal was 2 until blood donors
        took 2; migration `priority_blood_donors` renumbered the stored lines)."""
        return PRIORITY_RANKS.get(value, PRIORITY_RANKS[cls.NORMAL])


PRIORITY_RANKS: dict[str, int] = {
    Priority.PRIORITY_80: 0,
    Priority.PRIORITY: 1,
    Priority.BLOOD_DONOR: 2,
    Priority.NORMAL: 3,
}


class Channel(models.TextChoices):
    """Where a ticket was sold. A ticket sold from the phone is digital: the customer is not
    at the studio when it is paid, so it goes to the queue instead of the printer."""

    KIOSK = "kiosk", _("Kiosk")
    PHONE = "phone", _("Phone")
    API = "api", _("API")


class TicketStatus(models.TextChoices):
    PENDING_PAYMENT = "pending_payment", _("Awaiting payment")
    PAID = "paid", _("Paid")
    PRINTING = "printing", _("Printing")
    PRINT_ERROR = "print_error", _("Print error")
    IN_QUEUE = "in_queue", _("In queue")
    CALLED = "called", _("Called")
    IN_PROGRESS = "in_progress", _("In service")
    COMPLETED = "completed", _("Completed")
    CANCELLED = "cancelled", _("Cancelled")
    EXPIRED = "expired", _("Expired")


T = TicketStatus
TICKET_TRANSITIONS: dict[str, frozenset[str]] = {
    T.PENDING_PAYMENT: frozenset({T.PAID, T.CANCELLED}),
    # paid -> in_queue when the tenant prints nothing (digital ticket).
    T.PAID: frozenset({T.PRINTING, T.PRINT_ERROR, T.IN_QUEUE, T.CANCELLED}),
    T.PRINTING: frozenset({T.IN_QUEUE, T.PRINT_ERROR, T.CANCELLED}),
    T.PRINT_ERROR: frozenset({T.PRINTING, T.IN_QUEUE, T.CANCELLED}),
    # in_queue | called -> completed: the last open line was cancelled or missed while another
    # line of the ticket had been completed ("completed when every line is completed or
    # cancelled, with at least one completed"); without it such a ticket could never close.
    T.IN_QUEUE: frozenset({T.CALLED, T.EXPIRED, T.CANCELLED, T.COMPLETED}),
    T.CALLED: frozenset({T.IN_PROGRESS, T.IN_QUEUE, T.EXPIRED, T.CANCELLED, T.COMPLETED}),
    # -> in_queue | called: one service ended while another of the same ticket waits or is called.
    T.IN_PROGRESS: frozenset({T.COMPLETED, T.CANCELLED, T.IN_QUEUE, T.CALLED}),
    T.EXPIRED: frozenset({T.CALLED, T.CANCELLED}),
    T.COMPLETED: frozenset(),
    T.CANCELLED: frozenset(),
}
TICKET_STAMPS = {
    T.PAID: "paid_at",
    T.PRINTING: "printing_at",
    T.PRINT_ERROR: "print_error_at",
    T.IN_QUEUE: "queued_at",
    T.CALLED: "called_at",
    T.IN_PROGRESS: "started_at",
    T.COMPLETED: "completed_at",
    T.CANCELLED: "cancelled_at",
    T.EXPIRED: "expired_at",
}
# Colours for screens (seed 000's get_status_info): CSS colour names the templates use.
TICKET_COLOURS = {
    T.PENDING_PAYMENT: "#b45309",
    T.PAID: "#2563eb",
    T.PRINTING: "#7c3aed",
    T.PRINT_ERROR: "#dc2626",
    T.IN_QUEUE: "#0891b2",
    T.CALLED: "#ea580c",
    T.IN_PROGRESS: "#16a34a",
    T.COMPLETED: "#4b5563",
    T.CANCELLED: "#6b7280",
    T.EXPIRED: "#9ca3af",
}


class TicketQuerySet(TenantQuerySet):
    def open(self) -> TicketQuerySet:
        return self.exclude(status__in=[T.COMPLETED, T.CANCELLED])


def new_token() -> str:
    return secrets.token_urlsafe(24)


class Ticket(models.Model):
    tenant = models.ForeignKey(
        Tenant, on_delete=models.PROTECT, related_name="tickets", verbose_name=_("company/branch")
    )
    day = models.DateField(_("day"), help_text=_("The tenant's local day the number belongs to."))
    sequence = models.PositiveIntegerField(_("sequence"))
    number = models.CharField(_("number"), max_length=12)
    status = models.CharField(
        _("status"), max_length=20, choices=TicketStatus.choices, default=T.PENDING_PAYMENT
    )
    priority = models.CharField(
        _("priority"), max_length=16, choices=Priority.choices, default=Priority.NORMAL
    )
    # Also the column's default: the bench's and the year generator's raw INSERTs predate it.
    channel = models.CharField(
        _("sales channel"),
        max_length=8,
        choices=Channel.choices,
        default=Channel.KIOSK,
        db_default=Channel.KIOSK,
    )
    customer_name = models.CharField(_("name"), max_length=80)
    customer_cpf = models.CharField(_("CPF"), max_length=11, blank=True)
    customer_phone = models.CharField(_("phone"), max_length=11, blank=True)
    # Asked at the kiosk ("CPF na nota fiscal"): only then does the CPF go on the NFS-e; the
    # privacy consent covers finding the ticket, not tax documents.
    cpf_on_invoice = models.BooleanField(_("CPF on the invoice"), default=False)
    consent_version = models.CharField(_("consent version"), max_length=20)
    # The customer record behind a ticket with CPF (customers.identity.remember); kept null
    # for a walk-in without CPF, and set null when the customer is erased (LGPD).
    customer = models.ForeignKey(
        Customer,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="tickets",
        verbose_name=_("customer"),
    )
    total = models.DecimalField(_("total (R$)"), **money)
    # Unguessable: the customer's phone follows the ticket with it, without logging in.
    token = models.CharField(max_length=40, unique=True, default=new_token, editable=False)
    # A kiosk sends one key per purchase, so a double tap cannot create two tickets.
    idempotency_key = models.CharField(max_length=64, blank=True)

    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)
    printing_at = models.DateTimeField(_("printing at"), null=True, blank=True)
    print_error_at = models.DateTimeField(_("print error at"), null=True, blank=True)
    queued_at = models.DateTimeField(_("queued at"), null=True, blank=True)
    called_at = models.DateTimeField(_("called at"), null=True, blank=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)
    cancelled_at = models.DateTimeField(_("cancelled at"), null=True, blank=True)
    expired_at = models.DateTimeField(_("expired at"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    operator_notes = models.TextField(_("operator notes"), blank=True)
    cancellation_reason = models.CharField(_("cancellation reason"), max_length=200, blank=True)
    print_attempts = models.PositiveSmallIntegerField(_("print attempts"), default=0)
    reactivation_count = models.PositiveSmallIntegerField(_("reactivations"), default=0)

    history = HistoricalRecords(excluded_fields=["updated_at"])
    objects = TicketQuerySet.as_manager()

    class Meta:
        verbose_name = _("ticket")
        verbose_name_plural = _("tickets")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "day", "number"], name="ticket_number_per_day"
            ),
            models.UniqueConstraint(
                fields=["tenant", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="ticket_idempotency_key",
            ),
            models.CheckConstraint(condition=Q(status__in=T.values), name="ticket_status_valid"),
            models.CheckConstraint(
                condition=Q(priority__in=Priority.values), name="ticket_priority_valid"
            ),
        ]
        indexes = [
            # Seed 003 §7: the panel and the expiry command filter by tenant and status, by age.
            # Whole, not partial on the open statuses: the panel's lists run as prepared
            # statements, and a generic plan cannot prove a partial index's condition from a
            # bound status. Made partial, over a year of tickets PostgreSQL chose to walk
            # ticket_tenant_recent instead: 134 ms of its CPU per panel render (bench/README.md).
            models.Index(fields=["tenant", "status", "created_at"], name="ticket_tenant_status"),
            models.Index(fields=["tenant", "-created_at"], name="ticket_tenant_recent"),
            models.Index(fields=["customer_cpf"], name="ticket_cpf"),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def cpf_masked(self) -> str:
        return mask_cpf(self.customer_cpf)

    @property
    def phone_masked(self) -> str:
        return mask_phone(self.customer_phone)

    @property
    def first_name(self) -> str:
        return first_name(self.customer_name)

    @property
    def status_colour(self) -> str:
        return TICKET_COLOURS[self.status]


class LineStatus(models.TextChoices):
    WAITING = "waiting", _("Waiting")
    CALLED = "called", _("Called")
    IN_PROGRESS = "in_progress", _("In service")
    COMPLETED = "completed", _("Completed")
    CANCELLED = "cancelled", _("Cancelled")
    NO_SHOW = "no_show", _("No-show")
    EXPIRED = "expired", _("Expired")


L = LineStatus
LINE_TRANSITIONS: dict[str, frozenset[str]] = {
    # waiting -> no_show: the ticket expired (too old, or left from another day) before its turn.
    L.WAITING: frozenset({L.CALLED, L.CANCELLED, L.NO_SHOW}),
    # called -> waiting: sent back to the queue; called -> no_show: nobody came.
    L.CALLED: frozenset({L.IN_PROGRESS, L.WAITING, L.NO_SHOW, L.CANCELLED}),
    L.IN_PROGRESS: frozenset({L.COMPLETED, L.CANCELLED}),
    # no_show -> called: the customer turned up late and is called again (reactivation);
    # no_show -> expired: the tenant's reactivation window (or the day) ended first.
    L.NO_SHOW: frozenset({L.CALLED, L.CANCELLED, L.EXPIRED}),
    L.COMPLETED: frozenset(),
    L.CANCELLED: frozenset(),
    L.EXPIRED: frozenset(),
}
LINE_STAMPS = {
    L.WAITING: "queued_at",
    L.CALLED: "called_at",
    L.IN_PROGRESS: "started_at",
    L.COMPLETED: "completed_at",
    L.CANCELLED: "cancelled_at",
    L.NO_SHOW: "no_show_at",
    L.EXPIRED: "expired_at",
}
LINE_COLOURS = {
    L.WAITING: "#0891b2",
    L.CALLED: "#ea580c",
    L.IN_PROGRESS: "#16a34a",
    L.COMPLETED: "#4b5563",
    L.CANCELLED: "#6b7280",
    L.NO_SHOW: "#9ca3af",
    L.EXPIRED: "#9ca3af",
}
LINE_ACTIVE = (L.CALLED, L.IN_PROGRESS)


class TicketLine(models.Model):
    """One service of a ticket, queued, called and served on its own."""

    tenant = models.ForeignKey(
        Tenant, on_delete=models.PROTECT, related_name="+", verbose_name=_("company/branch")
    )
    ticket = models.ForeignKey(
        Ticket, on_delete=models.CASCADE, related_name="lines", verbose_name=_("ticket")
    )
    service = models.ForeignKey(
        Service, on_delete=models.PROTECT, related_name="lines", verbose_name=_("service")
    )
    status = models.CharField(
        _("status"), max_length=20, choices=LineStatus.choices, default=L.WAITING
    )
    # Copied from the ticket so the queue is ordered by one index on this table alone.
    priority_rank = models.PositiveSmallIntegerField(default=PRIORITY_RANKS[Priority.NORMAL])
    # CPF when given, else the ticket's token: "the same customer" for the one-at-a-time rule.
    customer_key = models.CharField(max_length=40)
    price = models.DecimalField(_("price (R$)"), **money)
    position = models.PositiveSmallIntegerField(default=0)
    equipment = models.ForeignKey(
        "equipment.Equipment",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="lines",
        verbose_name=_("equipment"),
    )
    operator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("operator"),
    )
    call_count = models.PositiveSmallIntegerField(_("calls"), default=0)
    # Null until the ticket first reaches the queue; then the line's place in its queue.
    queued_at = models.DateTimeField(_("queued at"), null=True, blank=True)
    called_at = models.DateTimeField(_("called at"), null=True, blank=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)
    cancelled_at = models.DateTimeField(_("cancelled at"), null=True, blank=True)
    no_show_at = models.DateTimeField(_("no-show at"), null=True, blank=True)
    expired_at = models.DateTimeField(_("expired at"), null=True, blank=True)
    duration_seconds = models.PositiveIntegerField(_("duration (s)"), null=True, blank=True)
    # The session's planned end, fixed when it starts (tickets.devices.session_fields): every
    # screen counts down to this server time, so a reload or a clock that is off changes
    # nothing, nor does a setting edited mid-session.
    session_ends_at = models.DateTimeField(_("session ends at"), null=True, blank=True)
    session_hard_maximum = models.BooleanField(_("hard maximum"), default=False)
    # The cool-down its device took after it (shortened when an operator ends it early):
    # the utilisation statistics read it.
    cooling_until = models.DateTimeField(_("device cooling until"), null=True, blank=True)
    cancellation_reason = models.CharField(_("cancellation reason"), max_length=200, blank=True)
    # Paid with a package session instead of money (its price is then 0): the panel's badge
    # and the printed "pacote". `credit` is the balance the session came from; it is empty
    # until a package bought on this same ticket is paid for (tickets/credits.py).
    covered = models.BooleanField(_("package session"), default=False)
    credit = models.ForeignKey(
        "PackageCredit",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="lines",
        verbose_name=_("package session from"),
    )

    # The table and its history keep the names of the model's first name, TicketService.
    history = HistoricalRecords(table_name="tickets_historicalticketservice")
    objects = TenantQuerySet.as_manager()

    class Meta:
        db_table = "tickets_ticketservice"
        verbose_name = _("ticket service")
        verbose_name_plural = _("ticket services")
        # ticket_id, not ticket: "ticket" would follow Ticket.ordering and join the tickets table
        # into every read of a ticket's lines.
        ordering = ["ticket_id", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["ticket", "service"], name="line_service_once_per_ticket"
            ),
            models.CheckConstraint(condition=Q(status__in=L.values), name="line_status_valid"),
            models.CheckConstraint(
                condition=Q(priority_rank__in=sorted(PRIORITY_RANKS.values())),
                name="line_priority_valid",
            ),
            # A device serves one line at a time, whatever the code above it does.
            models.UniqueConstraint(
                fields=["equipment"],
                condition=Q(status__in=LINE_ACTIVE),
                name="line_one_active_per_equipment",
            ),
            # The same customer is never in the same service twice at once.
            models.UniqueConstraint(
                fields=["service", "customer_key"],
                condition=Q(status__in=LINE_ACTIVE),
                name="line_customer_once_per_service",
            ),
        ]
        indexes = [
            # The claim query of call-next: WHERE service = ? AND status = 'waiting' AND
            # queued_at IS NOT NULL ORDER BY priority_rank, queued_at, id. Matching the ORDER BY
            # exactly lets PostgreSQL walk the index without sorting as the table grows.
            models.Index(
                fields=["service", "priority_rank", "queued_at", "id"],
                condition=Q(status=L.WAITING, queued_at__isnull=False),
                name="line_queue_order",
            ),
            # Average duration over recent completed lines of a service (estimated wait).
            models.Index(
                fields=["service", "-completed_at"],
                condition=Q(status=L.COMPLETED),
                name="line_recent_completed",
            ),
            models.Index(fields=["tenant", "status"], name="line_tenant_status"),
            # "Is this customer being served right now?" — call-next skips such customers.
            models.Index(
                fields=["customer_key"],
                condition=Q(status__in=LINE_ACTIVE),
                name="line_active_customer",
            ),
            # Queue statistics count a service's open lines without touching its history.
            models.Index(
                fields=["service", "status"],
                condition=Q(status__in=[L.WAITING, *LINE_ACTIVE]),
                name="line_open_by_service",
            ),
            # The interleave policy and today's average wait look at the recent calls.
            models.Index(
                fields=["service", "-called_at"],
                condition=Q(called_at__isnull=False),
                name="line_recent_calls",
            ),
            # The TV's calls of the day, newest first across its services (totem/views.py
            # todays_calls): in this order the read stops after the 32 it shows. By service
            # (line_recent_calls) it sorted the whole day in parallel workers, ~17 ms at the
            # end of a 2,000-call day.
            models.Index(
                fields=["tenant", "-called_at", "-id"],
                condition=Q(called_at__isnull=False),
                name="line_tenant_recent_calls",
            ),
            # A device's sessions of a day (ops/utilisation.py compute_devices, the dashboard's
            # live devices section), without walking its history.
            models.Index(
                fields=["equipment", "started_at"],
                condition=Q(started_at__isnull=False),
                name="line_device_sessions",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.ticket.number} · {self.service.name}"

    @property
    def status_colour(self) -> str:
        return LINE_COLOURS[self.status]


class TicketExtra(models.Model):
    tenant = models.ForeignKey(
        Tenant, on_delete=models.PROTECT, related_name="+", verbose_name=_("company/branch")
    )
    ticket = models.ForeignKey(
        Ticket, on_delete=models.CASCADE, related_name="extras", verbose_name=_("ticket")
    )
    extra = models.ForeignKey(
        Extra, on_delete=models.PROTECT, related_name="sold", verbose_name=_("extra")
    )
    quantity = models.PositiveSmallIntegerField(_("quantity"), validators=[MinValueValidator(1)])
    unit_price = models.DecimalField(_("unit price (R$)"), **money)

    objects = TenantQuerySet.as_manager()

    class Meta:
        verbose_name = _("ticket extra")
        verbose_name_plural = _("ticket extras")
        constraints = [
            models.UniqueConstraint(fields=["ticket", "extra"], name="ticket_extra_once"),
            models.CheckConstraint(condition=Q(quantity__gte=1), name="ticket_extra_quantity"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.extra}"

    @property
    def subtotal(self) -> Decimal:
        return self.unit_price * self.quantity


# --- packages and memberships ------------------------------------------------------------


class PackageKind(models.TextChoices):
    PACKAGE = "package", _("Session package")
    # The same mechanism with an allowance that a renewal gives again for the next period.
    MEMBERSHIP = "membership", _("Membership (renewed each period)")


class Package(models.Model):
    """What a studio sells ahead: N sessions of some services, valid for some days."""

    tenant = models.ForeignKey(
        Tenant, on_delete=models.PROTECT, related_name="packages", verbose_name=_("company/branch")
    )
    name = models.CharField(_("name"), max_length=120)
    kind = models.CharField(
        _("kind"), max_length=16, choices=PackageKind.choices, default=PackageKind.PACKAGE
    )
    price = models.DecimalField(_("price (R$)"), **money)
    validity_days = models.PositiveSmallIntegerField(
        _("valid for (days)"),
        validators=[MinValueValidator(1)],
        help_text=_("From the sale; for a membership, the length of one period."),
    )
    shareable = models.BooleanField(
        _("shareable"),
        default=False,
        help_text=_(
            "The buyer may name other CPFs at the counter; their sessions at the kiosk may "
            "come from this package too."
        ),
    )
    is_active = models.BooleanField(_("on sale"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    deleted_at = models.DateTimeField(_("deleted at"), null=True, blank=True)

    history = HistoricalRecords()
    objects = CatalogQuerySet.as_manager()

    class Meta:
        verbose_name = _("package")
        verbose_name_plural = _("packages")
        ordering = ["tenant", "name"]
        constraints = [
            models.CheckConstraint(condition=Q(price__gte=0), name="package_price_not_negative"),
            models.CheckConstraint(condition=Q(validity_days__gte=1), name="package_validity"),
            models.CheckConstraint(
                condition=Q(kind__in=PackageKind.values), name="package_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class PackageService(models.Model):
    """A service a package covers and how many sessions of it (per period, for a membership)."""

    package = models.ForeignKey(
        Package, on_delete=models.CASCADE, related_name="items", verbose_name=_("package")
    )
    service = models.ForeignKey(
        Service, on_delete=models.PROTECT, related_name="+", verbose_name=_("service")
    )
    # Blank: unlimited (a membership "as much as you like, up to N a day"): then per_day is set.
    sessions = models.PositiveSmallIntegerField(
        _("sessions"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text=_("Blank: unlimited within the daily limit."),
    )
    per_day = models.PositiveSmallIntegerField(
        _("at most per day"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text=_("Blank: no daily limit."),
    )

    class Meta:
        verbose_name = _("service of the package")
        verbose_name_plural = _("services of the package")
        constraints = [
            models.UniqueConstraint(fields=["package", "service"], name="package_service_once"),
            models.CheckConstraint(condition=Q(sessions__gte=1), name="package_sessions"),
            models.CheckConstraint(condition=Q(per_day__gte=1), name="package_per_day"),
            # Unlimited needs a daily limit: "unlimited" without one is not something we sell.
            models.CheckConstraint(
                condition=Q(sessions__isnull=False) | Q(per_day__isnull=False),
                name="package_sessions_or_daily_limit",
            ),
        ]

    def __str__(self) -> str:
        if self.sessions is None:
            return _("%(service)s: unlimited, %(n)s a day") % {
                "service": self.service,
                "n": self.per_day,
            }
        return f"{self.sessions} × {self.service}"


class CustomerPackageQuerySet(TenantQuerySet):
    def live(self, now=None) -> CustomerPackageQuerySet:
        now = now or timezone.now()
        return self.filter(valid_from__lte=now, valid_until__gt=now)


class CustomerPackage(models.Model):
    """A package sold to a customer: its sessions, per service, in PackageCredit.

    Kept after it expires (its history is the customer's), and after the customer is erased
    (LGPD), then without the customer: it is a sale.
    """

    tenant = models.ForeignKey(
        Tenant, on_delete=models.PROTECT, related_name="+", verbose_name=_("company/branch")
    )
    customer = models.ForeignKey(
        Customer,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="packages",
        verbose_name=_("customer"),
    )
    package = models.ForeignKey(
        Package, on_delete=models.PROTECT, related_name="sold", verbose_name=_("package")
    )
    price = models.DecimalField(_("price paid (R$)"), **money)
    valid_from = models.DateTimeField(_("valid from"))
    valid_until = models.DateTimeField(_("valid until"))
    # Sold at the kiosk: the ticket that paid for it. At the counter: who sold it.
    ticket = models.ForeignKey(
        Ticket,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("sold on ticket"),
    )
    sold_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("sold by"),
    )
    created_at = models.DateTimeField(_("sold at"), auto_now_add=True)

    objects = CustomerPackageQuerySet.as_manager()

    class Meta:
        verbose_name = _("customer's package")
        verbose_name_plural = _("customers' packages")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(valid_until__gt=F("valid_from")), name="customer_package_period"
            ),
        ]

    def __str__(self) -> str:
        return str(self.package)

    @property
    def is_live(self) -> bool:
        return self.valid_from <= timezone.now() < self.valid_until


class PackageSharing(models.Model):
    """Another CPF the owner of a shareable package named (at the counter): that person's
    sessions at the kiosk may come from this package too. Only the CPF is kept — they may
    have no customer record yet; the kiosk finds the package when they type it."""

    tenant = models.ForeignKey(
        Tenant, on_delete=models.PROTECT, related_name="+", verbose_name=_("company/branch")
    )
    customer_package = models.ForeignKey(
        CustomerPackage,
        on_delete=models.CASCADE,
        related_name="shared_with",
        verbose_name=_("package"),
    )
    # Canonical: 11 ASCII digits (tenants.br.normalize_cpf), as Customer.cpf.
    cpf = models.CharField(_("CPF"), max_length=11)
    added_at = models.DateTimeField(_("added at"), default=timezone.now)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("added by"),
    )

    class Meta:
        verbose_name = _("person the package is shared with")
        verbose_name_plural = _("people the package is shared with")
        constraints = [
            models.UniqueConstraint(
                fields=["customer_package", "cpf"], name="package_shared_once_per_cpf"
            ),
            models.CheckConstraint(condition=~Q(cpf=""), name="package_shared_with_a_cpf"),
        ]
        indexes = [
            # The kiosk's question for a CPF: which packages was I named on?
            models.Index(fields=["tenant", "cpf"], name="package_shared_by_cpf"),
        ]

    def __str__(self) -> str:
        return mask_cpf(self.cpf)


class PackageCredit(models.Model):
    """The sessions of one service left in a customer's package.

    `balance` is a column, not the sum of the ledger: a session is taken with one
    conditional UPDATE (… SET balance = balance - 1 WHERE balance >= 1) whose row count says
    whether it was there. PostgreSQL re-checks that WHERE on the row as the first writer left
    it, and SQLite writes one at a time, so two kiosks can never both take the last session;
    the CHECK below is the last guard. A sum over ledger rows could not be guarded: two
    inserts would each see the same sum. The ledger (CreditEntry) tells how it got there.
    """

    tenant = models.ForeignKey(
        Tenant, on_delete=models.PROTECT, related_name="+", verbose_name=_("company/branch")
    )
    customer_package = models.ForeignKey(
        CustomerPackage,
        on_delete=models.CASCADE,
        related_name="credits",
        verbose_name=_("package"),
    )
    service = models.ForeignKey(
        Service, on_delete=models.PROTECT, related_name="+", verbose_name=_("service")
    )
    # Both null: unlimited within `per_day` (a membership's "up to N a day").
    granted = models.PositiveSmallIntegerField(_("sessions bought"), null=True, blank=True)
    balance = models.IntegerField(_("sessions left"), null=True, blank=True)
    # The daily limit, counted like the balance: `used_that_day` sessions on `used_on` (the
    # studio's date), moved by the same conditional UPDATE that takes a session (spend), so
    # two kiosks never pass the limit either; the CHECK below is the last guard.
    per_day = models.PositiveSmallIntegerField(_("at most per day"), null=True, blank=True)
    used_on = models.DateField(_("last day used"), null=True, blank=True)
    used_that_day = models.PositiveSmallIntegerField(_("used that day"), default=0)

    objects = TenantQuerySet.as_manager()

    class Meta:
        verbose_name = _("package sessions")
        verbose_name_plural = _("package sessions")
        constraints = [
            models.UniqueConstraint(
                fields=["customer_package", "service"], name="credit_one_per_service"
            ),
            models.CheckConstraint(condition=Q(balance__gte=0), name="credit_balance_not_negative"),
            models.CheckConstraint(
                condition=Q(per_day__isnull=True) | Q(used_that_day__lte=F("per_day")),
                name="credit_within_daily_limit",
            ),
            models.CheckConstraint(
                condition=Q(balance__isnull=False) | Q(per_day__isnull=False),
                name="credit_counted_or_daily_limited",
            ),
        ]

    def __str__(self) -> str:
        if self.balance is None:
            return f"{self.service}: ∞ ({self.per_day}/d)"
        return f"{self.service}: {self.balance}/{self.granted}"

    def left_on(self, day) -> int:
        """Sessions that may still be taken on `day` (the studio's date)."""
        left = self.balance if self.balance is not None else self.per_day
        if self.per_day is not None:
            used = self.used_that_day if self.used_on == day else 0
            left = min(left, self.per_day - used)
        return max(left, 0)


class CreditKind(models.TextChoices):
    GRANTED = "granted", _("Bought")
    SPENT = "spent", _("Used")
    RETURNED = "returned", _("Given back")
    ADJUSTED = "adjusted", _("Adjusted by a manager")
    # Erasure (LGPD) or the package's money refunded: the entry's reason says which.
    FORFEITED = "forfeited", _("Closed")


class CreditEntry(models.Model):
    """One movement of a package's sessions; written once, never changed (the ledger)."""

    tenant = models.ForeignKey(
        Tenant, on_delete=models.PROTECT, related_name="+", verbose_name=_("company/branch")
    )
    credit = models.ForeignKey(
        PackageCredit, on_delete=models.CASCADE, related_name="entries", verbose_name=_("sessions")
    )
    kind = models.CharField(_("kind"), max_length=16, choices=CreditKind.choices)
    change = models.SmallIntegerField(_("change"))
    # Null for an unlimited plan's movements: there is no count to be left.
    balance_after = models.IntegerField(_("left after"), null=True, blank=True)
    line = models.ForeignKey(
        TicketLine,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("ticket service"),
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("user"),
    )
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("when"), default=timezone.now)

    objects = TenantQuerySet.as_manager()

    class Meta:
        verbose_name = _("session movement")
        verbose_name_plural = _("session movements")
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=CreditKind.values), name="credit_kind"),
            models.CheckConstraint(condition=Q(balance_after__gte=0), name="credit_after"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.change:+d}"


class TicketPackage(models.Model):
    """A package bought at the kiosk on a ticket: its sessions exist once the ticket is paid."""

    tenant = models.ForeignKey(
        Tenant, on_delete=models.PROTECT, related_name="+", verbose_name=_("company/branch")
    )
    ticket = models.ForeignKey(
        Ticket, on_delete=models.CASCADE, related_name="packages", verbose_name=_("ticket")
    )
    package = models.ForeignKey(
        Package, on_delete=models.PROTECT, related_name="+", verbose_name=_("package")
    )
    price = models.DecimalField(_("price (R$)"), **money)
    granted = models.OneToOneField(
        CustomerPackage,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("sessions given"),
    )

    objects = TenantQuerySet.as_manager()

    class Meta:
        verbose_name = _("package on a ticket")
        verbose_name_plural = _("packages on tickets")
        constraints = [
            models.UniqueConstraint(fields=["ticket", "package"], name="ticket_package_once"),
        ]

    def __str__(self) -> str:
        return str(self.package)


# --- the two transition functions -------------------------------------------------------


def valid_transitions(status: str) -> frozenset[str]:
    """Where a ticket may go from `status`."""
    return TICKET_TRANSITIONS[status]


def is_final(status: str) -> bool:
    return not TICKET_TRANSITIONS[status]


def status_info(status: str) -> dict[str, object]:
    """Label, colour and next states of a ticket status, for screens (seed 000 get_status_info)."""
    return {
        "value": status,
        "label": TicketStatus(status).label,
        "colour": TICKET_COLOURS[status],
        "final": is_final(status),
        "next": sorted(TICKET_TRANSITIONS[status]),
    }


def line_is_final(status: str) -> bool:
    return not LINE_TRANSITIONS[status]


def _record(obj: models.Model, user, reason: str) -> None:
    # simple-history reads these when it writes the history row of the next save().
    obj._history_user = user if user is not None and user.is_authenticated else None
    obj._change_reason = reason[:100] if reason else None


def change_ticket_status(ticket: Ticket, target: str, *, user=None, reason: str = "") -> None:
    """Move `ticket` to `target` if its machine allows it; stamp the time; record who and why.

    The caller holds the ticket's row lock (select_for_update) inside a transaction, so the
    status read here is the one in the database.
    """
    current = ticket.status
    if target not in TICKET_TRANSITIONS[current]:
        raise InvalidTransition.between(
            TicketStatus,
            current,
            target,
            _("Ticket %(number)s cannot go from “%(current)s” to “%(target)s”."),
            number=ticket.number,
        )
    now = timezone.now()
    ticket.status = target
    setattr(ticket, TICKET_STAMPS[target], now)
    fields = ["status", TICKET_STAMPS[target], "updated_at"]
    if target == T.CANCELLED and reason:
        ticket.cancellation_reason = reason[:200]
        fields.append("cancellation_reason")
    _record(ticket, user, reason)
    ticket.save(update_fields=fields)


def change_line_status(
    line: TicketLine, target: str, *, user=None, reason: str = "", **changes
) -> None:
    """Move a service line to `target` if its machine allows it; stamp; record who and why.

    `changes` are other fields set in the same save (equipment, operator, call_count…).
    The caller holds the line's row lock inside a transaction.
    """
    current = line.status
    if target not in LINE_TRANSITIONS[current]:
        raise InvalidTransition.between(
            LineStatus,
            current,
            target,
            _("%(service)s of ticket %(number)s cannot go from “%(current)s” to “%(target)s”."),
            service=line.service.name,
            number=line.ticket.number,
        )
    line.status = target
    setattr(line, LINE_STAMPS[target], timezone.now())
    for field, value in changes.items():
        setattr(line, field, value)
    if target == L.CANCELLED and reason:
        line.cancellation_reason = reason[:200]
        changes["cancellation_reason"] = line.cancellation_reason
    _record(line, user, reason)
    line.save(update_fields=["status", LINE_STAMPS[target], *changes])
    if line.credit_id and _session_comes_back(line, target):
        give_session_back(line, user=user, reason=reason)


def _session_comes_back(line: TicketLine, target: str) -> bool:
    """A line paid with a package session gives it back when it is cancelled, or when it is
    missed and the tenant says so. Here, in the one function every line's end goes through,
    so no path (panel, expiry, refund, abandon, repair) can forget it."""
    if target == L.CANCELLED:
        return True
    if target == L.EXPIRED:
        return Tenant.objects.filter(pk=line.tenant_id, missed_sessions_come_back=True).exists()
    return False


def give_session_back(line: TicketLine, *, user=None, reason: str = "") -> None:
    """Put the line's package session back in its balance, with its ledger row. The caller
    holds the line's lock; a line ends (cancelled, expired) once, so it gives back once."""
    # An unlimited plan's balance stays null (null + 1); the day's count frees a place when
    # the session was taken that same day.
    PackageCredit.objects.filter(pk=line.credit_id).update(balance=F("balance") + 1)
    day = Ticket.objects.filter(pk=line.ticket_id).values_list("day", flat=True)[0]
    PackageCredit.objects.filter(pk=line.credit_id, used_on=day, used_that_day__gt=0).update(
        used_that_day=F("used_that_day") - 1
    )
    balance = PackageCredit.objects.filter(pk=line.credit_id).values_list("balance", flat=True)[0]
    CreditEntry.objects.create(
        tenant_id=line.tenant_id,
        credit_id=line.credit_id,
        kind=CreditKind.RETURNED,
        change=1,
        balance_after=balance,
        line=line,
        user=user if user is not None and user.is_authenticated else None,
        reason=(reason or "")[:200],
    )


# --- health waivers -----------------------------------------------------------------------------


class Questionnaire(models.Model):
    """A service's health questionnaire (yes/no questions, each with the answer that blocks)
    and how long a signature lasts. Editing the questions publishes a new version
    (QuestionnaireVersion); signatures stay tied to the version they agreed to."""

    tenant = models.ForeignKey(
        Tenant, on_delete=models.PROTECT, related_name="+", verbose_name=_("company/branch")
    )
    service = models.OneToOneField(
        Service,
        on_delete=models.PROTECT,
        related_name="questionnaire",
        verbose_name=_("service"),
    )
    validity_months = models.PositiveSmallIntegerField(
        _("valid for (months)"),
        default=12,
        validators=[MinValueValidator(1)],
        help_text=_("How long a signature lasts before the customer answers again."),
    )
    is_active = models.BooleanField(
        _("asked at the kiosk"),
        default=True,
        help_text=_("Untick to sell the service without asking."),
    )

    class Meta:
        verbose_name = _("health questionnaire")
        verbose_name_plural = _("health questionnaires")
        constraints = [
            models.CheckConstraint(condition=Q(validity_months__gte=1), name="waiver_validity"),
        ]

    def __str__(self) -> str:
        return str(self.service)


class WaiverQuestion(models.Model):
    questionnaire = models.ForeignKey(
        Questionnaire,
        on_delete=models.CASCADE,
        related_name="questions",
        verbose_name=_("questionnaire"),
    )
    text = models.CharField(_("question"), max_length=300)
    blocks_on = models.BooleanField(
        _("the answer that blocks"),
        choices=[(True, _("Yes")), (False, _("No"))],
        default=True,
        help_text=_("This answer refuses the service until someone of the team talks to them."),
    )
    position = models.PositiveSmallIntegerField(_("order"), default=0)

    class Meta:
        verbose_name = _("question")
        verbose_name_plural = _("questions")
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.text


class QuestionnaireVersion(models.Model):
    """The questions as they were published, never changed: what a signature agreed to."""

    questionnaire = models.ForeignKey(
        Questionnaire,
        on_delete=models.CASCADE,
        related_name="versions",
        verbose_name=_("questionnaire"),
    )
    number = models.PositiveIntegerField(_("version"))
    # [{"text": …, "blocks_on": true|false}, …] in the order asked.
    questions = models.JSONField(_("questions"))
    created_at = models.DateTimeField(_("published at"), default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("published by"),
    )

    class Meta:
        verbose_name = _("questionnaire version")
        verbose_name_plural = _("questionnaire versions")
        ordering = ["questionnaire", "-number"]
        constraints = [
            # Two managers saving at once cannot publish the same number twice.
            models.UniqueConstraint(fields=["questionnaire", "number"], name="waiver_version_once"),
        ]

    def __str__(self) -> str:
        return f"{self.questionnaire} v{self.number}"


class WaiverOutcome(models.TextChoices):
    VALID = "valid", _("Valid")
    NEEDS_STAFF = "needs_staff", _("Needs staff")


class Waiver(models.Model):
    """One signature of a questionnaire version: when, by which name, and the outcome.

    LGPD art. 11 (health data): the answers are never stored — not here, not in history, not
    in the session, not in logs. Only whether one of them blocked (`needs_staff`) is kept.
    A walk-in's waiver has no customer: it serves the ticket it was signed for, and no other.
    """

    tenant = models.ForeignKey(
        Tenant, on_delete=models.PROTECT, related_name="+", verbose_name=_("company/branch")
    )
    version = models.ForeignKey(
        QuestionnaireVersion,
        on_delete=models.PROTECT,
        related_name="waivers",
        verbose_name=_("questionnaire version"),
    )
    customer = models.ForeignKey(
        Customer,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="waivers",
        verbose_name=_("customer"),
    )
    ticket = models.ForeignKey(
        Ticket,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="waivers",
        verbose_name=_("ticket"),
    )
    signed_name = models.CharField(_("signed as"), max_length=80)
    signed_at = models.DateTimeField(_("signed at"), default=timezone.now)
    outcome = models.CharField(_("outcome"), max_length=16, choices=WaiverOutcome.choices)
    valid_until = models.DateTimeField(_("valid until"))
    cleared_at = models.DateTimeField(_("cleared at"), null=True, blank=True)
    cleared_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("cleared by"),
    )
    clear_reason = models.CharField(_("why it was cleared"), max_length=200, blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        verbose_name = _("health waiver")
        verbose_name_plural = _("health waivers")
        ordering = ["-signed_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(outcome__in=WaiverOutcome.values), name="waiver_outcome_valid"
            ),
            # A cleared waiver says who cleared it and why (the audit log says it too).
            models.CheckConstraint(
                condition=Q(cleared_at__isnull=True) | ~Q(clear_reason=""),
                name="waiver_cleared_with_reason",
            ),
        ]
        indexes = [
            # The kiosk's question, "has this customer a valid signature of this version?"
            models.Index(fields=["customer", "version", "outcome"], name="waiver_on_file"),
        ]

    def __str__(self) -> str:
        return f"{self.version} — {self.get_outcome_display()}"
