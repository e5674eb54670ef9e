"""The worker (`run_worker`, ops/worker.py): every periodic job once per period, on any number
of machines, a failure of one never stopping the others."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from ops.models import DailyStats, ScheduledJob
from ops.worker import JOBS, Job, Worker
from tenants.models import OutboxStatus, WebhookOutbox
from tests.conftest import make_device, queued_ticket
from tests.daphne_server import BASE_DIR, database_url
from tests.test_ops_webhooks import Receiver, endpoint
from tickets import queue
from tickets.models import LineStatus, TicketLine

SAO_PAULO = ZoneInfo("America/Sao_Paulo")
# A weekday afternoon: the nightly purge is not due.
AFTERNOON = datetime(2026, 12, 1, 15, 0, tzinfo=SAO_PAULO)
EVERY_MINUTE = ["expire_tickets", "check_alerts", "issue_nfse"]
# The minute's jobs with, every 15 s, device states that change with the clock alone
# (tickets/devices.py), in the order the worker runs them.
OFTEN = ["expire_tickets", "announce_devices", "check_alerts", "issue_nfse"]


def worker(said: list[str] | None = None, jobs=JOBS) -> Worker:
    return Worker(jobs, say=(said if said is not None else []).append)


def test_each_job_runs_when_due_and_not_again_within_its_period(db):
    first = worker().run_due(AFTERNOON)

    assert first == [*OFTEN, "cleanup_inconsistent_states", "snapshot_daily_stats"]
    assert worker().run_due(AFTERNOON + timedelta(seconds=14)) == []
    assert worker().run_due(AFTERNOON + timedelta(seconds=59)) == ["announce_devices"]
    assert worker().run_due(AFTERNOON + timedelta(seconds=61)) == EVERY_MINUTE
    assert worker().run_due(AFTERNOON + timedelta(minutes=10, seconds=1)) == [
        *OFTEN,
        "cleanup_inconsistent_states",
    ]
    row = ScheduledJob.objects.get(name="expire_tickets")
    assert row.leased_until is None and row.last_error == "" and row.last_finished_at


def test_the_nightly_purge_runs_at_half_past_three_local_time_once(db):
    purge = next(job for job in JOBS if job.name == "purge_old_data")
    assert purge.next_due(AFTERNOON) == datetime(2026, 12, 2, 3, 30, tzinfo=SAO_PAULO)
    worker().run_due(AFTERNOON)

    night = datetime(2026, 12, 2, 3, 30, tzinfo=SAO_PAULO)
    assert "purge_old_data" not in worker().run_due(night - timedelta(minutes=1))
    said: list[str] = []
    assert "purge_old_data" in worker(said).run_due(night)
    assert (
        "purge_old_data: APPLYING: anonymise after 90 days, keep tickets 365 days, audit 180 days"
        in said
    )
    # Restarted in the morning, the worker does not purge again.
    assert "purge_old_data" not in worker().run_due(night + timedelta(hours=5))


def test_a_job_held_by_a_worker_that_died_waits_for_its_lease(db):
    expire = next(job for job in JOBS if job.name == "expire_tickets")
    worker().due(AFTERNOON)  # the rows exist
    assert worker().claim(expire, AFTERNOON)  # …and this worker dies holding it

    assert "expire_tickets" not in worker().run_due(AFTERNOON + timedelta(minutes=2))
    assert "expire_tickets" in worker().run_due(AFTERNOON + expire.lease + timedelta(seconds=1))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_at_the_same_moment_run_each_job_once(transactional_db):
    start = threading.Barrier(2)
    ran: list[list[str]] = []

    def run() -> None:
        try:
            start.wait()
            ran.append(worker().run_due(AFTERNOON))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(ran[0] + ran[1]) == sorted(
        [*OFTEN, "cleanup_inconsistent_states", "snapshot_daily_stats"]
    )


def test_a_failing_job_is_recorded_and_the_others_still_run(db):
    broken = Job("broken", ("snapshot_daily_stats", "--date", "ontem"), every=timedelta(minutes=1))
    expire = next(job for job in JOBS if job.name == "expire_tickets")
    said: list[str] = []

    assert worker(said, jobs=(broken, expire)).run_due(AFTERNOON) == ["broken", "expire_tickets"]

    row = ScheduledJob.objects.get(name="broken")
    assert row.last_error.startswith("CommandError: --date must be YYYY-MM-DD")
    assert row.leased_until is None
    assert any(line.startswith("broken failed: CommandError") for line in said)
    assert any(line.startswith("expire_tickets: 0 no-show(s)") for line in said)


def test_the_expiry_job_marks_a_called_customer_who_never_came(tenant, cryo):
    queued_ticket(tenant, [cryo])
    line = queue.call_next(cryo, make_device(tenant, "Crio 1", [cryo]))
    TicketLine.objects.filter(pk=line.pk).update(called_at=timezone.now() - timedelta(minutes=6))

    worker().run_due()

    line.refresh_from_db()
    assert line.status == LineStatus.NO_SHOW


def test_daily_statistics_are_stored_once_after_each_tenant_s_midnight(tenant, cryo):
    queued_ticket(tenant, [cryo])
    yesterday = tenant.today() - timedelta(days=1)
    out = StringIO()

    call_command("snapshot_daily_stats", "--days", "2", "--missing", stdout=out)
    call_command("snapshot_daily_stats", "--days", "2", "--missing", stdout=out)

    assert out.getvalue().count(f"studio {yesterday}: 1 rows written") == 1
    assert DailyStats.objects.filter(tenant=tenant, day=yesterday).count() == 1


def test_the_worker_delivers_due_webhooks(tenant, cryo, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = True  # the receiver listens on 127.0.0.1
    receiver = Receiver()
    try:
        endpoint(tenant, receiver.url)
        queued_ticket(tenant, [cryo])
        said: list[str] = []

        assert worker(said).deliver_webhooks() >= 1
    finally:
        receiver.close()
    assert set(WebhookOutbox.objects.values_list("status", flat=True)) == {OutboxStatus.DELIVERED}
    assert receiver.requests and said[-1].startswith("deliver_webhooks:")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_sigterm_stops_the_worker_process(transactional_db):
    env = {**os.environ, "DATABASE_URL": database_url(connection.settings_dict)}
    process = subprocess.Popen(
        [sys.executable, "manage.py", "run_worker"],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not ScheduledJob.objects.filter(last_finished_at__isnull=False).exists():
            assert time.monotonic() < deadline and process.poll() is None, process.stdout.read()
            time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, output
    assert "stopping after the work in hand" in output
    assert output.rstrip().endswith("stopped")


def test_once_runs_what_is_due_and_says_so(db):
    out = StringIO()
    call_command("run_worker", "--once", stdout=out)
    assert (
        "ran expire_tickets, announce_devices, check_alerts, issue_nfse, "
        "cleanup_inconsistent_states" in out.getvalue()
    )


def test_a_worker_without_redis_warns_that_its_events_reach_no_screen(db, settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    out = StringIO()
    call_command("run_worker", "--once", stdout=out)
    assert "without REDIS_URL the events of this process reach no screen" in out.getvalue()
