"""Requests that carry a NUL character are refused before anything reads them.

PostgreSQL cannot hold a NUL in text: psycopg refuses any query parameter with one ("PostgreSQL
text fields cannot contain NUL (0x00) bytes"), so an admin filter (`?status__exact=%00`), a
webhook's `?data.id=`, a User-Agent kept with a pairing or a crafted session cookie
(`"\\000…"`, which the cookie parser unquotes to a NUL, read on every page) reached a query and
answered 500. No browser, kiosk or payment provider sends one. HTTP answers 400; a WebSocket is
refused at its handshake. A token or id in the path never gets here: the converters accept
only their own alphabet and length (`<slug:>`, `<int:>`, `<ticket_token:>`), so the resolver
answers 404 (tickets/converters.py).

Django's form fields refuse a NUL too (ProhibitNullCharactersValidator), but only where a form
is used; this covers what views, the admin and the session read raw.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from itertools import chain
from urllib.parse import unquote

from django.core.exceptions import BadRequest
from django.http import HttpRequest, HttpResponse, QueryDict
from django.http.cookie import parse_cookie

from tickets.live import REFUSED

NUL = "\x00"


def has_nul(texts: Iterable[str]) -> bool:
    return any(NUL in text for text in texts)


def _fields(data: QueryDict) -> Iterable[str]:
    return chain.from_iterable((name, *values) for name, values in data.lists())


class RefuseNulMiddleware:
    """400 for a NUL in the query string, a cookie, a header or a posted form."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        headers = (value for name, value in request.META.items() if name.startswith("HTTP_"))
        cookies = chain.from_iterable(request.COOKIES.items())
        if has_nul(chain(_fields(request.GET), cookies, headers)):
            raise BadRequest("NUL character in the query string, a cookie or a header")
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view: Callable, args: tuple, kwargs: dict
    ) -> HttpResponse | None:
        # The form is read where CsrfViewMiddleware reads it, and not for a view exempt from
        # CSRF (the provider's webhook): reading a form consumes the body that view reads raw.
        exempt = getattr(view, "csrf_exempt", False)
        if request.method == "POST" and not exempt and has_nul(_fields(request.POST)):
            raise BadRequest("NUL character in the form")
        return None


class RefuseNulSockets:
    """ASGI: a WebSocket with a NUL in its path, query string, a header or a cookie is refused
    before the session behind its cookie is loaded (a query, on the authentication's way)."""

    def __init__(self, app: Callable) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "websocket" and self.carries_nul(scope):
            await receive()  # the client's websocket.connect
            await send({"type": "websocket.close", "code": REFUSED})
            return
        await self.app(scope, receive, send)

    @staticmethod
    def carries_nul(scope: dict) -> bool:
        query = unquote(scope.get("query_string", b"").decode("latin-1"))
        texts = [scope["path"], query]
        for name, value in scope.get("headers", []):
            texts.append(value.decode("latin-1"))
            if name.lower() == b"cookie":
                texts.extend(chain.from_iterable(parse_cookie(texts[-1]).items()))
        return has_nul(texts)
