"""Retention (LGPD): anonymise old customer data, delete what is past its keeping.

Dry run by default: it prints what it would do and changes nothing. Cron, nightly:
`manage.py purge_old_data --apply`.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from ops import retention


class Command(BaseCommand):
    help = (
        "Anonymise names, CPF and phone of old tickets; delete tickets and receipts past the "
        "retention and old audit entries. Dry run unless --apply."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--apply", action="store_true", help="Change the data (else dry).")
        parser.add_argument(
            "--anonymise-after",
            type=int,
            default=retention.DEFAULT_ANONYMISE_DAYS,
            help="Days after which customer data is anonymised (default %(default)s).",
        )
        parser.add_argument(
            "--retention-days",
            type=int,
            default=retention.DEFAULT_RETENTION_DAYS,
            help="Days tickets, payments and receipts are kept (default %(default)s).",
        )
        parser.add_argument(
            "--audit-days",
            type=int,
            default=retention.DEFAULT_AUDIT_DAYS,
            help="Days audit entries are kept (default %(default)s).",
        )
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args, **options) -> None:
        anonymise, keep, audit = (
            options["anonymise_after"],
            options["retention_days"],
            options["audit_days"],
        )
        if min(anonymise, keep, audit) < 1 or options["batch_size"] < 1:
            raise CommandError("days and --batch-size must be positive")
        if anonymise > keep:
            raise CommandError("--anonymise-after cannot be longer than --retention-days")
        mode = "APPLYING" if options["apply"] else "DRY RUN (nothing changes; --apply to do it)"
        self.stdout.write(
            f"{mode}: anonymise after {anonymise} days, keep tickets {keep} days, "
            f"audit {audit} days"
        )
        report = retention.purge(
            anonymise_days=anonymise,
            retention_days=keep,
            audit_days=audit,
            batch_size=options["batch_size"],
            apply=options["apply"],
            progress=self.stdout.write,
        )
        verb = "" if options["apply"] else "would be "
        self.stdout.write("summary:")
        self.stdout.write(f"  tickets {verb}anonymised: {report.anonymised}")
        self.stdout.write(f"  tickets {verb}deleted: {report.tickets_deleted}")
        for label, count in sorted(report.rows_deleted.items()):
            self.stdout.write(f"    {label}: {count}")
        self.stdout.write(f"  audit entries {verb}deleted: {report.audit_deleted}")
        self.stdout.write(f"  day counters {verb}deleted: {report.counters_deleted}")
        self.stdout.write(f"  customers {verb}deleted: {report.customers_deleted}")
        self.stdout.write(f"  health waivers {verb}deleted: {report.waivers_deleted}")
        self.stdout.write(f"  provider notifications {verb}deleted: {report.notifications_deleted}")
        self.stdout.write(f"  webhook events {verb}deleted: {report.outbox_deleted}")
        self.stdout.write(f"  resolved alerts {verb}deleted: {report.alerts_deleted}")
