"""WebSocket routes, one list for the whole project (the ASGI router reads it)."""

from __future__ import annotations

websocket_urlpatterns: list = []
