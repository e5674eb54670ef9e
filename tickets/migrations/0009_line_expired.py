"""A missed service expires when the tenant's reactivation window ends: the line status
`expired` (final) and its stamp.

The status check constraint is widened without holding the line table locked while PostgreSQL
scans it (docs/deploy.md, expand): dropped and added `NOT VALID` in one short transaction, then
validated in another, whose lock lets reads and writes go on. Every row passes already: the new
set only adds a value. Other databases replace the constraint the usual way.
"""

from django.db import migrations, models, transaction

BEFORE = ["waiting", "called", "in_progress", "completed", "cancelled", "no_show"]
AFTER = [*BEFORE, "expired"]
NAME = "line_status_valid"


def _check(statuses: list[str]) -> models.CheckConstraint:
    return models.CheckConstraint(condition=models.Q(status__in=statuses), name=NAME)


def _replace(schema_editor, model, old: list[str], new: list[str]) -> None:
    if schema_editor.connection.vendor != "postgresql":
        schema_editor.remove_constraint(model, _check(old))
        schema_editor.add_constraint(model, _check(new))
        return
    quote = schema_editor.quote_name
    table, name = quote(model._meta.db_table), quote(NAME)
    values = ", ".join(schema_editor.quote_value(status) for status in new)
    with transaction.atomic(using=schema_editor.connection.alias):
        schema_editor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
        schema_editor.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT {name} "
            f"CHECK ({quote('status')} IN ({values})) NOT VALID"
        )
    schema_editor.execute(f"ALTER TABLE {table} VALIDATE CONSTRAINT {name}")


def widen(apps, schema_editor) -> None:
    _replace(schema_editor, apps.get_model("tickets", "TicketLine"), BEFORE, AFTER)


def narrow(apps, schema_editor) -> None:
    _replace(schema_editor, apps.get_model("tickets", "TicketLine"), AFTER, BEFORE)


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
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveConstraint(model_name="ticketline", name=NAME),
                migrations.AddConstraint(model_name="ticketline", constraint=_check(AFTER)),
            ],
            database_operations=[migrations.RunPython(widen, narrow)],
        ),
    ]
