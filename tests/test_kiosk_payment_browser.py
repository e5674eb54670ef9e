"""The kiosk's payment screen in a real Chromium against a real Daphne, as `make run` sets it
up: seed_demo's studio "demo", the demo MercadoPago credentials and the fake MercadoPago
started as `run_fake_mercadopago` starts it (on a free port, webhooks to the app).

A customer pays PIX and card with the demo's *Simular pagamento*, is refused with *Simular
recusa* and pays another way — each answer coming back as a signed webhook — and the screen
moves on by itself, through its ticket's socket: within a second of a confirmation, with no
wait for its slow fallback poll. Each step's screenshot is saved under a temporary folder
printed at the start of the test (`pytest -s` shows it).
"""

from __future__ import annotations

import re
import time
from decimal import Decimal
from io import StringIO
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from equipment.models import Equipment, Kind
from payments.management.commands.run_fake_mercadopago import configure_demo_tenant, demo_fake
from payments.models import Notification, PaymentSession
from payments.sessions import confirm_cash
from tenants.models import Tenant
from tests import daphne_server
from tests.conftest import CHROMIUM, REQUIRE_SERVERS, wait_for_js
from tests.test_kiosk_browser import Kiosk
from tests.test_payments_demo import wait_for
from tickets.models import Service, Ticket

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

PORTRAIT = {"width": 1080, "height": 1920}
LANDSCAPE = {"width": 1920, "height": 1080}
# The frequencies of every tone the page starts (js/sound.js plays oscillators): recorded
# before any script of the page runs, so the ticket screen's chime can be heard by the test.
LISTEN = """
window.tones = [];
const start = OscillatorNode.prototype.start;
OscillatorNode.prototype.start = function (...args) {
  window.tones.push(this.frequency.value);
  return start.apply(this, args);
};
"""
PAID_CHIME_TOP = 1046.5  # the C6 that ends Totem.sound.paid(), in no other sound of the kiosk


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    # The kiosk's touch screen, portrait, in Portuguese.
    return {**browser_context_args, "locale": "pt-BR", "viewport": PORTRAIT, "has_touch": True}


@pytest.fixture(scope="module")
def fake_port() -> int:
    return daphne_server.free_port()


@pytest.fixture(scope="module")
def daphne(django_db_setup, django_db_blocker, fake_port):
    """Daphne as `make run` runs it: its SDK talks to the fake on this machine."""
    extra = {"MERCADOPAGO_BASE_URL": f"http://127.0.0.1:{fake_port}"}
    for servers in daphne_server.serve(1, django_db_blocker, extra_env=extra):
        yield servers[0].address


@pytest.fixture
def studio(daphne, fake_port, settings):
    """seed_demo's studio with the demo MercadoPago credentials, and the fake MercadoPago
    serving it, both as `make run` starts them."""
    call_command("seed_demo", stdout=StringIO())
    tenant = Tenant.objects.get(slug="demo")
    config, _changed = configure_demo_tenant(tenant)
    fake = demo_fake(config, "127.0.0.1", fake_port, f"http://{daphne}").start()
    settings.MERCADOPAGO_BASE_URL = fake.url
    yield SimpleNamespace(
        tenant=tenant,
        fake=fake,
        cryo=Service.objects.get(tenant=tenant, prefix="C"),
        kiosk=Equipment.objects.get(tenant=tenant, kind=Kind.KIOSK),
    )
    fake.stop()


class PaymentStatusRequests:
    """When the page asked for the payment's status (monotonic clock of this process)."""

    def __init__(self, page) -> None:
        self.times: list[float] = []
        page.on("request", self.seen)

    def seen(self, request) -> None:
        if request.url.endswith("/pagamento/estado/"):
            self.times.append(time.monotonic())

    def since(self, moment: float) -> int:
        return sum(1 for at in self.times if at >= moment)


class DaphneKiosk(Kiosk):
    sockets_served = True  # a refused socket is a failure here


def open_kiosk(page, daphne: str, studio, name: str) -> Kiosk:
    page.add_init_script(LISTEN)
    kiosk = DaphneKiosk(page, SimpleNamespace(url=f"http://{daphne}"), studio.tenant, name)
    kiosk.pair(studio.kiosk)
    return kiosk


def to_payment(kiosk: Kiosk, studio, method: str, heading: str) -> None:
    """Crioterapia, no extra, a name, then `method`: its screen open, its socket live."""
    page = kiosk.page
    kiosk.choose(studio.cryo)
    page.get_by_role("link", name="Continuar").tap()
    page.get_by_role("heading", name="Deseja algum adicional?").wait_for()
    page.get_by_role("button", name="Continuar").tap()
    kiosk.identify(name="Ana")
    page.get_by_role("button", name="Continuar").tap()
    pay(kiosk, method, heading)


def pay(kiosk: Kiosk, method: str, heading: str) -> None:
    """Choose `method` on the summary or payment screen; its screen open, its socket live."""
    page = kiosk.page
    page.get_by_test_id(f"pay-{method}").tap()
    page.get_by_role("heading", name=heading).wait_for()
    page.wait_for_selector("body[data-live='open']")
    # The re-read the socket's opening triggers has come back (its first look at the
    # provider too): from here on the screen moves only through an event or its poll.
    page.wait_for_load_state("networkidle")


def shoot_both_ways(kiosk: Kiosk, name: str) -> None:
    kiosk.shot(f"{name}-portrait")
    kiosk.page.set_viewport_size(LANDSCAPE)
    kiosk.shot(f"{name}-landscape")
    kiosk.page.set_viewport_size(PORTRAIT)


def simulate(kiosk: Kiosk, button: str) -> None:
    demo = kiosk.page.get_by_test_id("demo")
    assert "Demonstração" in demo.text_content()  # shown in capitals by the CSS
    demo.get_by_role("button", name=button).tap()


def paid_by_webhook(session: PaymentSession) -> bool:
    """Paid on the provider's word (never on the demo button's), and the signed notification
    arrived. Whichever comes first confirms: the webhook ("confirmed"), or the payment screen's
    own check with the provider right after the tap (then the webhook finds it "duplicate")."""
    heard = Notification.objects.filter(session=session, outcome__in=("confirmed", "duplicate"))

    def paid() -> bool:
        session.refresh_from_db()
        return session.status == "paid" and heard.exclude(request_id="").exists()

    return wait_for(paid)


def ticket_screen(kiosk: Kiosk) -> Ticket:
    kiosk.page.get_by_test_id("ticket-number").wait_for(timeout=10_000)
    ticket = Ticket.objects.get()
    assert kiosk.page.get_by_test_id("ticket-number").inner_text() == ticket.number
    assert ticket.status == "in_queue"  # no spooler runs here: a digital ticket
    # The purchase's chime (Totem.sound.paid), which the taps before let the page play.
    wait_for_js(kiosk.page, f"window.tones.includes({PAID_CHIME_TOP})", timeout=5)
    return ticket


@pytest.mark.parametrize(
    ("method", "heading"), [("pix", "Pague com PIX"), ("card", "Pague com cartão")]
)
def test_a_sale_is_paid_with_simular_pagamento_through_the_signed_webhook(
    page, daphne, studio, method, heading
):
    kiosk = open_kiosk(page, daphne, studio, f"demo-{method}")
    to_payment(kiosk, studio, method, heading)
    shoot_both_ways(kiosk, method)

    simulate(kiosk, "Simular pagamento")
    ticket_screen(kiosk)
    kiosk.shot("ticket")
    assert paid_by_webhook(PaymentSession.objects.get())
    kiosk.done()


def test_a_refused_pix_is_shown_by_itself_and_the_customer_pays_by_card(page, daphne, studio):
    kiosk = open_kiosk(page, daphne, studio, "demo-refused")
    to_payment(kiosk, studio, "pix", "Pague com PIX")

    simulate(kiosk, "Simular recusa")
    # No tap: the fake's webhook fails the payment and the socket brings the screen along.
    page.get_by_role("heading", name="O pagamento não foi concluído").wait_for(timeout=10_000)
    assert page.get_by_test_id("demo").count() == 0
    kiosk.shot("refused")
    refused = PaymentSession.objects.get()
    assert refused.status == "failed" and Ticket.objects.get().status == "pending_payment"

    pay(kiosk, "card", "Pague com cartão")
    simulate(kiosk, "Simular pagamento")
    ticket_screen(kiosk)
    card = PaymentSession.objects.exclude(pk=refused.pk).get()
    assert card.method == "card" and paid_by_webhook(card)
    kiosk.done()


def test_a_payment_confirmed_elsewhere_turns_the_screen_within_a_second_without_its_poll(
    page, daphne, studio
):
    kiosk = open_kiosk(page, daphne, studio, "live")
    to_payment(kiosk, studio, "pix", "Pague com PIX")
    trigger = page.get_attribute("#payment", "hx-trigger")
    # The screen's own re-read, the fallback while its socket is down: every 15 s.
    poll_seconds = int(re.fullmatch(r"payment-changed, every (\d+)s", trigger)[1])
    assert poll_seconds == 15
    asked = PaymentStatusRequests(page)
    session = PaymentSession.objects.get()

    # The customer paid from their bank's app; MercadoPago notifies the app (not the kiosk).
    studio.fake.approve(session.external_id, notify=False)
    notified = time.monotonic()
    assert studio.fake.send_webhook(session.external_id).status_code == 200
    page.wait_for_url("**/totem/senha/", wait_until="commit", timeout=5_000)
    took = time.monotonic() - notified

    assert took < 1.0, f"the ticket screen came {took:.2f} s after the notification"
    # One re-read, the one the socket's event asked for: the poll (every 15 s) never came.
    assert took < poll_seconds and asked.since(notified) == 1
    ticket_screen(kiosk)
    kiosk.done()


def test_the_cash_screen_turns_into_the_ticket_when_the_front_desk_confirms(page, daphne, studio):
    kiosk = open_kiosk(page, daphne, studio, "cash")
    to_payment(kiosk, studio, "cash", "Dirija-se ao caixa")
    session = PaymentSession.objects.get()
    operator = get_user_model().objects.get(username="operator")

    confirm_cash(studio.tenant, session.pk, operator, Decimal("120.00"))
    ticket_screen(kiosk)
    kiosk.shot("cash-confirmed")
    kiosk.done()
