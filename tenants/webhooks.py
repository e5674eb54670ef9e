"""Outgoing webhooks: events written to an outbox in the transaction of the change, delivered
by `manage.py deliver_webhooks`.

The outbox is what makes "a receiver that is down loses nothing" true: the row commits or rolls
back with the ticket or payment it describes, and stays pending until the receiver answers 2xx.
Delivery is at least once — a worker killed after the POST but before recording it sends the
event again — so each carries its id in X-Totem-Delivery for the receiver to drop repeats.

Destinations: only public addresses (tenants/netguard.py), unless the platform sets
WEBHOOKS_ALLOW_PRIVATE; the name is resolved and checked at every attempt and the request goes
to the address checked, redirects are not followed. What a tenant reads of an attempt is
delivered or failed with a short reason of ours: never the receiver's answer, which from an
internal service would tell the tenant about the platform's network (the HTTP status is kept
for platform superusers).

Signature: X-Totem-Signature is `sha256=` + HMAC-SHA256(secret, "<timestamp>.<body>") in hex,
X-Totem-Timestamp the Unix time it was signed at. A receiver recomputes it over the raw body
and refuses a timestamp more than a few minutes old (a replayed request).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import ssl
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from tenants import netguard
from tenants.compiled import CompiledRead
from tenants.models import (
    OutboxStatus,
    Tenant,
    WebhookAttempt,
    WebhookEndpoint,
    WebhookEvent,
    WebhookOutbox,
)

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 10
# A claimed row is not due again for this long: longer than one POST can take.
LEASE = timedelta(seconds=TIMEOUT_SECONDS * 6)
MAX_ATTEMPTS = 15
USER_AGENT = "Totem-Webhooks/1"


def backoff(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min… doubling, at most 6 h: 15 attempts span about two days."""
    return timedelta(seconds=min(30 * 2 ** max(attempts - 1, 0), 6 * 3600))


# --- writing events -------------------------------------------------------------------------


def enqueue(tenant: Tenant | int, event_type: str, payload: dict | Callable[[], dict]) -> int:
    """One outbox row per enabled endpoint of the tenant that wants `event_type`.

    Call inside the transaction that makes the change, so both commit or neither does.
    `payload` may be a function: it is then built only when an endpoint wants the event
    (a ticket's payload reads its lines — a query on every sale and completion otherwise).
    Returns the number of rows written (0 for a tenant with no webhook: one query).
    """
    if event_type not in WebhookEvent.values:
        raise ValueError(f"unknown webhook event: {event_type!r}")
    tenant_id = tenant if isinstance(tenant, int) else tenant.pk
    endpoints = [
        row["pk"]
        for row in _enabled_endpoints(tenant_id)
        if WebhookEndpoint.wants(row["event_types"], event_type)
    ]
    if not endpoints:
        return 0
    data = payload() if callable(payload) else payload
    WebhookOutbox.objects.bulk_create(
        WebhookOutbox(tenant_id=tenant_id, endpoint_id=pk, event_type=event_type, payload=data)
        for pk in endpoints
    )
    return len(endpoints)


@CompiledRead
def _enabled_endpoints(tenant_id: int) -> QuerySet[WebhookEndpoint]:
    # Ids and event filters only, its statement built once: this runs in every sale and
    # call, mostly to find nothing.
    return (
        WebhookEndpoint.objects.alive()
        .filter(tenant_id=tenant_id, enabled=True)
        .values("pk", "event_types")
    )


# --- delivering them ------------------------------------------------------------------------


def sign(secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def body_of(row: WebhookOutbox) -> bytes:
    envelope = {
        "id": str(row.event_id),
        "type": row.event_type,
        "created_at": row.created_at,
        "tenant": row.tenant.slug,
        "data": row.payload,
    }
    return json.dumps(envelope, cls=DjangoJSONEncoder, sort_keys=True).encode()


def claim(now: datetime, limit: int = 20) -> list[WebhookOutbox]:
    """Take up to `limit` due rows: SKIP LOCKED so parallel workers split the work, then a
    lease (next attempt pushed forward) so the rows stay ours after this transaction ends."""
    with transaction.atomic():
        rows = list(
            WebhookOutbox.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("tenant")
            .filter(status=OutboxStatus.PENDING, next_attempt_at__lte=now)
            .order_by("next_attempt_at", "id")[:limit]
        )
        WebhookOutbox.objects.filter(pk__in=[r.pk for r in rows]).update(
            next_attempt_at=now + LEASE, attempts=F("attempts") + 1
        )
    for row in rows:
        row.attempts += 1
    return rows


def allowed(ip: netguard.IPAddress) -> bool:
    """Where webhooks may go: public addresses, or any when the platform allows private ones
    (an installation whose integrations live on its own network)."""
    return settings.WEBHOOKS_ALLOW_PRIVATE or netguard.is_public(ip)


def check_target(url: str) -> None:
    """Refuse (netguard.Refused, a message for the tenant) a URL delivery would refuse."""
    target = netguard.http_target(url)
    try:
        netguard.resolve(target.host, target.port, allowed)
    except netguard.NotAllowed:
        raise netguard.NotAllowed(
            _("%(host)s is not a public address: webhooks go only to the internet.")
            % {"host": target.host}
        ) from None


def post(url: str, body: bytes, headers: dict[str, str]) -> int:
    """POST to a checked, pinned address and return the HTTP status (netguard.post)."""
    return netguard.post(url, body, headers, timeout=TIMEOUT_SECONDS, allowed=allowed)


def failure_reason(status_code: int | None, error: BaseException | None) -> str:
    """What the tenant reads of a failed attempt: ours, short, nothing the receiver said."""
    if isinstance(error, netguard.NotFound):
        return _("address not found")
    if isinstance(error, netguard.Refused):
        return _("address not allowed: webhooks go only to public addresses")
    if isinstance(error, ssl.SSLError):  # before ValueError: a failed verification is both
        return _("TLS error (certificate)")
    if isinstance(error, ValueError):
        return _("invalid address")
    if isinstance(error, TimeoutError):
        return _("no answer in time")
    if isinstance(error, http.client.HTTPException):
        return _("invalid HTTP answer")
    if error is not None:
        return _("could not connect")
    if status_code is not None and 300 <= status_code < 400:
        return _("redirect not followed")
    return _("the receiver did not accept it")


def deliver(row: WebhookOutbox, now: datetime | None = None) -> bool:
    """One attempt at a claimed row, outside any transaction; records it in the log."""
    now = now or timezone.now()
    endpoint = WebhookEndpoint.objects.filter(pk=row.endpoint_id).first()
    if endpoint is None or not endpoint.enabled or endpoint.deleted_at is not None:
        WebhookOutbox.objects.filter(pk=row.pk).update(
            status=OutboxStatus.FAILED, last_error="endpoint disabled or deleted"
        )
        return False
    body = body_of(row)
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Totem-Event": row.event_type,
        "X-Totem-Delivery": str(row.event_id),
        "X-Totem-Timestamp": str(timestamp),
        "X-Totem-Signature": sign(endpoint.secret, timestamp, body),
    }
    started = time.monotonic()
    status_code, failure = None, None
    try:
        status_code = post(endpoint.target_url, body, headers)
    except (OSError, ValueError, http.client.HTTPException, netguard.Refused) as exc:
        failure = exc
    elapsed = int((time.monotonic() - started) * 1000)
    delivered = status_code is not None and 200 <= status_code < 300
    reason = "" if delivered else failure_reason(status_code, failure)
    WebhookAttempt.objects.create(
        outbox=row, number=row.attempts, status_code=status_code, error=reason, duration_ms=elapsed
    )
    if delivered:
        WebhookOutbox.objects.filter(pk=row.pk).update(
            status=OutboxStatus.DELIVERED, delivered_at=timezone.now(), last_error=""
        )
        return True
    if failure is not None:  # the detail is the platform's, in its log
        log.info("webhook %s to %s: %r", row.event_id, endpoint.target_url, failure)
    if row.attempts >= MAX_ATTEMPTS:
        update = {"status": OutboxStatus.FAILED}
        log.warning("webhook %s to %s given up: %s", row.event_id, endpoint.target_url, reason)
    else:
        update = {"next_attempt_at": now + backoff(row.attempts)}
    WebhookOutbox.objects.filter(pk=row.pk).update(last_error=reason[:300], **update)
    return False


def deliver_due(now: datetime | None = None, limit: int = 20) -> int:
    """Claim and attempt the due rows once; the number attempted (0: nothing was due)."""
    rows = claim(now or timezone.now(), limit)
    for row in rows:
        deliver(row, now)
    return len(rows)


def retry(queryset) -> int:
    """Due now again, with a fresh count of attempts (an admin action after a long outage)."""
    return queryset.exclude(status=OutboxStatus.DELIVERED).update(
        status=OutboxStatus.PENDING, next_attempt_at=timezone.now(), attempts=0
    )
