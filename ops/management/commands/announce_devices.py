"""Worker, every 15 s: tell the screens about device states that changed with the clock alone
— a cool-down that ran out, a daily maintenance window that opened or closed. Correctness
never waits on it (a device's state is derived from its times, tickets/devices.py); the
panel's own timer also refreshes it when a cool-down reaches zero."""

from __future__ import annotations

from datetime import timedelta

from django.core.management.base import BaseCommand
from django.utils import timezone

from tickets.devices import announce_cooled, announce_windows


class Command(BaseCommand):
    help = (
        "Send equipment_update for devices whose cool-down has passed or whose daily "
        "maintenance window opened or closed within the last --seconds. Safe to run often."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--seconds", type=int, default=15, help="How often it runs (the window's look-back)."
        )

    def handle(self, *args, **options) -> None:
        now = timezone.now()
        cooled = announce_cooled(now)
        windows = announce_windows(now, timedelta(seconds=options["seconds"]))
        # Silent when nothing changed: the worker logs each line, four times a minute.
        if cooled or windows:
            self.stdout.write(
                f"announce_devices: {cooled} cool-down(s) over, "
                f"{windows} maintenance window(s) opened or closed"
            )
