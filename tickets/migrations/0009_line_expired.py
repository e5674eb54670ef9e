"""A missed service expires when the tenant's reactivation window ends: the line status
`expired` (final) and its stamp.

The status check constraint is widened without holding the line table locked while PostgreSQL
scans it (docs/deploy.md, expand): dropped and added `NOT VALID` in one short transaction, then
validated in another, whose lock lets reads and writes go on (`ReplaceCheck`). Every row passes
already: the new set only adds a value. SQLite rebuilds the table with the new constraint.
"""

from django.db import migrations, models

from tickets.migrations._operations import ReplaceCheck

BEFORE = ["waiting", "called", "in_progress", "completed", "cancelled", "no_show"]
AFTER = [*BEFORE, "expired"]
NAME = "line_status_valid"


def _check(statuses: list[str]) -> models.CheckConstraint:
    return models.CheckConstraint(condition=models.Q(status__in=statuses), name=NAME)


STATUS = models.CharField(
    choices=[
        ("waiting", "Waiting"),
        ("called", "Called"),
        ("in_progress", "In service"),
        ("completed", "Completed"),
        ("cancelled", "Cancelled"),
        ("no_show", "No-show"),
        ("expired", "Expired"),
    ],
    default="waiting",
    max_length=20,
    verbose_name="status",
)


class Migration(migrations.Migration):
    # The two steps on PostgreSQL are two transactions (see above).
    atomic = False

    dependencies = [
        ("tickets", "0008_priority_blood_donors"),
    ]

    operations = [
        migrations.AddField(
            model_name="historicalticketline",
            name="expired_at",
            field=models.DateTimeField(blank=True, null=True, verbose_name="expired at"),
        ),
        migrations.AddField(
            model_name="ticketline",
            name="expired_at",
            field=models.DateTimeField(blank=True, null=True, verbose_name="expired at"),
        ),
        migrations.AlterField(model_name="historicalticketline", name="status", field=STATUS),
        migrations.AlterField(model_name="ticketline", name="status", field=STATUS),
        ReplaceCheck("ticketline", _check(BEFORE), _check(AFTER)),
    ]
