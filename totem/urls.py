"""Public live screens, mounted at /t/<slug>/ (pt-BR paths: customers read them)."""

from __future__ import annotations

from django.urls import path

from totem import views

urlpatterns = [
    path("display/", views.display, name="display"),
    path("display/state/", views.display_state, name="display_state"),
    path("senha/<ticket_token:token>/", views.ticket_status, name="ticket_status"),
]
