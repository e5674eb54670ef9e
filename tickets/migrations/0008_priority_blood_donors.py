"""Blood donors, a priority class served after the other legal groups (Lei 14.626/2023).

Lines keep their class as `priority_rank`, ordered by the queue index: 80+ 0, other legal
groups 1, and normal was 2. Blood donors come between the legal groups and normal, so they
take 2 and normal becomes 3; every stored line with 2 is renumbered to 3, so "2" means a donor
from now on, in the queue order and in the interleave count (which reads recent called lines
too, so not only waiting lines are renumbered). History rows keep the value they recorded.

Safe on large tables and beside running code:
- The two check constraints are widened by dropping the old one and adding the new one
  `NOT VALID` in one short transaction, then validated in another, which does not block
  writes (docs/deploy.md, "Releases and migrations without downtime"). The new constraints
  accept every value the old code writes.
- The renumbering runs in batches along the primary key, each in its own short transaction
  (the migration is not atomic); lines the old code inserts meanwhile come later on that
  walk, so they are renumbered too. A normal line that a not-yet-restarted process inserts
  after the walk would be read as a donor: `cleanup_inconsistent_states --fix` (cron, every
  10 minutes) puts an open line back in its ticket's class; run it once after the restarts.

Reversing: donors become the "priority" class (the nearest the old code knows), normal goes
back to 2, and the constraints are narrowed again.
"""

from django.db import migrations, models, transaction

from tickets.migrations._operations import ReplaceCheck

BATCH = 1000
# Ranks: 80+ 0 and the other legal groups 1, as before; blood donors take 2, normal was 2.
PRIORITY_RANK, DONOR_RANK, NORMAL_RANK, OLD_NORMAL_RANK = 1, 2, 3, 2

OLD_PRIORITIES = ["normal", "priority", "priority_80"]
NEW_PRIORITIES = [*OLD_PRIORITIES, "blood_donor"]
PRIORITY_CHOICES = [
    ("normal", "Normal"),
    ("priority", "Priority"),
    ("priority_80", "Priority 80+"),
    ("blood_donor", "Blood donor"),
]

TICKET_OLD = models.CheckConstraint(
    condition=models.Q(priority__in=OLD_PRIORITIES), name="ticket_priority_valid"
)
TICKET_NEW = models.CheckConstraint(
    condition=models.Q(priority__in=NEW_PRIORITIES), name="ticket_priority_valid"
)
LINE_OLD = models.CheckConstraint(
    condition=models.Q(priority_rank__lte=2), name="line_priority_valid"
)
LINE_NEW = models.CheckConstraint(
    condition=models.Q(priority_rank__in=[0, 1, 2, 3]), name="line_priority_valid"
)


def renumber(model, *, where: dict, to: dict) -> int:
    """Update the rows matching `where` to `to`, BATCH rows per transaction, walking the
    primary key once (rows inserted meanwhile come after it); returns how many changed."""
    changed, last = 0, 0
    while True:
        rows = model.objects.filter(pk__gt=last, **where).order_by("pk")
        batch = list(rows.values_list("pk", flat=True)[:BATCH])
        if not batch:
            return changed
        last = batch[-1]
        with transaction.atomic():
            # Re-checked in the UPDATE: a row changed meanwhile is left as it now is.
            changed += model.objects.filter(pk__in=batch, **where).update(**to)


def normal_to_three(apps, schema_editor):
    line = apps.get_model("tickets", "TicketLine")
    renumber(line, where={"priority_rank": OLD_NORMAL_RANK}, to={"priority_rank": NORMAL_RANK})


def normal_back_to_two(apps, schema_editor):
    line = apps.get_model("tickets", "TicketLine")
    ticket = apps.get_model("tickets", "Ticket")
    renumber(ticket, where={"priority": "blood_donor"}, to={"priority": "priority"})
    renumber(line, where={"priority_rank": DONOR_RANK}, to={"priority_rank": PRIORITY_RANK})
    renumber(line, where={"priority_rank": NORMAL_RANK}, to={"priority_rank": OLD_NORMAL_RANK})


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("tickets", "0007_canonical_customer_identity"),
    ]

    operations = [
        # Choices and the Python-side default live in Python only: nothing to change in the
        # database (AlterField would rebuild the table on SQLite).
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name=model_name,
                    name="priority",
                    field=models.CharField(
                        choices=PRIORITY_CHOICES,
                        default="normal",
                        max_length=16,
                        verbose_name="priority",
                    ),
                )
                for model_name in ("ticket", "historicalticket")
            ]
            + [
                migrations.AlterField(
                    model_name=model_name,
                    name="priority_rank",
                    field=models.PositiveSmallIntegerField(default=NORMAL_RANK),
                )
                for model_name in ("ticketline", "historicalticketline")
            ],
        ),
        ReplaceCheck("ticket", TICKET_OLD, TICKET_NEW),
        ReplaceCheck("ticketline", LINE_OLD, LINE_NEW),
        migrations.RunPython(normal_to_three, normal_back_to_two),
    ]
