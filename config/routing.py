"""WebSocket routes, one list for the whole project (the ASGI router reads it)."""

from __future__ import annotations

from django.urls import path, re_path

from panel import consumers as panel_consumers
from tickets.live import NotFoundConsumer
from totem import consumers

websocket_urlpatterns: list = [
    path("ws/t/<slug:slug>/display/", consumers.DisplayConsumer.as_asgi()),
    path("ws/t/<slug:slug>/panel/", panel_consumers.PanelConsumer.as_asgi()),
    path("ws/t/<slug:slug>/senha/<ticket_token:token>/", consumers.TicketConsumer.as_asgi()),
    re_path(r"", NotFoundConsumer.as_asgi()),  # last: what no route above matches
]
