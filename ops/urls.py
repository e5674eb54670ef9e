"""The manager's pages of a tenant, mounted at /t/<slug>/gestao/ (pt-BR paths)."""

from __future__ import annotations

from django.urls import path

from ops import team, views

urlpatterns = [
    path("", views.dashboard, name="ops_dashboard"),
    path("equipamentos/", views.dashboard_devices, name="ops_dashboard_devices"),
    path("exportar/senhas.csv", views.export_tickets, name="ops_export_tickets"),
    path("exportar/pagamentos.csv", views.export_payments, name="ops_export_payments"),
    path("lgpd/", views.customer_data, name="ops_customer_data"),
    path("equipe/", team.team_list, name="ops_team"),
    path("equipe/nova-pessoa/", team.team_add, name="ops_team_add"),
    path("equipe/<int:member_id>/", team.team_member, name="ops_team_member"),
]
