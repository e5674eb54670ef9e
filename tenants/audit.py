"""The audit log: who did what, when and from where, for every critical action.

`record` is the one function that writes it; domain functions and admin call it inside their
own transaction, so an action that rolls back leaves no entry. Logins, logouts and failed
logins come from django.contrib.auth's signals: they are the only hook auth offers.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db import models
from django.dispatch import receiver
from django.http import HttpRequest
from django.utils.text import capfirst

from tenants.history import HistoricalRecords
from tenants.models import AuditAction, AuditLog, Tenant

log = logging.getLogger(__name__)


def client_ip(request: HttpRequest | None) -> str | None:
    """The client's address as the server saw it.

    Behind the reverse proxy Daphne runs with --proxy-headers, so REMOTE_ADDR is already the
    client's (docs/deploy.md); a forwarded header is never read here, it could be forged.
    """
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def _current_request() -> HttpRequest | None:
    # simple-history's middleware keeps the request of this thread: domain functions called
    # from a view (cancel_line…) get the operator's IP without passing the request down.
    return getattr(HistoricalRecords.context, "request", None)


def record(
    action: str,
    *,
    tenant: Tenant | None,
    user=None,
    entity: str | models.Model = "",
    entity_id: Any = "",
    data: dict | None = None,
    request: HttpRequest | None = None,
    username: str = "",
) -> AuditLog:
    """Write one audit entry.

    `entity` is a model instance (its model, pk and str() are kept) or a label such as
    "tickets.ticket". Never put a full CPF, phone or secret in `data`: entries outlive
    the customer data they describe. An unknown `action` raises ValueError (a typo would
    otherwise hide an action from every filter).
    """
    if action not in AuditAction.values:
        raise ValueError(f"unknown audit action: {action!r}")
    label = ""
    if isinstance(entity, models.Model):
        entity_id = entity_id or entity.pk
        # Its kind and name in the language of the moment (pt-BR): "Senha C012".
        label = f"{capfirst(entity._meta.verbose_name)} {entity}"[:200]
        entity = entity._meta.label_lower
    request = request or _current_request()
    if user is None and request is not None:
        user = getattr(request, "user", None)
    if user is not None and not user.is_authenticated:
        user = None
    return AuditLog.objects.create(
        tenant=tenant,
        user=user,
        username=user.get_username() if user is not None else username[:150],
        action=action,
        entity=entity,
        entity_id="" if entity_id in (None, "") else str(entity_id)[:40],
        label=label,
        data=data or {},
        ip=client_ip(request),
    )


def _tenants_of(user) -> list[Tenant | None]:
    """A person's login shows in each tenant they work for; a superuser's only globally."""
    tenants = list(Tenant.objects.filter(memberships__user=user).order_by("pk"))
    return tenants or [None]


@receiver(user_logged_in, dispatch_uid="audit_login")
def _logged_in(sender, request, user, **kwargs) -> None:
    for tenant in _tenants_of(user):
        record(AuditAction.LOGIN, tenant=tenant, user=user, entity=user, request=request)


@receiver(user_logged_out, dispatch_uid="audit_logout")
def _logged_out(sender, request, user, **kwargs) -> None:
    if user is None:  # the session had already expired
        return
    for tenant in _tenants_of(user):
        record(AuditAction.LOGOUT, tenant=tenant, user=user, entity=user, request=request)


@receiver(user_login_failed, dispatch_uid="audit_login_failed")
def _login_failed(sender, credentials, request=None, **kwargs) -> None:
    # auth already replaced the password with stars; only the username is kept, cut short.
    username = str(credentials.get("username", ""))[:150]
    user = get_user_model()._default_manager.filter(username=username).first()
    tenants = _tenants_of(user) if user is not None else [None]
    for tenant in tenants:
        record(
            AuditAction.LOGIN_FAILED,
            tenant=tenant,
            entity="auth.user",
            entity_id=user.pk if user is not None else "",
            data={"username": username},
            request=request,
            # The person typing is not (yet) this user: the column says who was tried.
            username=username,
        )
