"""What a form refused by the CSRF check shows (settings.CSRF_FAILURE_VIEW).

The pages for 400, 403, 404 and 500 are Django's own handlers with the templates of the same
names (pt-BR, static); only this one chooses: a kiosk has neither address bar nor keyboard, so
a static page would leave it stranded, and it gets its own error screen, which goes back to
the start by itself.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.csrf import csrf_failure as page_expired

from totem import kiosk


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    match = request.resolver_match
    if match is not None and match.func.__module__ == kiosk.__name__:
        return kiosk.error_screen(request, match.kwargs["slug"], status=403)
    # Renders templates/403_csrf.html with status 403.
    return page_expired(request, reason=reason)
