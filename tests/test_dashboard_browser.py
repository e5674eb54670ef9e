"""The manager dashboard in a real Chromium: what a manager asks first is on the first screen.

Screenshots (desktop 1920×1080, laptop 1366×768 and phone 390×844) are saved under a
temporary folder printed at the start (`pytest -s` shows it).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from tests.accessibility import assert_accessible
from tests.conftest import CHROMIUM, REQUIRE_SERVERS, make_device, queued_ticket
from tickets import queue

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists() and not REQUIRE_SERVERS,
        reason=f"needs Chromium at {CHROMIUM} (apt-get install chromium)",
    ),
]

FIRST_QUESTIONS = ["sales-count", "sales-revenue", "waits", "no-shows", "busiest-hours"]


def test_todays_sales_waits_no_shows_and_busiest_hours_fit_the_first_screen(
    browser, live_server, transactional_db, tenant, cryo, boots, bob
):
    crio = make_device(tenant, "Crio 1", [cryo])
    for _ in range(3):
        queued_ticket(tenant, [cryo, boots])
    line = queue.call_next(cryo, crio)
    queue.no_show(tenant, line.pk)
    queue.call_next(cryo, crio)
    queue.call_next(boots, make_device(tenant, "Botas 1", [boots]))  # two services' waits
    shots = Path(tempfile.mkdtemp(prefix="dashboard-"))
    print(f"\ndashboard screenshots: {shots}")
    screens = (("desktop", (1920, 1080)), ("laptop", (1366, 768)), ("phone", (390, 844)))
    for name, viewport in screens:
        context = browser.new_context(
            locale="pt-BR", viewport={"width": viewport[0], "height": viewport[1]}
        )
        page = context.new_page()
        page.goto(live_server.url + "/")
        page.get_by_label("Usuário").fill("bob")
        page.get_by_label("Senha de acesso").fill("pw-bob")
        page.get_by_role("button", name="Entrar").click()
        page.get_by_role("heading", name="Gestão").wait_for()
        page.screenshot(path=shots / f"{name}.png", full_page=True)
        assert_accessible(page, f"dashboard {name}")
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport[0]
        if name != "phone":
            for testid in FIRST_QUESTIONS:
                box = page.get_by_test_id(testid).bounding_box()
                assert box is not None, testid
                assert box["x"] >= 0 and box["x"] + box["width"] <= viewport[0], testid
                assert box["y"] >= 0 and box["y"] + box["height"] <= viewport[1], testid
        # Every chart label at least 12 px as rendered, on the desktop and on the phone.
        # The font size in user units times the SVG's scale on screen.
        sizes = page.eval_on_selector_all(
            "svg.chart text",
            "texts => texts.map(t => parseFloat(getComputedStyle(t).fontSize)"
            " * t.ownerSVGElement.getScreenCTM().a)",
        )
        assert sizes and min(sizes) >= 12, (name, min(sizes))
        context.close()
