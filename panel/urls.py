"""The operator panel, mounted at /t/<slug>/painel/ (pt-BR paths: operators read them)."""

from __future__ import annotations

from django.urls import path

from panel import views

urlpatterns = [
    path("", views.panel, name="panel"),
    path("estacao/", views.choose_station, name="panel_station"),
    path("estacao/encerrar-resfriamento/", views.end_cooldown, name="panel_end_cooldown"),
    path("servico/<int:service_id>/chamar/", views.call_next, name="panel_call_next"),
    path("linha/<int:line_id>/", views.line_detail, name="panel_line_detail"),
    path("linha/<int:line_id>/<slug:action>/", views.line_action, name="panel_line"),
    path("senha/<int:ticket_id>/<slug:action>/", views.ticket_action, name="panel_ticket"),
    path("pagamento/<int:session_id>/<slug:action>/", views.payment_action, name="panel_payment"),
]
