"""What the staff header (templates/staff_nav.html) links to, from the role the request holds.

`tenant_member_required` has already set `request.tenant` and `request.role` on a tenant's
screens; this adds no query of its own, and nothing at all on a page whose template does not
read it (the kiosk, the TV). The links are resolved by URL name in the template, so this base
app names no view of the apps above it.
"""

from __future__ import annotations

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from tenants.models import Role

# The header's sections, by the URL names of their pages (first prefix that matches).
SECTIONS = (
    ("panel", "panel"),
    ("ops_team", "team"),
    ("ops_customer_data", "lgpd"),
    ("ops_dashboard", "manage"),
)


def _nav(request: HttpRequest) -> dict:
    role = getattr(request, "role", None)
    rank = Role.rank(role) if role else 0
    user = getattr(request, "user", None)
    match = getattr(request, "resolver_match", None)
    url_name = (match.url_name or "") if match else ""
    return {
        "tenant": getattr(request, "tenant", None) if role else None,
        "panel": rank >= Role.rank(Role.OPERATOR),
        "manage": rank >= Role.rank(Role.MANAGER),
        "team": rank >= Role.rank(Role.ADMIN),
        "admin": bool(user and user.is_active and user.is_staff),
        "section": next((s for prefix, s in SECTIONS if url_name.startswith(prefix)), ""),
    }


def staff_nav(request: HttpRequest) -> dict:
    return {"staff_nav": SimpleLazyObject(lambda: _nav(request))}
