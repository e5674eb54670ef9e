"""Partition by month on PostgreSQL what grows with every sale (tenants/partitions.py); rows
kept. SQLite keeps plain tables. Django's state is unchanged: the model keeps its own key."""

from django.db import migrations

from tenants.partitions import partition_by_month, unpartition

TABLES = [
    ("tenants_auditlog", "created_at", "id"),
]


def forward(apps, schema_editor):
    for table, column, pk in TABLES:
        partition_by_month(schema_editor, table, column, pk)


def backward(apps, schema_editor):
    for table, column, pk in TABLES:
        unpartition(schema_editor, table, column, pk)


class Migration(migrations.Migration):
    # The rebuild runs in the migration's one transaction: stopped half-way, it rolls back.
    dependencies = [("tenants", "0015_feedback_received_event")]

    operations = [migrations.RunPython(forward, backward, elidable=False)]
