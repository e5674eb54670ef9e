"""The back office's models, taken over from `tenants` with their tables as they are.

State only (the tables were made by tenants' 0003 and live on under their `tenants_` names);
the content types are renamed so admin log entries and permissions follow the models.
"""

import django.db.models.deletion
import django.utils.timezone
import simple_history.models
import tenants.crypto
from django.conf import settings
from django.db import migrations, models


MOVED = ["dailystats", "notificationsettings", "historicalnotificationsettings", "alert"]


def move_content_types(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    taken = set(
        ContentType.objects.filter(app_label="ops", model__in=MOVED).values_list("model", flat=True)
    )
    ContentType.objects.filter(app_label="tenants", model__in=set(MOVED) - taken).update(
        app_label="ops"
    )


def restore_content_types(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.filter(app_label="ops", model__in=MOVED).update(app_label="tenants")


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("tenants", "0006_move_back_office_to_ops"),
        ("tickets", "0005_service_measured_duration"),
        ("contenttypes", "0002_remove_content_type_name"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="HistoricalNotificationSettings",
                    fields=[
                        (
                            "id",
                            models.BigIntegerField(
                                auto_created=True, blank=True, db_index=True, verbose_name="ID"
                            ),
                        ),
                        ("enabled", models.BooleanField(default=True, verbose_name="enabled")),
                        (
                            "slack_webhook_url",
                            models.URLField(
                                blank=True, max_length=500, verbose_name="Slack webhook URL"
                            ),
                        ),
                        (
                            "email_to",
                            models.CharField(
                                blank=True,
                                help_text="Comma-separated addresses.",
                                max_length=500,
                                verbose_name="send e-mail to",
                            ),
                        ),
                        (
                            "email_from",
                            models.EmailField(
                                blank=True, max_length=254, verbose_name="e-mail sender"
                            ),
                        ),
                        (
                            "smtp_host",
                            models.CharField(
                                blank=True,
                                help_text="Empty uses the server's own.",
                                max_length=200,
                                verbose_name="SMTP host",
                            ),
                        ),
                        (
                            "smtp_port",
                            models.PositiveIntegerField(default=587, verbose_name="SMTP port"),
                        ),
                        (
                            "smtp_username",
                            models.CharField(
                                blank=True, max_length=200, verbose_name="SMTP username"
                            ),
                        ),
                        (
                            "smtp_use_tls",
                            models.BooleanField(default=True, verbose_name="SMTP with STARTTLS"),
                        ),
                        (
                            "queue_length_threshold",
                            models.PositiveSmallIntegerField(
                                default=15, verbose_name="alert when a queue is longer than"
                            ),
                        ),
                        (
                            "wait_minutes_threshold",
                            models.PositiveSmallIntegerField(
                                default=40,
                                verbose_name="alert when someone waits longer than (min)",
                            ),
                        ),
                        (
                            "payment_failures_threshold",
                            models.PositiveSmallIntegerField(
                                default=3,
                                verbose_name="alert after this many failed payments in 30 minutes",
                            ),
                        ),
                        ("history_id", models.AutoField(primary_key=True, serialize=False)),
                        ("history_date", models.DateTimeField(db_index=True)),
                        ("history_change_reason", models.CharField(max_length=100, null=True)),
                        (
                            "history_type",
                            models.CharField(
                                choices=[("+", "Created"), ("~", "Changed"), ("-", "Deleted")],
                                max_length=1,
                            ),
                        ),
                        (
                            "history_user",
                            models.ForeignKey(
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "tenant",
                            models.ForeignKey(
                                blank=True,
                                db_constraint=False,
                                null=True,
                                on_delete=django.db.models.deletion.DO_NOTHING,
                                related_name="+",
                                to="tenants.tenant",
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "historical notification settings",
                        "verbose_name_plural": "historical notification settings",
                        "db_table": "tenants_historicalnotificationsettings",
                        "ordering": ("-history_date", "-history_id"),
                        "get_latest_by": ("history_date", "history_id"),
                    },
                    bases=(simple_history.models.HistoricalChanges, models.Model),
                ),
                migrations.CreateModel(
                    name="NotificationSettings",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("enabled", models.BooleanField(default=True, verbose_name="enabled")),
                        (
                            "slack_webhook_url",
                            models.URLField(
                                blank=True, max_length=500, verbose_name="Slack webhook URL"
                            ),
                        ),
                        (
                            "email_to",
                            models.CharField(
                                blank=True,
                                help_text="Comma-separated addresses.",
                                max_length=500,
                                verbose_name="send e-mail to",
                            ),
                        ),
                        (
                            "email_from",
                            models.EmailField(
                                blank=True, max_length=254, verbose_name="e-mail sender"
                            ),
                        ),
                        (
                            "smtp_host",
                            models.CharField(
                                blank=True,
                                help_text="Empty uses the server's own.",
                                max_length=200,
                                verbose_name="SMTP host",
                            ),
                        ),
                        (
                            "smtp_port",
                            models.PositiveIntegerField(default=587, verbose_name="SMTP port"),
                        ),
                        (
                            "smtp_username",
                            models.CharField(
                                blank=True, max_length=200, verbose_name="SMTP username"
                            ),
                        ),
                        (
                            "smtp_password",
                            tenants.crypto.EncryptedCharField(
                                blank=True, max_length=200, verbose_name="SMTP password"
                            ),
                        ),
                        (
                            "smtp_use_tls",
                            models.BooleanField(default=True, verbose_name="SMTP with STARTTLS"),
                        ),
                        (
                            "queue_length_threshold",
                            models.PositiveSmallIntegerField(
                                default=15, verbose_name="alert when a queue is longer than"
                            ),
                        ),
                        (
                            "wait_minutes_threshold",
                            models.PositiveSmallIntegerField(
                                default=40,
                                verbose_name="alert when someone waits longer than (min)",
                            ),
                        ),
                        (
                            "payment_failures_threshold",
                            models.PositiveSmallIntegerField(
                                default=3,
                                verbose_name="alert after this many failed payments in 30 minutes",
                            ),
                        ),
                        (
                            "updated_at",
                            models.DateTimeField(auto_now=True, verbose_name="updated at"),
                        ),
                        (
                            "tenant",
                            models.OneToOneField(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="notification_settings",
                                to="tenants.tenant",
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "notification settings",
                        "verbose_name_plural": "notification settings",
                        "db_table": "tenants_notificationsettings",
                    },
                ),
                migrations.CreateModel(
                    name="Alert",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        (
                            "kind",
                            models.CharField(
                                choices=[
                                    ("printer_offline", "Printer offline"),
                                    ("payments_failing", "Payments failing"),
                                    ("queue_long", "Queue too long"),
                                    ("wait_long", "Wait too long"),
                                ],
                                max_length=20,
                                verbose_name="kind",
                            ),
                        ),
                        ("key", models.CharField(blank=True, max_length=40, verbose_name="about")),
                        ("message", models.CharField(max_length=300, verbose_name="message")),
                        (
                            "opened_at",
                            models.DateTimeField(
                                default=django.utils.timezone.now, verbose_name="opened at"
                            ),
                        ),
                        (
                            "resolved_at",
                            models.DateTimeField(blank=True, null=True, verbose_name="resolved at"),
                        ),
                        ("notified", models.BooleanField(default=False, verbose_name="notified")),
                        (
                            "tenant",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="alerts",
                                to="tenants.tenant",
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "alert",
                        "verbose_name_plural": "alerts",
                        "db_table": "tenants_alert",
                        "ordering": ["-opened_at"],
                        "constraints": [
                            models.UniqueConstraint(
                                condition=models.Q(("resolved_at__isnull", True)),
                                fields=("tenant", "kind", "key"),
                                name="alert_one_open_per_condition",
                            ),
                            models.CheckConstraint(
                                condition=models.Q(
                                    (
                                        "kind__in",
                                        [
                                            "printer_offline",
                                            "payments_failing",
                                            "queue_long",
                                            "wait_long",
                                        ],
                                    )
                                ),
                                name="alert_kind_valid",
                            ),
                        ],
                    },
                ),
                migrations.CreateModel(
                    name="DailyStats",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("day", models.DateField(verbose_name="day")),
                        ("tickets", models.PositiveIntegerField(default=0, verbose_name="tickets")),
                        (
                            "completed",
                            models.PositiveIntegerField(default=0, verbose_name="completed"),
                        ),
                        (
                            "revenue",
                            models.DecimalField(
                                decimal_places=2,
                                default=0,
                                max_digits=12,
                                verbose_name="revenue (R$)",
                            ),
                        ),
                        (
                            "avg_wait_seconds",
                            models.PositiveIntegerField(
                                blank=True, null=True, verbose_name="average wait (s)"
                            ),
                        ),
                        (
                            "p95_wait_seconds",
                            models.PositiveIntegerField(
                                blank=True, null=True, verbose_name="95th percentile wait (s)"
                            ),
                        ),
                        (
                            "avg_duration_seconds",
                            models.PositiveIntegerField(
                                blank=True, null=True, verbose_name="average duration (s)"
                            ),
                        ),
                        (
                            "no_shows",
                            models.PositiveIntegerField(default=0, verbose_name="no-shows"),
                        ),
                        (
                            "cancellations",
                            models.PositiveIntegerField(default=0, verbose_name="cancellations"),
                        ),
                        (
                            "hourly",
                            models.JSONField(
                                blank=True, default=list, verbose_name="tickets per hour"
                            ),
                        ),
                        (
                            "updated_at",
                            models.DateTimeField(auto_now=True, verbose_name="updated at"),
                        ),
                        (
                            "service",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="daily_stats",
                                to="tickets.service",
                                verbose_name="service",
                            ),
                        ),
                        (
                            "tenant",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="daily_stats",
                                to="tenants.tenant",
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "daily statistics",
                        "verbose_name_plural": "daily statistics",
                        "db_table": "tenants_dailystats",
                        "ordering": ["-day", "tenant", "service"],
                        "indexes": [
                            models.Index(fields=["tenant", "-day"], name="daily_stats_recent")
                        ],
                        "constraints": [
                            models.UniqueConstraint(
                                condition=models.Q(("service__isnull", False)),
                                fields=("tenant", "service", "day"),
                                name="daily_stats_one_per_service_day",
                            ),
                            models.UniqueConstraint(
                                condition=models.Q(("service__isnull", True)),
                                fields=("tenant", "day"),
                                name="daily_stats_one_total_per_day",
                            ),
                        ],
                    },
                ),
            ],
        ),
        migrations.RunPython(move_content_types, restore_content_types),
    ]
