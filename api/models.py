"""API keys, the replies kept for idempotency keys, and the log of every request by key.

A key is shown once, when it is made; only its SHA-256 is stored. A key carries 256 bits
from `secrets`, so a fast hash is enough (a slow one protects low-entropy passwords, and
would cost every request its time); the public prefix finds the row without a scan.
"""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tenants.models import Tenant

KEY_START = "tk_"


class Scope(models.TextChoices):
    READ = "read", _("read")
    SELL = "sell", _("sell")
    OPERATE = "operate", _("operate")


def hash_secret(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKeyQuerySet(models.QuerySet):
    def active(self) -> ApiKeyQuerySet:
        return self.filter(revoked_at__isnull=True, tenant__deleted_at__isnull=True)


class ApiKey(models.Model):
    tenant = models.ForeignKey(
        Tenant, on_delete=models.PROTECT, related_name="api_keys", verbose_name=_("company/branch")
    )
    name = models.CharField(
        _("name"), max_length=80, help_text=_("Who uses it, e.g. “booking site”.")
    )
    # Public: the start of the key, shown in lists and logs to tell keys apart.
    prefix = models.CharField(_("prefix"), max_length=16, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    can_read = models.BooleanField(
        _("read"), default=True, help_text=_("Services, tickets, queues, payments, devices.")
    )
    can_sell = models.BooleanField(
        _("sell"), default=False, help_text=_("Create and cancel tickets; confirm cash.")
    )
    can_operate = models.BooleanField(
        _("operate"),
        default=False,
        help_text=_("Call, start, complete and mark no-shows on a device."),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")
        ordering = ["tenant", "-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def scopes(self) -> list[str]:
        return [
            scope
            for scope, allowed in (
                (Scope.READ, self.can_read),
                (Scope.SELL, self.can_sell),
                (Scope.OPERATE, self.can_operate),
            )
            if allowed
        ]

    def new_secret(self) -> str:
        """Give the key a fresh prefix and secret; returns the full key, the only time it is
        ever seen. The caller saves the row."""
        self.prefix = KEY_START + secrets.token_hex(6)
        key = f"{self.prefix}_{secrets.token_hex(32)}"  # no "_" inside: it ends the prefix
        self.secret_hash = hash_secret(key)
        return key


class IdempotentReply(models.Model):
    """The reply to a POST made with an Idempotency-Key, replayed when the key comes again.

    A row without `status` is a request still running: a second request with the same key
    meanwhile is refused (409) rather than run twice.
    """

    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    # SHA-256 of method, path and body: the same key with another request is a client bug.
    fingerprint = models.CharField(max_length=64)
    status = models.PositiveSmallIntegerField(null=True)
    body = models.JSONField(null=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            # The lock of the idempotency key: of two requests racing, one inserts.
            models.UniqueConstraint(fields=["api_key", "key"], name="api_idempotency_once"),
        ]
        indexes = [
            # The purge deletes by age.
            models.Index(fields=["created_at"], name="api_idempotency_age"),
        ]

    def __str__(self) -> str:
        return f"{self.key} → {self.status}"


class ApiRequest(models.Model):
    """One request made with a key: the audit trail of the API, read in admin."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    api_key = models.ForeignKey(
        ApiKey, on_delete=models.CASCADE, related_name="requests", verbose_name=_("API key")
    )
    method = models.CharField(_("method"), max_length=8)
    path = models.CharField(_("path"), max_length=200)
    status = models.PositiveSmallIntegerField(_("status"))
    idempotency_key = models.CharField(_("idempotency key"), max_length=255, blank=True)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    created_at = models.DateTimeField(_("time"), default=timezone.now)

    class Meta:
        verbose_name = _("API request")
        verbose_name_plural = _("API requests")
        ordering = ["-created_at", "-id"]
        indexes = [
            # Admin: a tenant's requests, newest first, and one key's.
            models.Index(fields=["tenant", "-created_at"], name="api_request_tenant_recent"),
            models.Index(fields=["api_key", "-created_at"], name="api_request_key_recent"),
            # The purge deletes by age.
            models.Index(fields=["created_at"], name="api_request_age"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__gte=100, status__lte=599), name="api_request_status_http"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.path} {self.status}"
