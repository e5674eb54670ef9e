"""The TV display and a customer's phone in a real Chromium, against a real Daphne.

The operator's calls are made through the queue domain from the test (the panel's own browser
test covers the panel); they reach the pages through Redis and the Daphne process.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from django.utils import timezone

from tests import daphne_server
from tests.conftest import CHROMIUM, REQUIRE_SERVERS, make_device, queued_ticket, wait_for_js
from tests.test_realtime import pair_display
from tickets import events
from tickets.queue import call_next, reannounce
from totem import pairing
from totem.models import PairingCode

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
    assert page.locator(".now .call-number").all_inner_texts() == [second.number, first.number]
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
    page.goto(f"http://{daphne}/t/{tenant.slug}/senha/{ticket.token}/")
    page.wait_for_selector("body[data-live='open']")
    assert "Posição 2 na fila" in page.locator("#ticket-status").inner_text()

    call_next(cryo, cabin)  # the customer ahead: this one moves up
    page.wait_for_selector("text=Você é o próximo")
    call_next(cryo, make_device(tenant, "Cabine 2", [cryo], location="Sala 4"))

    page.wait_for_selector(".your-turn")
    assert "Sala 4" in page.locator(".your-turn").inner_text()
    assert page.title().startswith("Sua vez!")
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
