"""The receipt's QR on the kiosk's ticket screen, in portrait and in landscape, and the
receipt's links on the customer's phone, in a real Chromium. Screenshots are saved under a
temporary folder printed at the start (`pytest -s` shows it). Any console error, a page wider
than the screen, or a QR code too small to scan from a phone fails the test."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from equipment.models import Kind
from payments.models import PaymentSession, PaymentSettings
from payments.sessions import confirm_static_pix, start_payment
from tests import daphne_server
from tests.conftest import CHROMIUM, REQUIRE_SERVERS, make_device, make_ticket
from tests.test_kiosk_browser import Kiosk

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists() and not REQUIRE_SERVERS,
        reason=f"needs Chromium at {CHROMIUM} (apt-get install chromium)",
    ),
]

daphne = daphne_server.daphne

PHONE = {"width": 390, "height": 844}
# A QR code a phone reads at arm's length from a kiosk or from another phone's screen.
SMALLEST_QR = 120


def assert_fits(page, locator, screen: dict) -> None:
    """`locator` is on the page whole, inside the screen's width, and big enough to scan."""
    locator.scroll_into_view_if_needed()
    box = locator.bounding_box()
    assert box["width"] >= SMALLEST_QR and box["height"] >= SMALLEST_QR, box
    assert box["x"] >= 0 and box["x"] + box["width"] <= screen["width"], box
    assert page.evaluate("document.documentElement.scrollWidth") <= screen["width"]


@pytest.mark.parametrize(
    "screen", [{"width": 1080, "height": 1920}, {"width": 1920, "height": 1080}], ids=str
)
def test_the_kiosk_shows_the_receipts_qr_once_paid_on_both_screens(
    browser, live_server, transactional_db, tenant, cryo, towel, alice, screen, settings
):
    settings.PUBLIC_BASE_URL = live_server.url
    # live_server serves no sockets: the payment screen's fallback poll must see the payment.
    settings.KIOSK_PAYMENT_POLL_SECONDS = 1
    make_device(tenant, "Crio 1", [cryo])
    PaymentSettings.objects.create(
        tenant=tenant,
        pix_key="studio@example.com",
        merchant_name="Studio",
        merchant_city="Sao Paulo",
    )
    context = browser.new_context(viewport=screen, has_touch=True, locale="pt-BR")
    page = context.new_page()
    kiosk = Kiosk(page, live_server, tenant, f"receipt-{screen['width']}x{screen['height']}")
    kiosk.pair(make_device(tenant, "Totem 1", kind=Kind.KIOSK))
    kiosk.choose(cryo)
    kiosk.shot("services")
    page.get_by_role("link", name="Continuar").tap()
    page.get_by_test_id(f"extra-{towel.pk}").wait_for()
    kiosk.shot("extras")
    page.get_by_role("button", name="Continuar").tap()
    kiosk.identify(name="Ana")
    kiosk.shot("identify")
    page.get_by_role("button", name="Continuar").tap()
    page.get_by_test_id("pay-pix").wait_for()
    kiosk.shot("summary")
    page.get_by_test_id("pay-pix").tap()
    page.get_by_role("heading", name="Pague com PIX").wait_for()
    kiosk.shot("payment")
    assert page.get_by_test_id("receipt-qr").count() == 0

    confirm_static_pix(tenant, PaymentSession.objects.get().pk, alice)
    page.get_by_test_id("ticket-number").wait_for(timeout=10_000)
    kiosk.shot("ticket")
    qr = page.get_by_test_id("receipt-qr")
    assert "QR code do seu recibo" in qr.inner_html()
    assert_fits(page, qr, screen)
    assert page.get_by_text("Leia para ver seu recibo no celular.").is_visible()
    # The kiosk offers no link that would leave the receipt on its screen.
    assert page.locator("a[href*='/recibo/']").count() == 0
    # Landscape or portrait, the button that ends the visit is on the screen without scrolling.
    done = page.get_by_role("button", name="Concluir").bounding_box()
    assert done["y"] + done["height"] <= screen["height"], done
    kiosk.done()
    context.close()


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_the_phone_page_shows_the_receipt_once_paid_with_its_pdf_and_qr(
    browser, daphne, tenant, cryo, alice
):
    make_device(tenant, "Crio 1", [cryo])
    PaymentSettings.objects.create(
        tenant=tenant,
        pix_key="studio@example.com",
        merchant_name="Studio",
        merchant_city="Sao Paulo",
    )
    ticket = make_ticket(tenant, [cryo], customer_name="Ana Lima")
    session = start_payment(ticket, "pix")
    context = browser.new_context(viewport=PHONE, has_touch=True, locale="pt-BR")
    page = context.new_page()
    base = f"http://{daphne}"
    # The kiosk's helper for its screenshots and its console watch.
    phone = Kiosk(page, SimpleNamespace(url=base), tenant, "receipt-phone")
    page.goto(f"{base}/t/{tenant.slug}/senha/{ticket.token}/")
    page.wait_for_selector("body[data-live='open']")
    page.get_by_text("Aguardando pagamento.").wait_for()
    assert page.get_by_test_id("receipt").count() == 0
    phone.shot("unpaid")

    # Paid while the page is open: the payment's event makes it re-read itself.
    confirm_static_pix(tenant, session.pk, alice)
    receipt = page.get_by_test_id("receipt")
    receipt.wait_for(timeout=10_000)
    phone.shot("paid")
    assert_fits(page, receipt.locator("svg"), PHONE)
    see = page.get_by_role("link", name="Ver recibo")
    pdf = page.get_by_role("link", name="Baixar PDF")
    for link in (see, pdf):
        box = link.bounding_box()
        assert box["height"] >= 48 and box["x"] + box["width"] <= PHONE["width"], box
    served = page.request.get(base + pdf.get_attribute("href"))
    assert served.status == 200 and served.headers["content-type"] == "application/pdf"
    assert served.body().startswith(b"%PDF-")

    see.tap()
    page.get_by_text("Não é documento fiscal.").wait_for()
    assert page.url == f"{base}/t/{tenant.slug}/pagamentos/recibo/{ticket.token}/"
    assert ticket.number in page.locator("pre").inner_text()
    # The receipt's columns line up on the phone: no line wraps or hides past the edge.
    assert page.locator("pre").evaluate("pre => pre.scrollWidth <= pre.clientWidth")
    phone.shot("receipt-page")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    phone.done()
    context.close()


def test_the_receipt_page_shows_the_nfse_link_and_qr_on_a_phone(
    browser, live_server, transactional_db, tenant, cryo, alice
):
    from payments.sessions import confirm_cash
    from tests.accessibility import assert_accessible

    ticket = make_ticket(tenant, [cryo], customer_name="Ana Lima")
    session = start_payment(ticket, "cash")
    confirm_cash(tenant, session.pk, alice, "120")
    # What fiscal writes once the NFS-e is authorized (tests/test_fiscal.py drives that).
    nfse_url = "https://www.nfse.gov.br/consultapublica/?tpc=1&chave=2611606211222333000181"
    session.receipt.__class__.objects.filter(pk=session.receipt.pk).update(
        nfse_number="1001", nfse_url=nfse_url
    )
    context = browser.new_context(viewport=PHONE, has_touch=True, locale="pt-BR")
    page = context.new_page()
    page.goto(f"{live_server.url}/t/{tenant.slug}/pagamentos/recibo/{ticket.token}/")
    link = page.get_by_test_id("receipt-nfse")
    assert link.inner_text() == "Ver a NFS-e 1001" and link.get_attribute("href") == nfse_url
    assert "NFS-e" in page.locator("pre").inner_text()
    assert_fits(page, page.locator(".nfse svg"), PHONE)
    assert_accessible(page, "receipt with NFS-e")
    context.close()
