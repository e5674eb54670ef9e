"""Tenants (a company or branch), who belongs to them, and in which role."""

from __future__ import annotations

import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords


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
    logo = models.ImageField(_("logo"), upload_to="logos/", blank=True)
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

    @property
    def tzinfo(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    def local_now(self):
        return timezone.localtime(timezone.now(), self.tzinfo)

    def today(self):
        return self.local_now().date()

    def is_open(self, at=None) -> bool:
        """Within today's opening hours (local time). No hours configured: always open."""
        now = timezone.localtime(at or timezone.now(), self.tzinfo)
        hours = list(self.opening_hours.all())
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
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
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

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="opening_hours")
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
