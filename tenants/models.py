"""Tenants (a company or branch), who belongs to them, and in which role."""

from __future__ import annotations

import math
import uuid
import zoneinfo
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import formats, timezone
from django.utils.translation import gettext_lazy as _

from tenants.branding import DEFAULT_ACCENT, DEFAULT_PRIMARY, Palette, is_hex_colour
from tenants.clock import local_time
from tenants.compiled import CompiledRead
from tenants.crypto import EncryptedCharField
from tenants.history import HistoricalRecords
from tenants.images import LOGO_SIZE, WELCOME_SIZE, PictureField

V = TypeVar("V")


def validate_colour(value: str) -> None:
    if not is_hex_colour(value):
        raise ValidationError(_("Enter a colour as #rrggbb."))


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(_("Unknown time zone: %(value)s"), params={"value": value})


class SoftDeleteQuerySet(models.QuerySet):
    """Configuration rows are never deleted, only marked: tickets and history point at them."""

    def alive(self) -> SoftDeleteQuerySet:
        return self.filter(deleted_at__isnull=True)

    def soft_delete(self) -> int:
        return self.update(deleted_at=timezone.now())


class Tenant(models.Model):
    slug = models.SlugField(_("slug"), unique=True)
    name = models.CharField(_("name"), max_length=120)
    logo = PictureField(
        _("logo"),
        upload_to="logos/",
        blank=True,
        max_size=LOGO_SIZE,
        width_field="logo_width",
        height_field="logo_height",
        help_text=_("JPEG, PNG or WebP. Shown on the kiosk, the TV, the phone page and tickets."),
    )
    # Branding (tenants/branding.py derives every screen colour from these two). Database
    # defaults too: code of the previous release still inserts tenants during a rollout.
    primary_colour = models.CharField(
        _("primary colour"),
        max_length=7,
        default=DEFAULT_PRIMARY,
        db_default=DEFAULT_PRIMARY,
        validators=[validate_colour],
        help_text=_("Header and welcome screen of the kiosk, header and stage of the TV."),
    )
    accent_colour = models.CharField(
        _("accent colour"),
        max_length=7,
        default=DEFAULT_ACCENT,
        db_default=DEFAULT_ACCENT,
        validators=[validate_colour],
        help_text=_("Buttons, chosen services and the number called on the TV."),
    )
    welcome_image = PictureField(
        _("welcome image"),
        upload_to="welcome/",
        blank=True,
        max_size=WELCOME_SIZE,
        width_field="welcome_image_width",
        height_field="welcome_image_height",
        help_text=_("Optional. Shown on the kiosk's welcome screen; JPEG, PNG or WebP."),
    )
    # Kept by the ImageFields on upload: <img> tags carry their size without opening the file.
    logo_width = models.PositiveIntegerField(null=True, blank=True, editable=False)
    logo_height = models.PositiveIntegerField(null=True, blank=True, editable=False)
    welcome_image_width = models.PositiveIntegerField(null=True, blank=True, editable=False)
    welcome_image_height = models.PositiveIntegerField(null=True, blank=True, editable=False)
    contact_email = models.EmailField(_("contact e-mail"), blank=True)
    timezone = models.CharField(
        _("time zone"), max_length=64, default="America/Sao_Paulo", validators=[validate_timezone]
    )
    ticket_prefix = models.CharField(
        _("ticket prefix"),
        max_length=3,
        default="A",
        help_text=_("Used when a ticket's first service has no prefix of its own."),
    )
    is_active = models.BooleanField(_("active"), default=True)

    # Queue policy. Kept on the tenant until settings grow their own screen.
    priority_interleave = models.PositiveSmallIntegerField(
        _("normal calls per priority call"),
        default=0,
        help_text=_(
            "0 calls every priority customer first. N > 0 lets one normal customer through "
            "after N priority calls in a row, so nobody waits forever."
        ),
    )
    no_show_calls = models.PositiveSmallIntegerField(_("calls before no-show"), default=3)
    no_show_timeout_minutes = models.PositiveSmallIntegerField(
        _("minutes a called customer has to show up"), default=5
    )
    expiry_hours = models.PositiveSmallIntegerField(
        _("hours before a waiting ticket expires"), default=4
    )
    reactivation_minutes = models.PositiveSmallIntegerField(
        _("minutes a missed service can be called again"),
        # A database default too: during a rolling release, code that does not know the column
        # yet still inserts tenants (docs/deploy.md, expand).
        default=60,
        db_default=60,
        help_text=_(
            "A customer who did not show up stays in the service's “did not show up” list for "
            "this long (and never past the end of the day); then the service expires."
        ),
    )
    stuck_line_factor = models.PositiveSmallIntegerField(
        _("a service is stuck after N × its expected duration"),
        default=3,
        db_default=3,
        help_text=_(
            "A service called or in service that long is flagged on the panel and alerted, "
            "then closed automatically. 0: only at the end of the day, which always does."
        ),
    )
    payment_timeout_minutes = models.PositiveSmallIntegerField(
        _("minutes to pay before the ticket is cancelled"), default=15
    )
    wait_warning_minutes = models.PositiveSmallIntegerField(
        _("wait shown in yellow after (min)"), default=10
    )
    wait_critical_minutes = models.PositiveSmallIntegerField(
        _("wait shown in red after (min)"), default=20
    )
    hide_customer_names = models.BooleanField(_("hide names and CPF from operators"), default=False)
    # A cancelled service always gives its package session back: it was never given. A missed
    # one is the studio's call, as at the counter ("faltou, perdeu a sessão" is common).
    missed_sessions_come_back = models.BooleanField(
        _("a missed service gives its package session back"),
        default=False,
        db_default=False,
        help_text=_(
            "Off: a customer who does not show up loses that package session. A cancelled "
            "service always gives it back."
        ),
    )
    skip_customers_in_service = models.BooleanField(
        _("call next skips customers being served elsewhere"), default=True
    )

    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    deleted_at = models.DateTimeField(_("deleted at"), null=True, blank=True)

    history = HistoricalRecords()
    objects = SoftDeleteQuerySet.as_manager()

    class Meta:
        verbose_name = _("company/branch")
        verbose_name_plural = _("companies/branches")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if not (is_hex_colour(self.primary_colour) and is_hex_colour(self.accent_colour)):
            return  # the field's own validator says so
        failing = self.palette.failing()
        if failing:
            raise ValidationError(
                {
                    "accent_colour": [
                        _(
                            "Too little contrast: %(pair)s is %(ratio)s:1, at least %(minimum)s:1 "
                            "is needed to be read. Choose a lighter or a darker colour."
                        )
                        % {
                            "pair": pair.name,
                            "ratio": formats.number_format(math.floor(pair.ratio * 100) / 100, 2),
                            "minimum": formats.number_format(pair.minimum, 1),
                        }
                        for pair in failing
                    ]
                }
            )

    @property
    def palette(self) -> Palette:
        return Palette(self.primary_colour, self.accent_colour)

    @property
    def tzinfo(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    def local_now(self):
        return timezone.localtime(timezone.now(), self.tzinfo)

    def today(self):
        return self.local_now().date()

    def start_of_today(self):
        """The local midnight that began today: where "today's" figures count from."""
        return self.local_now().replace(hour=0, minute=0, second=0, microsecond=0)

    def for_one_request(self) -> Tenant:
        """Mark this instance as one request's own: its opening hours and what `once` reads
        are read on first need and kept for the rest of it (a kiosk tap asked for its hours
        up to three times: whether anything is sold, the service list, the welcome's hours;
        for its payment settings up to four). Never on an instance that outlives a request,
        which must see them changed meanwhile."""
        self._request_memo: dict[str, object] = {}
        return self

    def once(self, name: str, read: Callable[[], V]) -> V:
        """`read()`, kept under `name` on a request's own instance (`for_one_request`);
        read again on every call on any other."""
        memo = getattr(self, "_request_memo", None)
        if memo is None:
            return read()
        if name not in memo:
            memo[name] = read()
        return memo[name]

    def hours(self) -> list[OpeningHours]:
        """The opening hours, by weekday and time: read once per request (`once`), by a
        statement built once per process (`_read_hours`)."""
        return self.once("opening_hours", lambda: _read_hours(self.pk))

    def is_open(self, at=None) -> bool:
        """Within today's opening hours (local time). No hours configured: always open."""
        now = timezone.localtime(at or timezone.now(), self.tzinfo)
        hours = self.hours()
        if not hours:
            return True
        return any(h.weekday == now.weekday() and h.opens <= now.time() < h.closes for h in hours)


class Role(models.TextChoices):
    # Declared from most to least powerful; `Role.rank` relies on this order.
    ADMIN = "admin", _("Administrator")
    MANAGER = "manager", _("Manager")
    OPERATOR = "operator", _("Operator")

    @classmethod
    def rank(cls, role: str) -> int:
        """Higher is more powerful: admin 3, manager 2, operator 1, unknown 0."""
        values = list(reversed(cls.values))
        return values.index(role) + 1 if role in values else 0


class TenantQuerySet(models.QuerySet):
    """The one way to scope tenant-owned rows: `Model.objects.for_tenant(tenant)`."""

    def for_tenant(self, tenant: Tenant) -> TenantQuerySet:
        return self.filter(tenant=tenant)


class Membership(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="memberships",
        verbose_name=_("user"),
    )
    tenant = models.ForeignKey(
        Tenant,
        on_delete=models.CASCADE,
        related_name="memberships",
        verbose_name=_("company/branch"),
    )
    role = models.CharField(_("role"), max_length=16, choices=Role.choices, default=Role.OPERATOR)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    history = HistoricalRecords()
    objects = TenantQuerySet.as_manager()

    class Meta:
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")
        constraints = [
            models.UniqueConstraint(fields=["user", "tenant"], name="membership_one_per_tenant"),
            models.CheckConstraint(
                condition=models.Q(role__in=Role.values), name="membership_role_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.tenant} ({self.get_role_display()})"

    def has_role(self, role: str) -> bool:
        return Role.rank(self.role) >= Role.rank(role)


class Weekday(models.IntegerChoices):
    MONDAY = 0, _("Monday")
    TUESDAY = 1, _("Tuesday")
    WEDNESDAY = 2, _("Wednesday")
    THURSDAY = 3, _("Thursday")
    FRIDAY = 4, _("Friday")
    SATURDAY = 5, _("Saturday")
    SUNDAY = 6, _("Sunday")


class OpeningHours(models.Model):
    """One opening interval on a weekday, in the tenant's local time; several per day allowed."""

    tenant = models.ForeignKey(
        Tenant,
        on_delete=models.CASCADE,
        related_name="opening_hours",
        verbose_name=_("company/branch"),
    )
    weekday = models.PositiveSmallIntegerField(_("weekday"), choices=Weekday.choices)
    opens = models.TimeField(_("opens"))
    closes = models.TimeField(_("closes"))

    history = HistoricalRecords()
    objects = TenantQuerySet.as_manager()

    class Meta:
        verbose_name = _("opening hours")
        verbose_name_plural = _("opening hours")
        ordering = ["tenant", "weekday", "opens"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(closes__gt=models.F("opens")), name="opening_hours_closes_after"
            ),
            models.CheckConstraint(
                condition=models.Q(weekday__gte=0, weekday__lte=6), name="opening_hours_weekday"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {self.opens:%H:%M}–{self.closes:%H:%M}"

    def clean(self) -> None:
        if self.opens and self.closes and self.closes <= self.opens:
            raise ValidationError({"closes": _("Closing time must be after opening time.")})


@CompiledRead
def _read_hours(tenant_id: int) -> models.QuerySet[OpeningHours]:
    # Every kiosk tap asks whether the studio is open (is anything sold, the service list).
    return OpeningHours.objects.filter(tenant_id=tenant_id)


# --- running the business: audit, daily statistics, outgoing webhooks, notifications --------
# The functions that write these rows live in tenants/audit.py, tenants/stats.py,
# tenants/webhooks.py and tenants/notifications.py.


class AuditAction(models.TextChoices):
    LOGIN = "login", _("Logged in")
    LOGOUT = "logout", _("Logged out")
    LOGIN_FAILED = "login_failed", _("Failed login")
    STATUS_CHANGED = "status_changed", _("Status changed by hand")
    TICKET_CANCELLED = "ticket_cancelled", _("Ticket cancelled")
    LINE_CANCELLED = "line_cancelled", _("Service of a ticket cancelled")
    COOLDOWN_ENDED = "cooldown_ended", _("Device's cool-down ended early")
    PAYMENT_CONFIRMED = "payment_confirmed", _("Payment confirmed by hand")
    PAYMENT_REFUNDED = "payment_refunded", _("Payment refunded")
    FREE_TICKET = "free_ticket", _("Free ticket sent on without payment")
    REPRINT = "reprint", _("Reprint")
    SETTINGS_CHANGED = "settings_changed", _("Settings changed")
    DATA_PURGED = "data_purged", _("Old data purged")
    DATA_EXPORTED = "data_exported", _("Customer data exported (LGPD)")
    DATA_ERASED = "data_erased", _("Customer data erased (LGPD)")
    EXPORTED_CSV = "exported_csv", _("Report exported")
    # The team page (ops/team.py): a tenant's administrator manages its people.
    MEMBER_ADDED = "member_added", _("Team member added")
    MEMBER_CHANGED = "member_changed", _("Team member changed")
    MEMBER_PASSWORD_SET = "member_password_set", _("Team member's password set")
    MEMBER_PASSWORD_LINK = "member_password_link", _("Set-password link made")
    MEMBER_DEACTIVATED = "member_deactivated", _("Team member deactivated")
    MEMBER_REACTIVATED = "member_reactivated", _("Team member reactivated")
    MEMBER_REMOVED = "member_removed", _("Team member removed")
    # Packages and credits (tickets/credits.py).
    PACKAGE_SOLD = "package_sold", _("Package sold at the counter")
    PACKAGE_RENEWED = "package_renewed", _("Membership renewed")
    CREDITS_ADJUSTED = "credits_adjusted", _("Package sessions adjusted")
    PACKAGE_SHARED = "package_shared", _("Package shared with another CPF")
    # Health waivers (tickets/waivers.py): an operator talked to the customer.
    WAIVER_CLEARED = "waiver_cleared", _("Health form cleared by the team")
    API_KEY_CREATED = "api_key_created", _("API key created")
    API_KEY_CHANGED = "api_key_changed", _("API key's scopes changed")
    API_KEY_REVOKED = "api_key_revoked", _("API key revoked")


class AuditLog(models.Model):
    """Who did what, when and from where. Written once, never changed; purged after months."""

    # Null for what concerns no tenant: a failed login with an unknown username, the purge.
    tenant = models.ForeignKey(
        Tenant, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("user"),
    )
    # Kept as written: the user may be deleted later, and a failed login has no user at all.
    username = models.CharField(_("username"), max_length=150, blank=True)
    action = models.CharField(_("action"), max_length=32, choices=AuditAction.choices)
    entity = models.CharField(_("entity"), max_length=60, blank=True)
    entity_id = models.CharField(_("entity id"), max_length=40, blank=True)
    # The object as people say it when it was recorded ("Senha C012"): the
    # row may be renamed or purged later. Empty in entries written before it existed.
    label = models.CharField(_("object"), max_length=200, blank=True)
    data = models.JSONField(_("data"), default=dict, blank=True, encoder=DjangoJSONEncoder)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    created_at = models.DateTimeField(_("time"), default=timezone.now)

    class Meta:
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit log")
        ordering = ["-created_at", "-id"]
        indexes = [
            # Seed 003 §7: a tenant's log, newest first (the admin list).
            models.Index(fields=["tenant", "-created_at"], name="audit_tenant_recent"),
            # "Who did this to ticket 123?": the admin's filter from a ticket.
            models.Index(fields=["entity", "entity_id"], name="audit_entity"),
            # The purge deletes by age across every tenant.
            models.Index(fields=["created_at"], name="audit_created"),
        ]

    def __str__(self) -> str:
        when = local_time(self.created_at)  # the page's zone: the row's tenant's on its pages
        return f"{when} {self.username or '—'} {self.get_action_display()}"

    @property
    def object_name(self) -> str:
        """ "Senha C012", "Sessão de pagamento #34 Dinheiro C012"; entries older than `label`
        keep their "tickets.ticket 5"."""
        return self.label or f"{self.entity} {self.entity_id}".strip()


class WebhookEvent(models.TextChoices):
    TICKET_CREATED = "ticket.created", "ticket.created"
    TICKET_CALLED = "ticket.called", "ticket.called"
    TICKET_COMPLETED = "ticket.completed", "ticket.completed"
    PAYMENT_PAID = "payment.paid", "payment.paid"
    PAYMENT_REFUNDED = "payment.refunded", "payment.refunded"
    FEEDBACK_RECEIVED = "feedback.received", "feedback.received"


class WebhookEndpoint(models.Model):
    """Where a tenant wants its events POSTed (seed 003 config_webhook)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="webhook_endpoints")
    target_url = models.URLField(_("target URL"), max_length=500)
    secret = EncryptedCharField(
        _("signing secret"),
        max_length=128,
        help_text=_("Shared with the receiver, who checks the X-Totem-Signature header with it."),
    )
    enabled = models.BooleanField(_("enabled"), default=True)
    event_types = models.JSONField(
        _("events"), default=list, blank=True, help_text=_("None chosen sends every event.")
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    deleted_at = models.DateTimeField(_("deleted at"), null=True, blank=True)

    # The secret stays out of the history table, where anyone who reads history would see it.
    history = HistoricalRecords(excluded_fields=["secret"])
    objects = SoftDeleteQuerySet.as_manager()

    class Meta:
        verbose_name = _("outgoing webhook")
        verbose_name_plural = _("outgoing webhooks")
        ordering = ["tenant", "target_url"]

    def __str__(self) -> str:
        return self.target_url

    @staticmethod
    def wants(event_types: list[str], event_type: str) -> bool:
        """Whether an endpoint subscribed to `event_types` (empty: all) gets `event_type`."""
        return not event_types or event_type in event_types


class OutboxStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    DELIVERED = "delivered", _("Delivered")
    FAILED = "failed", _("Gave up")


class WebhookOutbox(models.Model):
    """An event to deliver to one endpoint, written in the transaction of the change itself.

    The worker claims due rows with SKIP LOCKED and a lease (`next_attempt_at` moved forward),
    so a worker killed mid-request leaves the row to be sent again, never lost.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="outbox", verbose_name=_("endpoint")
    )
    # Sent as X-Totem-Delivery: the receiver's key to ignore a delivery it already has.
    event_id = models.UUIDField(_("event id"), default=uuid.uuid4, unique=True, editable=False)
    event_type = models.CharField(_("event"), max_length=40, choices=WebhookEvent.choices)
    payload = models.JSONField(_("payload"), encoder=DjangoJSONEncoder)
    status = models.CharField(
        _("status"), max_length=10, choices=OutboxStatus.choices, default=OutboxStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"), default=timezone.now)
    last_error = models.CharField(_("last error"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        verbose_name = _("webhook event")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=OutboxStatus.values), name="outbox_status_valid"
            ),
        ]
        indexes = [
            # The worker's claim: pending rows whose time has come, oldest first.
            models.Index(
                fields=["next_attempt_at", "id"],
                condition=models.Q(status="pending"),
                name="outbox_due",
            ),
            models.Index(fields=["tenant", "-created_at"], name="outbox_tenant_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} → {self.endpoint}"


class WebhookAttempt(models.Model):
    """One POST of an outbox row: the delivery log a manager reads when a receiver complains."""

    outbox = models.ForeignKey(WebhookOutbox, on_delete=models.CASCADE, related_name="log")
    number = models.PositiveSmallIntegerField(_("attempt"))
    at = models.DateTimeField(_("at"), default=timezone.now)
    status_code = models.PositiveSmallIntegerField(_("HTTP status"), null=True, blank=True)
    error = models.CharField(_("error"), max_length=300, blank=True)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), default=0)

    class Meta:
        verbose_name = _("delivery attempt")
        verbose_name_plural = _("delivery attempts")
        ordering = ["outbox", "number"]

    def __str__(self) -> str:
        # No status code: the admin shows this to the tenant (see WebhookAttemptInline).
        return f"#{self.number}"

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300
