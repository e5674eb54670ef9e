"""Daily statistics, the manager dashboard, CSV exports and the metrics endpoint, after a
scripted day at the studio."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from ops.models import DailyStats
from ops.stats import compute_day, percentile
from payments.models import PaymentSession
from tenants.models import AuditAction, AuditLog
from tests.conftest import make_device, make_service, make_ticket, queued_ticket
from tickets import queue
from tickets.models import TicketLine


def serve(line, device, user, *, wait, duration=None, show=True):
    """Call `line` onto `device`; it had waited `wait` seconds; then serve it or not."""
    line = queue.call_line(line.tenant, line.pk, device, user=user)
    TicketLine.objects.filter(pk=line.pk).update(queued_at=line.called_at - timedelta(seconds=wait))
    if not show:
        queue.no_show(line.tenant, line.pk, user=user)
        return
    queue.start(line.tenant, line.pk, user=user)
    if duration is not None:
        queue.complete(line.tenant, line.pk, user=user)
        TicketLine.objects.filter(pk=line.pk).update(duration_seconds=duration)


@pytest.fixture
def day(tenant, cryo, boots, alice):
    """Four paid tickets and one abandoned at the kiosk:

    T1 cryo+boots: cryo waited 5 min, served 10 min; boots waited 15 min, no-show, not
    called again before its reactivation window ended.
    T2 cryo: waited 25 min, served 5 min.   T3 cryo: cancelled in the queue.
    T4 boots: still waiting.                T5 cryo: never paid (not counted).
    """
    cryo_device = make_device(tenant, "Cryo 1", [cryo])
    boots_device = make_device(tenant, "Boots 1", [boots])
    t1 = queued_ticket(tenant, [cryo, boots])
    t2 = queued_ticket(tenant, [cryo])
    t3 = queued_ticket(tenant, [cryo])
    t4 = queued_ticket(tenant, [boots])
    make_ticket(tenant, [cryo])
    serve(t1.lines.get(service=cryo), cryo_device, alice, wait=300, duration=600)
    serve(t1.lines.get(service=boots), boots_device, alice, wait=900, show=False)
    later = timezone.now() + timedelta(minutes=tenant.reactivation_minutes + 1)
    queue.expire_missed(tenant, t1.lines.get(service=boots).pk, now=later)
    serve(t2.lines.get(service=cryo), cryo_device, alice, wait=1500, duration=300)
    queue.cancel_ticket(tenant, t3.pk, user=alice, reason="gave up")
    return {"t1": t1, "t2": t2, "t3": t3, "t4": t4}


def test_percentile_is_the_nearest_rank():
    assert percentile([], 95) is None
    assert percentile([10], 95) == 10
    assert percentile(list(range(1, 101)), 95) == 95
    assert percentile([300, 1500], 95) == 1500


def test_the_day_adds_up_per_service_and_in_total(tenant, cryo, boots, day):
    rows = compute_day(tenant, tenant.today())
    total, c, b = rows[None], rows[cryo.id], rows[boots.id]
    assert (total.tickets, total.completed, total.cancellations) == (4, 2, 1)  # T1 and T2
    assert total.revenue == Decimal("520.00")  # 200 + 120 + 120 (cancelled, not refunded) + 80
    assert (c.tickets, c.completed, c.cancellations, c.no_shows) == (3, 2, 1, 0)
    assert (c.avg_wait_seconds, c.p95_wait_seconds, c.avg_duration_seconds) == (900, 1500, 450)
    assert c.revenue == Decimal("360.00")
    assert (b.tickets, b.no_shows, b.avg_wait_seconds, b.completed) == (2, 1, 900, 0)
    assert total.no_shows == 1
    assert sum(total.hourly) == 4


def test_snapshot_daily_stats_is_idempotent(tenant, cryo, boots, day):
    today = tenant.today().isoformat()
    call_command("snapshot_daily_stats", "--date", today, stdout=io.StringIO())
    first = list(DailyStats.objects.order_by("service_id").values())
    call_command("snapshot_daily_stats", "--date", today, stdout=io.StringIO())
    second = list(DailyStats.objects.order_by("service_id").values())
    assert len(first) == 3
    strip = [{k: v for k, v in row.items() if k != "updated_at"} for row in first]
    assert strip == [{k: v for k, v in row.items() if k != "updated_at"} for row in second]
    cryo_row = DailyStats.objects.get(service=cryo)
    assert (cryo_row.tickets, cryo_row.p95_wait_seconds, cryo_row.cancellations) == (3, 1500, 1)


def test_snapshot_refuses_a_bad_date(tenant):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="YYYY-MM-DD"):
        call_command("snapshot_daily_stats", "--date", "31/12/2026")


def test_the_dashboard_shows_a_manager_today_and_the_last_30_days(client, tenant, bob, day):
    DailyStats.objects.create(
        tenant=tenant, day=tenant.today() - timedelta(days=3), tickets=7, revenue=Decimal("840")
    )
    client.force_login(bob)
    page = client.get(reverse("ops_dashboard", args=[tenant.slug]))
    assert page.status_code == 200
    html = page.content.decode()
    assert html.count("<svg") == 4
    assert "R$ 520,00" in html  # today
    assert "R$ 1.360,00" in html  # the last 30 days, today included
    assert "Crioterapia" in html


def test_the_30_day_figures_include_today(client, tenant, bob, day):
    """Today's 4 tickets and R$ 520 count in the window; a stored day 30 days ago does not."""
    DailyStats.objects.create(
        tenant=tenant, day=tenant.today() - timedelta(days=29), tickets=7, revenue=Decimal("840")
    )
    DailyStats.objects.create(
        tenant=tenant, day=tenant.today() - timedelta(days=30), tickets=50, revenue=Decimal("9")
    )
    client.force_login(bob)
    page = client.get(reverse("ops_dashboard", args=[tenant.slug]))
    assert page.context["total"].tickets == 4
    assert page.context["tickets_month"] == 11
    assert page.context["revenue_month"] == "R$ 1.360,00"
    cryo = next(row for row in page.context["service_table"] if row["name"] == "Crioterapia")
    assert cryo["month_tickets"] == cryo["today"].tickets > 0


def test_the_dashboard_is_403_for_an_operator_and_404_for_an_outsider(
    client, tenant, alice, charlie
):
    url = reverse("ops_dashboard", args=[tenant.slug])
    assert client.get(url).status_code == 302  # to the login page
    client.force_login(alice)
    assert client.get(url).status_code == 403
    client.force_login(charlie)
    assert client.get(url).status_code == 404


def test_tickets_export_as_csv_for_a_date_range_and_is_audited(client, tenant, bob, day):
    client.force_login(bob)
    today = tenant.today().isoformat()
    url = reverse("ops_export_tickets", args=[tenant.slug])
    response = client.get(url, {"start": today, "end": today})
    assert response["Content-Type"].startswith("text/csv")
    rows = response.content.decode("utf-8-sig").strip().splitlines()
    assert len(rows) == 1 + 5
    assert day["t1"].number in rows[1] and "Crioterapia + Bota de compressão" in rows[1]
    entry = AuditLog.objects.get(action=AuditAction.EXPORTED_CSV)
    assert entry.user == bob and entry.data["rows"] == 5


def test_an_export_with_bad_dates_is_refused_with_the_reason(client, tenant, bob):
    client.force_login(bob)
    url = reverse("ops_export_tickets", args=[tenant.slug])
    response = client.get(url, {"start": "2026-02-10", "end": "2026-02-01"})
    assert response.status_code == 400
    assert client.get(url, {"start": "yesterday"}).status_code == 400


def test_exported_cells_a_spreadsheet_would_run_are_neutralised(client, tenant, bob, alice):
    """OWASP's rule: text starting with =, +, -, @, tab or CR gets a leading apostrophe."""
    formula = make_service(tenant, "@SUM(1+1)", "F")
    ticket = queued_ticket(tenant, [formula], customer_name='=HYPERLINK("http://x.example","a")')
    queue.cancel_ticket(tenant, ticket.pk, user=alice, reason="-2+3")
    session = PaymentSession.objects.create(
        tenant=tenant,
        ticket=ticket,
        method="cash",
        provider="manual",
        amount=Decimal("5.00"),
        refund_reason="\tcmd|' /C calc'!A0",
        expires_at=timezone.now(),
    )
    client.force_login(bob)
    today = {"start": tenant.today().isoformat(), "end": tenant.today().isoformat()}

    def rows(name: str) -> list[list[str]]:
        response = client.get(reverse(name, args=[tenant.slug]), today)
        return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))[1:]

    [line] = rows("ops_export_tickets")
    assert "'@SUM(1+1)" in line and "'-2+3" in line
    assert '\'=HYPERLINK("http://x.example","a")' in line
    [paid] = [r for r in rows("ops_export_payments") if r[0] == str(session.pk)]
    assert "'\tcmd|' /C calc'!A0" in paid
    assert "5.00" in paid  # our own numbers are written as they are
    assert not [cell for r in (line, paid) for cell in r if cell and cell[0] in "=+-@\t\r"]


# --- metrics -----------------------------------------------------------------------------------


def sample(text: str, line_start: str) -> float:
    found = [line for line in text.splitlines() if line.startswith(line_start + " ")]
    assert len(found) == 1, (line_start, found)
    return float(found[0].rsplit(" ", 1)[1])


def test_metrics_refuse_without_the_token(client, settings, tenant):
    settings.METRICS_TOKEN = "s3cret-token"
    assert client.get("/metrics").status_code == 401
    wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong["WWW-Authenticate"].startswith("Bearer")
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 404


def test_metrics_show_the_scripted_day(client, settings, tenant, cryo, boots, day):
    settings.METRICS_TOKEN = "s3cret-token"
    response = client.get("/metrics", headers={"Authorization": "Bearer s3cret-token"})
    assert response.status_code == 200
    text = response.content.decode()
    c = 'tenant="studio",service="Crioterapia"'
    b = 'tenant="studio",service="Bota de compressão"'
    assert sample(text, 'totem_tickets_created_total{tenant="studio"}') == 5
    assert sample(text, 'totem_tickets_paid_total{tenant="studio"}') == 4
    assert sample(text, f"totem_queue_length{{{b}}}") == 1
    assert sample(text, f"totem_queue_length{{{c}}}") == 0
    assert sample(text, f"totem_service_lines_completed_total{{{c}}}") == 2
    assert sample(text, f'totem_wait_seconds_bucket{{{c},le="300"}}') == 1
    assert sample(text, f'totem_wait_seconds_bucket{{{c},le="+Inf"}}') == 2
    assert sample(text, f"totem_wait_seconds_sum{{{c}}}") == pytest.approx(1800, abs=1)
    assert sample(text, f"totem_service_duration_seconds_count{{{c}}}") == 2
    assert sample(text, f"totem_service_duration_seconds_sum{{{c}}}") == 900
    assert sample(text, f"totem_queue_oldest_wait_seconds{{{b}}}") >= 0
    assert "# TYPE totem_wait_seconds histogram" in text


def test_every_chart_label_is_at_least_12_units_and_the_viewbox_fits_the_desktop_panel(
    client, tenant, bob, day
):
    """ops.css no longer sets text sizes; each <text> carries its own, read here."""
    import re

    from ops import charts

    client.force_login(bob)
    html = client.get(reverse("ops_dashboard", args=[tenant.slug])).content.decode()
    texts = re.findall(r"<text [^>]*>", html)
    assert texts
    sizes = [re.search(r'font-size="(\d+)"', text) for text in texts]
    assert all(size and int(size.group(1)) >= 12 for size in sizes), texts
    # About 544 px of chart at 1920 wide (two columns of .ops's 1200 px): drawn at 1:1 or more.
    assert charts.WIDTH <= 544
    assert all(f'viewBox="0 0 {charts.WIDTH} ' in svg for svg in html.split("<svg")[1:])


def test_the_30_day_median_and_p95_wait_are_those_of_every_wait_in_the_window(
    client, tenant, cryo, bob, day
):
    """Hand-computed. Cryo's waits: today 300 and 1500 s (the `day` fixture); ten days ago
    60, 120 … 1080 s (18 lines); 30 days ago, outside the window, 5000 s. The 20 in the
    window, sorted: 60 120 180 240 300 300 360 … 1020 1080 1500. Nearest rank: the median
    is the 10th (540 s = 9 min), the p95 the 19th (1080 s = 18 min) — not the worst day's
    p95 (1500 s), which a window's percentile is not."""
    from ops.stats import snapshot_day, wait_percentiles, waits_on
    from tickets.models import Ticket

    def waited(seconds: int, days_ago: int) -> None:
        line = queued_ticket(tenant, [cryo]).lines.get()
        called = timezone.now() - timedelta(days=days_ago)
        TicketLine.objects.filter(pk=line.pk).update(
            called_at=called, queued_at=called - timedelta(seconds=seconds)
        )
        Ticket.objects.filter(pk=line.ticket_id).update(
            day=tenant.today() - timedelta(days=days_ago)
        )

    for k in range(1, 19):
        waited(60 * k, days_ago=10)
    waited(5000, days_ago=30)

    today = tenant.today()
    window = [today - timedelta(days=n) for n in range(30)]
    waits = waits_on(tenant, window)[cryo.id]
    assert sorted(waits) == sorted([60 * k for k in range(1, 19)] + [300, 1500])
    assert (percentile(waits, 50), percentile(waits, 95)) == (540, 1080)
    assert wait_percentiles(tenant, today - timedelta(days=29), today)[cryo.id] == (540, 1080)
    # Stored, the day ten days ago counts from its histogram: its tickets may be gone.
    snapshot_day(tenant, today - timedelta(days=10))
    Ticket.objects.filter(day=today - timedelta(days=10)).delete()
    assert wait_percentiles(tenant, today - timedelta(days=29), today)[cryo.id] == (540, 1080)

    client.force_login(bob)
    page = client.get(reverse("ops_dashboard", args=[tenant.slug]))
    row = next(r for r in page.context["service_table"] if r["name"] == "Crioterapia")
    assert (row["month_median"], row["month_p95"]) == ("9 min", "18 min")
    chart = str(page.context["wait_chart"])
    assert "Crioterapia mediana: 9 min" in chart and "Crioterapia percentil 95: 18 min" in chart
    # The first chart on the page is the waits'.
    html = page.content.decode()
    assert html.index('data-testid="waits"') < html.index('data-testid="busiest-hours"')


def test_stored_days_read_in_minutes_in_the_admin(admin_client, tenant):
    DailyStats.objects.create(
        tenant=tenant, day=timezone.localdate(), avg_wait_seconds=780, p95_wait_seconds=1_500
    )
    page = admin_client.get(reverse("admin:ops_dailystats_changelist")).content.decode()
    assert "13 min" in page and "25 min" in page
    assert "780" not in page
