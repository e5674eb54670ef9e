"""The TV display and a customer's phone in a real Chromium, against a real Daphne.

The operator's calls are made through the queue domain from the test (the panel's own browser
test covers the panel); they reach the pages through Redis and the Daphne process.
"""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from django.utils import timezone

from equipment.models import Kind
from tests import daphne_server
from tests.accessibility import assert_accessible
from tests.conftest import CHROMIUM, REQUIRE_SERVERS, make_device, queued_ticket, wait_for_js
from tests.test_realtime import pair_display
from tickets import events
from tickets.models import TicketLine
from tickets.queue import call_next, reannounce, start
from totem import pairing
from totem.models import DisplaySlide, PairingCode

daphne = daphne_server.daphne

pytestmark = [
    pytest.mark.browser,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not Path(CHROMIUM).exists() and not REQUIRE_SERVERS,
        reason=f"needs Chromium at {CHROMIUM} (apt-get install chromium)",
    ),
]


def open_display(page, daphne: str, tenant) -> None:
    """The display page in a browser paired as the tenant's TV, once its socket is live."""
    cookies = pair_display(tenant)
    page.context.add_cookies(
        [
            {"name": name, "value": value, "url": f"http://{daphne}"}
            for name, value in cookies.items()
        ]
    )
    page.goto(f"http://{daphne}/t/{tenant.slug}/display/")
    page.wait_for_selector("body[data-live='open']")
    # The re-read the socket's opening triggers has come back: from here on, a call reaches
    # the screen only through an event or a later re-read.
    page.wait_for_load_state("networkidle")


def errors_of(page) -> list[str]:
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda m: m.type == "error" and problems.append(m.text))
    return problems


def test_the_display_shows_and_announces_calls_in_order(page, daphne, tenant, cryo, boots):
    cabin = make_device(tenant, "Cabine 1", [cryo], location="Sala 2")
    chair = make_device(tenant, "Bota 1", [boots], location="Sala 3")
    first = queued_ticket(tenant, [cryo], customer_name="Joana Prado")
    second = queued_ticket(tenant, [boots], customer_name="Pedro Lima")
    problems = errors_of(page)
    open_display(page, daphne, tenant)

    call_next(cryo, cabin)
    line = call_next(boots, chair)  # right after: both must be heard, in order

    page.wait_for_selector(f".call-number:text('{second.number}')")
    # The newest call on the stage, the other customer still being called beside it.
    assert page.locator(".now .call-number").all_inner_texts() == [second.number]
    page.wait_for_selector(f".calling li.call:has-text('{first.number}')")
    wait_for_js(page, "window.totemDisplay.announced.length >= 2", timeout=30)
    reannounce(tenant, line.id)
    wait_for_js(page, "window.totemDisplay.announced.length >= 3", timeout=30)
    assert page.evaluate("window.totemDisplay.announced") == [
        f"Senha {' '.join(first.number)}, Crioterapia, Sala 2",
        f"Senha {' '.join(second.number)}, Bota de compressão, Sala 3",
        f"Senha {' '.join(second.number)}, Bota de compressão, Sala 3",
    ]
    html = page.content()
    assert "Joana" not in html and "Pedro" not in html
    assert "Bota de compressão" in page.locator(".queues").inner_text()
    assert problems == []


def test_the_customers_phone_says_your_turn_when_called(page, daphne, tenant, cryo):
    cabin = make_device(tenant, "Cabine 1", [cryo], location="Sala 2")
    queued_ticket(tenant, [cryo])
    ticket = queued_ticket(tenant, [cryo])
    problems = errors_of(page)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"http://{daphne}/t/{tenant.slug}/senha/{ticket.token}/")
    page.wait_for_selector("body[data-live='open']")
    assert "Posição 2 na fila" in page.locator("#ticket-status").inner_text()
    shot(page, "phone-in-queue")

    call_next(cryo, cabin)  # the customer ahead: this one moves up
    page.wait_for_selector("text=Você é o próximo")
    call_next(cryo, make_device(tenant, "Cabine 2", [cryo], location="Sala 4"))

    page.wait_for_selector(".your-turn")
    assert "Sala 4" in page.locator(".your-turn").inner_text()
    assert page.title().startswith("Sua vez!")
    shot(page, "phone-your-turn")
    assert problems == []


def test_a_call_lost_on_the_way_is_still_announced_when_the_display_sees_the_gap(
    page, daphne, tenant, cryo, monkeypatch
):
    cabin = make_device(tenant, "Cabine 1", [cryo], location="Sala 2")
    ticket = queued_ticket(tenant, [cryo])
    open_display(page, daphne, tenant)
    with monkeypatch.context() as patch:
        # Numbered, then dropped on the way: as a Redis failover may.
        patch.setattr(events, "_transmit", lambda layer, messages: None)
        call_next(cryo, cabin)
    page.wait_for_timeout(500)
    assert page.evaluate("window.totemDisplay.announced") == []
    events.publish("queue_update", tenant_id=tenant.id, service_id=cryo.id)  # shows the gap

    wait_for_js(page, "window.totemDisplay.announced.length >= 1", timeout=15)
    assert page.evaluate("window.totemDisplay.announced") == [
        f"Senha {' '.join(ticket.number)}, Crioterapia, Sala 2"
    ]


def test_a_revoked_display_goes_to_pairing_and_comes_back_to_its_page(page, daphne, tenant, cryo):
    open_display(page, daphne, tenant)
    PairingCode.objects.filter(tenant=tenant).update(revoked_at=timezone.now())
    events.publish("queue_update", tenant_id=tenant.id, service_id=cryo.id)  # a re-read

    page.wait_for_url("**/parear/**", timeout=15_000)
    back_to = parse_qs(urlparse(page.url).query)["next"][0]
    # The display page itself, not the bare board fragment its re-read fetches.
    assert back_to == f"/t/{tenant.slug}/display/"


def test_a_display_revoked_in_admin_leaves_for_the_pairing_screen_by_itself(page, daphne, tenant):
    open_display(page, daphne, tenant)
    # Through the admin's function, and nothing else: no event, no re-read. The server closes
    # the socket with 4401 and the page reloads (the socket's periodic re-check is 15 s away).
    pairing.revoke(PairingCode.objects.filter(tenant=tenant))

    page.wait_for_url("**/parear/**", timeout=5_000)
    assert parse_qs(urlparse(page.url).query)["next"][0] == f"/t/{tenant.slug}/display/"


# --- the TV from the far end of the room -----------------------------------------------------

SHOTS = Path(tempfile.mkdtemp(prefix="display-shots-"))
print(f"\ndisplay screenshots: {SHOTS}")


def shot(page, name: str) -> None:
    page.screenshot(path=SHOTS / f"{name}.png")
    assert_accessible(page, name)


def luminance(rgb: tuple[float, float, float]) -> float:
    """Relative luminance (WCAG 2.x)."""

    def channel(value: float) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(one: str, two: str) -> float:
    """Contrast ratio of two computed CSS colours ("rgb(…)" / "rgba(…)", opaque)."""

    def parse(colour: str) -> tuple[float, float, float]:
        parts = colour[colour.index("(") + 1 : colour.index(")")].replace(",", " ").split()
        assert len(parts) == 3 or float(parts[3]) == 1, f"translucent colour {colour}"
        return tuple(float(p) for p in parts[:3])

    high, low = sorted((luminance(parse(one)), luminance(parse(two))), reverse=True)
    return (high + 0.05) / (low + 0.05)


def box(page, selector: str) -> dict:
    found = page.locator(selector).first.bounding_box()
    assert found, f"{selector} is not on screen"
    return found


def overlaps(a: dict, b: dict) -> bool:
    return not (
        a["x"] + a["width"] <= b["x"]
        or b["x"] + b["width"] <= a["x"]
        or a["y"] + a["height"] <= b["y"]
        or b["y"] + b["height"] <= a["y"]
    )


COLOURS_AT = """(t) => {
  const card = document.querySelector('.call-stage');
  for (const a of card.getAnimations()) { a.pause(); a.currentTime = t; }
  const of = (s) => getComputedStyle(card.querySelector(s)).color;
  return {
    background: getComputedStyle(card).backgroundColor,
    number: of('.call-number'), service: of('.call-service'), room: of('.call-room'),
    animations: card.getAnimations().length,
  };
}"""


@pytest.mark.parametrize("size", [(1920, 1080), (1080, 1920)], ids=["landscape", "portrait"])
def test_the_called_number_is_big_high_contrast_and_never_covered_by_its_caption(
    page, daphne, tenant, cryo, size
):
    width, height = size
    page.set_viewport_size({"width": width, "height": height})
    cabin = make_device(tenant, "Cabine 1", [cryo], location="Sala 2")
    ticket = queued_ticket(tenant, [cryo])
    open_display(page, daphne, tenant)

    call_next(cryo, cabin)
    page.wait_for_selector(f".call-stage .call-number:text('{ticket.number}')")
    page.wait_for_selector(".call-stage.flash")
    # The caption says the number as it is read, not as the voice spells it.
    wait_for_js(page, "window.totemDisplay.captions.length >= 1", timeout=15)
    assert page.evaluate("window.totemDisplay.captions") == [
        f"Senha {ticket.number}, Crioterapia, Sala 2"
    ]
    assert page.locator("#caption").inner_text() == f"Senha {ticket.number}, Crioterapia, Sala 2"
    shot(page, f"call-{width}x{height}")
    # Nothing runs off the side of the screen (a caption that does not fit is cut short).
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    stage = box(page, ".call-stage")
    for covered in (".call-stage", ".calling h2", ".recent h2"):
        assert not overlaps(box(page, "#caption"), box(page, covered)), covered

    number = box(page, ".call-stage .call-number")
    assert number["height"] >= 0.12 * height
    assert stage["y"] <= number["y"]
    assert number["y"] + number["height"] <= stage["y"] + stage["height"]

    # Every moment of the flash: the number, service and room keep ≥ 7:1 on their card.
    for moment in (0, 250, 500, 750, 999):
        colours = page.evaluate(COLOURS_AT, moment)
        assert colours["animations"] >= 1
        for part in ("number", "service", "room"):
            ratio = contrast(colours[part], colours["background"])
            assert ratio >= 7, f"{part} at {moment} ms: {ratio:.2f}:1"


def test_many_calls_fill_the_sidebar_without_moving_it_and_keep_those_still_called_apart(
    page, daphne, tenant, cryo
):
    page.set_viewport_size({"width": 1920, "height": 1080})
    open_display(page, daphne, tenant)
    side_before = box(page, ".side")
    stage_before = box(page, ".now")

    tickets = [queued_ticket(tenant, [cryo]) for _ in range(9)]
    lines = [
        call_next(cryo, make_device(tenant, f"Cabine {n}", [cryo], location=f"Sala {n}"))
        for n in range(1, 10)
    ]
    for line in lines[:7]:
        start(tenant, line.id)
    still_called = [line.ticket.number for line in lines[7:]]
    started = [line.ticket.number for line in lines[:7]]
    assert len(tickets) == 9

    page.wait_for_selector(f".call-stage .call-number:text('{still_called[-1]}')")
    page.wait_for_selector(f".recent li:has-text('{started[-1]}')")
    shot(page, "many-calls-1920x1080")
    assert box(page, ".side")["x"] == side_before["x"]
    assert box(page, ".side")["width"] == side_before["width"]
    assert box(page, ".now")["x"] == stage_before["x"]

    calling = page.locator(".calling li.call:visible b").all_inner_texts()
    recent = page.locator(".recent li:visible b").all_inner_texts()
    assert calling == [still_called[0]]
    assert len(recent) > 4 and set(recent) <= set(started)
    # Rows that do not fit are hidden whole, never cut by the edge of their list.
    bottom = box(page, ".recent ol")
    for row in page.locator(".recent li:visible").all():
        edge = row.bounding_box()
        assert edge["y"] + edge["height"] <= bottom["y"] + bottom["height"] + 1


def test_between_calls_the_tenants_slides_show_and_a_call_takes_the_stage_back_at_once(
    page, daphne, tenant, cryo
):
    page.set_viewport_size({"width": 1920, "height": 1080})
    cabin = make_device(tenant, "Cabine 1", [cryo], location="Sala 2")
    earlier = queued_ticket(tenant, [cryo])
    line = call_next(cryo, cabin)
    # Called long ago and still not served: no longer the stage's, still in "Calling now".
    long_ago = line.called_at - timedelta(minutes=5)
    TicketLine.objects.filter(pk=line.pk).update(called_at=long_ago)
    offer = "<b>20% off</b> na segunda sessão"
    DisplaySlide.objects.create(tenant=tenant, title="Semana da crioterapia", text=offer, order=1)
    DisplaySlide.objects.create(tenant=tenant, title="Beba água", order=2)
    other = DisplaySlide.objects.create(tenant=tenant, title="Só na outra TV", order=3)
    other.displays.set([make_device(tenant, "TV da sala 9", kind=Kind.DISPLAY)])
    DisplaySlide.objects.create(tenant=tenant, title="Desativado", active=False)
    ticket = queued_ticket(tenant, [cryo])
    open_display(page, daphne, tenant)

    page.wait_for_selector(".slide.on:has-text('Semana da crioterapia')")
    # Tenant text is text: the markup is shown, not obeyed.
    assert "<b>20% off</b>" in page.locator(".slide.on").inner_text()
    assert page.locator(".queues").is_visible()
    assert earlier.number in page.locator(".calling").inner_text()
    shot(page, "slides-1920x1080")
    titles = page.locator(".slide h2").all_inner_texts()
    assert titles == ["Semana da crioterapia", "Beba água"]

    call_next(cryo, make_device(tenant, "Cabine 2", [cryo], location="Sala 4"))
    page.wait_for_selector(".display-board:not(.signage-on) .call-stage", timeout=1_000)
    assert not page.locator(".slide.on").is_visible()
    page.wait_for_selector(f".call-stage .call-number:text('{ticket.number}')", timeout=1_000)
