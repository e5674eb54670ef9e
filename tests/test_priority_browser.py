"""The kiosk's priority list in a real Chromium, on the two screens studios mount: every legal
group readable and tappable, in portrait and in landscape."""

from __future__ import annotations

from pathlib import Path

import pytest

from equipment.models import Kind
from tests.conftest import CHROMIUM, REQUIRE_SERVERS, make_device
from tests.test_kiosk_browser import Kiosk
from tests.test_priority import GROUPS
from tickets.models import Priority, Ticket

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists() and not REQUIRE_SERVERS,
        reason=f"needs Chromium at {CHROMIUM} (apt-get install chromium)",
    ),
]

# The kiosk's own rule (static/kiosk/kiosk.css): every target at least 48 px high.
SMALLEST_TARGET = 48


@pytest.mark.parametrize(
    "screen", [{"width": 1080, "height": 1920}, {"width": 1920, "height": 1080}], ids=str
)
def test_every_priority_group_fits_the_screen_and_a_tap_chooses_it(
    browser, live_server, transactional_db, tenant, cryo, screen
):
    make_device(tenant, "Crio 1", [cryo])
    context = browser.new_context(viewport=screen, has_touch=True, locale="pt-BR")
    page = context.new_page()
    name = f"priority-{screen['width']}x{screen['height']}"
    kiosk = Kiosk(page, live_server, tenant, name)
    kiosk.pair(make_device(tenant, "Totem 1", kind=Kind.KIOSK))
    kiosk.choose(cryo)
    page.get_by_role("link", name="Continuar").tap()
    page.get_by_role("heading", name="Seus dados").wait_for()
    kiosk.shot("identify")

    labels = ["Sem prioridade", *GROUPS]
    for label in labels:
        option = page.locator("label.option", has_text=label)
        option.scroll_into_view_if_needed()
        box = option.bounding_box()
        assert box["height"] >= SMALLEST_TARGET, label
        assert box["x"] >= 0 and box["x"] + box["width"] <= screen["width"], label
        option.tap()
        assert page.get_by_label(label).is_checked(), label
    assert page.evaluate("document.documentElement.scrollWidth") <= screen["width"]

    page.get_by_label("Seu nome").click()
    kiosk.type_letters("Caio")
    page.get_by_label("Li e concordo").check()
    kiosk.shot("blood-donor-chosen")
    page.get_by_role("button", name="Continuar").tap()
    page.get_by_role("heading", name="Confira e pague").wait_for()
    page.get_by_test_id("pay-cash").tap()
    page.get_by_role("heading", name="Dirija-se ao caixa").wait_for()
    assert Ticket.objects.get().priority == Priority.BLOOD_DONOR
    kiosk.done()
    context.close()
