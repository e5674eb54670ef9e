"""Partition by month on PostgreSQL what grows with every sale (tenants/partitions.py); rows
kept. SQLite keeps plain tables. Django's state is unchanged: the model keeps its own key."""

from django.db import migrations

from tenants.partitions import monthly_partitions

TABLES = [
    ("tickets_historicalticket", "history_date", "history_id"),
    ("tickets_historicalticketservice", "history_date", "history_id"),
]



class Migration(migrations.Migration):
    # The rebuild runs in the migration's one transaction: stopped half-way, it rolls back.
    dependencies = [("tickets", "0017_package_sharing")]

    operations = [monthly_partitions(TABLES)]
