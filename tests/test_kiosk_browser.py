"""Customers at the kiosk in a real Chromium, touching only what is on the screen.

Each step's screenshot is saved under a temporary folder printed at the start of the test
(`pytest -s` shows it). Any console error or uncaught script error fails the test.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from equipment.models import Kind
from payments.models import PaymentSession, PaymentSettings
from payments.sessions import confirm_static_pix
from tests.accessibility import assert_accessible
from tests.conftest import CHROMIUM, REQUIRE_SERVERS, make_device
from tests.test_waivers import questionnaire_for
from tickets.models import Priority, Ticket
from totem.models import PairingCode

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists() and not REQUIRE_SERVERS,
        reason=f"needs Chromium at {CHROMIUM} (apt-get install chromium)",
    ),
]


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    # A kiosk screen in portrait-ish landscape, touch enabled, in Portuguese.
    return {
        **browser_context_args,
        "locale": "pt-BR",
        "viewport": {"width": 1080, "height": 1500},
        "has_touch": True,
    }


class Kiosk:
    """The page, its screenshots and its console, for one test."""

    # The in-process live server serves no WebSocket: there the payment screen's socket is
    # refused (a console error the page cannot prevent) and the screen moves on by its
    # fallback poll. tests/test_kiosk_payment_browser.py runs the socket on a real Daphne.
    sockets_served = False

    def __init__(self, page, live_server, tenant, name: str) -> None:
        self.page, self.tenant = page, tenant
        self.base = f"{live_server.url}/t/{tenant.slug}/totem/"
        self.shots = Path(tempfile.mkdtemp(prefix=f"kiosk-{name}-"))
        print(f"\nkiosk screenshots: {self.shots}")
        self.step = 0
        self.problems: list[str] = []
        page.on("console", self.console)
        page.on("pageerror", lambda error: self.problems.append(str(error)))

    def console(self, message) -> None:
        if message.type != "error":
            return
        if not self.sockets_served and message.text.startswith("WebSocket connection to"):
            return
        self.problems.append(message.text)

    def shot(self, name: str, full_page: bool = True) -> None:
        self.step += 1
        self.page.screenshot(path=self.shots / f"{self.step:02d}-{name}.png", full_page=full_page)
        assert_accessible(self.page, f"kiosk {name}")

    def tap(self, locator) -> None:
        locator.tap()

    def pair(self, device) -> None:
        code = PairingCode.objects.create(tenant=self.tenant, equipment=device)
        self.page.goto(self.base)
        self.page.get_by_role("heading", name="Este equipamento não está pareado").wait_for()
        self.shot("pairing")
        self.page.get_by_label("Código de pareamento").click()
        for digit in code.code:
            self.page.locator(f'#keyboard button[data-key="{digit}"]').tap()
        self.page.get_by_role("button", name="Parear").tap()
        self.page.get_by_text("Toque para começar").wait_for()
        self.shot("welcome")

    def type_letters(self, text: str) -> None:
        for char in text:
            key = " " if char == " " else char.upper()
            self.page.locator(f'#keyboard button[data-key="{key}"]').tap()

    def type_digits(self, digits: str) -> None:
        for digit in digits:
            self.page.locator(f'#keyboard button[data-key="{digit}"]').tap()

    def choose(self, *services) -> None:
        self.page.get_by_text("Toque para começar").tap()
        self.page.get_by_role("heading", name="Escolha seus serviços").wait_for()
        for service in services:
            card = self.page.get_by_test_id(f"service-{service.pk}")
            card.tap()
            self.page.locator(
                f'[data-testid="service-{service.pk}"][aria-pressed="true"]'
            ).wait_for()

    def identify(self, name="Maria", cpf="", priority="Sem prioridade") -> None:
        self.page.get_by_label("Seu nome").click()
        self.type_letters(name)
        if cpf:
            self.page.get_by_label("CPF (opcional)").click()
            self.type_digits(cpf)
        self.page.get_by_label(priority).check()
        self.page.get_by_label("Li e concordo").check()

    def sign_waiver(self, answers=("no", "yes"), name="Maria", shot: str = "") -> None:
        """Answer the health form (tests/test_waivers.py's questions) and sign it."""
        for index, value in enumerate(answers):
            self.page.get_by_test_id(f"answer-{index}-{value}").check()
        self.page.get_by_label("Digite seu nome completo para assinar").click()
        self.type_letters(name)
        if shot:
            self.shot(shot, full_page=False)
        self.page.locator('#keyboard button[data-key="done"]').tap()
        self.page.get_by_role("button", name="Concordo").tap()

    def done(self) -> None:
        assert self.problems == []


@pytest.fixture
def scene(transactional_db, tenant, cryo, boots, towel):
    make_device(tenant, "Crio 1", [cryo])
    make_device(tenant, "Botas 1", [boots])
    return make_device(tenant, "Totem 1", kind=Kind.KIOSK)


def test_a_customer_buys_with_cash_through_a_wrong_cpf_a_sold_out_extra_and_a_double_tap(
    page, live_server, scene, tenant, cryo, boots, towel
):
    towel.stock = 1
    towel.save()
    kiosk = Kiosk(page, live_server, tenant, "cash")
    kiosk.pair(scene)
    kiosk.choose(cryo, boots)
    kiosk.shot("services")
    page.get_by_role("link", name="Continuar").tap()

    # Extras: one towel is left; a second tap says so beside it.
    page.get_by_role("heading", name="Deseja algum adicional?").wait_for()
    row = page.get_by_test_id(f"extra-{towel.pk}")
    row.get_by_role("button", name="Mais um(a) Toalha").tap()
    row.locator("output", has_text="1").wait_for()
    row.get_by_role("button", name="Mais um(a) Toalha").tap()
    row.get_by_text("Só resta 1.").wait_for()
    kiosk.shot("extra-beyond-stock")
    page.get_by_role("button", name="Continuar").tap()

    # Identification: a wrong CPF is refused next to its field.
    page.get_by_role("heading", name="Seus dados").wait_for()
    kiosk.identify(name="Maria Souza", cpf="12345678900", priority="60 anos ou mais")
    assert page.get_by_label("CPF (opcional)").input_value() == "123.456.789-00"
    page.get_by_role("button", name="Continuar").tap()
    page.locator("#id_customer_cpf-error", has_text="CPF inválido").wait_for()
    kiosk.shot("invalid-cpf")
    assert page.get_by_label("Seu nome").input_value() == "Maria Souza"
    page.get_by_label("CPF (opcional)").click()
    page.locator('#keyboard button[data-key="clear"]').tap()
    kiosk.type_digits("52998224725")
    page.get_by_label("60 anos ou mais").check()
    page.get_by_label("Li e concordo").check()
    page.get_by_role("button", name="Continuar").tap()

    # Summary: the total, then a double tap on cash.
    page.get_by_role("heading", name="Confira e pague").wait_for()
    assert page.get_by_test_id("total").inner_text() == "R$ 205,00"
    kiosk.shot("summary")
    page.get_by_test_id("pay-cash").dblclick()
    page.get_by_role("heading", name="Dirija-se ao caixa").wait_for()
    kiosk.shot("cash")
    ticket = Ticket.objects.get()
    assert page.get_by_test_id("ticket-number").inner_text() == ticket.number
    assert ticket.priority == Priority.PRIORITY
    assert ticket.customer_cpf == "52998224725"
    assert PaymentSession.objects.count() == 1

    # Back does not buy again: it lands on this ticket's screen.
    page.go_back()
    page.get_by_role("heading", name="Dirija-se ao caixa").wait_for()
    page.get_by_role("button", name="Concluir").tap()
    page.get_by_text("Toque para começar").wait_for()
    kiosk.shot("back-to-welcome")
    assert Ticket.objects.count() == 1
    kiosk.done()


def test_a_customer_pays_with_static_pix_and_gets_the_ticket_screen(
    page, live_server, scene, tenant, cryo, alice, settings
):
    # No socket here (see Kiosk): the screen's fallback poll, shortened, brings the ticket.
    settings.KIOSK_PAYMENT_POLL_SECONDS = 1
    PaymentSettings.objects.create(
        tenant=tenant,
        pix_key="studio@example.com",
        merchant_name="Studio",
        merchant_city="Sao Paulo",
    )
    kiosk = Kiosk(page, live_server, tenant, "pix")
    kiosk.pair(scene)
    kiosk.choose(cryo)
    page.get_by_role("link", name="Continuar").tap()
    page.get_by_role("button", name="Continuar").tap()
    kiosk.identify(name="Ana")
    page.get_by_role("button", name="Continuar").tap()
    page.get_by_test_id("pay-pix").tap()
    page.get_by_role("heading", name="Pague com PIX").wait_for()
    session = PaymentSession.objects.get()
    assert page.locator("#copia-e-cola").input_value() == session.qr_code
    assert page.locator(".qr-pix svg").is_visible()
    kiosk.shot("pix")

    confirm_static_pix(tenant, session.pk, alice)  # the operator saw it in the bank app
    page.get_by_test_id("ticket-number").wait_for(timeout=10_000)
    kiosk.shot("ticket")
    ticket = Ticket.objects.get()
    assert page.get_by_test_id("ticket-number").inner_text() == ticket.number
    assert page.get_by_text("Posição 1 na fila").is_visible()
    kiosk.done()


def test_an_idle_payment_screen_warns_then_cancels_the_ticket_and_returns_to_welcome(
    page, live_server, scene, tenant, cryo, towel, settings
):
    settings.KIOSK_IDLE_WARNING_SECONDS = 2
    settings.KIOSK_PAYMENT_IDLE_SECONDS = 2
    PaymentSettings.objects.create(
        tenant=tenant,
        pix_key="studio@example.com",
        merchant_name="Studio",
        merchant_city="Sao Paulo",
    )
    kiosk = Kiosk(page, live_server, tenant, "idle")
    kiosk.pair(scene)
    kiosk.choose(cryo)
    page.get_by_role("link", name="Continuar").tap()
    page.get_by_test_id(f"extra-{towel.pk}").get_by_role("button", name="Mais um(a) Toalha").tap()
    page.get_by_test_id(f"extra-{towel.pk}").locator("output", has_text="1").wait_for()
    page.get_by_role("button", name="Continuar").tap()
    kiosk.identify(name="Ana")
    page.get_by_role("button", name="Continuar").tap()
    page.get_by_test_id("pay-pix").tap()
    page.get_by_role("heading", name="Pague com PIX").wait_for()
    towel.refresh_from_db()
    assert towel.stock == 1

    page.get_by_role("alertdialog").wait_for(timeout=5_000)
    kiosk.shot("idle-warning")
    page.get_by_text("Toque para começar").wait_for(timeout=6_000)
    kiosk.shot("welcome-again")
    assert Ticket.objects.get().status == "cancelled"
    towel.refresh_from_db()
    assert towel.stock == 2
    kiosk.done()


def test_typed_personal_data_leaves_the_screen_30_seconds_after_the_last_touch(
    page, live_server, scene, tenant, cryo, settings
):
    # Defaults: 30 s with personal data on screen, warning included; 2 min elsewhere.
    assert settings.KIOSK_PERSONAL_IDLE_SECONDS == 30
    assert settings.KIOSK_PERSONAL_WARNING_SECONDS == 10
    page.clock.install()  # fast_forward below: no test waits in real time
    kiosk = Kiosk(page, live_server, tenant, "personal-idle")
    kiosk.pair(scene)
    kiosk.choose(cryo)
    # A screen without personal data keeps the longer timeout.
    page.clock.fast_forward(60_000)
    assert page.get_by_role("alertdialog").is_hidden()
    page.get_by_role("link", name="Continuar").tap()
    page.get_by_role("heading", name="Deseja algum adicional?").wait_for()
    page.get_by_role("button", name="Continuar").tap()
    page.get_by_role("heading", name="Seus dados").wait_for()
    # An empty form shows nothing personal: no hurry there either.
    page.clock.fast_forward(60_000)
    assert page.get_by_role("alertdialog").is_hidden()
    page.get_by_label("Seu nome").click()
    kiosk.type_letters("Maria")
    page.clock.fast_forward(19_000)
    assert page.get_by_role("alertdialog").is_hidden()
    page.clock.fast_forward(1_500)
    page.get_by_role("alertdialog").wait_for()
    assert page.locator("[data-countdown]").inner_text() == "10"
    kiosk.shot("personal-warning")
    page.clock.fast_forward(10_000)
    page.get_by_text("Toque para começar").wait_for()
    assert "MARIA" not in page.content()
    # The purchase was cleared, not only the screen: starting again shows an empty form.
    page.get_by_text("Toque para começar").tap()
    page.get_by_test_id(f"service-{cryo.pk}").tap()
    page.locator(f'[data-testid="service-{cryo.pk}"][aria-pressed="true"]').wait_for()
    page.get_by_role("link", name="Continuar").tap()
    page.get_by_role("button", name="Continuar").tap()  # no extras
    page.get_by_role("heading", name="Seus dados").wait_for()
    assert page.get_by_label("Seu nome").input_value() == ""

    # The summary shows the name: the same 30 s there, counted from the page's load.
    kiosk.identify(name="Ana")
    page.get_by_role("button", name="Continuar").tap()
    page.get_by_role("heading", name="Confira e pague").wait_for()
    page.clock.fast_forward(20_500)
    page.get_by_role("alertdialog").wait_for()
    page.clock.fast_forward(10_000)
    page.get_by_text("Toque para começar").wait_for()
    kiosk.done()


# Every visible target a finger aims at: buttons, links, the radio and checkbox labels, the
# keyboard's keys (buttons too). Each must be at least 56 × 56 px (WCAG 2.5.5 asks 44; a
# standing customer's finger on a wall screen gets more).
LAYOUT_PROBLEMS = """(primary) => {
  const problems = [];
  const root = document.documentElement;
  if (root.scrollWidth > innerWidth) {
    problems.push(`scrolls sideways: ${root.scrollWidth} > ${innerWidth}`);
  }
  const targets = document.querySelectorAll(
    "button, a[href], [role=button], label:has(input[type=radio]), label:has(input[type=checkbox])"
  );
  for (const el of targets) {
    if (el.closest("[hidden]") || el.closest(".visually-hidden")) continue;
    const box = el.getBoundingClientRect();
    if (!box.width && !box.height) continue;
    if (box.height < 56 || box.width < 56) {
      const size = `${Math.round(box.width)}×${Math.round(box.height)}`;
      problems.push(`small target ${size}: ${el.textContent.trim().slice(0, 30)}`);
    }
  }
  const main = document.querySelector(primary);
  if (!main) problems.push(`no primary ${primary}`);
  else {
    const box = main.getBoundingClientRect();
    if (box.top < 0 || box.left < 0 || box.bottom > innerHeight || box.right > innerWidth) {
      problems.push(`primary ${primary} outside the screen: ${JSON.stringify(box)}`);
    }
    // Not covered either (a sticky keyboard over a sticky button would be).
    const top = document.elementFromPoint(box.left + box.width / 2, box.top + box.height / 2);
    if (!top || !(main.contains(top) || top.contains(main))) {
      problems.push(`primary ${primary} covered`);
    }
  }
  // Every QR code (PIX, the ticket to follow, the receipt) whole on the screen and clear of
  // the sticky action bar: a phone cannot read a code the bar cuts (the cash screen's once was
  // at 1280×800).
  const bar = document.querySelector("main .actions");
  const barBox = bar && bar.getBoundingClientRect();
  for (const qr of document.querySelectorAll(".qr")) {
    const box = qr.getBoundingClientRect();
    const label = qr.dataset.testid || qr.className;
    if (box.top < 0 || box.left < 0 || box.bottom > innerHeight || box.right > innerWidth) {
      problems.push(`QR ${label} not whole on the screen: ${JSON.stringify(box)}`);
    }
    if (barBox && box.bottom > barBox.top && box.top < barBox.bottom
        && box.right > barBox.left && box.left < barBox.right) {
      problems.push(`QR ${label} under the action bar: ${JSON.stringify([box, barBox])}`);
    }
  }
  // The field being typed in stays in sight above the on-screen keyboard.
  const typing = document.querySelector("input.typing");
  if (typing) {
    const box = typing.getBoundingClientRect();
    const top = document.elementFromPoint(box.left + box.width / 2, box.top + box.height / 2);
    if (top !== typing) problems.push(`field being typed in is hidden: ${typing.name}`);
  }
  return problems;
}"""


@pytest.mark.parametrize(
    "size",
    [
        {"width": 1080, "height": 1920},
        {"width": 1920, "height": 1080},
        {"width": 1280, "height": 800},
    ],
    ids=["portrait", "landscape", "small"],
)
def test_every_step_fits_the_screen_with_its_primary_action_in_view_and_big_targets(
    browser,
    browser_context_args,
    live_server,
    scene,
    tenant,
    cryo,
    boots,
    towel,
    alice,
    settings,
    size,
):
    settings.KIOSK_PAYMENT_POLL_SECONDS = 1  # no socket here: the poll brings the ticket
    questionnaire_for(cryo)
    PaymentSettings.objects.create(
        tenant=tenant,
        pix_key="studio@example.com",
        merchant_name="Studio",
        merchant_city="Sao Paulo",
    )
    context = browser.new_context(**{**browser_context_args, "viewport": size})
    page = context.new_page()
    kiosk = Kiosk(page, live_server, tenant, f"layout-{size['width']}x{size['height']}")
    problems: dict[str, list[str]] = {}

    def check(step: str, primary: str) -> None:
        kiosk.shot(step, full_page=False)  # what the customer sees without scrolling
        found = page.evaluate(LAYOUT_PROBLEMS, primary)
        if found:
            problems[step] = found

    kiosk.pair(scene)
    check("welcome", ".touch-to-start")
    kiosk.choose(cryo, boots)
    check("services", "nav.actions .btn-next")
    page.get_by_role("link", name="Continuar").tap()
    page.get_by_role("heading", name="Deseja algum adicional?").wait_for()
    check("extras", "nav.actions .btn-next")
    page.get_by_role("button", name="Continuar").tap()
    page.get_by_role("heading", name="Seus dados").wait_for()
    page.locator("#keyboard.letters").wait_for()  # opened by itself on the first field
    check("identify-letters", "nav.actions .btn-next")
    page.get_by_label("Seu nome").click()
    kiosk.type_letters("Maria")
    page.get_by_label("Celular (opcional)").click()
    kiosk.type_digits("11987654321")
    check("identify-digits", "nav.actions .btn-next")
    page.locator('#keyboard button[data-key="done"]').tap()
    page.get_by_label("Sem prioridade").check()
    page.get_by_label("Li e concordo").check()
    check("identify-filled", "nav.actions .btn-next")
    page.get_by_role("button", name="Continuar").tap()
    # Cryotherapy asks its health form: a walk-in answers it on every purchase.
    page.get_by_role("heading", name="Termo de saúde: Crioterapia").wait_for()
    check("waiver", "nav.actions .btn-next")
    page.get_by_test_id("answer-0-no").check()
    page.get_by_test_id("answer-1-yes").check()
    page.get_by_label("Digite seu nome completo para assinar").click()
    kiosk.type_letters("Maria Souza")
    check("waiver-typing", "nav.actions .btn-next")
    page.locator('#keyboard button[data-key="done"]').tap()
    page.get_by_role("button", name="Concordo").tap()
    page.get_by_role("heading", name="Confira e pague").wait_for()
    check("summary", '[data-testid="pay-pix"]')
    page.get_by_test_id("pay-pix").tap()
    page.get_by_role("heading", name="Pague com PIX").wait_for()
    check("pix", ".qr-pix")
    # *Cancelar compra* asks first, in the page; "Não, voltar" (focused, the safe answer) keeps it.
    page.get_by_test_id("cancel-purchase").tap()
    page.get_by_role("alertdialog", name="Cancelar esta compra?").wait_for()
    assert page.evaluate("document.activeElement.dataset.testid") == "cancel-no"
    check("pix-cancel-question", '[data-testid="cancel-yes"]')
    asked = []
    page.on("request", lambda request: asked.append(request.url))
    page.get_by_role("link", name="Não, voltar").tap()
    page.get_by_role("alertdialog").wait_for(state="hidden")
    assert Ticket.objects.get().status == "pending_payment"
    # Closing the question asks the server nothing (the status poll aside).
    assert [url for url in asked if "/pagamento/estado/" not in url] == []
    # Without script the button posts at once, and the server asks the same question as a page.
    # (Submitted from here: the status poll may swap the button between two steps.)
    page.eval_on_selector('[data-testid="cancel-purchase"]', "b => b.form.submit()")
    page.get_by_role("heading", name="Cancelar esta compra?", level=1).wait_for()
    check("cancel-page", '[data-testid="cancel-yes"]')
    page.get_by_role("link", name="Não, voltar").tap()
    page.get_by_role("heading", name="Pague com PIX").wait_for()
    confirm_static_pix(tenant, PaymentSession.objects.get().pk, alice)
    page.get_by_test_id("ticket-number").wait_for(timeout=10_000)
    check("ticket", ".ticket .actions .btn-primary")
    page.get_by_role("button", name="Concluir").tap()

    kiosk.choose(cryo)
    page.get_by_role("link", name="Continuar").tap()
    page.get_by_role("button", name="Continuar").tap()
    kiosk.identify(name="Ana")
    page.get_by_role("button", name="Continuar").tap()
    kiosk.sign_waiver(name="Ana")
    page.get_by_test_id("pay-cash").tap()
    page.get_by_role("heading", name="Dirija-se ao caixa").wait_for()
    check("cash", "nav.actions .btn-primary")
    context.close()
    assert problems == {}, "\n".join(f"{step}: {found}" for step, found in problems.items())
    kiosk.done()


def test_a_whole_sale_is_one_request_per_tap_and_back_and_reload_still_work(
    page, live_server, scene, tenant, cryo, towel
):
    """From "Toque para começar" to the cash screen: each tap one request (the POST answers
    with the next screen, its URL pushed), at most 7 in all; the address bar follows, and
    back and reload land on the screen the server says the purchase is at."""
    kiosk = Kiosk(page, live_server, tenant, "requests")
    kiosk.pair(scene)
    requests: list[str] = []
    page.on("request", lambda request: requests.append(f"{request.method} {request.url}"))
    kiosk.choose(cryo)
    page.get_by_role("link", name="Continuar").tap()
    page.get_by_role("heading", name="Deseja algum adicional?").wait_for()
    assert page.url.endswith("/totem/extras/")
    page.get_by_role("button", name="Continuar").tap()
    page.get_by_role("heading", name="Seus dados").wait_for()
    assert page.url.endswith("/totem/identificacao/")
    kiosk.identify(name="Ana")
    page.get_by_role("button", name="Continuar").tap()
    page.get_by_role("heading", name="Confira e pague").wait_for()
    assert page.url.endswith("/totem/resumo/")
    page.get_by_test_id("pay-cash").tap()
    page.get_by_role("heading", name="Dirija-se ao caixa").wait_for()
    assert page.url.endswith("/totem/pagamento/")
    # start, a service, Continue, extras' Continue, identification, paying: six taps.
    assert len(requests) <= 7, "\n".join(requests)
    assert all("/static/" not in r for r in requests), requests  # no page reloaded
    assert Ticket.objects.get().status == "pending_payment"

    # Back goes to the summary's URL, which the server sends to the purchase's payment screen
    # (the cart holds a ticket: it cannot be bought twice); reload shows the same.
    page.go_back()
    page.get_by_role("heading", name="Dirija-se ao caixa").wait_for()
    page.reload()
    page.get_by_role("heading", name="Dirija-se ao caixa").wait_for()
    assert Ticket.objects.count() == 1
    kiosk.shot("cash-after-reload")
    kiosk.done()
