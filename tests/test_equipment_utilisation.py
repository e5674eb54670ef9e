"""Each device's day: sessions, minutes in use, cooling down and idle within opening hours,
the revenue of its sessions; kept in the daily statistics and shown on the dashboard."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone

from ops.models import DeviceDailyStats
from ops.utilisation import compute_devices
from tenants.models import OpeningHours
from tests.conftest import make_device, queued_ticket
from tickets import queue
from tickets.models import TicketLine


@pytest.fixture
def chamber(tenant, cryo):
    cryo.duration_minutes, cryo.hard_maximum, cryo.cooldown_minutes = 3, True, 5
    cryo.save()
    return make_device(tenant, "Crio 1", [cryo], location="Sala 1")


def session_at(tenant, cryo, chamber, start: datetime, *, minutes: int, cooling: int):
    """A served session moved to `start` (its own times, as the utilisation reads them)."""
    queued_ticket(tenant, [cryo])
    line = queue.complete(tenant, queue.start(tenant, queue.call_next(cryo, chamber).pk).pk)
    TicketLine.objects.filter(pk=line.pk).update(
        called_at=start - timedelta(minutes=1),
        started_at=start,
        completed_at=start + timedelta(minutes=minutes),
        cooling_until=start + timedelta(minutes=minutes + cooling),
    )
    chamber.__class__.objects.filter(pk=chamber.pk).update(cooling_until=None)
    return line


def test_a_devices_day_adds_up_sessions_use_cooling_idle_and_revenue(tenant, cryo, chamber):
    yesterday = tenant.today() - timedelta(days=1)
    chamber.maintenance_starts, chamber.maintenance_minutes = time(8, 30), 60  # 30 min open
    chamber.save()
    at = datetime.combine(yesterday, time(10), tzinfo=tenant.tzinfo)
    session_at(tenant, cryo, chamber, at, minutes=3, cooling=5)
    # Ended early by an operator: only the minute really spent counts.
    session_at(tenant, cryo, chamber, at + timedelta(hours=2), minutes=3, cooling=1)
    # Set after selling: the studio is closed today by these hours.
    OpeningHours.objects.create(
        tenant=tenant, weekday=yesterday.weekday(), opens=time(9), closes=time(18)
    )

    (day,) = compute_devices(tenant, yesterday)
    assert (day.sessions, day.seconds_in_use, day.seconds_cooling) == (2, 6 * 60, 6 * 60)
    assert day.revenue == Decimal("240.00")
    # 9 h open, less 6 min in use, 6 cooling, 30 of maintenance inside opening hours.
    assert day.seconds_idle == (9 * 60 - 6 - 6 - 30) * 60

    call_command("snapshot_daily_stats", "--date", yesterday.isoformat(), "--tenant", tenant.slug)
    call_command("snapshot_daily_stats", "--date", yesterday.isoformat(), "--tenant", tenant.slug)
    row = DeviceDailyStats.objects.get(equipment=chamber, day=yesterday)
    assert (row.sessions, row.seconds_in_use, row.seconds_cooling, row.revenue) == (
        2,
        360,
        360,
        Decimal("240.00"),
    )


def test_todays_figures_run_up_to_now_with_the_session_in_progress(tenant, cryo, chamber):
    queued_ticket(tenant, [cryo])
    line = queue.start(tenant, queue.call_next(cryo, chamber).pk)
    TicketLine.objects.filter(pk=line.pk).update(started_at=timezone.now() - timedelta(minutes=2))
    (day,) = compute_devices(tenant, tenant.today())
    assert day.sessions == 1 and day.revenue == 0  # not completed yet
    assert 115 <= day.seconds_in_use <= 125


def test_a_day_counts_what_crosses_its_midnight_and_a_session_in_service_for_days(
    tenant, cryo, chamber
):
    day = tenant.today() - timedelta(days=1)
    midnight = datetime.combine(day, time(0), tzinfo=tenant.tzinfo)
    # 10 min before midnight, 20 in use, cooling 5: 10 + 5 of them fall on `day`.
    session_at(tenant, cryo, chamber, midnight - timedelta(minutes=10), minutes=20, cooling=5)
    # Two days before `day` began: not part of it.
    session_at(tenant, cryo, chamber, midnight - timedelta(days=2), minutes=20, cooling=5)
    (row,) = compute_devices(tenant, day)
    assert (row.sessions, row.seconds_in_use, row.seconds_cooling) == (0, 10 * 60, 5 * 60)

    queued_ticket(tenant, [cryo])
    stuck = queue.start(tenant, queue.call_next(cryo, chamber).pk)
    TicketLine.objects.filter(pk=stuck.pk).update(started_at=midnight - timedelta(days=3))
    (row,) = compute_devices(tenant, day)
    assert (row.sessions, row.seconds_in_use) == (0, 24 * 3600)  # in service all day


def test_the_dashboard_shows_each_devices_state_and_day(client, tenant, bob, cryo, chamber):
    queued_ticket(tenant, [cryo])
    queue.complete(tenant, queue.start(tenant, queue.call_next(cryo, chamber).pk).pk)
    client.force_login(bob)
    html = client.get(f"/t/{tenant.slug}/gestao/").content.decode()
    section = html.split('data-testid="devices"')[1]
    assert "Crio 1" in section and "Em resfriamento" in section and "R$ 120,00" in section
    live = client.get(f"/t/{tenant.slug}/gestao/equipamentos/", headers={"HX-Request": "true"})
    assert live.status_code == 200 and "Em resfriamento" in live.content.decode()


def test_the_devices_section_is_for_the_studios_managers_only(
    client, tenant, alice, charlie, chamber
):
    url = f"/t/{tenant.slug}/gestao/equipamentos/"
    client.force_login(alice)  # an operator
    assert client.get(url).status_code == 403
    client.force_login(charlie)  # another studio's
    assert client.get(url).status_code == 404
