"""Notify each tenant of what is wrong now (printer offline, payments failing, long queues).

Cron, every minute. A lasting condition is notified once; its end once more.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from ops.models import NotificationSettings
from ops.notifications import check_tenant
from tenants.models import Tenant


class Command(BaseCommand):
    help = "Check alert conditions of every tenant and notify Slack and e-mail of changes."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--tenant", help="Only this tenant's slug.")

    def handle(self, *args, **options) -> None:
        configured = NotificationSettings.objects.filter(enabled=True).values("tenant")
        tenants = Tenant.objects.alive().filter(is_active=True, pk__in=configured)
        if options["tenant"]:
            tenants = tenants.filter(slug=options["tenant"])
            if not tenants.exists():
                raise CommandError(f"no tenant {options['tenant']!r} with notifications enabled")
        for tenant in tenants.order_by("pk"):
            result = check_tenant(tenant)
            if result.opened or result.resolved or result.renotified:
                self.stdout.write(
                    f"{tenant.slug}: {result.opened} opened, {result.resolved} resolved, "
                    f"{result.renotified} sent again"
                )
