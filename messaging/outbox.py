"""Sending the written messages: claimed by workers, sent outside any transaction, retried.

The failure model, as the webhook outbox's (tenants/webhooks.py): a row is claimed with
SKIP LOCKED and a lease, so workers split the work and a worker that dies mid-send leaves
the row to be claimed again when the lease ends — the customer may then get that message
twice, never lose it. A failure Meta calls temporary (throttling, its own trouble, a
network error, a 5xx) is tried again with back-off; any other fails the row at once.

A message is built when it is sent, from the ticket as it is then: a warning the queue has
overtaken (the customer already called, the call already answered) is dropped as obsolete
rather than sent late, and nothing of the text is ever stored.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from messaging.graph import SendError, send_template
from messaging.models import Kind, Message, MessageStatus, WhatsAppAccount
from messaging.notify import called_key
from tickets.models import LineStatus, TicketStatus
from tickets.printing import status_url
from tickets.queue import place_of

log = logging.getLogger(__name__)

# Longer than one send can take (WHATSAPP_TIMEOUT, 10 s by default).
LEASE = timedelta(seconds=60)
MAX_ATTEMPTS = 8


def backoff(attempts: int) -> timedelta:
    """5 s, 10 s, 20 s… at most 5 min: 8 attempts span about 10 minutes, as long as a
    queue warning is worth anything."""
    return timedelta(seconds=min(5 * 2 ** max(attempts - 1, 0), 300))


def claim(now: datetime, limit: int = 20) -> list[Message]:
    with transaction.atomic():
        rows = list(
            Message.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("subscription", "subscription__ticket", "subscription__ticket__tenant")
            .filter(status=MessageStatus.PENDING, next_attempt_at__lte=now)
            .order_by("next_attempt_at", "id")[:limit]
        )
        Message.objects.filter(pk__in=[r.pk for r in rows]).update(
            next_attempt_at=now + LEASE, attempts=F("attempts") + 1
        )
    for row in rows:
        row.attempts += 1
    return rows


def parameters(message: Message) -> list[str] | None:
    """The template's body parameters as the ticket stands now; None when obsolete."""
    ticket = message.subscription.ticket
    if message.kind == Kind.FEEDBACK:
        if ticket.status != TicketStatus.COMPLETED:
            return None
        return [ticket.tenant.name, status_url(ticket)]
    line = message.line
    if line is None:
        return None
    line.refresh_from_db()
    if message.kind == Kind.CALLED:
        if line.status != LineStatus.CALLED or called_key(line) != message.key:
            return None
        room = line.equipment.announced_as if line.equipment else ""
        return [line.service.name, room]
    place = place_of(line)
    if place is None:
        return None
    return [str(place.position - 1), line.service.name]


def _settle(message: Message, **fields) -> None:
    Message.objects.filter(pk=message.pk, status=MessageStatus.PENDING).update(**fields)


def deliver(message: Message, now: datetime | None = None) -> bool:
    """One attempt at a claimed message, outside any transaction. True when Meta took it."""
    now = now or timezone.now()
    subscription = message.subscription
    account = WhatsAppAccount.objects.filter(tenant_id=message.tenant_id).first()
    if account is None or not account.configured:
        _settle(message, status=MessageStatus.SKIPPED, last_error="not-configured")
        return False
    if not subscription.active or not subscription.phone:
        _settle(message, status=MessageStatus.SKIPPED, last_error="opted-out")
        return False
    texts = parameters(message)
    if texts is None:
        _settle(message, status=MessageStatus.SKIPPED, last_error="obsolete")
        return False
    try:
        wamid = send_template(account, "55" + subscription.phone, message.template, texts)
    except SendError as error:
        if error.retryable and message.attempts < MAX_ATTEMPTS:
            _settle(message, next_attempt_at=now + backoff(message.attempts), last_error=error.code)
        else:
            log.warning("whatsapp message %s failed: %s", message.pk, error.code)
            _settle(message, status=MessageStatus.FAILED, last_error=error.code)
        return False
    _settle(message, status=MessageStatus.SENT, sent_at=timezone.now(), wamid=wamid, last_error="")
    return True


def deliver_due(now: datetime | None = None, limit: int = 20) -> int:
    """Claim and attempt the due messages once; the number attempted."""
    rows = claim(now or timezone.now(), limit)
    for row in rows:
        deliver(row, now)
    return len(rows)
