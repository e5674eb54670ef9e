"""Mounted at /t/<slug>/whatsapp/."""

from __future__ import annotations

from django.urls import path

from messaging import views

urlpatterns = [
    path("webhook/", views.webhook, name="whatsapp_webhook"),
    path("parar/<ticket_token:token>/", views.stop, name="whatsapp_stop"),
]
