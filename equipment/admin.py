"""Admin of a tenant's devices, scoped to the tenants the user manages."""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from equipment.models import DeviceServiceSettings, Equipment
from tenants.admin import DeletedFilter, SoftDeleteAdmin, TenantScopedAdmin
from tickets import devices, events


class DeviceServiceSettingsInline(TenantScopedAdmin, admin.TabularInline):
    """How this device runs each service, where it differs from the service's defaults."""

    model = DeviceServiceSettings
    tenant_field = "equipment__tenant"
    allow_delete = True  # a setting back to the service's defaults, not a business record
    extra = 0
    fields = ["service", "session_minutes", "cooldown_minutes"]

    def _row_tenant_id(self, obj) -> int:
        # Inlines' permission checks receive the parent device, not a row of the inline.
        return obj.tenant_id if isinstance(obj, Equipment) else obj.equipment.tenant_id


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
        "maintenance_starts",
        "maintenance_minutes",
        "shows_timer_on_display",
        "cooling_until",
        "last_seen_at",
        "created_at",
        "deleted_at",
    ]
    # cooling_until moves with sessions; an operator ends it early in the panel, audited.
    readonly_fields = ["cooling_until", "last_seen_at", "created_at", "deleted_at"]
    inlines = [DeviceServiceSettingsInline]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("services")

    # A device deleted or moved to another kind is no longer what its browsers were paired as:
    # their open sockets are told after commit to re-check (totem/consumers.py) and close.
    def _mark(self, request, queryset, deleted_at, reason: str) -> list[Equipment]:
        done = super()._mark(request, queryset, deleted_at, reason)
        events.device_changed(device.pk for device in done)
        return done

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        if change and "kind" in form.changed_data:
            events.device_changed([obj.pk])
        if change and {"status", "maintenance_starts", "maintenance_minutes"} & set(
            form.changed_data
        ):
            # Online ↔ maintenance ↔ offline: the panels and the dashboard show it at once.
            devices.announce_device(obj.pk)

    @admin.display(description=_("services it can run"))
    def service_names(self, obj: Equipment) -> str:
        return ", ".join(service.name for service in obj.services.all())


# Printers, print jobs and the test page live in their own module.
from equipment import admin_printing  # noqa: E402, F401
