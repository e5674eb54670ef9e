"""Receipts: frozen at confirmation, rendered as thermal text (the printer prints it) or a page.

The content is plain JSON written once, so a later price change, rename or refund never
rewrites what the customer was given.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from equipment.printing import ReceiptData, ReceiptItem, queue_receipt
from payments.models import PaymentSession, Receipt
from tenants.money import brl


def receipt_content(session: PaymentSession) -> dict:
    """Everything a receipt shows: studio, ticket, items, totals, method, local date."""
    ticket, tenant = session.ticket, session.tenant
    paid_at = timezone.localtime(session.paid_at or timezone.now(), tenant.tzinfo)
    items = [
        {
            "name": line.service.name,
            "quantity": 1,
            "unit": str(line.price),
            "total": str(line.price),
        }
        for line in ticket.lines.select_related("service").order_by("position")
    ]
    items += [
        {
            "name": item.extra.name,
            "quantity": item.quantity,
            "unit": str(item.unit_price),
            "total": str(item.subtotal),
        }
        for item in ticket.extras.select_related("extra").order_by("extra__name")
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
        after = [f"{label}: {value}" for label, value in _payment_facts(c)]
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
        facts += [(_("Received"), brl(c["received"])), (_("Change"), brl(c["change"]))]
    if c.get("provider_id"):
        facts.append((_("Transaction"), c["provider_id"]))
    return facts


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
    lines.append(rule)
    if c["tenant"].get("email"):
        lines.append(c["tenant"]["email"][:width].center(width))
    lines.append(_("Not a tax document.").center(width))
    return "\n".join(lines) + "\n"
