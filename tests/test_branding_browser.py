"""A branded studio's screens in a real Chromium against Daphne: the kiosk (portrait and
landscape), the TV and the phone page drawn in the tenant's colours, with its logo, welcome
image and service pictures (or the drawings that stand in for them), and axe-core finding
nothing on any of them. Screenshots go to the folder printed at the start (`pytest -s`)."""

from __future__ import annotations

import tempfile
from io import BytesIO
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.core.files.base import ContentFile
from PIL import Image, ImageDraw

from equipment.models import Kind
from ops.management.commands.seed_demo import demo_logo
from tests import daphne_server
from tests.accessibility import assert_accessible
from tests.conftest import CHROMIUM, REQUIRE_SERVERS, make_device, make_service, queued_ticket
from tests.test_display_browser import open_display
from tests.test_kiosk_browser import Kiosk
from tickets.queue import call_next

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

# Strong colours a studio might pick: yellow and a deep blue (8.1:1 on each other).
YELLOW, BLUE = "rgb(255, 212, 0)", "rgb(0, 51, 160)"
SHOTS = Path(tempfile.mkdtemp(prefix="branding-shots-"))
print(f"\nbranding screenshots: {SHOTS}")


# Serves /media/ (DEBUG) from the folder this run's tests store uploads in.
daphne = daphne_server.daphne


def photo(size: tuple[int, int]) -> ContentFile:
    image = Image.new("RGB", size, "#2a6f97")
    draw = ImageDraw.Draw(image)
    draw.ellipse((size[0] // 4, size[1] // 6, 3 * size[0] // 4, 5 * size[1] // 6), fill="#e9c46a")
    out = BytesIO()
    image.save(out, "JPEG")
    return ContentFile(out.getvalue())


@pytest.fixture
def studio(tenant, cryo, boots):
    tenant.primary_colour, tenant.accent_colour = "#ffd400", "#0033a0"
    logo = ContentFile(demo_logo(tenant.name, "#0033a0", "#ffffff"))
    tenant.logo.save("logo.png", logo, save=False)
    tenant.welcome_image.save("welcome.jpg", photo((2400, 1600)), save=False)
    tenant.full_clean()
    tenant.save()
    boots.picture.save("botas.jpg", photo((1600, 1200)))
    sauna = make_service(tenant, "Sauna infravermelha", "S", order=2)
    massage = make_service(tenant, "Massagem", "M", order=3)
    for service in (cryo, boots, sauna, massage):
        make_device(tenant, f"{service.name} 1", [service])
    return make_device(tenant, "Totem 1", kind=Kind.KIOSK)


def colour(page, selector: str, prop: str = "backgroundColor") -> str:
    return page.eval_on_selector(selector, f"e => getComputedStyle(e).{prop}")


BROKEN_IMAGES = """() => [...document.images]
  .filter(i => i.loading !== 'lazy' && !(i.complete && i.naturalWidth > 0)).map(i => i.src)"""


@pytest.mark.parametrize(
    "size",
    [{"width": 1080, "height": 1920}, {"width": 1920, "height": 1080}],
    ids=["portrait", "landscape"],
)
def test_the_kiosk_wears_the_studios_colours_logo_and_pictures(
    browser, daphne, studio, tenant, cryo, boots, size
):
    context = browser.new_context(viewport=size, has_touch=True, locale="pt-BR")
    page = context.new_page()
    kiosk = Kiosk(page, SimpleNamespace(url=f"http://{daphne}"), tenant, "branded")
    kiosk.shots = SHOTS
    kiosk.pair(studio)
    page.screenshot(path=SHOTS / f"kiosk-welcome-{size['width']}x{size['height']}.png")
    assert colour(page, ".brand") == YELLOW
    assert colour(page, ".touch-to-start") == YELLOW
    assert colour(page, ".welcome-cta", "color") == BLUE
    logo = page.locator("img.brand-logo")
    assert (logo.get_attribute("width"), logo.get_attribute("height")) == ("720", "200")
    assert page.locator("img.welcome-image").is_visible()
    assert page.evaluate(BROKEN_IMAGES) == []

    kiosk.choose(cryo)
    page.screenshot(path=SHOTS / f"kiosk-services-{size['width']}x{size['height']}.png")
    assert_accessible(page, "branded services")
    assert colour(page, ".btn-next") == BLUE
    assert colour(page, ".btn-next", "color") == "rgb(255, 255, 255)"
    # Cryotherapy has no picture: a drawing of cold in the studio's colours, no broken image.
    cryo_card = page.get_by_test_id(f"service-{cryo.pk}")
    assert cryo_card.locator("svg[data-art='cold']").is_visible()
    assert cryo_card.locator("img").count() == 0
    picture = page.get_by_test_id(f"service-{boots.pk}").locator("img.card-picture")
    assert (picture.get_attribute("width"), picture.get_attribute("height")) == ("800", "600")
    assert page.locator("svg[data-art='heat']").count() == 1
    assert page.locator("svg[data-art='massage']").count() == 1
    assert page.evaluate(BROKEN_IMAGES) == []
    # The cards fill the screen down to the action bar, not a block at the top.
    cards = page.locator(".cards").bounding_box()
    bar = page.locator("nav.actions").bounding_box()
    assert cards["y"] + cards["height"] >= bar["y"] - 0.05 * size["height"]
    assert bar["y"] + bar["height"] <= size["height"] + 1
    assert page.evaluate("document.documentElement.scrollWidth") <= size["width"]
    context.close()
    kiosk.done()


def test_the_tv_and_the_phone_wear_the_studios_colours(page, daphne, studio, tenant, cryo):
    cabin = make_device(tenant, "Cabine 1", [cryo], location="Sala 2")
    ticket = queued_ticket(tenant, [cryo])
    page.set_viewport_size({"width": 1920, "height": 1080})
    open_display(page, daphne, tenant)
    call_next(cryo, cabin)
    page.wait_for_selector(f".call-stage .call-number:text('{ticket.number}')")
    page.screenshot(path=SHOTS / "tv-1920x1080.png")
    assert_accessible(page, "branded TV")
    assert colour(page, ".display-head") == YELLOW
    assert colour(page, ".display-head", "color") == "rgb(0, 0, 0)"
    # Yellow holds black text at 14:1: the stage is the studio's, the number its blue.
    assert colour(page, ".call-stage") == YELLOW
    assert colour(page, ".call-number", "color") == BLUE
    assert page.evaluate(BROKEN_IMAGES) == []

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"http://{daphne}/t/{tenant.slug}/senha/{ticket.token}/")
    page.wait_for_selector("body[data-live='open']")
    page.screenshot(path=SHOTS / "phone-390x844.png", full_page=True)
    assert_accessible(page, "branded phone page")
    assert colour(page, ".phone-head") == YELLOW
    assert colour(page, ".phone-head", "color") == "rgb(0, 0, 0)"
    assert page.evaluate(BROKEN_IMAGES) == []
