"""Who is calling: the API key in `Authorization: Bearer …`, its scopes, its rate limit."""

from __future__ import annotations

import hmac
import time
from datetime import timedelta

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _
from ninja.security import HttpBearer
from ninja.throttling import BaseThrottle

from api.models import KEY_START, ApiKey, hash_secret
from api.problems import ApiError
from tenants import throttle

# last_used_at is written at most this often per key: a write per request would make every
# read of the API a write, and "used today" is what a manager needs to see.
LAST_USED_EVERY = timedelta(minutes=1)
# Failed keys per client address per minute: a key cannot be guessed (256 bits), but a flood
# of them would cost a query each.
FAILURES_PER_MINUTE = 30


def find_key(key: str) -> ApiKey | None:
    """The live key `key` names, or None. The prefix finds the row; the hash must match."""
    prefix, _sep, _secret = key.rpartition("_")
    if not prefix.startswith(KEY_START) or len(prefix) > 16:
        return None
    found = (
        ApiKey.objects.active()
        .select_related("tenant", "created_by")
        .filter(prefix=prefix, tenant__is_active=True)
        .first()
    )
    if found is None or not hmac.compare_digest(found.secret_hash, hash_secret(key)):
        return None
    return found


def touch(key: ApiKey) -> None:
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_EVERY:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now


class KeyAuth(HttpBearer):
    """A live key with `scope`. Sets request.api_key (the request log reads it)."""

    def __init__(self, scope: str) -> None:
        self.scope = scope
        super().__init__()

    def authenticate(self, request: HttpRequest, token: str) -> ApiKey | None:
        ip = throttle.client_ip(request)
        if throttle.count("api-key-failed", ip) >= FAILURES_PER_MINUTE:
            return None
        key = find_key(token)
        if key is None:
            throttle.hit("api-key-failed", ip, window=60)
            return None
        request.api_key = key
        touch(key)
        if self.scope not in key.scopes:
            raise ApiError(
                "insufficient_scope",
                _("This API key does not have the “%(scope)s” scope.") % {"scope": self.scope},
            )
        return key


class KeyThrottle(BaseThrottle):
    """API_REQUESTS_PER_MINUTE per key, in fixed minute windows counted by tenants.throttle
    in the shared cache (Redis, or this process's memory while Redis is away, as for every
    other limit: tenants/redis_outage.py)."""

    def allow_request(self, request: HttpRequest) -> bool:
        window = int(time.time() // 60)
        key = request.auth
        return throttle.allow(
            "api", key.prefix, str(window), limit=settings.API_REQUESTS_PER_MINUTE, window=60
        )

    def wait(self) -> float:
        # Until the window ends (this object is shared by every request: nothing kept on it).
        return 60 - time.time() % 60
