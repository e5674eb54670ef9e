"""The one call we make to the WhatsApp Cloud API: send an approved template message.

`POST /{version}/{phone-number-id}/messages` with a Bearer token and a JSON body
(https://developers.facebook.com/docs/whatsapp/cloud-api/overview/). Errors come back in the
Graph API shape `{"error": {"message", "type", "code", "error_data": {"details"},
"fbtrace_id"}}`, and Meta asks clients to act on `code`, never on the text
(https://developers.facebook.com/documentation/business-messaging/whatsapp/support/error-codes/).
"""

from __future__ import annotations

from dataclasses import dataclass

import requests
from django.conf import settings

from messaging.models import WhatsAppAccount

# Codes worth trying again later (error-codes page): throttling (4, 80007, 130429 — the
# number's 80 messages/s, https://developers.facebook.com/documentation/business-messaging/
# whatsapp/throughput —, 131056 the pair rate), Meta's own trouble (1, 2, 131000, 131016).
# Everything else (a template missing or not approved 132001, parameters 132000, a token
# 190, a number that is no WhatsApp 131026…) fails the same way every time.
RETRYABLE = frozenset({1, 2, 4, 80007, 130429, 131000, 131016, 131056})


@dataclass
class SendError(Exception):
    """A send that did not happen; `code` is Meta's, or ours ("network", "http-500")."""

    code: str
    retryable: bool

    def __str__(self) -> str:
        return self.code


def body(to: str, template: str, language: str, parameters: list[str]) -> dict:
    """A template message with its body's parameters, in the documented shape."""
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "template",
        "template": {
            "name": template,
            "language": {"code": language},
            "components": [
                {
                    "type": "body",
                    "parameters": [{"type": "text", "text": text} for text in parameters],
                }
            ],
        },
    }


def send_template(account: WhatsAppAccount, to: str, template: str, parameters: list[str]) -> str:
    """Send one template message; Meta's message id (wamid). Raises SendError."""
    url = f"{settings.WHATSAPP_GRAPH_URL}/{account.api_version}/{account.phone_number_id}/messages"
    try:
        response = requests.post(
            url,
            json=body(to, template, account.language, parameters),
            headers={"Authorization": f"Bearer {account.access_token}"},
            timeout=settings.WHATSAPP_TIMEOUT,
            allow_redirects=False,
        )
    except requests.RequestException:
        raise SendError("network", retryable=True) from None
    try:
        answer = response.json()
    except ValueError:
        answer = {}
    if response.status_code == 200:
        messages = answer.get("messages") if isinstance(answer, dict) else None
        if messages and isinstance(messages[0], dict) and messages[0].get("id"):
            return str(messages[0]["id"])
        raise SendError("no-message-id", retryable=False)
    error = answer.get("error") if isinstance(answer, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    if isinstance(code, int):
        raise SendError(str(code), retryable=code in RETRYABLE)
    raise SendError(f"http-{response.status_code}", retryable=response.status_code >= 500)
