"""Which WhatsApp messages the queue calls for, written as outbox rows by the worker.

The worker scans the live opt-ins every few seconds rather than the queue's operations
calling in here: a queue moves from the panel, admin, the expiry job, transfers and
cancellations, and `tickets` must not know that messages exist (it sits below this app).
Reading the state from the database means no mover can forget to tell us, a worker that
dies loses nothing, and the unique key of each message (one "approaching" per line, one
"called" per call, one feedback per ticket) makes the scan safe to repeat and to run in
several workers at once. The price is a delay of one scan (seconds) — nothing for a
message on a phone.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

from messaging.models import Kind, Message, Subscription, WhatsAppAccount
from tickets.models import LineStatus, TicketLine, TicketStatus
from tickets.queue import place_of

# An opt-in whose ticket is still not over after this long (expired and never reactivated)
# stops being scanned.
GIVE_UP_AFTER = timedelta(days=2)


def _write(
    subscription: Subscription, kind: str, key: str, template: str, now: datetime, line=None
) -> int:
    _message, created = Message.objects.get_or_create(
        subscription=subscription,
        key=key,
        defaults={
            "tenant_id": subscription.tenant_id,
            "kind": kind,
            "template": template,
            "line": line,
            "created_at": now,
            "next_attempt_at": now,
        },
    )
    return int(created)


def called_key(line: TicketLine) -> str:
    return f"called:{line.pk}:{line.call_count}"


def scan_subscription(subscription: Subscription, account: WhatsAppAccount, now: datetime) -> int:
    """Write the messages this opt-in is due; the number written."""
    ticket = subscription.ticket
    if ticket.status == TicketStatus.COMPLETED:
        written = _write(subscription, Kind.FEEDBACK, "feedback", account.template_feedback, now)
        Subscription.objects.filter(pk=subscription.pk).update(finished_at=now)
        return written
    if ticket.status == TicketStatus.CANCELLED or subscription.opted_in_at < now - GIVE_UP_AFTER:
        Subscription.objects.filter(pk=subscription.pk).update(finished_at=now)
        return 0
    written = 0
    lines = ticket.lines.filter(status__in=[LineStatus.WAITING, LineStatus.CALLED]).select_related(
        "service", "service__tenant"
    )
    for line in lines:
        if line.status == LineStatus.CALLED:
            written += _write(
                subscription, Kind.CALLED, called_key(line), account.template_called, now, line
            )
            continue
        place = place_of(line)
        if place is not None and 1 <= place.position - 1 <= account.notify_ahead:
            written += _write(
                subscription,
                Kind.APPROACHING,
                f"approaching:{line.pk}",
                account.template_approaching,
                now,
                line,
            )
    return written


def scan(now: datetime | None = None) -> int:
    """Write the due messages of every tenant that sends WhatsApp; the number written."""
    now = now or timezone.now()
    accounts = {
        account.tenant_id: account
        for account in WhatsAppAccount.objects.filter(enabled=True)
        if account.configured
    }
    if not accounts:
        return 0
    live = Subscription.objects.filter(
        tenant_id__in=accounts, opted_out_at__isnull=True, finished_at__isnull=True
    ).select_related("ticket")
    return sum(scan_subscription(s, accounts[s.tenant_id], now) for s in live)
