"""Paying a ticket: start, learn the truth, confirm, cancel, refund, expire.

The kiosk, the operator panel, the admin, the webhook and the expiry command all call these
functions. Each one that changes state locks the ticket, then the session (the project's lock
order: ticket first), re-reads both and acts, returns (already done) or raises PaymentError.
Calls to a provider's API are made outside those locks, except a refund (a rare manager
action that must not record a refund the provider refused).

A payment that reaches the provider after its session or ticket was closed is never used to
revive the ticket: the session is flagged for a manager and the money is refunded where the
provider can.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet, Subquery
from django.utils import timezone
from django.utils.translation import gettext as _

from payments.models import (
    Method,
    Notification,
    PaymentSession,
    PaymentSettings,
    Provider,
    SessionStatus,
    change_session_status,
)
from payments.providers import (
    ProviderError,
    ProviderUnavailable,
    RemotePayment,
    get_provider,
    provider_for_method,
)
from payments.receipts import create_receipt
from tenants import audit, webhooks
from tenants.access import has_role
from tenants.compiled import CompiledRead
from tenants.errors import DomainError
from tenants.models import AuditAction, Role, Tenant, WebhookEvent
from tickets import credits, events, queue
from tickets import printing as ticket_printing
from tickets.models import LineStatus, Ticket, TicketStatus

log = logging.getLogger(__name__)
S, T, Out = SessionStatus, TicketStatus, Notification.Outcome


class PaymentError(DomainError):
    """A payment operation refused, with a message for the screen."""


class PaymentRetry(PaymentError):
    """The provider did not answer; nothing was lost and trying again is safe."""


def settings_for(tenant: Tenant) -> PaymentSettings:
    """The tenant's payment settings (created with the defaults: static PIX and cash); once
    per request on a kiosk's (a purchase asked four times: the methods offered, the summary's,
    the payment started, the payment screen's)."""
    return tenant.once("payment_settings", lambda: _settings_of(tenant))


@CompiledRead
def _read_settings(tenant_id: int) -> QuerySet[PaymentSettings]:
    # Asked by every kiosk screen that offers or takes a payment: built once.
    return PaymentSettings.objects.filter(tenant_id=tenant_id)


def _settings_of(tenant: Tenant) -> PaymentSettings:
    found = _read_settings(tenant.pk)
    return found[0] if found else PaymentSettings.objects.get_or_create(tenant=tenant)[0]


def provider_of(session: PaymentSession):
    return get_provider(session.provider, settings_for(session.tenant))


def _publish(session: PaymentSession, ticket: Ticket) -> None:
    events.publish(
        "payment_update",
        tenant_id=session.tenant_id,
        ticket=ticket,
        session_id=session.pk,
        payment_status=session.status,
        method=session.method,
    )


# Every confirmation, expiry and provider notification locks these: statements built once.
@CompiledRead
def _session_ticket(tenant_id: int, session_id: int) -> QuerySet[Ticket]:
    owner = PaymentSession.objects.filter(tenant_id=tenant_id, pk=session_id).values("ticket_id")
    return Ticket.objects.select_for_update().filter(pk=Subquery(owner[:1]))


@CompiledRead
def _session(tenant_id: int, session_id: int) -> QuerySet[PaymentSession]:
    return PaymentSession.objects.select_for_update().filter(tenant_id=tenant_id, pk=session_id)


@CompiledRead
def _pending_sessions(tenant_id: int, ticket_id: int) -> QuerySet[PaymentSession]:
    return PaymentSession.objects.select_for_update().filter(
        tenant_id=tenant_id, ticket_id=ticket_id, status=S.PENDING
    )


def _lock(tenant: Tenant, session_id: int) -> tuple[Ticket, PaymentSession]:
    """Lock the session's ticket, then the session. Call inside a transaction."""
    found = _session_ticket(tenant.pk, session_id)
    if not found:
        raise PaymentError(_("Payment not found."))
    ticket, (session,) = found[0], _session(tenant.pk, session_id)
    # Both were found in `tenant`: spares the printing, the receipt and the webhook a read.
    ticket.tenant = session.tenant = tenant
    session.ticket = ticket
    return ticket, session


# --- starting -------------------------------------------------------------------------------


def start_payment(ticket: Ticket, method: str) -> PaymentSession:
    """Open (or resume) a payment session of `method` for a ticket awaiting payment.

    The provider follows the tenant's settings: PIX through MercadoPago (QR and copia e cola
    from the API) or static PIX (BR Code built here), card on the MercadoPago Point terminal,
    cash at the counter. Safe to call again: a pending session of the same method is
    returned, and one whose creation at the provider failed is retried with the same
    idempotency key, so the customer is never charged twice. Pending sessions of another
    method are cancelled (the customer changed their mind).

    Raises PaymentError when the method is not accepted, the ticket no longer awaits payment
    or has nothing to pay (see issue_free_ticket), PaymentRetry when the provider did not
    answer (the session stays pending).
    """
    tenant = ticket.tenant
    if ticket.total == 0:
        # Nothing to collect: a provider would refuse R$ 0,00 (or show an open-amount QR).
        raise PaymentError(_("This ticket has nothing to pay."))
    config = settings_for(tenant)
    if method not in config.enabled_methods():
        raise PaymentError(_("This payment method is not accepted here."))
    provider_name = provider_for_method(method, config)
    abandoned: list[PaymentSession] = []
    with transaction.atomic():
        ticket = queue.lock_ticket(tenant, ticket.pk)
        if ticket.status != T.PENDING_PAYMENT:
            raise PaymentError(
                _("Ticket %(number)s is not awaiting payment (%(status)s).")
                % {"number": ticket.number, "status": ticket.get_status_display()}
            )
        now = timezone.now()
        session = None
        for pending in _pending_sessions(tenant.pk, ticket.pk):
            if (
                pending.method == method
                and pending.provider == provider_name
                and pending.expires_at > now
            ):
                session = pending
            else:
                pending.ticket = ticket
                change_session_status(pending, S.CANCELED, reason=_("another method was chosen"))
                _publish(pending, ticket)
                abandoned.append(pending)
        if session is None:
            session = PaymentSession.objects.create(
                tenant=tenant,
                ticket=ticket,
                method=method,
                provider=provider_name,
                amount=ticket.total,
                expires_at=now + timedelta(minutes=tenant.payment_timeout_minutes),
            )
            _publish(session, ticket)
        session.ticket = ticket
    for old in abandoned:
        _cancel_at_provider(old)
    if session.external_id or session.qr_code or session.provider == Provider.MANUAL:
        return session
    return _create_at_provider(session)


def issue_free_ticket(ticket: Ticket) -> Ticket:
    """A ticket whose total is R$ 0,00 skips payment: paid and on to the printer or the queue
    at once, with no payment session and no provider called. Audited, since no money vouches
    for it. Safe to call twice; refused for a ticket that has something to pay."""
    with transaction.atomic(), events.batch():
        ticket = queue.lock_ticket(ticket.tenant, ticket.pk)
        if ticket.status != T.PENDING_PAYMENT:
            return ticket  # already on its way (a double tap)
        if ticket.total != 0:
            raise PaymentError(_("This ticket has something to pay."))
        ticket_printing.mark_paid(ticket, reason=_("nothing to pay"))
        audit.record(
            AuditAction.FREE_TICKET,
            tenant=ticket.tenant,
            entity=ticket,
            data={"ticket": ticket.number, "total": ticket.total},
        )
    return ticket


def _create_at_provider(session: PaymentSession) -> PaymentSession:
    provider = provider_of(session)
    try:
        created = provider.create(session)
    except ProviderUnavailable as error:
        log.warning("payment %s: provider unreachable on create: %s", session.pk, error)
        raise PaymentRetry(_("The payment provider did not answer. Please try again.")) from error
    except ProviderError as error:
        log.error("payment %s: provider refused the create: %s", session.pk, error)
        with transaction.atomic():
            ticket, locked = _lock(session.tenant, session.pk)
            if locked.status == S.PENDING:
                change_session_status(
                    locked, S.FAILED, reason=str(error)[:100], provider_status="error"
                )
                _publish(locked, ticket)
        raise PaymentError(_("The payment could not be started. Choose another method.")) from error
    PaymentSession.objects.filter(pk=session.pk).update(
        external_id=created.external_id,
        qr_code=created.qr_code,
        ticket_url=created.ticket_url,
        provider_status=created.provider_status,
    )
    session.refresh_from_db()
    return session


def _cancel_at_provider(session: PaymentSession) -> None:
    """End the payment at the provider: for a MercadoPago PIX, `PUT status=cancelled`, which
    voids its QR before MercadoPago's own expiry (at least 30 minutes, longer than the kiosk
    waits). Best effort: a payment made anyway arrives later as a late payment and is
    refunded."""
    try:
        provider_of(session).cancel(session)
    except ProviderError as error:
        log.warning("payment %s: could not cancel at the provider: %s", session.pk, error)


# --- learning the truth ---------------------------------------------------------------------


def refresh_status(session: PaymentSession) -> PaymentSession:
    """Ask the provider how the session stands and apply it (confirms when it is paid).

    For providers without an API (static PIX, cash) this only re-reads the database. A
    provider that does not answer changes nothing; the kiosk simply asks again.
    """
    try:
        remote = provider_of(session).fetch(session)
    except ProviderError as error:
        log.warning("payment %s: status unavailable: %s", session.pk, error)
        remote = None
    if remote is not None:
        apply_remote(session.tenant, remote, session_id=session.pk)
    session.refresh_from_db()
    return session


def find_session(tenant: Tenant, remote: RemotePayment) -> PaymentSession | None:
    """The tenant's MercadoPago session a provider payment belongs to (external_reference)."""
    try:
        session_id = int(remote.external_reference)
    except ValueError:
        session_id = None
    found = PaymentSession.objects.filter(tenant=tenant, provider=Provider.MERCADOPAGO)
    if session_id is not None:
        return found.filter(pk=session_id).first()
    return found.filter(
        Q(external_id=remote.external_id) | Q(provider_payment_id=remote.payment_id)
    ).first()


def apply_remote(
    tenant: Tenant, remote: RemotePayment, *, session_id: int | None = None
) -> tuple[str, PaymentSession | None, str]:
    """Apply what the provider's API says about a payment; safe to call any number of times.

    Returns (outcome, session, detail). Paid moves the session and the ticket on together
    in this transaction; a late "pending" or "failed" never undoes "paid"; an amount or
    currency that differs from the session is flagged, never confirmed; money for a closed
    session or ticket is flagged and refunded after commit.
    """
    if session_id is None:
        found = find_session(tenant, remote)
        if found is None:
            return Out.IGNORED, None, "no session of this tenant for this payment"
        session_id = found.pk
    late = False
    with transaction.atomic():
        try:
            ticket, session = _lock(tenant, session_id)
        except PaymentError:
            return Out.IGNORED, None, "session not found"
        outcome, detail = _apply_locked(ticket, session, remote)
        late = outcome == Out.LATE and session.status in (S.CANCELED, S.FAILED)
    if late:
        refund_late_payment(tenant, session.pk)
        session.refresh_from_db()
    return outcome, session, detail


def _apply_locked(
    ticket: Ticket, session: PaymentSession, remote: RemotePayment
) -> tuple[str, str]:
    known_ids = {session.external_id, session.provider_payment_id} - {""}
    if remote.external_reference and remote.external_reference != str(session.pk):
        return Out.IGNORED, "external_reference names another session"
    if session.method != Method.CARD and known_ids and remote.external_id not in known_ids:
        session.flag(
            f"MercadoPago payment {remote.external_id} names this session but is not its payment"
        )
        session.save(update_fields=["needs_attention", "attention_note"])
        return Out.MISMATCH, "another payment for this session"
    if remote.status == "":
        if session.status == S.PENDING and remote.provider_status != session.provider_status:
            session.provider_status = remote.provider_status
            session.save(update_fields=["provider_status"])
        if remote.attention and remote.attention not in session.attention_note:
            session.flag(remote.attention)
            session.save(update_fields=["needs_attention", "attention_note"])
        return Out.DUPLICATE, f"provider says {remote.provider_status}"
    if remote.status == S.PAID:
        return _apply_paid(ticket, session, remote)
    if remote.status in (S.FAILED, S.CANCELED):
        if session.status != S.PENDING:
            return Out.DUPLICATE, f"late {remote.provider_status} ignored"
        change_session_status(
            session,
            remote.status,
            reason=f"MercadoPago: {remote.provider_status}",
            provider_status=remote.provider_status,
        )
        _publish(session, ticket)
        return Out.UPDATED, remote.provider_status
    # Refunded or charged back at the provider, outside Totem.
    if session.status == S.PAID:
        session.flag(f"MercadoPago reports the payment {remote.provider_status} outside Totem")
        _refunded(
            session,
            reason=f"MercadoPago: {remote.provider_status}",
            provider_status=remote.provider_status,
            needs_attention=True,
            attention_note=session.attention_note,
        )
        _publish(session, ticket)
        return Out.UPDATED, remote.provider_status
    return Out.DUPLICATE, f"{remote.provider_status} changes nothing"


def _apply_paid(ticket: Ticket, session: PaymentSession, remote: RemotePayment) -> tuple[str, str]:
    if remote.amount != session.amount or remote.currency != session.currency:
        note = (
            f"MercadoPago reports {remote.currency} {remote.amount} paid; "
            f"the session expects {session.currency} {session.amount}. Not confirmed."
        )
        if note not in session.attention_note:
            session.flag(note)
            session.save(update_fields=["needs_attention", "attention_note"])
        return Out.MISMATCH, note[:300]
    if session.status in (S.PAID, S.REFUNDED):
        return Out.DUPLICATE, "already " + session.status
    if session.status == S.PENDING and ticket.status == T.PENDING_PAYMENT:
        _confirm(
            ticket,
            session,
            user=None,
            reason=_("paid through MercadoPago"),
            provider_status=remote.provider_status,
            provider_payment_id=remote.payment_id,
        )
        return Out.CONFIRMED, ""
    # Money for a session or ticket we had already given up on.
    if session.status == S.PENDING:
        change_session_status(
            session,
            S.CANCELED,
            reason=_("the ticket no longer awaits payment"),
        )
    session.flag(
        f"Money arrived ({remote.provider_status}, payment {remote.payment_id}) for a closed "
        f"session; ticket {ticket.number} is {ticket.status}. Refunding."
    )
    session.provider_payment_id = remote.payment_id
    session.provider_status = remote.provider_status
    session.save(
        update_fields=[
            "needs_attention",
            "attention_note",
            "provider_payment_id",
            "provider_status",
        ]
    )
    _publish(session, ticket)
    return Out.LATE, f"ticket {ticket.status}, session {session.status}"


def _confirm(ticket: Ticket, session: PaymentSession, *, user, reason: str, **changes) -> None:
    """Session paid, ticket paid and on to the queue, receipt: one transaction, locks held.

    Confirmed by an operator's hand (`user`), it is audited; by the provider, its webhook
    and the session's history say it.
    """
    with events.batch():
        change_session_status(session, S.PAID, user=user, reason=reason, **changes)
        ticket_printing.mark_paid(ticket, user=user, reason=reason)
        create_receipt(session)
        webhooks.enqueue(session.tenant_id, WebhookEvent.PAYMENT_PAID, _webhook_payload(session))
        if user is not None:
            audit.record(
                AuditAction.PAYMENT_CONFIRMED,
                tenant=session.tenant,
                user=user,
                entity=session,
                data={"ticket": ticket.number, "method": session.method, "amount": session.amount},
            )
        _publish(session, ticket)


def _refunded(session: PaymentSession, *, user=None, reason: str, **changes) -> None:
    """Session refunded and the tenant's integrations told: every way a refund happens."""
    change_session_status(session, S.REFUNDED, user=user, reason=reason, **changes)
    webhooks.enqueue(session.tenant_id, WebhookEvent.PAYMENT_REFUNDED, _webhook_payload(session))


def refund_late_payment(tenant: Tenant, session_id: int) -> PaymentSession:
    """Return money that reached a closed session, where the provider can; else leave the flag."""
    with transaction.atomic():
        ticket, session = _lock(tenant, session_id)
        if session.status not in (S.CANCELED, S.FAILED) or not session.provider_payment_id:
            return session
        try:
            refund_id = provider_of(session).refund(session)
        except ProviderError as error:
            session.flag(f"Automatic refund failed ({error}); refund it by hand.")
            session.save(update_fields=["needs_attention", "attention_note"])
            return session
        session.flag("Refunded automatically at MercadoPago.")
        _refunded(
            session,
            reason=_("money arrived after cancellation"),
            refund_external_id=refund_id,
            refund_reason=_("money arrived after cancellation"),
            needs_attention=True,
            attention_note=session.attention_note,
        )
        _publish(session, ticket)
    return session


# --- operators --------------------------------------------------------------------------------


def _require(user, tenant: Tenant, role: str) -> None:
    if user is None or not has_role(user, tenant, role):
        raise PaymentError(_("You are not allowed to do this."))


def _operator_confirmable(ticket: Ticket, session: PaymentSession, provider: str) -> None:
    if session.provider != provider:
        raise PaymentError(_("This payment is not confirmed by an operator."))
    if session.status != S.PENDING:
        raise PaymentError(
            _("Payment #%(id)s is already %(status)s.")
            % {"id": session.pk, "status": session.get_status_display().lower()}
        )
    if ticket.status != T.PENDING_PAYMENT:
        raise PaymentError(
            _("Ticket %(number)s is %(status)s; it no longer awaits payment.")
            % {"number": ticket.number, "status": ticket.get_status_display().lower()}
        )


def confirm_cash(tenant: Tenant, session_id: int, user, amount_received) -> PaymentSession:
    """An operator received the cash: session paid, ticket on to the queue, receipt, audited.

    `amount_received` must cover the amount (the change is on the receipt). Refused clearly
    when the session or its ticket was closed meanwhile (e.g. by expiry): of a confirmation
    and an expiry racing, exactly one wins.
    """
    _require(user, tenant, Role.OPERATOR)
    try:
        received = Decimal(str(amount_received)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        raise PaymentError(_("Type the amount received, e.g. 50,00.")) from None
    with transaction.atomic():
        ticket, session = _lock(tenant, session_id)
        _operator_confirmable(ticket, session, Provider.MANUAL)
        if received < session.amount:
            raise PaymentError(_("The amount received is less than the amount due."))
        _confirm(
            ticket,
            session,
            user=user,
            reason=_("cash received"),
            confirmed_by=user,
            amount_received=received,
        )
    return session


def record_paid_elsewhere(ticket: Ticket, *, method: str, reference: str, user) -> PaymentSession:
    """An integration took the money in its own checkout (a booking paid online): a session
    born paid with the integration's `reference`, the ticket on to the queue, a receipt,
    audited under `user` (who answers for the integration). A reference pays one ticket
    only (the index on provider and external id), so a replayed booking cannot pay twice.
    """
    if method not in Method.values:
        raise PaymentError(_("Unknown payment method."))
    reference = (reference or "").strip()
    if not reference or len(reference) > 64:
        raise PaymentError(_("Give the payment's reference (up to 64 characters)."))
    with transaction.atomic():
        ticket = queue.lock_ticket(ticket.tenant, ticket.pk)
        if ticket.status != T.PENDING_PAYMENT:
            raise PaymentError(
                _("Ticket %(number)s is %(status)s; it no longer awaits payment.")
                % {"number": ticket.number, "status": ticket.get_status_display().lower()}
            )
        try:
            with transaction.atomic():
                session = PaymentSession.objects.create(
                    tenant=ticket.tenant,
                    ticket=ticket,
                    method=method,
                    provider=Provider.EXTERNAL,
                    amount=ticket.total,
                    external_id=reference,
                    expires_at=timezone.now(),
                )
        except IntegrityError:
            raise PaymentError(
                _("The payment %(reference)s already paid another ticket.")
                % {"reference": reference}
            ) from None
        session.ticket = ticket
        _confirm(ticket, session, user=user, reason=_("paid elsewhere"))
    return session


def confirm_static_pix(tenant: Tenant, session_id: int, user) -> PaymentSession:
    """An operator saw the static PIX in the bank app: session paid, ticket on, receipt."""
    _require(user, tenant, Role.OPERATOR)
    with transaction.atomic():
        ticket, session = _lock(tenant, session_id)
        _operator_confirmable(ticket, session, Provider.PIX_STATIC)
        _confirm(
            ticket, session, user=user, reason=_("PIX seen in the bank app"), confirmed_by=user
        )
    return session


def cancel_session(
    tenant: Tenant, session_id: int, *, user=None, reason: str = ""
) -> PaymentSession:
    """Cancel a pending session (the customer gave up on it), at the provider too.

    The ticket is left as it is: the kiosk may start another method, or cancel the ticket.
    """
    session = PaymentSession.objects.filter(tenant=tenant, pk=session_id).first()
    if session is None:
        raise PaymentError(_("Payment not found."))
    if session.status == S.PENDING:
        _cancel_at_provider(session)
    with transaction.atomic():
        ticket, session = _lock(tenant, session_id)
        if session.status == S.CANCELED:
            return session
        if session.status != S.PENDING:
            raise PaymentError(
                _("Payment #%(id)s is already %(status)s.")
                % {"id": session.pk, "status": session.get_status_display().lower()}
            )
        change_session_status(session, S.CANCELED, user=user, reason=reason or _("cancelled"))
        _publish(session, ticket)
    return session


def abandon(tenant: Tenant, ticket_id: int, *, reason: str) -> Ticket:
    """The customer left a purchase: its pending payments are cancelled (at the provider
    too), then the ticket, whose extras go back to stock. Returns the ticket as it ends.

    A ticket sent to the cashier (its latest session is cash, pending) is kept: the customer
    may be on the way to the counter, and the expiry command cancels it after the payment
    timeout. A payment confirmed meanwhile wins: the ticket is returned paid, untouched.
    Safe to call twice.
    """
    ticket = Ticket.objects.filter(tenant=tenant, pk=ticket_id).first()
    if ticket is None:
        raise PaymentError(_("Ticket not found."))
    latest = ticket.payment_sessions.order_by("-created_at").first()
    if ticket.status != T.PENDING_PAYMENT or (
        latest and latest.method == Method.CASH and latest.status == S.PENDING
    ):
        return ticket
    pending = list(ticket.payment_sessions.filter(status=S.PENDING))
    for session in pending:
        _cancel_at_provider(session)  # network: before any lock is taken
    with transaction.atomic():
        ticket = queue.lock_ticket(tenant, ticket_id)
        if ticket.status != T.PENDING_PAYMENT:
            return ticket  # paid (or cancelled) while the provider was asked
        for session in ticket.payment_sessions.select_for_update().filter(status=S.PENDING):
            change_session_status(session, S.CANCELED, reason=reason)
            _publish(session, ticket)
        return queue.cancel_ticket(tenant, ticket.pk, reason=reason)


SERVED = (LineStatus.IN_PROGRESS, LineStatus.COMPLETED)


def refund(tenant: Tenant, session_id: int, user, reason: str) -> PaymentSession:
    """Give a paid session's money back (managers only; the reason is required).

    Through the provider where it refunds (MercadoPago); cash and static PIX are returned by
    hand and the refund records who and why. A ticket not yet served is cancelled and its
    extras go back to stock; a served one stays as it is.
    """
    _require(user, tenant, Role.MANAGER)
    reason = (reason or "").strip()
    if not reason:
        raise PaymentError(_("Say why (the reason is required)."))
    with transaction.atomic():
        ticket, session = _lock(tenant, session_id)
        if session.status != S.PAID:
            raise PaymentError(
                _("Only a paid payment can be refunded; #%(id)s is %(status)s.")
                % {"id": session.pk, "status": session.get_status_display().lower()}
            )
        try:
            refund_id = provider_of(session).refund(session)
        except ProviderUnavailable as error:
            raise PaymentRetry(
                _("The payment provider did not answer. Nothing was refunded; try again.")
            ) from error
        except ProviderError as error:
            raise PaymentError(
                _("The provider refused the refund: %(error)s") % {"error": error}
            ) from error
        _refunded(
            session,
            user=user,
            reason=reason,
            refunded_by=user,
            refund_reason=reason[:200],
            refund_external_id=refund_id,
        )
        audit.record(
            AuditAction.PAYMENT_REFUNDED,
            tenant=tenant,
            user=user,
            entity=session,
            data={"ticket": ticket.number, "amount": session.amount, "reason": reason},
        )
        served = ticket.lines.filter(status__in=SERVED).exists()
        if not served and ticket.status not in (T.COMPLETED, T.CANCELLED):
            queue.cancel_ticket(tenant, ticket.pk, user=user, reason=reason)
            queue.restore_stock(ticket)  # paid, so cancel_ticket kept the extras sold
        # A package bought with this money is not the customer's any more.
        credits.revoke_sold_on(ticket, user=user, reason=reason)
        _publish(session, ticket)
    return session


# --- expiry -------------------------------------------------------------------------------------


def expire_pending_sessions(now: datetime | None = None) -> int:
    """Cancel pending sessions past their time (the tenant's payment timeout), and their tickets.

    Each session is first looked up at the provider (a payment made at the last second is
    confirmed, not lost), then cancelled there where it can be, then here; its ticket, if
    still awaiting payment, is cancelled with `tickets.queue.cancel_ticket`, which gives the
    extras back. Pending sessions of tickets closed meanwhile are cancelled whatever their
    time. Tickets left awaiting payment past the timeout with no session are cancelled too.
    Returns how many sessions and tickets were closed. Safe to run in parallel.
    """
    now = now or timezone.now()
    closed = 0
    due = (
        PaymentSession.objects.filter(status=S.PENDING)
        .filter(Q(expires_at__lte=now) | ~Q(ticket__status=T.PENDING_PAYMENT))
        .select_related("tenant")
        .order_by("expires_at")
    )
    for session in due:
        closed += _expire_session(session)
    for ticket in _abandoned_tickets(now):
        try:
            queue.cancel_ticket(ticket.tenant, ticket.pk, reason=_("payment time is over"))
            closed += 1
        except DomainError:
            pass  # paid or cancelled by someone else meanwhile
    return closed


def _expire_session(session: PaymentSession) -> int:
    try:
        remote = provider_of(session).fetch(session)
    except ProviderError as error:
        log.warning("payment %s: status unavailable at expiry: %s", session.pk, error)
        remote = None
    if remote is not None and remote.status == S.PAID:
        outcome, _session, _detail = apply_remote(session.tenant, remote, session_id=session.pk)
        if outcome == Out.CONFIRMED:
            return 0
    _cancel_at_provider(session)
    with transaction.atomic():
        try:
            ticket, session = _lock(session.tenant, session.pk)
        except PaymentError:
            return 0
        if session.status != S.PENDING:
            return 0
        reason = _("payment time is over")
        change_session_status(session, S.CANCELED, reason=reason)
        _publish(session, ticket)
        if ticket.status == T.PENDING_PAYMENT:
            queue.cancel_ticket(session.tenant, ticket.pk, reason=reason)
    return 1


def _abandoned_tickets(now: datetime):
    """Tickets awaiting payment past their tenant's timeout with no pending session."""
    for tenant in Tenant.objects.filter(tickets__status=T.PENDING_PAYMENT).distinct():
        limit = now - timedelta(minutes=tenant.payment_timeout_minutes)
        yield from (
            Ticket.objects.filter(tenant=tenant, status=T.PENDING_PAYMENT, created_at__lte=limit)
            .exclude(payment_sessions__status=S.PENDING)
            .select_related("tenant")
        )


def session_for_ticket(ticket: Ticket) -> PaymentSession | None:
    """The session a screen should show for a ticket: paid one, else the latest. One query:
    a ticket has a session per method tried, a handful at most."""
    sessions = list(ticket.payment_sessions.order_by("-created_at", "-pk"))
    paid = next((session for session in sessions if session.status == S.PAID), None)
    return paid or (sessions[0] if sessions else None)


def _webhook_payload(session: PaymentSession) -> dict:
    """What a receiver learns of a payment (no payer details)."""
    return {
        "payment_id": session.pk,
        "ticket_id": session.ticket_id,
        "method": session.method,
        "provider": session.provider,
        "status": session.status,
        "amount": session.amount,
        "paid_at": session.paid_at,
        "refunded_at": session.refunded_at,
    }
