"""Monthly partitions of the audit log and history tables (PostgreSQL): the coming months
made ahead, the months past their keeping dropped whole (ops/retention.py). The worker runs
it daily; nothing to do on SQLite.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from ops import retention


class Command(BaseCommand):
    help = "Create the next months' partitions and drop those past their retention."

    def handle(self, *args, **options) -> None:
        created, dropped = retention.keep_partitions(progress=self.stdout.write)
        self.stdout.write(
            f"partitions: {len(created)} created ({', '.join(created) or '-'}), "
            f"{len(dropped)} dropped ({', '.join(dropped) or '-'})"
        )
