"""A customer's yes or no to WhatsApp messages about their ticket.

Yes only at the kiosk, with a phone and the words of `CONSENT_TEXT` (whose version is
recorded); no from the ticket's page or by replying PARAR / SAIR / STOP on WhatsApp.
"""

from __future__ import annotations

import unicodedata

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from messaging.models import Feedback, OptOutVia, Subscription, sends_whatsapp
from tenants.models import Tenant
from tickets.models import Ticket

# Change the words → change the version: each opt-in points at what its customer read.
CONSENT_VERSION = "2026-12-whatsapp-v1"
CONSENT_LABEL = _("Send me notices about this ticket on WhatsApp")
CONSENT_TEXT = _(
    "Only about this ticket, to the phone above: when your turn is near, when you are called, "
    "and a link to rate the service. Reply PARAR to stop."
)
# What a customer replies to stop (accents and case ignored). STOP is what Meta's own docs and
# most senders teach; the rest are how it is said in Portuguese.
STOP_WORDS = frozenset({"STOP", "PARAR", "PARE", "SAIR", "CANCELAR", "DESCADASTRAR"})


def opt_in(ticket: Ticket, *, consent_version: str = CONSENT_VERSION) -> Subscription | None:
    """Record the customer's yes for this ticket (repeat-safe). None when nothing can be sent:
    no phone, or the tenant sends no WhatsApp."""
    if not ticket.customer_phone or not sends_whatsapp(ticket.tenant):
        return None
    subscription, _created = Subscription.objects.get_or_create(
        ticket=ticket,
        defaults={
            "tenant_id": ticket.tenant_id,
            "phone": ticket.customer_phone,
            "consent_version": consent_version,
        },
    )
    return subscription


def live_subscription(ticket: Ticket) -> Subscription | None:
    """The ticket's opt-in while messages may still come (the phone page offers to stop)."""
    return Subscription.objects.filter(ticket=ticket, opted_out_at__isnull=True).first()


def opt_out(ticket: Ticket, *, via: str = OptOutVia.PAGE) -> bool:
    """Stop this ticket's messages; False when there were none to stop."""
    return bool(
        Subscription.objects.filter(ticket=ticket, opted_out_at__isnull=True).update(
            opted_out_at=timezone.now(), opted_out_via=via
        )
    )


def is_stop(text: str) -> bool:
    folded = unicodedata.normalize("NFKD", text or "").encode("ascii", "ignore").decode()
    return folded.strip().strip(".!").upper() in STOP_WORDS


def local_number(wa_id: str) -> tuple[str, str] | None:
    """(area code, last 8 digits) of a Brazilian WhatsApp id, else None.

    Matching on these two rather than the whole number is deliberate: WhatsApp ids of
    Brazilian mobiles registered before the ninth digit came in often lack it
    (55 11 8765-4321 for 11 98765-4321), while the kiosk stores the number as typed.
    """
    if not wa_id.isdigit() or not wa_id.startswith("55") or len(wa_id) not in (12, 13):
        return None
    national = wa_id[2:]
    return national[:2], national[-8:]


def opt_out_by_reply(tenant: Tenant, wa_id: str, text: str) -> int:
    """A customer's reply: a stop word ends every live opt-in of that number at the tenant."""
    if not is_stop(text):
        return 0
    number = local_number(wa_id)
    if number is None:
        return 0
    area, last = number
    return Subscription.objects.filter(
        tenant=tenant, phone__startswith=area, phone__endswith=last, opted_out_at__isnull=True
    ).update(opted_out_at=timezone.now(), opted_out_via=OptOutVia.REPLY)


def forget(ticket_ids: list[int]) -> int:
    """LGPD erasure or anonymisation: the number goes, and with it any further message; a
    feedback comment (free text: it may name the customer) goes too, its scores stay."""
    with transaction.atomic():
        Feedback.objects.filter(ticket_id__in=ticket_ids).exclude(comment="").update(comment="")
        Subscription.objects.filter(ticket_id__in=ticket_ids, opted_out_at__isnull=True).update(
            opted_out_at=timezone.now(), opted_out_via=OptOutVia.ERASED
        )
        return (
            Subscription.objects.filter(ticket_id__in=ticket_ids).exclude(phone="").update(phone="")
        )
