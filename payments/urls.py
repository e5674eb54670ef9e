from __future__ import annotations

from django.urls import path

from payments import views

urlpatterns = [
    path("webhook/mercadopago/", views.mercadopago_webhook, name="payments_webhook_mercadopago"),
    path("recibo/<ticket_token:token>/", views.receipt_page, name="payments_receipt"),
    path("recibo/<ticket_token:token>.pdf", views.receipt_pdf, name="payments_receipt_pdf"),
    path("<int:session_id>/simular/", views.simulate_payment, name="payments_simulate"),
]
