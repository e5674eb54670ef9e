"""Cron, every minute: no-shows past the timeout, stale queues, unpaid tickets."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from tickets.maintenance import expire


class Command(BaseCommand):
    help = (
        "Mark called customers past the no-show timeout, expire tickets waiting past the "
        "tenant's expiry age or left from an earlier day, and cancel unpaid tickets past the "
        "payment timeout (their extras go back to stock). Safe to run every minute."
    )

    def handle(self, *args, **options) -> None:
        done = expire()
        self.stdout.write(
            "expire_tickets: "
            f"{done['no_show']} no-show(s), {done['expired']} expired, "
            f"{done['unpaid_cancelled']} unpaid ticket(s) or payment session(s) cancelled, "
            f"{done['skipped']} skipped (changed meanwhile)"
        )
