"""NFS-e for paid sales: enqueue, send, learn the result, cancel on refund.

Never on the sale's path. A sale marked paid is already the outbox: `PaymentSession` moves
to paid in the sale's own transaction (payments/sessions.py), so a paid session with no
`InvoiceItem` is a request not yet queued, and `enqueue_paid` (the worker, every minute)
turns each into invoices. Nothing is written beside the sale, so no sale can be paid without
its request surviving, payments never imports this app, and a crash between the two costs
only a minute. The unique (session, invoice) item and the session's row lock keep two
workers from queueing one sale twice.

Sending and asking the provider happen outside any transaction: an invoice is claimed by a
conditional UPDATE of its `next_attempt_at` (row count checked), the provider is called,
then the invoice is locked, re-read and moved through `change_invoice_status`. A provider
that does not answer is asked again with back-off (BACKOFF); after the last try, or at once
when it refuses, the invoice is an error with the provider's words, flagged for a person
(admin, and an alert by ops/notifications.py). Webhooks are triggers: the invoice is then
looked up at the provider (`refresh`).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from fiscal.models import (
    FiscalProvider,
    FiscalSettings,
    Invoice,
    InvoiceItem,
    InvoiceStatus,
    IssueMode,
    SimplesNacional,
    change_invoice_status,
)
from fiscal.providers import (
    FiscalProviderError,
    FiscalProviderUnavailable,
    RemoteInvoice,
    get_provider,
)
from payments.models import PaymentSession, Receipt, SessionStatus
from tenants.compiled import CompiledRead
from tenants.errors import DomainError
from tenants.models import Tenant

log = logging.getLogger(__name__)
St = InvoiceStatus

# Waits after each failed send (timeouts, 5xx, 429); after the last, a person is told.
BACKOFF = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=6),
)
# How long a claimed invoice is ours while its provider call runs.
LEASE = timedelta(minutes=2)
# The first look at a request the provider is processing, then every POLL_EVERY: the
# webhook usually comes first.
POLL_EVERY = timedelta(minutes=2)
# A daily NFS-e is sent this long after the local midnight that closes its day: workers'
# clocks may differ by a little, and none may add a sale to it after its midnight.
DAILY_MARGIN = timedelta(minutes=5)
# Failed queries (or cancels) in a row after which a person is told: an answer Focus keeps
# refusing (a token changed, a reference it lost) is not going to fix itself.
POLL_ALERT_AFTER = 3
# A request still processing after this is shown to a person.
PROCESSING_TOO_LONG = timedelta(hours=24)


class FiscalError(DomainError):
    """An NFS-e operation refused, with a sentence for the screen."""


def settings_for(tenant: Tenant) -> FiscalSettings:
    config, _created = FiscalSettings.objects.get_or_create(tenant=tenant)
    return config


def provider_for(invoice: Invoice):
    return get_provider(invoice.provider, settings_for(invoice.tenant))


def issues_nfse(tenant: Tenant) -> bool:
    """Whether the tenant issues NFS-e now (the kiosk then asks "CPF na nota?")."""
    return bool(_enabled_settings(tenant.pk))


@CompiledRead
def _enabled_settings(tenant_id: int) -> QuerySet[FiscalSettings]:
    # Asked by the kiosk's identification screen: built once (one row at most).
    return FiscalSettings.objects.filter(tenant_id=tenant_id, enabled=True).only("pk")


# --- enqueue ---------------------------------------------------------------------------------


def uninvoiced_sales(config: FiscalSettings):
    """The tenant's sales paid since issuing was switched on that have no invoice yet."""
    invoiced = InvoiceItem.objects.filter(session=OuterRef("pk"))
    return (
        PaymentSession.objects.filter(
            tenant_id=config.tenant_id,
            status=SessionStatus.PAID,
            paid_at__gte=config.enabled_since,
        )
        .exclude(Exists(invoiced))
        .order_by("paid_at")
    )


def enqueue_paid(limit: int = 200) -> int:
    """Queue the NFS-e of every paid sale without one, in every tenant that issues; the
    number of sales queued."""
    queued = 0
    for config in FiscalSettings.objects.filter(enabled=True, enabled_since__isnull=False):
        for session in uninvoiced_sales(config).select_related("tenant")[:limit]:
            queued += enqueue_sale(config, session)
    return queued


def _parts(config: FiscalSettings, session: PaymentSession) -> dict[str, list[tuple[str, Decimal]]]:
    """The sale split by national taxation code: one DPS carries one service code, so a
    sale of services under two codes is two NFS-e. Extras take the tenant's default code."""
    parts: dict[str, list[tuple[str, Decimal]]] = defaultdict(list)
    ticket = session.ticket
    for line in ticket.lines.select_related("service__tax_code").order_by("position"):
        code = getattr(line.service, "tax_code", None)
        parts[code.national_code if code else config.national_code].append(
            (line.service.name, line.price)
        )
    for item in ticket.extras.select_related("extra").order_by("extra__name"):
        label = f"{item.quantity}x {item.extra.name}" if item.quantity > 1 else item.extra.name
        parts[config.national_code].append((label, item.subtotal))
    return parts


def enqueue_sale(config: FiscalSettings, session: PaymentSession) -> int:
    """Queue one paid sale: 1 if queued now, 0 if another worker did it first."""
    tenant = session.tenant
    local_day = timezone.localtime(session.paid_at, tenant.tzinfo).date()
    with transaction.atomic():
        locked = PaymentSession.objects.select_for_update().filter(pk=session.pk).first()
        if (
            locked is None
            or locked.status != SessionStatus.PAID
            or InvoiceItem.objects.filter(session=locked).exists()
        ):
            return 0
        ticket = locked.ticket
        for code, items in _parts(config, locked).items():
            amount = sum((price for _name, price in items), Decimal("0"))
            if amount <= 0:
                continue
            text = "; ".join(name for name, _price in items)
            invoice = _open_invoice(config, locked, code, local_day)
            InvoiceItem.objects.create(
                invoice=invoice,
                session=locked,
                description=_("Ticket %(number)s: %(items)s")
                % {"number": ticket.number, "items": text},
                amount=amount,
            )
            _recount(invoice)
    return 1


def _open_invoice(config: FiscalSettings, session: PaymentSession, code: str, day) -> Invoice:
    """The invoice a sale's part goes on: a new one per sale, or in daily mode the day's
    one for its code, sent DAILY_MARGIN after the local day ends.

    A daily invoice takes sales only until its local midnight, and is sent only after it:
    a sale of the day queued after midnight (a worker a minute late) gets an invoice of its
    own, so no sale is added to an NFS-e already on its way."""
    tenant = session.tenant
    ticket = session.ticket
    # The CPF only when the customer asked for it at the kiosk (Ticket.cpf_on_invoice).
    cpf = ticket.customer_cpf if ticket.cpf_on_invoice else ""
    if config.issue_mode == IssueMode.DAILY:
        # A day's sales without a CPF share one NFS-e per code; a CPF gets its own.
        key = cpf
        midnight = timezone.make_aware(
            datetime.combine(day + timedelta(days=1), datetime.min.time()), tenant.tzinfo
        )
        found = None
        if timezone.now() < midnight:
            found = (
                Invoice.objects.select_for_update()
                .filter(
                    tenant=tenant,
                    issue_mode=IssueMode.DAILY,
                    day=day,
                    national_code=code,
                    customer_key=key,
                    status=St.QUEUED,
                    attempts=0,
                )
                .first()
            )
        if found is not None:
            return found
        due = midnight + DAILY_MARGIN
    else:
        due, key = timezone.now(), f"sale-{session.pk}"
    lc116 = ""
    if code == config.national_code:
        lc116 = config.lc116_item
    invoice = Invoice.objects.create(
        tenant=tenant,
        provider=config.provider,
        issue_mode=config.issue_mode,
        day=day,
        customer_key=key,
        customer_name=ticket.customer_name if cpf or key else "",
        customer_cpf=cpf,
        national_code=code,
        lc116_item=lc116,
        iss_rate=config.iss_rate,
        amount=Decimal("0"),
        description="",
        next_attempt_at=due,
    )
    # Letters and digits only, unique per token ("Referência"): tenant and invoice ids.
    invoice.reference = f"totem{tenant.pk}n{invoice.pk}"
    invoice.save(update_fields=["reference"])
    return invoice


def _recount(invoice: Invoice) -> None:
    items = list(invoice.items.order_by("pk"))
    invoice.amount = sum((item.amount for item in items), Decimal("0"))
    invoice.description = " | ".join(item.description for item in items)[:1000]
    invoice.save(update_fields=["amount", "description"])


# --- send and learn ---------------------------------------------------------------------------


def payload(invoice: Invoice, config: FiscalSettings) -> dict[str, Any]:
    """The DPS in Focus NFe's simplified JSON (the fields of its NFSe Nacional example)."""
    issued = timezone.localtime(timezone.now(), invoice.tenant.tzinfo)
    data: dict[str, Any] = {
        "data_emissao": issued.isoformat(timespec="seconds"),
        "data_competencia": invoice.day.isoformat(),
        "codigo_municipio_emissora": int(config.municipality_code),
        "cnpj_prestador": config.cnpj,
        "inscricao_municipal_prestador": config.municipal_registration,
        "codigo_opcao_simples_nacional": config.simples_nacional,
        "regime_especial_tributacao": 0,
        "codigo_municipio_prestacao": int(config.municipality_code),
        "codigo_tributacao_nacional_iss": invoice.national_code,
        "descricao_servico": invoice.description,
        "valor_servico": float(invoice.amount),
        # 1: operação tributável; 1: ISS não retido (a consumer does not withhold).
        "tributacao_iss": 1,
        "tipo_retencao_iss": 1,
    }
    if config.simples_nacional == SimplesNacional.NOT_OPTING:
        # The ISS rate is the DPS's tribMun/pAliq, Focus's `percentual_aliquota_relativa_
        # municipio` (https://campos.focusnfe.com.br/nfse_nacional/EmissaoDPSXml.html). A
        # company outside the Simples Nacional states it; a Simples one without withholding
        # must not (SEFIN rule E0625: its ISS goes in the DAS at the Simples' own rate).
        data["percentual_aliquota_relativa_municipio"] = float(invoice.iss_rate)
    if invoice.customer_cpf:
        # Only when the customer asked for it (at the kiosk, or at the counter through
        # request_cpf): the kiosk's privacy consent covers finding the ticket, not tax
        # documents.
        data["cpf_tomador"] = invoice.customer_cpf
        data["razao_social_tomador"] = invoice.customer_name
    return data


def _claim(invoice: Invoice, now: datetime) -> bool:
    return bool(
        Invoice.objects.filter(
            pk=invoice.pk, status=invoice.status, next_attempt_at=invoice.next_attempt_at
        ).update(next_attempt_at=now + LEASE)
    )


def send_due(now: datetime | None = None, limit: int = 50) -> int:
    """Send queued invoices that are due; the number sent (whatever the answer)."""
    now = now or timezone.now()
    due = (
        Invoice.objects.filter(status=St.QUEUED, next_attempt_at__lte=now)
        .exclude(provider=FiscalProvider.MANUAL)
        .select_related("tenant")
        .order_by("next_attempt_at")[:limit]
    )
    sent = 0
    for invoice in due:
        if invoice.amount <= 0 or not _claim(invoice, now):
            continue
        config = settings_for(invoice.tenant)
        try:
            remote = get_provider(invoice.provider, config).send(invoice, payload(invoice, config))
        except FiscalProviderUnavailable as error:
            _failed_attempt(invoice.pk, str(error), now)
        except FiscalProviderError as error:
            _refused(invoice.pk, str(error))
        else:
            apply_remote(invoice.pk, remote, now=now)
        sent += 1
    return sent


def poll_processing(now: datetime | None = None, limit: int = 50) -> int:
    """Ask the provider about requests it is processing whose webhook has not come."""
    now = now or timezone.now()
    due = (
        Invoice.objects.filter(status=St.PROCESSING, next_attempt_at__lte=now)
        .select_related("tenant")
        .order_by("next_attempt_at")[:limit]
    )
    asked = 0
    for invoice in due:
        if not _claim(invoice, now):
            continue
        try:
            remote = provider_for(invoice).fetch(invoice)
        except FiscalProviderError as error:
            log.warning("invoice %s: status unavailable: %s", invoice.pk, error)
            _call_failed(invoice.pk, error, now, _("Focus could not tell how this NFS-e stands"))
            continue
        Invoice.objects.filter(pk=invoice.pk, failures__gt=0).update(failures=0)
        apply_remote(invoice.pk, remote, now=now)
        asked += 1
    return asked


def _call_failed(invoice_id: int, error: FiscalProviderError, now: datetime, what: str) -> None:
    """A query or cancel that failed: the next one waits longer (BACKOFF, then its last
    step, for good); a refusal (not a timeout) POLL_ALERT_AFTER times in a row, or any
    failure past the back-off, flags the invoice for a person (admin and alerts)."""
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice_id)
        invoice.failures += 1
        invoice.next_attempt_at = now + BACKOFF[min(invoice.failures, len(BACKOFF)) - 1]
        invoice.provider_message = str(error)
        fields = ["failures", "next_attempt_at", "provider_message"]
        permanent = not isinstance(error, FiscalProviderUnavailable)
        if invoice.failures >= (POLL_ALERT_AFTER if permanent else len(BACKOFF)):
            invoice.needs_attention = True
            invoice.provider_message = _("%(what)s after %(n)s tries: %(error)s") % {
                "what": what,
                "n": invoice.failures,
                "error": error,
            }
            fields.append("needs_attention")
        invoice.save(update_fields=fields)


def refresh(invoice: Invoice) -> Invoice:
    """Look the invoice up at its provider and apply what it says (a webhook's trigger)."""
    remote = provider_for(invoice).fetch(invoice)
    apply_remote(invoice.pk, remote)
    invoice.refresh_from_db()
    return invoice


def _failed_attempt(invoice_id: int, message: str, now: datetime) -> None:
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice_id)
        if invoice.status != St.QUEUED:
            return
        invoice.attempts += 1
        if invoice.attempts > len(BACKOFF):
            change_invoice_status(
                invoice,
                St.ERROR,
                reason=_("provider unreachable"),
                attempts=invoice.attempts,
                provider_message=message,
                needs_attention=True,
            )
            return
        invoice.next_attempt_at = now + BACKOFF[invoice.attempts - 1]
        invoice.provider_message = message
        invoice.save(update_fields=["attempts", "next_attempt_at", "provider_message"])


def _refused(invoice_id: int, message: str) -> None:
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice_id)
        if invoice.status not in (St.QUEUED, St.PROCESSING):
            return
        change_invoice_status(
            invoice,
            St.ERROR,
            reason=_("refused by the provider"),
            attempts=invoice.attempts + 1,
            provider_message=message,
            needs_attention=True,
        )


def apply_remote(invoice_id: int, remote: RemoteInvoice, *, now: datetime | None = None) -> str:
    """Apply the provider's truth about an invoice; safe to call any number of times.
    Returns what happened, for the webhook's log."""
    now = now or timezone.now()
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice_id)
        current = invoice.status
        if remote.status == "":
            if current == St.QUEUED:
                change_invoice_status(
                    invoice,
                    St.PROCESSING,
                    reason=remote.provider_status,
                    provider_status=remote.provider_status,
                    next_attempt_at=now + POLL_EVERY,
                )
                return "processing"
            if current == St.PROCESSING and now - (invoice.sent_at or now) > PROCESSING_TOO_LONG:
                invoice.needs_attention = True
                invoice.provider_message = _("Still processing at the provider after 24 hours.")
                invoice.save(update_fields=["needs_attention", "provider_message"])
            Invoice.objects.filter(pk=invoice.pk).update(next_attempt_at=now + POLL_EVERY)
            return "unchanged"
        if remote.status == St.QUEUED:
            if current == St.PROCESSING:
                change_invoice_status(
                    invoice, St.QUEUED, reason=remote.provider_status, next_attempt_at=now
                )
                return "queued again"
            return "unchanged"
        if remote.status == St.AUTHORIZED:
            if current not in (St.QUEUED, St.PROCESSING):
                return "unchanged"
            change_invoice_status(
                invoice,
                St.AUTHORIZED,
                reason=_("authorized"),
                provider_status=remote.provider_status,
                number=remote.number[:20],
                verification_code=remote.verification_code[:60],
                public_url=remote.public_url[:500],
                pdf_url=remote.pdf_url[:500],
                xml_url=remote.xml_url[:500],
                provider_message="",
                needs_attention=False,
            )
            _show_on_receipts(invoice)
            return "authorized"
        if remote.status == St.ERROR:
            if current not in (St.QUEUED, St.PROCESSING):
                return "unchanged"
            change_invoice_status(
                invoice,
                St.ERROR,
                reason=_("refused by the tax authority"),
                provider_status=remote.provider_status,
                provider_message=remote.message or remote.provider_status,
                needs_attention=True,
            )
            return "error"
        if remote.status == St.CANCELLED and current == St.AUTHORIZED:
            change_invoice_status(
                invoice, St.CANCELLED, reason=_("cancelled"), provider_status="cancelado"
            )
            _show_on_receipts(invoice)
            return "cancelled"
        return "unchanged"


def _show_on_receipts(invoice: Invoice) -> None:
    """The NFS-e's number and link on the receipts of its sales (payments renders them)."""
    sessions = invoice.items.values("session")
    Receipt.objects.filter(session__in=sessions).update(
        nfse_number=invoice.number,
        nfse_url=invoice.public_url or invoice.pdf_url,
        nfse_cancelled=invoice.status == St.CANCELLED,
    )


# --- refunds -----------------------------------------------------------------------------------


def settle_refunds(now: datetime | None = None) -> int:
    """Follow refunds (payments/sessions.py `refund`) into NFS-e: a request not yet sent is
    dropped (or loses the refunded sale), an issued one is cancelled at the provider within
    the tenant's window; anything else is flagged for a person. The number handled."""
    now = now or timezone.now()
    refunded = InvoiceItem.objects.filter(
        invoice=OuterRef("pk"), session__status=SessionStatus.REFUNDED
    )
    handled = 0
    candidates = (
        Invoice.objects.filter(Exists(refunded), needs_attention=False)
        .filter(status__in=[St.QUEUED, St.ERROR, St.AUTHORIZED])
        .select_related("tenant")
    )
    # An issued NFS-e whose cancel failed waits for its next_attempt_at (back-off).
    candidates = candidates.exclude(status=St.AUTHORIZED, failures__gt=0, next_attempt_at__gt=now)
    for invoice in candidates:
        handled += _settle_refund(invoice, now)
    return handled


def _settle_refund(invoice: Invoice, now: datetime) -> int:
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
        items = list(invoice.items.select_related("session"))
        gone = [
            item
            for item in items
            if item.session is not None and item.session.status == SessionStatus.REFUNDED
        ]
        if not gone or invoice.needs_attention:
            return 0
        if invoice.status in (St.QUEUED, St.ERROR):
            if len(gone) == len(items):
                change_invoice_status(invoice, St.DROPPED, reason=_("refunded before issue"))
            else:
                InvoiceItem.objects.filter(pk__in=[item.pk for item in gone]).delete()
                _recount(invoice)
            return 1
        if invoice.status != St.AUTHORIZED:
            return 0
        config = settings_for(invoice.tenant)
        problem = ""
        if len(gone) < len(items):
            problem = _(
                "A sale of this NFS-e was refunded, the others were not: cancel it and issue "
                "one for the rest by hand."
            )
        elif invoice.authorized_at + timedelta(days=config.cancel_window_days) < now:
            problem = _(
                "Refunded after the %(days)s-day cancellation window: ask your accountant how "
                "to handle this NFS-e."
            ) % {"days": config.cancel_window_days}
        elif get_provider(invoice.provider, config).issues_by_hand:
            problem = _(
                "Refunded: cancel this NFS-e where it was issued, then mark it cancelled here."
            )
        if problem:
            invoice.needs_attention = True
            invoice.provider_message = problem
            invoice.save(update_fields=["needs_attention", "provider_message"])
            return 1
    # The provider's cancel is a network call: outside the lock, then re-applied.
    reason = _("Service refunded to the customer")
    try:
        remote = provider_for(invoice).cancel(invoice, reason)
    except FiscalProviderUnavailable as error:
        log.warning("invoice %s: cancel postponed: %s", invoice.pk, error)
        _call_failed(invoice.pk, error, now, _("Focus could not be reached to cancel this NFS-e"))
        return 0
    except FiscalProviderError as error:
        Invoice.objects.filter(pk=invoice.pk).update(
            needs_attention=True, provider_message=str(error)
        )
        return 1
    apply_remote(invoice.pk, remote, now=now)
    return 1


# --- people ------------------------------------------------------------------------------------


def request_cpf(invoice: Invoice) -> Invoice:
    """The customer asked for their CPF on the NFS-e: put the ticket's CPF on it, before it
    is sent. Refused once sent, or for an NFS-e of several customers or without a CPF."""
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
        if invoice.status not in (St.QUEUED, St.ERROR):
            raise FiscalError(_("This NFS-e was already sent; its customer cannot change."))
        tickets = {
            item.session.ticket if item.session else None
            for item in invoice.items.select_related("session__ticket")
        }
        if len(tickets) != 1:
            raise FiscalError(_("This NFS-e covers sales of several customers."))
        ticket = tickets.pop()
        if ticket is None or not ticket.customer_cpf:
            raise FiscalError(_("The customer gave no CPF at the kiosk."))
        invoice.customer_cpf = ticket.customer_cpf
        invoice.customer_name = ticket.customer_name
        invoice.save(update_fields=["customer_cpf", "customer_name"])
    return invoice


def retry(invoice: Invoice) -> Invoice:
    """A person fixed what the provider refused: send again (same reference)."""
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
        if invoice.status != St.ERROR:
            raise FiscalError(_("Only an NFS-e in error can be sent again."))
        change_invoice_status(
            invoice,
            St.QUEUED,
            reason=_("sent again by a person"),
            attempts=0,
            failures=0,
            next_attempt_at=timezone.now(),
            needs_attention=False,
        )
    return invoice


def record_manual(invoice: Invoice, number: str, url: str = "") -> Invoice:
    """The number of an NFS-e a person issued outside Totem (manual provider)."""
    number = number.strip()
    if not number:
        raise FiscalError(_("Type the NFS-e number."))
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
        if invoice.provider != FiscalProvider.MANUAL or invoice.status != St.QUEUED:
            raise FiscalError(_("Only a queued NFS-e of the manual provider takes a number."))
        change_invoice_status(
            invoice,
            St.AUTHORIZED,
            reason=_("issued by hand"),
            number=number[:20],
            public_url=url[:500],
        )
        _show_on_receipts(invoice)
    return invoice


def mark_cancelled_by_hand(invoice: Invoice) -> Invoice:
    """A person cancelled the NFS-e where it was issued (manual provider, or outside the
    window with the municipality's leave)."""
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
        if invoice.status != St.AUTHORIZED:
            raise FiscalError(_("Only an authorized NFS-e can be marked cancelled."))
        change_invoice_status(
            invoice, St.CANCELLED, reason=_("cancelled by hand"), needs_attention=False
        )
        _show_on_receipts(invoice)
    return invoice
