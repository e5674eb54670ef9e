"""Queue, send, follow up and cancel NFS-e: one pass of each step (ops/worker.py runs it
every minute)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from fiscal import issuing


class Command(BaseCommand):
    help = "Queue the NFS-e of paid sales, send them, ask about pending ones, follow refunds."

    def handle(self, *args, **options) -> None:
        steps = [
            ("queued", issuing.enqueue_paid),
            # Before sending: a sale refunded while queued is dropped, never issued.
            ("refunds", issuing.settle_refunds),
            ("sent", issuing.send_due),
            ("polled", issuing.poll_processing),
        ]
        for label, step in steps:
            found = step()
            if found:
                self.stdout.write(f"issue_nfse: {found} {label}")
