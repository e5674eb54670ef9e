"""Partition by month on PostgreSQL what grows with every sale (tenants/partitions.py); rows
kept. SQLite keeps plain tables. Django's state is unchanged: the model keeps its own key."""

from django.db import migrations

from tenants.partitions import monthly_partitions

TABLES = [
    ("tenants_auditlog", "created_at", "id"),
]



class Migration(migrations.Migration):
    # The rebuild runs in the migration's one transaction: stopped half-way, it rolls back.
    dependencies = [("tenants", "0018_audit_package_shared")]

    operations = [monthly_partitions(TABLES)]
