"""A cryo chamber's session in a real Chromium whose clock is ten minutes off: the countdown
follows the server, survives a reload, insists at the hard maximum, then the chamber cools
down and an operator ends the cool-down early."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.conftest import make_device, queued_ticket, wait_for_js
from tests.test_panel_browser import log_in_and_pick, pytestmark, shot, watch_console
from tickets import queue
from tickets.models import TicketLine

__all__ = ["pytestmark"]

# The browser's clock runs ten minutes ahead of the server's: a countdown that trusted it
# would show 0:00 at once.
SKEWED_CLOCK = """
(() => {
  const real = Date.now.bind(Date);
  Date.now = () => real() + 10 * 60 * 1000;
})();
"""
COUNT_ALERTS = """
() => {
  window.alerts = 0;
  window.Totem.sound.alert = () => { window.alerts += 1; return Promise.resolve(); };
}
"""


def seconds_shown(text: str) -> int:
    minutes, seconds = re.fullmatch(r"\s*(\d+):(\d\d)\s*", text).groups()
    return int(minutes) * 60 + int(seconds)


@pytest.fixture
def chamber(tenant, cryo):
    cryo.duration_minutes, cryo.hard_maximum, cryo.cooldown_minutes = 3, True, 5
    cryo.save()
    return make_device(tenant, "Crio 1", [cryo], location="Sala 1")


def test_a_cryo_session_counts_down_insists_at_its_maximum_then_the_chamber_cools(
    page, live_server, transactional_db, alice, tenant, cryo, chamber
):
    problems = watch_console(page, websocket=False)
    page.add_init_script(SKEWED_CLOCK)
    log_in_and_pick(page, live_server.url, "Crio 1")
    queued_ticket(tenant, [cryo], customer_name="Maria Souza")
    line = queue.start(tenant, queue.call_next(cryo, chamber).pk)

    page.reload()
    timer = page.get_by_test_id("session-timer")
    timer.wait_for()
    page.wait_for_timeout(1500)
    first = seconds_shown(timer.inner_text())
    assert 170 <= first <= 180  # the server's 3 minutes, whatever the browser's clock says
    shot(page, "panel-session-countdown")

    # A reload goes on from the server's times, not from the start.
    TicketLine.objects.filter(pk=line.pk).update(
        session_ends_at=line.session_ends_at - timedelta(minutes=1)
    )
    page.reload()
    page.wait_for_timeout(1200)
    assert 110 <= seconds_shown(page.get_by_test_id("session-timer").inner_text()) <= 120

    # Two seconds from the end: at zero the panel alerts and, a hard maximum, insists.
    TicketLine.objects.filter(pk=line.pk).update(
        session_ends_at=timezone.now() + timedelta(seconds=2)
    )
    page.reload()
    page.evaluate(COUNT_ALERTS)
    page.get_by_test_id("hard-alert").wait_for(state="visible", timeout=8000)
    wait_for_js(page, "window.alerts >= 1")
    assert page.get_by_test_id("session-timer").inner_text() == "tempo esgotado"
    shot(page, "panel-hard-maximum")
    # …and after a reload still, without waiting for any timer.
    page.reload()
    assert page.get_by_test_id("hard-alert").is_visible()

    page.get_by_role("button", name="Concluir").click()
    page.get_by_test_id("device-now").and_(page.locator('[data-state="cooling"]')).wait_for()
    cooling = seconds_shown(page.get_by_test_id("cooling-timer").inner_text())
    assert 280 <= cooling <= 300
    assert page.get_by_test_id("device-state").inner_text() == "Em resfriamento"
    shot(page, "panel-cooling")

    page.get_by_text("Encerrar resfriamento agora…").click()
    page.get_by_label("Motivo").fill("câmara já na temperatura")
    page.get_by_role("button", name="Encerrar resfriamento", exact=True).click()
    page.get_by_test_id("device-now").and_(page.locator('[data-state="free"]')).wait_for()
    assert problems == []


def test_the_dashboard_shows_each_chamber_live(
    page, live_server, transactional_db, tenant, cryo, chamber, bob, alice
):
    from tickets import devices

    second = make_device(tenant, "Crio 2", [cryo], location="Sala 2")
    for _ in range(2):
        queued_ticket(tenant, [cryo])
    queue.complete(tenant, queue.start(tenant, queue.call_next(cryo, chamber).pk).pk)
    queue.start(tenant, queue.call_next(cryo, second).pk)
    page.goto(live_server.url + "/")
    page.get_by_label("Usuário").fill("bob")
    page.get_by_label("Senha de acesso").fill("pw-bob")
    page.get_by_role("button", name="Entrar").click()
    rows = page.get_by_test_id("device-row")
    rows.first.wait_for()
    assert "Em resfriamento" in rows.filter(has_text="Crio 1").inner_text()
    assert "Em uso" in rows.filter(has_text="Crio 2").inner_text()
    page.get_by_test_id("devices").scroll_into_view_if_needed()
    shot(page, "dashboard-devices")

    # The section re-reads itself: the early end shows without a reload.
    devices.end_cooldown(tenant, chamber.pk, user=alice, reason="limpa")
    rows.filter(has_text="Crio 1").get_by_text("Livre").wait_for(timeout=15000)
