"""Cron, every minute: no-shows past the timeout, stuck services, stale queues, missed services
past their reactivation window, unpaid tickets."""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.utils import timezone

from payments.sessions import expire_pending_sessions
from tickets.maintenance import expire


class Command(BaseCommand):
    help = (
        "Mark called customers past the no-show timeout, close services called or in service "
        "past the tenant's limit or the day, expire tickets waiting past the tenant's expiry "
        "age or left from an earlier day and missed services past the reactivation window, and "
        "cancel unpaid tickets past the payment timeout (their extras go back to stock). Safe "
        "to run every minute."
    )

    def handle(self, *args, **options) -> None:
        now = timezone.now()
        # Unpaid tickets first, in payments' one place for it: each session is looked up at
        # its provider before it is cancelled, so a payment made at the last second confirms
        # its ticket instead of losing the money; extras go back to stock.
        unpaid = expire_pending_sessions(now)
        done = expire(now)
        done["unpaid_cancelled"] += unpaid
        self.stdout.write(
            "expire_tickets: "
            f"{done['no_show']} no-show(s), {done['stuck_closed']} stuck service(s) closed, "
            f"{done['expired']} expired, {done['missed_expired']} missed service(s) expired, "
            f"{done['unpaid_cancelled']} unpaid ticket(s) or payment session(s) cancelled, "
            f"{done['skipped']} skipped (changed meanwhile)"
        )
