"""Receipts as the customer reaches them: the QR on the kiosk's ticket screen, the links and
QR on the phone's page, the page and its PDF, by the ticket's token only."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone
from pypdf import PdfReader

from equipment.models import Kind
from payments.models import PaymentSession, PaymentSettings
from payments.receipts import receipt_url
from payments.sessions import (
    confirm_cash,
    confirm_static_pix,
    issue_free_ticket,
    refund,
    start_payment,
)
from tenants.templatetags.formats import qr_svg
from tests.conftest import make_device, make_service, make_ticket
from tests.test_kiosk import buy, cart_key, fill_cart, pair, url
from tickets.models import Ticket, new_token


@pytest.fixture
def kiosk(tenant, cryo) -> Client:
    """A paired kiosk of a studio that sells cryotherapy and takes static PIX."""
    make_device(tenant, "Crio 1", [cryo])
    client = Client()
    pair(client, tenant, make_device(tenant, "Totem 1", kind=Kind.KIOSK))
    return client


@pytest.fixture
def pix(tenant):
    return PaymentSettings.objects.create(
        tenant=tenant,
        pix_key="studio@example.com",
        merchant_name="Studio Alfa",
        merchant_city="Sao Paulo",
        cash_enabled=True,
    )


def paid_in_cash(tenant, services, alice, received: str) -> Ticket:
    ticket = make_ticket(tenant, services, customer_name="Fulana Secreta", cpf="52998224725")
    confirm_cash(tenant, start_payment(ticket, "cash").pk, alice, received)
    return Ticket.objects.get(pk=ticket.pk)


def pdf_url(ticket: Ticket) -> str:
    return f"/t/{ticket.tenant.slug}/pagamentos/recibo/{ticket.token}.pdf"


def pdf_text(content: bytes) -> str:
    assert content.startswith(b"%PDF-")
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


# --- the PDF -------------------------------------------------------------------------------


def test_the_pdf_says_what_was_paid_with_its_accents_and_brazilian_amounts(
    tenant, cryo, boots, alice, client
):
    tenant.timezone = "America/Manaus"  # an hour behind São Paulo: the time is the studio's
    tenant.save()
    cryo.price = Decimal("1154.50")
    cryo.save()
    ticket = paid_in_cash(tenant, [cryo, boots], alice, "1300")
    session = PaymentSession.objects.get(ticket=ticket)

    response = client.get(pdf_url(ticket))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f'inline; filename="recibo-{ticket.number}.pdf"'
    assert "no-store" in response["Cache-Control"] and "private" in response["Cache-Control"]
    text = pdf_text(response.content)
    paid_at = timezone.localtime(session.paid_at, tenant.tzinfo).strftime("%d/%m/%Y %H:%M")
    for expected in [
        "Studio Alfa",
        "RECIBO",
        session.receipt.code,
        ticket.number,
        paid_at,
        "Crioterapia",
        "Bota de compressão",
        "R$ 1.154,50",
        "R$ 80,00",
        "R$ 1.234,50",
        "Dinheiro",
        "Recebido",
        "R$ 1.300,00",
        "Troco",
        "R$ 65,50",
        "Não é documento fiscal.",
    ]:
        assert expected in text, expected
    # Nothing about the person: the receipt is the studio's and the sale's.
    for personal in ["Fulana", "Secreta", "52998224725", "529.982.247-25"]:
        assert personal not in text


def test_the_pdf_embeds_its_font_so_any_reader_shows_the_accents(tenant, cryo, alice, client):
    ticket = paid_in_cash(tenant, [cryo], alice, "120")
    page = PdfReader(io.BytesIO(client.get(pdf_url(ticket)).content)).pages[0]
    fonts = [font.get_object() for font in page["/Resources"]["/Font"].values()]
    assert fonts, "no font on the page"
    for font in fonts:
        assert "DejaVuSansMono" in font["/BaseFont"]
        descriptor = font["/DescendantFonts"][0].get_object()["/FontDescriptor"].get_object()
        assert "/FontFile2" in descriptor  # the TrueType program itself, not a name to look up


def test_a_refunded_payment_says_so_on_the_page_and_in_the_pdf(tenant, cryo, alice, bob, client):
    ticket = paid_in_cash(tenant, [cryo], alice, "120")
    refund(tenant, PaymentSession.objects.get(ticket=ticket).pk, bob, "cliente desistiu")
    page = client.get(f"/t/{tenant.slug}/pagamentos/recibo/{ticket.token}/").content.decode()
    assert "Este pagamento foi estornado." in page
    assert "Este pagamento foi estornado." in pdf_text(client.get(pdf_url(ticket)).content)


def test_the_receipt_page_links_its_pdf_and_is_kept_by_no_cache(tenant, cryo, alice, client):
    ticket = paid_in_cash(tenant, [cryo], alice, "120")
    response = client.get(f"/t/{tenant.slug}/pagamentos/recibo/{ticket.token}/")
    assert response.status_code == 200
    assert f'href="{pdf_url(ticket)}"' in response.content.decode()
    assert "Baixar PDF" in response.content.decode()
    assert "Não é documento fiscal." in response.content.decode()
    assert "no-store" in response["Cache-Control"]


# --- who may open it -----------------------------------------------------------------------


def test_the_pdf_is_reached_by_the_tickets_token_only(
    tenant, other_tenant, cryo, alice, client: Client
):
    ticket = paid_in_cash(tenant, [cryo], alice, "120")
    assert client.get(pdf_url(ticket)).status_code == 200
    base = f"/t/{tenant.slug}/pagamentos/recibo/"
    refused = [
        f"{base}{new_token()}.pdf",  # a well-formed token no ticket has
        f"/t/{other_tenant.slug}/pagamentos/recibo/{ticket.token}.pdf",  # another studio
        f"{base}%00{ticket.token[1:]}.pdf",  # a NUL
        f"{base}{ticket.token}%00.pdf",
        f"{base}{ticket.token[:-1]}%27.pdf",  # a quote
        f"{base}{'x' * 10_000}.pdf",
        f"{base}..%2F..%2F{ticket.token[6:]}.pdf",
        f"{base}{ticket.token}.PDF",
    ]
    for path in refused:
        assert client.get(path).status_code == 404, path[:80]


def test_a_ticket_not_yet_paid_or_paid_nothing_has_no_receipt(tenant, cryo, alice, client):
    unpaid = make_ticket(tenant, [cryo])
    start_payment(unpaid, "cash")
    free = make_ticket(tenant, [make_service(tenant, "Avaliação", "A", "0.00")])
    issue_free_ticket(free)
    for ticket in (unpaid, free):
        assert client.get(pdf_url(ticket)).status_code == 404
        page = client.get(f"/t/{tenant.slug}/pagamentos/recibo/{ticket.token}/")
        assert page.status_code == 404
        status = client.get(f"/t/{tenant.slug}/senha/{ticket.token}/").content.decode()
        assert "/recibo/" not in status and 'data-testid="receipt"' not in status


# --- where the customer finds it -------------------------------------------------------------


def test_the_phone_page_shows_the_receipts_links_and_qr_once_paid(tenant, cryo, alice, client):
    ticket = make_ticket(tenant, [cryo])
    session = start_payment(ticket, "cash")
    status = f"/t/{tenant.slug}/senha/{ticket.token}/"
    assert "/recibo/" not in client.get(status).content.decode()

    confirm_cash(tenant, session.pk, alice, "120")
    # The page re-reads its partial when the payment's event arrives: the receipt is there.
    for page in (client.get(status), client.get(status, headers={"HX-Request": "true"})):
        html = page.content.decode()
        assert f'href="/t/{tenant.slug}/pagamentos/recibo/{ticket.token}/"' in html
        assert f'href="{pdf_url(ticket)}"' in html
        assert "Ver recibo" in html and "Baixar PDF" in html
        # The QR is the receipt's address, whole, where the customer's phone can open it.
        assert qr_svg(receipt_url(ticket), "QR code do seu recibo", 4) in html


def test_the_kiosk_ticket_screen_shows_the_receipts_qr_once_paid(
    kiosk, tenant, cryo, pix, alice, settings
):
    settings.PUBLIC_BASE_URL = "https://fila.studio.example"
    fill_cart(kiosk, tenant, [cryo])
    buy(kiosk, tenant, "pix")
    confirm_static_pix(tenant, PaymentSession.objects.get().pk, alice)
    page = kiosk.get(url(tenant, "kiosk_ticket"))
    ticket = Ticket.objects.get()
    expected = f"https://fila.studio.example/t/{tenant.slug}/pagamentos/recibo/{ticket.token}/"
    assert page.context["receipt_url"] == expected
    html = page.content.decode()
    code = qr_svg(expected, "QR code do seu recibo", 5)
    assert code in html and 'data-testid="receipt-qr"' in html
    assert "Leia para ver seu recibo no celular." in html
    # A QR only: a link tapped on the kiosk would leave the receipt there for the next person.
    assert "/recibo/" not in html.replace(code, "")


def test_the_kiosk_shows_no_receipt_for_a_ticket_with_nothing_to_pay(kiosk, tenant):
    free = make_service(tenant, "Avaliação", "A", "0.00")
    make_device(tenant, "Avaliação 1", [free])
    fill_cart(kiosk, tenant, [free])
    kiosk.post(url(tenant, "kiosk_summary"), {"key": cart_key(kiosk, tenant)})
    page = kiosk.get(url(tenant, "kiosk_ticket"))
    assert page.status_code == 200 and page.context["ticket"].total == 0
    assert page.context["receipt_url"] == ""
    assert 'data-testid="receipt-qr"' not in page.content.decode()
