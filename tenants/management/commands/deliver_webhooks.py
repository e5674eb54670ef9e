"""Deliver outgoing webhook events from the outbox. Runs as a service; `--once` for cron/tests."""

from __future__ import annotations

import signal
import time

from django.core.management.base import BaseCommand

from tenants.webhooks import deliver_due


class Command(BaseCommand):
    help = "Deliver pending outgoing webhook events (signed POSTs, retried with backoff)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--once", action="store_true", help="One pass over what is due.")
        parser.add_argument("--batch", type=int, default=20, help="Rows claimed at a time.")
        parser.add_argument(
            "--idle", type=float, default=2.0, help="Seconds to sleep when nothing is due."
        )

    def handle(self, *args, **options) -> None:
        self.stopping = False
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        if options["once"]:
            total = 0
            while found := deliver_due(limit=options["batch"]):
                total += found
            self.stdout.write(f"{total} deliveries attempted")
            return
        self.stdout.write("delivering webhooks; SIGTERM stops after the current batch")
        while not self.stopping:
            if not deliver_due(limit=options["batch"]):
                time.sleep(options["idle"])

    def stop(self, signum, frame) -> None:
        self.stopping = True
