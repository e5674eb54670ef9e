"""Who may watch a tenant's public display: one function for the page, its state and its socket.

Today any browser may (a TV needs no login). Device pairing will slot in here: it will look
for the paired display's key in the session, which both HTTP requests and WebSocket scopes
carry.
"""

from __future__ import annotations

from tenants.models import Tenant


def may_watch_display(tenant: Tenant, session) -> bool:
    """Whether the browser holding `session` may see `tenant`'s display."""
    return tenant.is_active and tenant.deleted_at is None
