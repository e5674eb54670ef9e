"""The worker: every periodic job of an installation, and outgoing webhooks, in one process.

`manage.py run_worker` runs it in production (a systemd service beside Daphne and the
spooler); in zero-setup mode Daphne runs it itself (config/background.py). It replaces the
cron lines: the jobs are the management commands cron ran, with the options it passed, so a
command run by hand and the worker do the same thing.

Two loops, each in a thread of its own so a webhook receiver that hangs never delays expiry:

- `run_periodic`: every second, runs the jobs that are due (`run_due`). A job is claimed with
  one conditional UPDATE of its `ScheduledJob` row whose row count is checked — due, and no
  live lease — which also sets the next due time. Several workers (one per machine, or
  Daphnes in zero-setup mode) therefore run each job once per period, never twice at once,
  on PostgreSQL and SQLite alike; a worker killed mid-job holds the job until its lease runs
  out. A job that outlives its lease could be started by another worker: every command
  locks the rows it changes, so that costs work, not correctness.
- `run_deliveries`: outgoing webhooks as they fall due (tenants/webhooks.py claims them with
  SKIP LOCKED, so workers split them).
- `run_whatsapp`: WhatsApp notices — a scan of the live opt-ins that writes the messages the
  queue calls for (messaging/notify.py), then a send of the due ones (messaging/outbox.py,
  claimed like webhooks). A thread of its own: Meta slow to answer delays no other work.

A job's failure is logged, recorded on its row and leaves the other jobs running. SIGTERM
(the command) or Daphne's shutdown sets `stop`: the job in hand finishes, then the loops end.

No scheduler library: APScheduler 3 keeps its schedule per process ("job stores must never be
shared between schedulers", its user guide), so two machines would run every job twice;
django-q2 and huey bring a task queue with its own worker processes, and procrastinate needs
PostgreSQL (zero-setup runs on SQLite). What this needs beyond a loop — one run per period
across machines and restarts — is the claim above, the pattern the spooler and the outbox
already use.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from io import StringIO

from django.core.management import call_command
from django.db import DatabaseError, close_old_connections
from django.db.models import Q
from django.utils import timezone

from equipment.spooler import worker_name
from messaging import notify, outbox
from ops.models import ScheduledJob
from tenants.webhooks import deliver_due

log = logging.getLogger(__name__)

# Outgoing webhooks claimed at a time: each waits at most 10 s on its receiver, and SIGTERM
# waits for the batch in hand.
WEBHOOK_BATCH = 10
# WhatsApp messages sent per round: far below a number's 80 messages/s, and a round is short.
WHATSAPP_BATCH = 20


@dataclass(frozen=True)
class Job:
    name: str
    # The management command and its options, as cron ran it.
    command: tuple[str, ...]
    every: timedelta
    # A daily job's time of day in the installation's TIME_ZONE (None: every `every`).
    at: time | None = None
    # How long a worker that died mid-job keeps it from the others; longer than a run takes.
    lease: timedelta = timedelta(minutes=10)

    def next_due(self, now: datetime) -> datetime:
        if self.at is None:
            return now + self.every
        local = timezone.localtime(now)
        due = local.replace(hour=self.at.hour, minute=self.at.minute, second=0, microsecond=0)
        return due if due > local else due + timedelta(days=1)

    def first_due(self, now: datetime) -> datetime:
        """A job never run is due at once, a daily one at its next time."""
        return now if self.at is None else self.next_due(now)


JOBS = (
    # No-shows past the call timeout, stale queues, unpaid tickets and payment sessions.
    Job("expire_tickets", ("expire_tickets",), every=timedelta(minutes=1)),
    # A cool-down that ran out, a maintenance window opening or closing: screens hear it.
    Job(
        "announce_devices",
        ("announce_devices", "--seconds", "15"),
        every=timedelta(seconds=15),
        lease=timedelta(minutes=2),
    ),
    # Printer offline, payments failing, long queues → the tenant's Slack and e-mail.
    Job("check_alerts", ("check_alerts",), every=timedelta(minutes=1)),
    # NFS-e of paid sales queued, sent, followed up, cancelled on refund (fiscal/issuing.py).
    Job("issue_nfse", ("issue_nfse",), every=timedelta(minutes=1)),
    # States the rules forbid (a crash, a hand edit), repaired.
    Job(
        "cleanup_inconsistent_states",
        ("cleanup_inconsistent_states", "--fix"),
        every=timedelta(minutes=10),
        lease=timedelta(minutes=30),
    ),
    # Each tenant's local yesterday, within the hour after its own midnight whatever the
    # server's time zone, and once (--missing); the day before too, should the worker have
    # been down over a midnight.
    Job(
        "snapshot_daily_stats",
        ("snapshot_daily_stats", "--days", "2", "--missing"),
        every=timedelta(hours=1),
        lease=timedelta(hours=1),
    ),
    # Retention (LGPD) with the documented defaults, at night.
    Job(
        "purge_old_data",
        ("purge_old_data", "--apply"),
        every=timedelta(days=1),
        at=time(3, 30),
        lease=timedelta(hours=6),
    ),
    # Monthly partitions (PostgreSQL): the coming months ahead, the expired ones dropped.
    # Daily though a month lasts long: a worker down for a while catches up the next day.
    Job(
        "manage_partitions",
        ("manage_partitions",),
        every=timedelta(days=1),
        at=time(3, 15),
        lease=timedelta(hours=1),
    ),
    # The API's idempotency replies (a day) and request log (as the audit log), at night.
    Job(
        "purge_api_records",
        ("purge_api_records",),
        every=timedelta(days=1),
        at=time(3, 45),
        lease=timedelta(hours=1),
    ),
)


class Worker:
    def __init__(
        self,
        jobs: tuple[Job, ...] = JOBS,
        *,
        say: Callable[[str], None] | None = None,
        name: str = "",
    ) -> None:
        self.jobs = {job.name: job for job in jobs}
        self.say = say or log.info
        self.name = name or worker_name()

    # --- periodic jobs ----------------------------------------------------------------------

    def due(self, now: datetime) -> list[Job]:
        """The jobs due at `now` and not held by a worker, in the table's order. Creates the
        row of a job never seen (a new installation, or a job added by a release)."""
        rows = {row.name: row for row in ScheduledJob.objects.filter(name__in=self.jobs)}
        for job in self.jobs.values():
            if job.name not in rows:
                rows[job.name], _ = ScheduledJob.objects.get_or_create(
                    name=job.name, defaults={"due_at": job.first_due(now)}
                )
        return [
            job
            for job in self.jobs.values()
            if rows[job.name].due_at <= now
            and (rows[job.name].leased_until is None or rows[job.name].leased_until <= now)
        ]

    def claim(self, job: Job, now: datetime) -> datetime | None:
        """Take `job` if it is still due and free: the end of our lease, or None."""
        until = now + job.lease
        taken = (
            ScheduledJob.objects.filter(name=job.name, due_at__lte=now)
            .filter(Q(leased_until__isnull=True) | Q(leased_until__lte=now))
            .update(
                due_at=job.next_due(now),
                leased_until=until,
                leased_by=self.name,
                last_started_at=now,
            )
        )
        return until if taken else None

    def run(self, job: Job) -> str:
        """Run the job's command now, saying what it printed; the error ("" if none)."""
        out = StringIO()
        error = ""
        try:
            call_command(*job.command, stdout=out, stderr=out)
        except Exception as exc:  # noqa: BLE001 — one job's failure must not stop the others
            log.exception("job %s failed", job.name)
            error = f"{type(exc).__name__}: {exc}"
        for line in out.getvalue().splitlines():
            if line.strip():
                self.say(line if line.startswith(job.name) else f"{job.name}: {line}")
        if error:
            self.say(f"{job.name} failed: {error}")
        return error

    def run_due(
        self, now: datetime | None = None, stop: threading.Event | None = None
    ) -> list[str]:
        """Claim and run every job that is due; the names of those this worker ran.

        `now` fixes the clock (tests); otherwise each claim reads it afresh, since the jobs
        before it took time."""
        ran = []
        for job in self.due(now or timezone.now()):
            if stop is not None and stop.is_set():
                break
            until = self.claim(job, now or timezone.now())
            if until is None:
                continue  # another worker took it meanwhile
            error = self.run(job)
            # Released only if the lease is still ours (one that ran out may be another's).
            ScheduledJob.objects.filter(
                name=job.name, leased_by=self.name, leased_until=until
            ).update(
                leased_until=None,
                leased_by="",
                last_finished_at=timezone.now(),
                last_error=error,
            )
            ran.append(job.name)
        return ran

    def run_periodic(self, stop: threading.Event, tick: float = 1.0) -> None:
        """Run due jobs every `tick` seconds until `stop` is set."""
        while not stop.is_set():
            # A dead connection (a database restart) is dropped so the next query reconnects.
            close_old_connections()
            try:
                self.run_due(stop=stop)
            except DatabaseError as error:
                # The database is away: try again. A claimed job keeps its lease until then.
                self.say(f"worker: database error, retrying: {' '.join(str(error).split())}")
            stop.wait(tick)
        close_old_connections()

    # --- outgoing webhooks ------------------------------------------------------------------

    def deliver_webhooks(self) -> int:
        """One batch of due outgoing webhooks; the number attempted (0: nothing due)."""
        attempted = deliver_due(limit=WEBHOOK_BATCH)
        if attempted:
            self.say(f"deliver_webhooks: {attempted} deliveries attempted")
        return attempted

    def run_deliveries(self, stop: threading.Event, idle: float = 2.0) -> None:
        """Deliver webhooks as they fall due until `stop` is set."""
        while not stop.is_set():
            close_old_connections()
            try:
                attempted = self.deliver_webhooks()
            except DatabaseError as error:
                self.say(f"worker: database error, retrying: {' '.join(str(error).split())}")
                attempted = 0
            except Exception:  # noqa: BLE001 — a bug in one delivery must not end deliveries
                log.exception("webhook delivery failed")
                attempted = 0
            if not attempted:
                stop.wait(idle)
        close_old_connections()

    # --- WhatsApp notices -------------------------------------------------------------------

    def send_whatsapp(self) -> int:
        """Write the messages the queues call for, then send one batch of the due ones; the
        number attempted (0: nothing was due)."""
        written = notify.scan()
        attempted = outbox.deliver_due(limit=WHATSAPP_BATCH)
        if written or attempted:
            self.say(f"whatsapp: {written} written, {attempted} sends attempted")
        return attempted

    def run_whatsapp(self, stop: threading.Event, idle: float = 2.0) -> None:
        """Scan and send until `stop` is set; a scan every `idle` seconds when nothing is due."""
        while not stop.is_set():
            close_old_connections()
            try:
                attempted = self.send_whatsapp()
            except DatabaseError as error:
                self.say(f"worker: database error, retrying: {' '.join(str(error).split())}")
                attempted = 0
            except Exception:  # noqa: BLE001 — a bug in one message must not end the notices
                log.exception("whatsapp notices failed")
                attempted = 0
            if not attempted:
                stop.wait(idle)
        close_old_connections()

    def loops(self) -> list[tuple[str, Callable[[threading.Event], None]]]:
        """The worker's loops, each to run in a thread of its own with a shared `stop`."""
        return [
            ("jobs", self.run_periodic),
            ("webhooks", self.run_deliveries),
            ("whatsapp", self.run_whatsapp),
        ]
