"""ASGI entry point: HTTP through Django, WebSockets through Channels (served by Daphne)."""

from __future__ import annotations

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
from config.routing import websocket_urlpatterns  # noqa: E402

# Daphne reads a whole request body before it calls the application; its factory builds each
# connection's request from this name, so the body limit acts as the bytes arrive. Daphne
# imports this module before it listens (config/body_limit.py says why both guards).
http_protocol.WebRequest = LimitedWebRequest

# With DEBUG (make run), Daphne serves /static/ itself; in production a reverse proxy serves
# the collected files (docs/deploy.md) and this process never sees those requests.
http_app = BodySizeLimit(
    ASGIStaticFilesHandler(django_asgi_app) if settings.DEBUG else django_asgi_app
)

application = ProtocolTypeRouter(
    {
        "http": http_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
