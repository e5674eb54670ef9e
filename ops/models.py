"""The back office's own rows: daily statistics, where alerts go, and the alerts themselves.

Their tables keep the `tenants_` names they were created with (the models moved here with
state-only migrations, so no data was copied).
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tenants.crypto import EncryptedCharField
from tenants.history import HistoricalRecords
from tenants.models import Tenant, TenantQuerySet


class DailyStats(models.Model):
    """One tenant's day, per service (and one row with no service for the whole tenant).

    Written by `snapshot_daily_stats` (an upsert, so running it twice changes nothing) and kept
    after the purge: statistics hold no personal data.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="daily_stats")
    service = models.ForeignKey(
        "tickets.Service",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="daily_stats",
        verbose_name=_("service"),
    )
    day = models.DateField(_("day"))
    tickets = models.PositiveIntegerField(_("tickets"), default=0)
    completed = models.PositiveIntegerField(_("completed"), default=0)
    revenue = models.DecimalField(_("revenue (R$)"), max_digits=12, decimal_places=2, default=0)
    avg_wait_seconds = models.PositiveIntegerField(_("average wait (s)"), null=True, blank=True)
    p95_wait_seconds = models.PositiveIntegerField(
        _("95th percentile wait (s)"), null=True, blank=True
    )
    avg_duration_seconds = models.PositiveIntegerField(
        _("average duration (s)"), null=True, blank=True
    )
    no_shows = models.PositiveIntegerField(_("no-shows"), default=0)
    cancellations = models.PositiveIntegerField(_("cancellations"), default=0)
    # Tickets paid per local hour, 24 numbers: the "busiest hours" chart over a month.
    hourly = models.JSONField(_("tickets per hour"), default=list, blank=True)
    # The day's waits counted in buckets of ops.stats.WAIT_BUCKET seconds ({"540": 3, …}):
    # a month's median and p95 come from adding 30 of these, never from the month's lines.
    # None in rows stored before it existed: those days are read from the lines.
    wait_histogram = models.JSONField(_("waits (histogram)"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        db_table = "tenants_dailystats"  # made in tenants before the back office had an app
        verbose_name = _("daily statistics")
        verbose_name_plural = _("daily statistics")
        ordering = ["-day", "tenant", "service"]
        constraints = [
            # One row per tenant, service and day: what makes the snapshot an upsert.
            models.UniqueConstraint(
                fields=["tenant", "service", "day"],
                condition=models.Q(service__isnull=False),
                name="daily_stats_one_per_service_day",
            ),
            # NULLs are distinct in a unique index, so the tenant's total row needs its own.
            models.UniqueConstraint(
                fields=["tenant", "day"],
                condition=models.Q(service__isnull=True),
                name="daily_stats_one_total_per_day",
            ),
        ]
        indexes = [models.Index(fields=["tenant", "-day"], name="daily_stats_recent")]

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.day} {self.service_id or 'total'}"


class DeviceDailyStats(models.Model):
    """One service device's day: how many sessions, how long in use, cooling down and idle
    within opening hours, and what its sessions earned. Written by `snapshot_daily_stats`
    beside DailyStats (ops/utilisation.py), an upsert like it; no personal data."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    equipment = models.ForeignKey(
        "equipment.Equipment",
        on_delete=models.CASCADE,
        related_name="daily_stats",
        verbose_name=_("equipment"),
    )
    day = models.DateField(_("day"))
    sessions = models.PositiveIntegerField(_("sessions"), default=0)
    seconds_in_use = models.PositiveIntegerField(_("in use (s)"), default=0)
    seconds_cooling = models.PositiveIntegerField(_("cooling down (s)"), default=0)
    seconds_idle = models.PositiveIntegerField(_("idle while open (s)"), default=0)
    revenue = models.DecimalField(_("revenue (R$)"), max_digits=12, decimal_places=2, default=0)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        verbose_name = _("device daily statistics")
        verbose_name_plural = _("device daily statistics")
        ordering = ["-day", "equipment"]
        constraints = [
            # One row per device and day: what makes the snapshot an upsert.
            models.UniqueConstraint(fields=["equipment", "day"], name="device_stats_one_per_day"),
        ]
        indexes = [models.Index(fields=["tenant", "-day"], name="device_stats_recent")]

    def __str__(self) -> str:
        return f"{self.equipment_id} {self.day}"


class NotificationSettings(models.Model):
    """Where a tenant's alerts go, and what counts as an alert (seed 003 config_notification)."""

    tenant = models.OneToOneField(
        Tenant, on_delete=models.CASCADE, related_name="notification_settings"
    )
    enabled = models.BooleanField(_("enabled"), default=True)
    slack_webhook_url = models.URLField(_("Slack webhook URL"), max_length=500, blank=True)
    email_to = models.CharField(
        _("send e-mail to"), max_length=500, blank=True, help_text=_("Comma-separated addresses.")
    )
    email_from = models.EmailField(_("e-mail sender"), blank=True)
    smtp_host = models.CharField(
        _("SMTP host"), max_length=200, blank=True, help_text=_("Empty uses the server's own.")
    )
    smtp_port = models.PositiveIntegerField(_("SMTP port"), default=587)
    smtp_username = models.CharField(_("SMTP username"), max_length=200, blank=True)
    smtp_password = EncryptedCharField(_("SMTP password"), max_length=200, blank=True)
    smtp_use_tls = models.BooleanField(_("SMTP with STARTTLS"), default=True)
    # Whether a platform superuser set the SMTP host and port: the rule for a tenant's (public
    # addresses, ALERT_SMTP_PORTS) then does not apply, when saved nor when sending. The admin
    # form sets it from who saves; a change of host or port by anyone else clears it.
    smtp_set_by_platform = models.BooleanField(
        _("SMTP server set by the platform"), default=False, editable=False
    )
    queue_length_threshold = models.PositiveSmallIntegerField(
        _("alert when a queue is longer than"), default=15
    )
    wait_minutes_threshold = models.PositiveSmallIntegerField(
        _("alert when someone waits longer than (min)"), default=40
    )
    payment_failures_threshold = models.PositiveSmallIntegerField(
        _("alert after this many failed payments in 30 minutes"), default=3
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    history = HistoricalRecords(
        excluded_fields=["smtp_password", "updated_at"],
        table_name="tenants_historicalnotificationsettings",
    )
    objects = TenantQuerySet.as_manager()

    class Meta:
        db_table = "tenants_notificationsettings"
        verbose_name = _("notification settings")
        verbose_name_plural = _("notification settings")

    def __str__(self) -> str:
        return str(self.tenant)

    @property
    def recipients(self) -> list[str]:
        return [a.strip() for a in self.email_to.split(",") if a.strip()]


class AlertKind(models.TextChoices):
    PRINTER_OFFLINE = "printer_offline", _("Printer offline")
    PAYMENTS_FAILING = "payments_failing", _("Payments failing")
    QUEUE_LONG = "queue_long", _("Queue too long")
    WAIT_LONG = "wait_long", _("Wait too long")
    SERVICE_STUCK = "service_stuck", _("Service stuck")
    NFSE_FAILED = "nfse_failed", _("NFS-e needs attention")


class Alert(models.Model):
    """A condition that was notified once and stays open until it clears."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="alerts")
    kind = models.CharField(_("kind"), max_length=20, choices=AlertKind.choices)
    # What the condition is about: a printer's or a service's id ("" for the whole tenant).
    key = models.CharField(_("about"), max_length=40, blank=True)
    message = models.CharField(_("message"), max_length=300)
    opened_at = models.DateTimeField(_("opened at"), default=timezone.now)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    notified = models.BooleanField(_("notified"), default=False)
    # Why the last try did not notify, in our words (ops/notifications.py): never what a
    # server answered, which from an internal service would describe the platform's network.
    send_error = models.CharField(_("not sent because"), max_length=300, blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        db_table = "tenants_alert"
        verbose_name = _("alert")
        verbose_name_plural = _("alerts")
        ordering = ["-opened_at"]
        constraints = [
            # One open alert per condition: what keeps a lasting condition from repeating.
            models.UniqueConstraint(
                fields=["tenant", "kind", "key"],
                condition=models.Q(resolved_at__isnull=True),
                name="alert_one_open_per_condition",
            ),
            models.CheckConstraint(
                condition=models.Q(kind__in=AlertKind.values), name="alert_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.message


class ScheduledJob(models.Model):
    """One periodic job of `run_worker` (ops/worker.py): when it is next due, and who runs it.

    The platform's, not a tenant's. A worker claims a due job with one conditional UPDATE whose
    row count it checks (due, and no live lease), which also sets the next due time, so with
    workers on several machines each job runs once per period and never twice at once; a
    worker killed mid-job holds the job until its lease runs out. The row survives restarts:
    a nightly job restarted at noon is not run again.
    """

    name = models.CharField(max_length=64, unique=True)
    due_at = models.DateTimeField()
    # Set while a worker runs the job; cleared when it finishes.
    leased_until = models.DateTimeField(null=True, blank=True)
    leased_by = models.CharField(max_length=80, blank=True)
    last_started_at = models.DateTimeField(null=True, blank=True)
    last_finished_at = models.DateTimeField(null=True, blank=True)
    # The last run's exception ("" when it succeeded), for whoever looks into a silent job.
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
