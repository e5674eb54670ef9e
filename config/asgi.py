"""ASGI entry point: HTTP through Django, WebSockets through Channels (served by Daphne)."""

from __future__ import annotations

import asyncio
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from daphne import http_protocol  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from config.body_limit import BodySizeLimit, LimitedWebRequest  # noqa: E402
from config.malformed import RefuseNulSockets  # noqa: E402
from config.routing import websocket_urlpatterns  # noqa: E402

# Daphne reads a whole request body before it calls the application; its factory builds each
# connection's request from this name, so the body limit acts as the bytes arrive. Daphne
# imports this module before it listens (config/body_limit.py says why both guards).
http_protocol.WebRequest = LimitedWebRequest


class FinishEveryRequest:
    """Let Django finish every HTTP request it started, even when the client hangs up.

    Django cancels a request whose client disconnects (and Daphne cancels one still running
    10 s after). A sync view cannot be stopped: it goes on, while the cancelled request's
    `request_finished`, which gives the database connection back to the pool, ran before the
    view took its connection or not at all. Under 32 clients a few hang-ups emptied the pool
    for good, and every later request waited the pool's timeout for a 503. So Django hears of
    the disconnect only once it has answered (Daphne drops an answer to a closed connection),
    and is shielded from Daphne's cancellation. No view streams: finishing is bounded work.
    """

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        answered = asyncio.Event()
        body_read = False

        async def receive_after_answer() -> dict:
            nonlocal body_read
            if body_read:  # Django listens for the disconnect while the view runs
                await answered.wait()
            message = await receive()
            body_read = message["type"] == "http.request" and not message.get("more_body")
            return message

        async def send_and_note(message: dict) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body"):
                answered.set()
            await send(message)

        await asyncio.shield(self.app(scope, receive_after_answer, send_and_note))


# With DEBUG (make run), Daphne serves /static/ itself; in production a reverse proxy serves
# the collected files (docs/deploy.md) and this process never sees those requests.
http_app = BodySizeLimit(
    FinishEveryRequest(
        ASGIStaticFilesHandler(django_asgi_app) if settings.DEBUG else django_asgi_app
    )
)

application = ProtocolTypeRouter(
    {
        "http": http_app,
        "websocket": AllowedHostsOriginValidator(
            RefuseNulSockets(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))
        ),
    }
)

if settings.RUN_WORKERS_IN_WEB:
    # Zero-setup mode: the spooler and the worker run in this process, where the in-memory
    # channel layer's sockets are (config/background.py).
    from config.background import run_beside_daphne  # noqa: E402

    run_beside_daphne()
