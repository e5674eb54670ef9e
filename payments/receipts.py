"""Receipts: frozen at confirmation, rendered as thermal text (the printer prints it), a page
or a PDF — the page and the PDF show the printer's lines, so all three say the same.

The content is plain JSON written once, so a later price change, rename or refund never
rewrites what the customer was given.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from importlib.resources import files

from django.conf import settings
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from equipment.printing import ReceiptData, ReceiptItem, queue_receipt
from payments.models import PaymentSession, Receipt, SessionStatus
from tenants.compiled import CompiledRead
from tenants.money import brl
from tickets.models import Ticket, TicketExtra, TicketLine

# DejaVu Sans Mono, shipped inside python-barcode (installed with python-escpos, and listed in
# pyproject.toml for this): a monospaced font with every pt-BR accent, on any machine
# that has the project's packages, with no system font and no download. Monospaced because
# the PDF sets the receipt's columns as the printer does.
PDF_FONT = files("barcode") / "fonts" / "DejaVuSansMono.ttf"
PDF_FONT_SIZE = 10  # points: 42 columns make a page about 10 cm wide
PDF_LINE_HEIGHT = 13.5  # points
PDF_MARGIN = 24  # points


def receipt_content(session: PaymentSession) -> dict:
    """Everything a receipt shows: studio, ticket, items, totals, method, local date."""
    ticket, tenant = session.ticket, session.tenant
    paid_at = timezone.localtime(session.paid_at or timezone.now(), tenant.tzinfo)
    items = [
        {
            "name": line["service__name"],
            "quantity": 1,
            "unit": str(line["price"]),
            "total": str(line["price"]),
        }
        for line in _lines(ticket.tenant_id, ticket.pk)
    ]
    items += [
        {
            "name": extra["extra__name"],
            "quantity": extra["quantity"],
            "unit": str(extra["unit_price"]),
            "total": str(extra["unit_price"] * extra["quantity"]),  # TicketExtra.subtotal
        }
        for extra in _extras(ticket.tenant_id, ticket.pk)
    ]
    content = {
        "tenant": {"name": tenant.name, "email": tenant.contact_email},
        "ticket": ticket.number,
        "items": items,
        "total": str(session.amount),
        "method": session.method,
        "method_label": str(session.get_method_display()),
        "provider": session.provider,
        "provider_id": session.provider_payment_id or session.external_id,
        "session": session.pk,
        "paid_at": paid_at.strftime("%d/%m/%Y %H:%M"),
        "timezone": tenant.timezone,
    }
    if session.amount_received is not None:
        content["received"] = str(session.amount_received)
        content["change"] = str(session.change_given)
    return content


# Names and prices only, as values, their statements built once: a line's and an extra's
# instances, with their service's and extra's, were ~1.2 ms of every confirmation's CPU.
@CompiledRead
def _lines(tenant_id: int, ticket_id: int) -> QuerySet[TicketLine]:
    lines = TicketLine.objects.filter(tenant_id=tenant_id, ticket_id=ticket_id)
    return lines.order_by("position").values("service__name", "price")


@CompiledRead
def _extras(tenant_id: int, ticket_id: int) -> QuerySet[TicketExtra]:
    extras = TicketExtra.objects.filter(tenant_id=tenant_id, ticket_id=ticket_id)
    return extras.order_by("extra__name").values("extra__name", "quantity", "unit_price")


def create_receipt(session: PaymentSession) -> Receipt:
    """The receipt of a session just confirmed paid (inside its transaction).

    Once only: a session is confirmed once (its move to paid, under its lock), and the
    receipt's one-to-one column refuses a second. When the tenant has a receipt printer in
    service, a print job is queued with it (the spooler prints after commit); otherwise the
    receipt is the page behind the ticket's QR.
    """
    receipt = Receipt.objects.create(
        tenant_id=session.tenant_id, session=session, content=receipt_content(session)
    )
    queue_receipt(session.tenant, printable(receipt))
    return receipt


def printable(receipt: Receipt) -> ReceiptData:
    """The receipt as the printing layout takes it."""
    c = receipt.content
    # In the studio's language, as the rest of the printed receipt, not the operator's.
    with translation.override(settings.LANGUAGE_CODE):
        after = [f"{label}: {value}" for label, value in _payment_facts(c) + nfse_facts(receipt)]
    if c["tenant"].get("email"):
        after.append(c["tenant"]["email"])
    return ReceiptData(
        tenant_name=c["tenant"]["name"],
        code=receipt.code,
        issued_at=receipt.created_at,
        items=[ReceiptItem(i["name"], i["quantity"], Decimal(i["unit"])) for i in c["items"]],
        total=Decimal(c["total"]),
        method=c["method_label"],
        ticket_number=c["ticket"],
        time_zone=c["timezone"],
        lines_after=after,
    )


def _payment_facts(c: dict) -> list[tuple[str, str]]:
    """What both receipts show below the total: cash received and change, the provider's id."""
    facts = []
    if "received" in c:
        facts += [
            (_("Received"), brl(c["received"])),
            (pgettext("cash", "Change"), brl(c["change"])),
        ]
    if c.get("provider_id"):
        facts.append((_("Transaction"), c["provider_id"]))
    return facts


def nfse_facts(receipt: Receipt) -> list[tuple[str, str]]:
    """The sale's NFS-e once issued (the fiscal app writes it on the receipt): its number,
    or that it was cancelled. A receipt printed at payment has none yet; a reprint has it."""
    if not receipt.nfse_number:
        return []
    if receipt.nfse_cancelled:
        return [(_("NFS-e"), _("%(number)s (cancelled)") % {"number": receipt.nfse_number})]
    return [(_("NFS-e"), receipt.nfse_number)]


def _row(left: str, right: str, width: int) -> str:
    room = width - len(right) - 1
    return f"{left[:room]:<{room}} {right}"


def render_receipt_text(receipt: Receipt, width: int = 42) -> str:
    """The receipt as monospaced lines for a thermal printer (42 columns on 80 mm paper)."""
    c = receipt.content
    rule = "-" * width
    lines = [
        c["tenant"]["name"][:width].center(width),
        _("RECEIPT").center(width),
        rule,
        _row(_("Receipt"), receipt.code, width),
        _row(_("Ticket"), c["ticket"], width),
        _row(_("Date"), c["paid_at"], width),
        rule,
    ]
    for item in c["items"]:
        label = f"{item['quantity']}x {item['name']}" if item["quantity"] > 1 else item["name"]
        lines.append(_row(label, brl(item["total"]), width))
    lines += [
        rule,
        _row(_("TOTAL"), brl(c["total"]), width),
        _row(_("Paid by"), c["method_label"], width),
    ]
    lines += [_row(label, value, width) for label, value in _payment_facts(c)]
    lines += [_row(label, value, width) for label, value in nfse_facts(receipt)]
    lines.append(rule)
    if c["tenant"].get("email"):
        lines.append(c["tenant"]["email"][:width].center(width))
    lines.append(_("Not a tax document.").center(width))
    return "\n".join(lines) + "\n"


def receipts_of(ticket: Ticket) -> QuerySet[Receipt]:
    """A ticket's receipts, oldest first: one per paid session (a refunded one stays)."""
    return (
        Receipt.objects.filter(tenant_id=ticket.tenant_id, session__ticket=ticket)
        .select_related("session")
        .order_by("created_at")
    )


def receipt_url(ticket: Ticket) -> str:
    """The ticket's receipt page at `PUBLIC_BASE_URL`, opened on the phone through a QR code."""
    path = reverse("payments_receipt", args=[ticket.tenant.slug, ticket.token])
    return settings.PUBLIC_BASE_URL.rstrip("/") + path


def render_receipt_pdf(receipts: Iterable[Receipt], title: str = "") -> bytes:
    """The receipts as one PDF, a receipt-shaped page each, in the active language.

    Each page carries the lines of `render_receipt_text` (the printer's, "Não é documento
    fiscal." included) set in an embedded monospaced font, so columns line up and accents
    come out on any reader; a refunded payment says so below its receipt.
    """
    # Imported here: fpdf2 brings fontTools (about 150 modules, a quarter of a second), which
    # every process of the product would otherwise load for a page few customers open.
    from fpdf import FPDF

    pdf = FPDF(unit="pt")
    pdf.set_title(title)
    pdf.set_lang(translation.get_language() or settings.LANGUAGE_CODE)
    pdf.set_auto_page_break(False)
    pdf.set_margins(PDF_MARGIN, PDF_MARGIN)
    pdf.add_font("receipt", fname=str(PDF_FONT))
    pdf.set_font("receipt", size=PDF_FONT_SIZE)
    for receipt in receipts:
        lines = render_receipt_text(receipt).splitlines()
        if receipt.session.status == SessionStatus.REFUNDED:
            lines += ["", _("This payment was refunded.")]
        # The NFS-e's public page, as a link under the receipt (the URL is longer than a line).
        link = receipt.nfse_url if receipt.nfse_number and not receipt.nfse_cancelled else ""
        if link:
            lines += ["", _("See the NFS-e")]
        width = max(pdf.get_string_width(line) for line in lines)
        height = len(lines) * PDF_LINE_HEIGHT
        pdf.add_page(format=(width + 2 * PDF_MARGIN, height + 2 * PDF_MARGIN))
        for index, line in enumerate(lines):
            if line.strip():
                target = link if link and index == len(lines) - 1 else ""
                pdf.cell(h=PDF_LINE_HEIGHT, text=line, new_x="LMARGIN", new_y="NEXT", link=target)
            else:
                pdf.ln(PDF_LINE_HEIGHT)  # fpdf2 sets no cell without text
    return bytes(pdf.output())
