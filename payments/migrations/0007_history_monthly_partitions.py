"""Partition by month on PostgreSQL what grows with every sale (tenants/partitions.py); rows
kept. SQLite keeps plain tables. Django's state is unchanged: the model keeps its own key."""

from django.db import migrations

from tenants.partitions import partition_by_month, unpartition

TABLES = [
    ("payments_historicalpaymentsession", "history_date", "history_id"),
]


def forward(apps, schema_editor):
    for table, column, pk in TABLES:
        partition_by_month(schema_editor, table, column, pk)


def backward(apps, schema_editor):
    for table, column, pk in TABLES:
        unpartition(schema_editor, table, column, pk)


class Migration(migrations.Migration):
    # The rebuild runs in the migration's one transaction: stopped half-way, it rolls back.
    dependencies = [("payments", "0006_receipt_nfse")]

    operations = [migrations.RunPython(forward, backward, elidable=False)]
