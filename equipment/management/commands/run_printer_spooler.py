"""`manage.py run_printer_spooler`: print the print jobs, for every printer or one.

Runs until SIGTERM/SIGINT (it finishes the job in hand first) or, with `--once`, until no
job is due. Several can run side by side (one per printer, or several for the same
printers): jobs are claimed with SKIP LOCKED and never printed twice in normal operation.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, close_old_connections

from equipment.models import Equipment, Kind
from equipment.spooler import Spooler
from tickets import events


def printer_ids(value: str) -> list[int]:
    """`demo/impressora` (tenant slug / identifier) or `impressora` (in every tenant)."""
    slug, _, identifier = value.rpartition("/")
    printers = Equipment.objects.alive().filter(kind=Kind.PRINTER, identifier=identifier)
    if slug:
        printers = printers.filter(tenant__slug=slug)
    ids = list(printers.values_list("pk", flat=True))
    if not ids:
        raise CommandError(f"no printer '{value}' (use <tenant slug>/<identifier>)")
    return ids


def quiet_escpos() -> None:
    """Drop python-escpos's INFO lines ("Network printer enabled" on every print).

    It logs through the root logger, so no logger name can be silenced: the filter goes on
    the root handlers, in this process only, and keeps its warnings and errors.
    """

    def not_escpos_chatter(record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or f"{os.sep}escpos{os.sep}" not in record.pathname

    for handler in logging.getLogger().handlers:
        handler.addFilter(not_escpos_chatter)


class Command(BaseCommand):
    help = "Print pending tickets, receipts and test pages; keep printers' status current."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--printer",
            action="append",
            help="Only this printer: <tenant slug>/<identifier> or <identifier>. Repeatable.",
        )
        parser.add_argument(
            "--once", action="store_true", help="Print what is due, then stop (for cron)."
        )
        parser.add_argument(
            "--interval", type=float, default=1.0, help="Seconds between polls when idle."
        )
        parser.add_argument(
            "--heartbeat", type=float, default=30.0, help="Seconds between printer probes."
        )

    def handle(self, *args, **options) -> None:
        ids = None
        if options["printer"]:
            ids = sorted({pk for value in options["printer"] for pk in printer_ids(value)})
        quiet_escpos()
        self.stop = threading.Event()
        spooler = Spooler(printer_ids=ids, say=self.say)
        scope = ", ".join(options["printer"]) if ids else "every printer"
        self.say(f"spooler {spooler.name} started for {scope}")
        if warning := events.process_local_warning():
            self.say(warning)
        if options["once"]:
            self.run_once(spooler)
        else:
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, self.on_signal)
            self.run_forever(spooler, options["interval"], options["heartbeat"])
        self.say(f"spooler {spooler.name} stopped: {spooler.summary()}")

    def say(self, line: str) -> None:
        self.stdout.write(f"{time.strftime('%H:%M:%S')} {line}")
        self.stdout.flush()  # progress shows at once when the output is a file or a pipe

    def on_signal(self, signum, frame) -> None:
        # Only a flag: the job in hand is finished and settled, then the loop ends.
        self.say("stopping after the job in hand")
        self.stop.set()

    def run_once(self, spooler: Spooler) -> None:
        spooler.heartbeat()
        spooler.run_until_idle()

    def run_forever(self, spooler: Spooler, interval: float, heartbeat_every: float) -> None:
        next_heartbeat = 0.0
        while not self.stop.is_set():
            # A PostgreSQL restart or an idle timeout kills the connection; this drops a dead
            # one so the next query reconnects instead of failing forever.
            close_old_connections()
            try:
                if time.monotonic() >= next_heartbeat:
                    spooler.heartbeat()
                    next_heartbeat = time.monotonic() + heartbeat_every
                found = spooler.run_one()
            except DatabaseError as error:
                # The database is away (restart, failover): wait and try again. A job claimed
                # before the error keeps its lease and is taken again when it runs out.
                self.say(f"database error, retrying: {' '.join(str(error).split())}")
                found = False
            if not found:
                self.stop.wait(interval)
        close_old_connections()
