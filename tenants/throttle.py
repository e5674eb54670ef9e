"""Counting attempts in the cache to slow down guessing and flooding.

The cache is Redis when REDIS_URL is set, so every Daphne process shares the counts; on the
zero-setup default it is per process, which is enough for one.
"""

from __future__ import annotations

import hashlib

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import cache, caches
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from tenants.redis_outage import FallbackRedisCache, hit_in

LOGIN_FAILURES = 5
LOGIN_WINDOW = 15 * 60


def client_ip(request: HttpRequest | None) -> str:
    # Daphne with --proxy-headers puts the proxy's X-Forwarded-For into REMOTE_ADDR.
    return request.META.get("REMOTE_ADDR", "") if request is not None else ""


def _key(kind: str, *parts: str) -> str:
    digest = hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]
    return f"throttle:{kind}:{digest}"


def hit(kind: str, *parts: str, window: int) -> int:
    """Count one more attempt in the window; returns the count so far."""
    key, backend = _key(kind, *parts), caches["default"]
    if isinstance(backend, FallbackRedisCache):
        return backend.hit(key, window)
    return hit_in(backend, key, window)


def count(kind: str, *parts: str) -> int:
    return cache.get(_key(kind, *parts), 0)


def reset(kind: str, *parts: str) -> None:
    cache.delete(_key(kind, *parts))


def allow(kind: str, *parts: str, limit: int, window: int) -> bool:
    """Count this attempt and say whether it is within `limit` per `window` seconds."""
    return hit(kind, *parts, window=window) <= limit


class ThrottledLoginMixin:
    """Refuse a login after LOGIN_FAILURES failures for the same username and IP."""

    throttle_message = _("Too many failed attempts. Wait 15 minutes and try again.")

    def clean(self):
        username = (self.data.get("username") or "").strip().lower()
        ip = client_ip(self.request)
        if count("login", username, ip) >= LOGIN_FAILURES:
            raise forms.ValidationError(self.throttle_message, code="throttled")
        try:
            return super().clean()
        except forms.ValidationError:
            hit("login", username, ip, window=LOGIN_WINDOW)
            raise


class ThrottledAuthenticationForm(ThrottledLoginMixin, AuthenticationForm):
    pass


class ThrottledAdminAuthenticationForm(ThrottledLoginMixin, AdminAuthenticationForm):
    pass
