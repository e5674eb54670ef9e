"""Partition by month on PostgreSQL what grows with every sale (tenants/partitions.py); rows
kept. SQLite keeps plain tables. Django's state is unchanged: the model keeps its own key."""

from django.db import migrations

from tenants.partitions import monthly_partitions

TABLES = [
    ("payments_historicalpaymentsession", "history_date", "history_id"),
]



class Migration(migrations.Migration):
    # The rebuild runs in the migration's one transaction: stopped half-way, it rolls back.
    dependencies = [("payments", "0006_receipt_nfse")]

    operations = [monthly_partitions(TABLES)]
