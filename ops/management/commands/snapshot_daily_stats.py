"""Store each tenant's daily statistics. `run_worker` runs it hourly with `--days 2 --missing`:
each tenant's local yesterday is stored within the hour after its own midnight, once."""

from __future__ import annotations

from datetime import date, timedelta

from django.core.management.base import BaseCommand, CommandError

from ops.models import DailyStats
from ops.stats import snapshot_day
from ops.utilisation import snapshot_devices
from tenants.models import Tenant


class Command(BaseCommand):
    help = (
        "Store daily statistics per tenant and service (upsert: safe to run again). "
        "Default: yesterday in each tenant's time zone."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--date", help="The local day to store, YYYY-MM-DD.")
        parser.add_argument(
            "--days", type=int, default=1, help="Also the N-1 days before it (backfill)."
        )
        parser.add_argument("--tenant", help="Only this tenant's slug.")
        parser.add_argument(
            "--missing", action="store_true", help="Only days with no statistics stored yet."
        )

    def handle(self, *args, **options) -> None:
        try:
            chosen = date.fromisoformat(options["date"]) if options["date"] else None
        except ValueError:
            raise CommandError(f"--date must be YYYY-MM-DD, not {options['date']!r}") from None
        if not 1 <= options["days"] <= 400:
            raise CommandError("--days must be between 1 and 400")
        tenants = Tenant.objects.alive()
        if options["tenant"]:
            tenants = tenants.filter(slug=options["tenant"])
            if not tenants.exists():
                raise CommandError(f"no tenant with slug {options['tenant']!r}")
        for tenant in tenants.order_by("pk"):
            last = chosen or tenant.today() - timedelta(days=1)
            for back in range(options["days"] - 1, -1, -1):
                day = last - timedelta(days=back)
                # Every stored day has its whole-tenant row (service empty), even a day with
                # no ticket.
                if (
                    options["missing"]
                    and DailyStats.objects.filter(
                        tenant=tenant, day=day, service__isnull=True
                    ).exists()
                ):
                    continue
                result = snapshot_day(tenant, day)
                if result.kept_purged:
                    self.stdout.write(f"{tenant.slug} {day}: tickets purged, statistics kept")
                else:
                    # Each device's utilisation that day, kept beside it.
                    devices = snapshot_devices(tenant, day)
                    self.stdout.write(
                        f"{tenant.slug} {day}: {result.written} rows written, "
                        f"{result.removed} removed, {devices} device rows"
                    )
