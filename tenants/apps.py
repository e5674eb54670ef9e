from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = _("Companies and branches")

    def ready(self) -> None:
        # The login/logout audit receivers, and the admin of audit, statistics, webhooks and
        # notifications (kept beside tenants/admin.py, which another module owns).
        from tenants import audit, ops_admin  # noqa: F401
