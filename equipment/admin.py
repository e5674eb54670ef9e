"""Admin of a tenant's devices, scoped to the tenants the user manages."""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from equipment.models import Equipment
from tenants.admin import DeletedFilter, SoftDeleteAdmin, TenantScopedAdmin


@admin.register(Equipment)
class EquipmentAdmin(TenantScopedAdmin, SoftDeleteAdmin, SimpleHistoryAdmin):
    list_display = [
        "name",
        "kind",
        "tenant",
        "location",
        "status",
        "service_names",
        "last_seen_at",
        "is_deleted",
    ]
    list_filter = [
        ("tenant", admin.RelatedOnlyFieldListFilter),
        "kind",
        "status",
        DeletedFilter,
    ]
    search_fields = ["name", "identifier", "location"]
    list_select_related = ["tenant"]
    filter_horizontal = ["services"]
    actions = ["soft_delete", "restore"]
    fields = [
        "tenant",
        "kind",
        "name",
        "identifier",
        "location",
        "status",
        "services",
        "last_seen_at",
        "created_at",
        "deleted_at",
    ]
    readonly_fields = ["last_seen_at", "created_at", "deleted_at"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("services")

    @admin.display(description=_("services it can run"))
    def service_names(self, obj: Equipment) -> str:
        return ", ".join(service.name for service in obj.services.all())


# Printers, print jobs and the test page live in their own module.
from equipment import admin_printing  # noqa: E402, F401
