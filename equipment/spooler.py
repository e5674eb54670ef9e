"""The print spooler: claims print jobs, prints them outside any transaction, settles them.

`run_printer_spooler` loops over `Spooler.run_one()` and `Spooler.heartbeat()`; tests call
the same methods. Each returns whether it found work.

- Claim: a short transaction takes the oldest due job with `SELECT … FOR UPDATE SKIP
  LOCKED`, so parallel spoolers never take the same job, and stamps a lease (`claimed_at`,
  `claimed_by`). A job whose lease ran out (its spooler was killed) is due again.
- Print: render and send with no transaction and no lock held: a slow printer never holds a
  database row.
- Settle: a second short transaction, lock order ticket → job → printer. The job is settled
  only if this spooler still holds its lease (a conditional UPDATE whose row count is
  checked); the ticket moves `printing → in_queue`, or after the last retry to
  `print_error` with the reason, and the printer is marked offline.

What a customer may see: a spooler killed after the bytes left but before the job was
settled prints that ticket again once the lease runs out (twice in hand, same number). The
other way round — a ticket never printed — cannot happen while a spooler runs.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from equipment.models import Equipment, JobKind, JobStatus, PrinterSettings, PrintJob, Status
from equipment.printing import PrinterUnavailable, probe, send
from tickets import events
from tickets import printing as ticket_printing
from tickets.models import Ticket

log = logging.getLogger(__name__)


def worker_name() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Spooler:
    # How long a claimed job stays ours. Printing one takes at most a few seconds (the
    # transports time out after NETWORK_TIMEOUT), so a lease this long only runs out when
    # the spooler died.
    lease = timedelta(seconds=60)
    # Seconds before the 2nd, 3rd and 4th attempt; after the 4th the ticket is print_error.
    # Short: a customer is standing at the kiosk, and an operator can reprint later.
    retry_delays: tuple[int, ...] = (2, 5, 15)

    def __init__(
        self,
        *,
        printer_ids: list[int] | None = None,
        name: str = "",
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.printer_ids = printer_ids
        self.name = name or worker_name()
        self.say = say or log.info
        self.counts: Counter[str] = Counter()

    @property
    def max_attempts(self) -> int:
        return len(self.retry_delays) + 1

    def _mine(self, queryset):
        if self.printer_ids is not None:
            return queryset.filter(printer_id__in=self.printer_ids)
        return queryset

    # --- claiming -------------------------------------------------------------------------

    def claim(self) -> PrintJob | None:
        """Take the oldest due job (or one whose lease ran out) and stamp our lease on it."""
        now = timezone.now()
        with transaction.atomic():
            due = self._mine(
                PrintJob.objects.filter(
                    Q(status=JobStatus.PENDING, next_attempt_at__lte=now)
                    | Q(status=JobStatus.PRINTING, claimed_at__lt=now - self.lease)
                ).exclude(printer__status=Status.MAINTENANCE)
            )
            job = (
                due.order_by("next_attempt_at", "id")
                .select_for_update(skip_locked=True, of=("self",))
                .first()
            )
            if job is None:
                return None
            if job.status == JobStatus.PRINTING:
                self.say(f"job {job.pk}: lease of {job.claimed_by} ran out, taking it over")
            job.status = JobStatus.PRINTING
            job.claimed_at = now
            job.claimed_by = self.name
            # Counted at claim time, so a job that kills its spooler every time still ends.
            job.attempts += 1
            job.save(update_fields=["status", "claimed_at", "claimed_by", "attempts"])
        return job

    # --- printing -------------------------------------------------------------------------

    def run_one(self) -> bool:
        """Claim, print and settle one job. False when nothing was due."""
        job = self.claim()
        if job is None:
            return False
        self.process(job)
        return True

    def run_until_idle(self) -> int:
        """Process every due job (`--once`); the number processed."""
        done = 0
        while self.run_one():
            done += 1
        return done

    def process(self, job: PrintJob) -> str:
        """Print a claimed job outside any transaction; returns how it was settled."""
        job = (
            PrintJob.objects.select_related("printer__printer_settings", "ticket__tenant", "tenant")
            .filter(pk=job.pk)
            .first()
        )
        if job.kind == JobKind.TICKET and job.ticket.status not in ticket_printing.PRINTABLE:
            return self._settle(job, "skipped")
        started = timezone.now()
        try:
            data = ticket_printing.render_job(job)
            send(job.printer.printer_settings, data)
        except PrinterUnavailable as error:
            return self._settle_failure(job, str(error))
        except PrinterSettings.DoesNotExist:
            return self._settle_failure(job, "the printer has no printer settings")
        except Exception as error:  # noqa: BLE001 — a layout bug must not stop the spooler
            log.exception("job %s could not be rendered", job.pk)
            return self._settle_failure(job, f"{type(error).__name__}: {error}")
        seconds = (timezone.now() - started).total_seconds()
        outcome = self._settle(job, "printed")
        if outcome == "printed":
            self.say(f"job {job.pk}: {self._what(job)} printed on {job.printer} in {seconds:.1f} s")
        return outcome

    @staticmethod
    def _what(job: PrintJob) -> str:
        return f"ticket {job.ticket.number}" if job.ticket_id else job.get_kind_display().lower()

    def _settle(self, job: PrintJob, outcome: str) -> str:
        """Mark the job printed (or skipped); a printed ticket enters the queue."""
        now = timezone.now()
        with transaction.atomic():
            ticket = self._lock_ticket(job)
            if outcome == "printed":
                changes = {"status": JobStatus.PRINTED, "printed_at": now, "last_error": ""}
            else:
                changes = {"status": JobStatus.CANCELLED}
            if not self._update_if_mine(job, **changes):
                return self._lost(job)
            if outcome == "printed":
                if ticket is not None:
                    ticket_printing.printed(ticket)
                self._set_printer(job.printer_id, Status.ONLINE, _("printed"), now)
            else:
                self.say(
                    f"job {job.pk}: ticket {job.ticket.number} is {job.ticket.status}, skipped"
                )
        self.counts[outcome] += 1
        return outcome

    def _settle_failure(self, job: PrintJob, reason: str) -> str:
        now = timezone.now()
        reason = reason[:500]
        final = job.attempts >= self.max_attempts
        with transaction.atomic():
            ticket = self._lock_ticket(job) if final else None
            if final:
                changes = {"status": JobStatus.FAILED, "failed_at": now}
            else:
                delay = self.retry_delays[job.attempts - 1]
                changes = {
                    "status": JobStatus.PENDING,
                    "next_attempt_at": now + timedelta(seconds=delay),
                    "claimed_at": None,
                    "claimed_by": "",
                }
            if not self._update_if_mine(job, last_error=reason, **changes):
                return self._lost(job)
            if final:
                if ticket is not None:
                    ticket_printing.print_failed(ticket, reason)
                self._set_printer(job.printer_id, Status.OFFLINE, reason, None)
        attempt = f"attempt {job.attempts}/{self.max_attempts}"
        if final:
            self.counts["failed"] += 1
            self.say(
                f"job {job.pk}: {self._what(job)} FAILED on {job.printer} ({attempt}): {reason}"
            )
            return "failed"
        self.counts["retried"] += 1
        self.say(f"job {job.pk}: {attempt} failed: {reason}; retry in {delay} s")
        return "retry"

    @staticmethod
    def _lock_ticket(job: PrintJob) -> Ticket | None:
        if not job.ticket_id:
            return None
        return Ticket.objects.select_for_update().get(pk=job.ticket_id)

    def _update_if_mine(self, job: PrintJob, **changes) -> bool:
        """Apply `changes` only while we still hold the job's lease."""
        return bool(
            PrintJob.objects.filter(
                pk=job.pk, status=JobStatus.PRINTING, claimed_by=self.name
            ).update(**changes)
        )

    def _lost(self, job: PrintJob) -> str:
        # Our lease ran out while printing and another spooler took the job over.
        self.counts["lost"] += 1
        self.say(f"job {job.pk}: lease lost to another spooler; left to it")
        return "lost"

    # --- the printers' status -------------------------------------------------------------

    def _set_printer(self, printer_id: int, status: str, reason: str, seen_at) -> bool:
        """Record the printer's status (never overriding maintenance); True if it changed.

        Call inside a transaction. A change is saved with history and broadcast; a mere
        sighting only moves `last_seen_at`.
        """
        device = Equipment.objects.select_for_update().get(pk=printer_id)
        if device.status == status or device.status == Status.MAINTENANCE:
            if seen_at is not None:
                Equipment.objects.filter(pk=printer_id).update(last_seen_at=seen_at)
            return False
        device.status = status
        fields = ["status"]
        if seen_at is not None:
            device.last_seen_at = seen_at
            fields.append("last_seen_at")
        device._change_reason = reason[:100]
        device.save(update_fields=fields)
        events.publish(
            "equipment_update",
            tenant_id=device.tenant_id,
            equipment_id=device.id,
            equipment_status=status,
        )
        self.say(f"printer {device}: {status} ({reason})")
        return True

    def heartbeat(self) -> int:
        """Probe every printer this spooler serves and record what it finds; how many."""
        printers = self._printers().exclude(equipment__status=Status.MAINTENANCE)
        for printer in printers:
            problem = probe(printer)
            with transaction.atomic():
                if problem:
                    self._set_printer(printer.equipment_id, Status.OFFLINE, problem, None)
                else:
                    self._set_printer(
                        printer.equipment_id, Status.ONLINE, _("reachable"), timezone.now()
                    )
        self.counts["heartbeats"] += 1
        return len(printers)

    def _printers(self):
        printers = PrinterSettings.objects.alive().select_related("equipment")
        if self.printer_ids is not None:
            printers = printers.filter(equipment_id__in=self.printer_ids)
        return printers

    def summary(self) -> str:
        c = self.counts
        return (
            f"{c['printed']} printed, {c['retried']} retries, {c['failed']} failed, "
            f"{c['skipped']} skipped, {c['lost']} lost leases, {c['heartbeats']} heartbeats"
        )
