"""Mounted at /t/<slug>/ beside totem's public pages (pt-BR paths: customers read them)."""

from __future__ import annotations

from django.urls import path

from messaging import views

urlpatterns = [
    path("whatsapp/webhook/", views.webhook, name="whatsapp_webhook"),
    path("whatsapp/parar/<ticket_token:token>/", views.stop, name="whatsapp_stop"),
    path("avaliacao/<ticket_token:token>/", views.feedback, name="feedback"),
    path("senha/<ticket_token:token>/chegando/", views.arriving, name="ticket_arriving"),
    path("senha/<ticket_token:token>/desisti/", views.give_up, name="ticket_give_up"),
]
