"""Who may see which tenant: the one place views, admin and consumers ask."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache

from tenants.compiled import CompiledRead
from tenants.models import Membership, Role, Tenant


def role_in(user, tenant: Tenant) -> str | None:
    """The user's role in the tenant; superusers are admins everywhere; None for outsiders.

    Read once per request on a request's tenant (`tenant_member_required` checks it, then
    the domain function the view calls checks it again: a cash confirmation read it twice).
    """
    if not user.is_authenticated or not user.is_active:
        return None
    if user.is_superuser:
        return Role.ADMIN
    return tenant.once(_role_key(user), lambda: _membership_role(user, tenant))


def _role_key(user) -> str:
    return f"role_of_{user.pk}"


def _membership_role(user, tenant: Tenant) -> str | None:
    membership = Membership.objects.filter(user=user, tenant=tenant).only("role").first()
    return membership.role if membership else None


def has_role(user, tenant: Tenant, role: str) -> bool:
    found = role_in(user, tenant)
    return found is not None and Role.rank(found) >= Role.rank(role)


def tenants_for(user, role: str = Role.OPERATOR):
    """Live tenants where the user holds at least `role`."""
    tenants = Tenant.objects.alive().filter(is_active=True)
    if user.is_superuser:
        return tenants
    allowed = [r for r in Role.values if Role.rank(r) >= Role.rank(role)]
    return tenants.filter(memberships__user=user, memberships__role__in=allowed).distinct()


# A live tenant by slug: read on every request of every tenant's screen, so compiled once per
# process (tenants/compiled.py); with the user's role in it for the staff screens, one query
# where the tenant and then the membership were two.
def _live(slug: str) -> QuerySet[Tenant]:
    return Tenant.objects.alive().filter(slug=slug, is_active=True)


_TENANT = CompiledRead(_live)
_TENANT_WITH_ROLE = CompiledRead(
    lambda slug, user_id: _live(slug).annotate(
        member_role=Subquery(
            Membership.objects.filter(user_id=user_id, tenant=OuterRef("pk")).values("role")
        )
    )
)


def get_tenant(slug: str) -> Tenant:
    """A live tenant by slug, or 404."""
    found = _TENANT(slug)
    if not found:
        raise Http404("tenant")
    return found[0]


def _member_tenant(slug: str, user) -> Tenant:
    """`get_tenant(slug)` as a request's own instance, with `user`'s membership role in it
    (what `role_in` then answers without a query), or 404."""
    found = _TENANT_WITH_ROLE(slug, user.pk)
    if not found:
        raise Http404("tenant")
    tenant = found[0].for_one_request()
    role = tenant.__dict__.pop("member_role")
    tenant.once(_role_key(user), lambda: role)
    return tenant


def tenant_member_required(role: str = Role.OPERATOR) -> Callable:
    """View decorator for `/t/<slug>/…` screens.

    Anonymous visitors go to the login page; outsiders get 404 (the tenant's existence is
    not theirs to know); members below `role` get 403. Sets `request.tenant` (this
    request's own instance: what it reads through `Tenant.once` is read once) and
    `request.role`. Nothing it answers is stored by a browser or proxy (Cache-Control:
    no-store): these screens show customers' personal data and the takings.
    """

    def decorator(view: Callable) -> Callable:
        @never_cache
        @wraps(view)
        def wrapper(request: HttpRequest, slug: str, *args, **kwargs) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            tenant = _member_tenant(slug, request.user)
            found = role_in(request.user, tenant)
            if found is None:
                raise Http404("tenant")
            if Role.rank(found) < Role.rank(role):
                raise PermissionDenied
            request.tenant = tenant
            request.role = found
            # Dates and times on the screen in the studio's zone, not the server's.
            with timezone.override(tenant.tzinfo):
                return view(request, slug, *args, **kwargs)

        return wrapper

    return decorator
