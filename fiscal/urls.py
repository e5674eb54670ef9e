from __future__ import annotations

from django.urls import path

from fiscal import views

urlpatterns = [
    path("webhook/focusnfe/", views.focusnfe_webhook, name="fiscal_webhook_focusnfe"),
]
