"""DailyStats, NotificationSettings (and its history) and Alert now belong to the `ops` app.

State only: their tables keep their names and rows (ops/migrations/0001_initial.py takes them
up), so an existing database migrates without copying data.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0005_encrypted_secrets"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveConstraint(
                    model_name="alert",
                    name="alert_one_open_per_condition",
                ),
                migrations.RemoveConstraint(
                    model_name="alert",
                    name="alert_kind_valid",
                ),
                migrations.RemoveIndex(
                    model_name="dailystats",
                    name="daily_stats_recent",
                ),
                migrations.RemoveConstraint(
                    model_name="dailystats",
                    name="daily_stats_one_per_service_day",
                ),
                migrations.RemoveConstraint(
                    model_name="dailystats",
                    name="daily_stats_one_total_per_day",
                ),
                migrations.RemoveField(
                    model_name="notificationsettings",
                    name="tenant",
                ),
                migrations.RemoveField(
                    model_name="alert",
                    name="tenant",
                ),
                migrations.RemoveField(
                    model_name="dailystats",
                    name="service",
                ),
                migrations.RemoveField(
                    model_name="dailystats",
                    name="tenant",
                ),
                migrations.DeleteModel(
                    name="HistoricalNotificationSettings",
                ),
                migrations.DeleteModel(
                    name="NotificationSettings",
                ),
                migrations.DeleteModel(
                    name="Alert",
                ),
                migrations.DeleteModel(
                    name="DailyStats",
                ),
            ],
        ),
    ]
