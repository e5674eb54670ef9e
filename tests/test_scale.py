"""The screens read in a number of queries that does not grow with the queues or the history:
a year of finished lines (bench/year.py measures the time) must cost them nothing."""

from __future__ import annotations

from datetime import timedelta

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from equipment.models import Kind
from ops.models import DailyStats
from tests.conftest import make_device
from tests.test_kiosk import pair
from tests.test_panel import fill_queue, pick_station
from tickets.models import TicketLine


def finish_all(tenant) -> None:
    """Every line so far becomes history: completed, as the year behind a branch."""
    TicketLine.objects.filter(tenant=tenant).update(
        status="completed", completed_at=timezone.now(), duration_seconds=600
    )


def queries_of(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def test_the_display_costs_the_same_queries_with_10_and_200_waiting_and_history(
    tenant, cryo, boots, django_assert_num_queries
):
    client = Client()
    pair(client, tenant, make_device(tenant, "TV", kind=Kind.DISPLAY))
    url = reverse("display_state", args=[tenant.slug])
    fill_queue(tenant, [cryo, boots], 10)
    client.get(url)  # the first visit settles the device's session
    small = queries_of(client, url)
    finish_all(tenant)
    fill_queue(tenant, [cryo, boots], 200)
    with django_assert_num_queries(small):
        assert client.get(url).status_code == 200


def test_the_panel_costs_the_same_queries_over_a_history_of_finished_lines(
    alice, tenant, cryo, boots, django_assert_num_queries
):
    station = make_device(tenant, "Combo", [cryo, boots])
    client = Client()
    client.force_login(alice)
    pick_station(client, tenant, station)
    url = reverse("panel", args=[tenant.slug])
    fill_queue(tenant, [cryo, boots], 10)
    small = queries_of(client, url)
    fill_queue(tenant, [cryo, boots], 200)
    finish_all(tenant)
    fill_queue(tenant, [cryo, boots], 10)
    with django_assert_num_queries(small):
        assert client.get(url).status_code == 200


def test_the_dashboard_costs_the_same_queries_with_1_and_30_stored_days(
    bob, tenant, cryo, boots, django_assert_num_queries
):
    client = Client()
    client.force_login(bob)
    url = reverse("ops_dashboard", args=[tenant.slug])
    today = tenant.today()
    fill_queue(tenant, [cryo, boots], 10)
    DailyStats.objects.create(tenant=tenant, day=today - timedelta(days=1), tickets=10)
    small = queries_of(client, url)
    fill_queue(tenant, [cryo, boots], 200)
    finish_all(tenant)
    DailyStats.objects.bulk_create(
        DailyStats(tenant=tenant, service=service, day=today - timedelta(days=n), tickets=n)
        for n in range(2, 31)
        for service in (None, cryo, boots)
    )
    with django_assert_num_queries(small):
        assert client.get(url).status_code == 200
