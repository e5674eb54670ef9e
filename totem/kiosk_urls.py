"""The kiosk, mounted at /t/<slug>/totem/ (pt-BR paths: they show in the kiosk's address bar)."""

from __future__ import annotations

from django.urls import path

from totem import kiosk

urlpatterns = [
    path("", kiosk.welcome, name="kiosk_welcome"),
    path("parear/", kiosk.pair, name="kiosk_pair"),
    path("comecar/", kiosk.start, name="kiosk_start"),
    path("servicos/", kiosk.services, name="kiosk_services"),
    path("extras/", kiosk.extras, name="kiosk_extras"),
    path("identificacao/", kiosk.identify, name="kiosk_identify"),
    path("termo/", kiosk.waiver, name="kiosk_waiver"),
    path("pacotes/", kiosk.packages, name="kiosk_packages"),
    path("resumo/", kiosk.summary, name="kiosk_summary"),
    path("pagamento/", kiosk.payment, name="kiosk_payment"),
    path("pagamento/estado/", kiosk.payment_status, name="kiosk_payment_status"),
    path("pagamento/simular/", kiosk.simulate, name="kiosk_payment_simulate"),
    path("senha/", kiosk.ticket_screen, name="kiosk_ticket"),
    path("sair/", kiosk.leave, name="kiosk_leave"),
    path("erro/", kiosk.error, name="kiosk_error"),
]
