"""What Meta sends us: delivery statuses of our messages and customers' replies.

Per https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/
create-webhook-endpoint : Meta verifies the callback URL with a GET carrying `hub.mode=
subscribe`, `hub.verify_token` (the text typed in the app dashboard) and `hub.challenge`,
which is answered back as is; every POST carries `X-Hub-Signature-256: sha256=<hex>`, the
HMAC-SHA256 of the raw body with the app secret. A POST is JSON `{"object":
"whatsapp_business_account", "entry": [{"changes": [{"field": "messages", "value":
{"metadata": {"phone_number_id"}, "statuses": [...], "messages": [...]}}]}]}`.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

from django.utils import timezone

from messaging.models import DELIVERY_RANK, Delivery, Message, WhatsAppAccount
from messaging.optin import opt_out_by_reply


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signed(account: WhatsAppAccount, body: bytes, header: str) -> bool:
    return bool(account.app_secret) and hmac.compare_digest(
        signature(account.app_secret, body), header or ""
    )


def verified_challenge(account: WhatsAppAccount, params) -> str | None:
    """The challenge to answer Meta's verification GET with, or None to refuse it."""
    token = params.get("hub.verify_token", "")
    if params.get("hub.mode") != "subscribe" or not account.verify_token:
        return None
    if not hmac.compare_digest(token.encode(), account.verify_token.encode()):
        return None
    return params.get("hub.challenge", "")


def _when(timestamp) -> datetime:
    try:
        return datetime.fromtimestamp(int(timestamp), tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return timezone.now()


def record_status(account: WhatsAppAccount, status: dict) -> bool:
    """Move one of our messages forward to what Meta says of it (never backward: webhooks
    come late, twice and out of order). False for a message that is not ours."""
    wamid, value = status.get("id"), status.get("status")
    if not isinstance(wamid, str) or value not in Delivery.values:
        return False
    lower = [v for v, rank in DELIVERY_RANK.items() if rank < DELIVERY_RANK[value]]
    fields = {"delivery": value, "delivery_at": _when(status.get("timestamp"))}
    errors = status.get("errors")
    if value == Delivery.FAILED and isinstance(errors, list) and errors:
        code = errors[0].get("code") if isinstance(errors[0], dict) else None
        fields["last_error"] = str(code)[:40] if code is not None else "failed"
    return bool(
        Message.objects.filter(tenant_id=account.tenant_id, wamid=wamid, delivery__in=lower).update(
            **fields
        )
    )


def handle(account: WhatsAppAccount, payload: dict) -> None:
    """Apply a verified notification: statuses recorded, stop words honoured. What is not
    about this account's number, or not understood, is ignored."""
    if not isinstance(payload, dict) or payload.get("object") != "whatsapp_business_account":
        return
    for entry in payload.get("entry") or []:
        for change in (entry or {}).get("changes") or [] if isinstance(entry, dict) else []:
            if not isinstance(change, dict) or change.get("field") != "messages":
                continue
            value = change.get("value") or {}
            metadata = value.get("metadata") or {}
            if str(metadata.get("phone_number_id", "")) != account.phone_number_id:
                continue
            for status in value.get("statuses") or []:
                if isinstance(status, dict):
                    record_status(account, status)
            for message in value.get("messages") or []:
                if isinstance(message, dict) and message.get("type") == "text":
                    text = (message.get("text") or {}).get("body", "")
                    opt_out_by_reply(account.tenant, str(message.get("from", "")), str(text))
