from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TotemConfig(AppConfig):
    name = "totem"
    verbose_name = _("Kiosk and display")
