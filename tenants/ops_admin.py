"""Admin of what runs the business: audit log, daily statistics, webhooks, notifications.

Every class is scoped with `TenantScopedAdmin` (a manager sees only their tenants' rows;
others' answer 404). Settings saved here leave an audit entry naming the fields changed, never
their values when they are secrets.
"""

from __future__ import annotations

from django.contrib import admin

from tenants.admin import TenantScopedAdmin
from tenants.audit import record
from tenants.models import AuditAction, AuditLog

SECRET_FIELDS = frozenset({"secret", "smtp_password"})


class AuditedSettingsAdmin:
    """`save_model` that writes a `settings_changed` entry with the fields changed."""

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        changed = list(form.changed_data)
        if change and not changed:
            return
        values = {
            name: ("***" if name in SECRET_FIELDS else form.cleaned_data.get(name))
            for name in changed
        }
        record(
            AuditAction.SETTINGS_CHANGED,
            tenant=obj.tenant,
            user=request.user,
            entity=obj,
            data={"created": not change, "changed": values},
            request=request,
        )


@admin.register(AuditLog)
class AuditLogAdmin(TenantScopedAdmin, admin.ModelAdmin):
    """Read-only: entries are written by the actions themselves and never edited."""

    read_only = True
    allow_add = False
    list_display = ["created_at", "tenant", "username", "action", "entity", "entity_id", "ip"]
    list_filter = ["action", ("tenant", admin.RelatedOnlyFieldListFilter), "created_at"]
    search_fields = ["username", "entity_id", "ip"]
    date_hierarchy = "created_at"
    list_select_related = ["tenant"]
    fields = ["created_at", "tenant", "user", "username", "action", "entity", "entity_id"]
    fields += ["data", "ip"]
    readonly_fields = fields
    show_full_result_count = False
