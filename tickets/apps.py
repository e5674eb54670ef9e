from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TicketsConfig(AppConfig):
    name = "tickets"
    verbose_name = _("Tickets and services")

    def ready(self) -> None:
        from django.urls import register_converter

        from tickets.converters import TicketTokenConverter

        # Before any URL conf is read: the pages and the socket of a ticket name it in their
        # path (`<ticket_token:token>`), in three URL modules.
        register_converter(TicketTokenConverter, "ticket_token")
