"""A returning customer at the kiosk in a real Chromium: greeted by first name, uses one
session of a package, gets a ticket with nothing to pay; then buys a package with PIX
through the fake MercadoPago and gets its sessions once paid. Screenshots of every step,
each checked by axe-core."""

from __future__ import annotations

import pytest

from equipment.models import Kind
from payments.models import PaymentSession
from tests.conftest import make_device, make_service
from tests.test_customers import CPF, customer_of, make_package, with_sessions
from tests.test_kiosk_browser import LAYOUT_PROBLEMS, Kiosk
from tests.test_kiosk_browser import browser_context_args as kiosk_context_args
from tickets import credits
from tickets.models import CustomerPackage, Ticket
from totem import kiosk as kiosk_module

pytestmark = [pytest.mark.browser]
# The kiosk's browser: a portrait screen, touch, pt-BR (tests/test_kiosk_browser.py).
browser_context_args = kiosk_context_args


@pytest.fixture
def scene(transactional_db, tenant, cryo):
    """A cryotherapy chamber and the kiosk."""
    make_device(tenant, "Crio 1", [cryo])
    return make_device(tenant, "Totem 1", kind=Kind.KIOSK)


def to_identification(kiosk: Kiosk, page, service) -> None:
    kiosk.choose(service)
    page.get_by_role("link", name="Continuar").tap()
    page.get_by_role("button", name="Continuar").tap()  # extras
    page.get_by_role("heading", name="Seus dados").wait_for()
    kiosk.identify(name="Maria Souza", cpf=CPF)
    page.get_by_role("button", name="Continuar").tap()


def test_a_returning_customer_uses_a_package_session_and_pays_nothing(
    page, live_server, scene, tenant, cryo
):
    customer = customer_of(tenant, name="Maria Souza")
    customer.phone, customer.email = "11998765432", "maria@example.com"
    customer.save()
    with_sessions(tenant, [cryo], customer, sessions=8)
    kiosk = Kiosk(page, live_server, tenant, "package-session")
    kiosk.pair(scene)
    to_identification(kiosk, page, cryo)

    page.get_by_role("heading", name="Que bom ver você de novo, Maria!").wait_for()
    option = page.get_by_label("Usar 1 sessão do pacote (restam 8)")
    assert option.is_checked()
    kiosk.shot("package-step")
    html = page.content()
    assert "98765" not in html and "maria@example.com" not in html and "Souza" not in html
    page.get_by_test_id("packages-next").tap()

    page.get_by_role("heading", name="Confira e pague").wait_for()
    assert page.get_by_test_id(f"package-note-{cryo.pk}").inner_text() == (
        "1 sessão do pacote (restam 7)"
    )
    assert page.get_by_test_id("total").inner_text() == "R$ 0,00"
    kiosk.shot("summary-covered")
    page.get_by_test_id("free-ticket").tap()

    page.get_by_test_id("ticket-number").wait_for()
    ticket = Ticket.objects.get()
    assert page.get_by_test_id("ticket-number").inner_text() == ticket.number
    assert page.get_by_test_id("balances").get_by_text("Crioterapia: 7 sessões restantes").count()
    kiosk.shot("ticket-with-balance")
    assert ticket.status == "in_queue" and not ticket.payment_sessions.exists()
    assert credits.sessions_left(customer, cryo.pk) == 7
    kiosk.done()


def test_a_customer_buys_a_package_with_pix_and_gets_its_sessions_once_paid(
    page, live_server, scene, tenant, cryo, fake, mp, settings, monkeypatch
):
    # No socket nor webhook reaches the live server: the screen's poll asks MercadoPago.
    settings.KIOSK_PAYMENT_POLL_SECONDS = 1
    monkeypatch.setattr(kiosk_module, "PROVIDER_CHECK_SECONDS", 1)
    package = make_package(tenant, [cryo], sessions=10, price="900.00")
    kiosk = Kiosk(page, live_server, tenant, "package-purchase")
    kiosk.pair(scene)
    to_identification(kiosk, page, cryo)

    page.get_by_role("heading", name="Pacotes").wait_for()
    page.get_by_test_id(f"buy-package-{package.pk}").check()
    kiosk.shot("package-offer")
    page.get_by_test_id("packages-next").tap()
    page.get_by_role("heading", name="Confira e pague").wait_for()
    assert page.get_by_test_id("total").inner_text() == "R$ 900,00"
    kiosk.shot("summary-package")
    page.get_by_test_id("pay-pix").tap()
    page.get_by_role("heading", name="Pague com PIX").wait_for()
    assert not CustomerPackage.objects.exists()  # nothing before the money

    session = PaymentSession.objects.get()
    fake.approve(session.external_id, notify=False)
    page.get_by_test_id("ticket-number").wait_for(timeout=15_000)
    kiosk.shot("ticket-after-package")
    assert page.get_by_test_id("balances").get_by_text("Crioterapia: 9 sessões restantes").count()
    sold = CustomerPackage.objects.get()
    assert sold.ticket == Ticket.objects.get() and sold.customer.cpf == CPF
    kiosk.done()


def test_nothing_is_offered_to_a_customer_without_cpf(page, live_server, scene, tenant, cryo):
    make_package(tenant, [cryo])
    kiosk = Kiosk(page, live_server, tenant, "no-cpf")
    kiosk.pair(scene)
    kiosk.choose(cryo)
    page.get_by_role("link", name="Continuar").tap()
    page.get_by_role("button", name="Continuar").tap()
    kiosk.identify(name="Ana")
    page.get_by_role("button", name="Continuar").tap()
    page.get_by_role("heading", name="Confira e pague").wait_for()
    kiosk.done()


@pytest.mark.parametrize(
    "size",
    [
        {"width": 1080, "height": 1920},
        {"width": 1920, "height": 1080},
        {"width": 1280, "height": 800},
    ],
    ids=["portrait", "landscape", "small"],
)
def test_the_package_step_fits_the_screen_with_big_targets(
    browser,
    browser_context_args,
    live_server,
    scene,
    tenant,
    cryo,
    boots,
    size,  # noqa: F811
):
    make_device(tenant, "Botas 1", [boots])
    with_sessions(tenant, [cryo], customer_of(tenant), sessions=3)
    make_package(tenant, [boots], sessions=5, price="350.00")
    # A package for a service not chosen: offered for the next visits, nothing used today.
    make_package(tenant, [make_service(tenant, "Sauna", "S", "90.00", 40, 2)], sessions=4)
    context = browser.new_context(**{**browser_context_args, "viewport": size})
    page = context.new_page()
    kiosk = Kiosk(page, live_server, tenant, f"packages-{size['width']}x{size['height']}")
    kiosk.pair(scene)
    kiosk.choose(cryo, boots)
    page.get_by_role("link", name="Continuar").tap()
    page.get_by_role("button", name="Continuar").tap()
    kiosk.identify(name="Maria", cpf=CPF)
    page.get_by_role("button", name="Continuar").tap()
    page.get_by_role("heading", name="Que bom ver você de novo, Maria!").wait_for()
    page.get_by_test_id("other-packages").wait_for()
    kiosk.shot("package-step", full_page=False)
    assert page.evaluate(LAYOUT_PROBLEMS, '[data-testid="packages-next"]') == []
    context.close()
    kiosk.done()
