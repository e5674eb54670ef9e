"""Public live screens, mounted at /t/<slug>/ (pt-BR paths: customers read them)."""

from __future__ import annotations

from django.urls import path

from totem import remote, views

urlpatterns = [
    path("display/", views.display, name="display"),
    path("display/state/", views.display_state, name="display_state"),
    path("senha/<ticket_token:token>/", views.ticket_status, name="ticket_status"),
    # Joining from the phone (the QR poster at the door).
    path("entrar/", remote.join, name="join"),
    path("entrar/cartaz/", remote.poster, name="join_poster"),
    path("entrar/pagamento/<ticket_token:token>/", remote.payment, name="join_payment"),
]
