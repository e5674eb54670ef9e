from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = _("Companies and branches")

    def ready(self) -> None:
        # The login/logout audit receivers, and the admin of the audit log and webhooks (a
        # module of its own beside tenants/admin.py, which is long enough).
        from tenants import admin_audit, audit  # noqa: F401
