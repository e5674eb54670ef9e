"""Admin of API keys (a tenant's administrators make and revoke them) and the request log."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from api.models import ApiKey, ApiRequest
from tenants import audit
from tenants.admin import TenantScopedAdmin
from tenants.models import AuditAction, Role


@admin.register(ApiKey)
class ApiKeyAdmin(TenantScopedAdmin, admin.ModelAdmin):
    # A key acts for the whole studio: who holds one is for its administrators.
    view_role = Role.ADMIN
    edit_role = Role.ADMIN
    list_display = ["name", "prefix", "tenant", "scope_list", "last_used_at", "revoked_at"]
    list_filter = [("tenant", admin.RelatedOnlyFieldListFilter), "revoked_at"]
    search_fields = ["name", "prefix"]
    list_select_related = ["tenant"]
    fields = ["tenant", "name", "can_read", "can_sell", "can_operate"]
    fields += ["prefix", "created_by", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["prefix", "created_by", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    @admin.display(description=_("scopes"))
    def scope_list(self, obj: ApiKey) -> str:
        return ", ".join(obj.scopes)

    def save_model(self, request: HttpRequest, obj: ApiKey, form, change: bool) -> None:
        if not change:
            obj.created_by = request.user
            # Kept on the request for response_add, the one page that shows it.
            request.new_api_key = obj.new_secret()
        super().save_model(request, obj, form, change)
        audit.record(
            AuditAction.API_KEY_CHANGED if change else AuditAction.API_KEY_CREATED,
            tenant=obj.tenant,
            entity=obj,
            data={"prefix": obj.prefix, "scopes": obj.scopes},
            request=request,
        )

    def response_add(self, request: HttpRequest, obj: ApiKey, post_url_continue=None):
        return TemplateResponse(
            request,
            "admin/api/apikey/created.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": _("Copy the key now"),
                "key": request.new_api_key,
                "key_object": obj,
            },
            headers={"Cache-Control": "no-store"},
        )

    @admin.action(description=_("Revoke the chosen keys"))
    def revoke(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        keys = list(self.scope(request, queryset, self.edit_role).filter(revoked_at=None))
        for key in keys:
            key.revoked_at = timezone.now()
            key.save(update_fields=["revoked_at"])
            audit.record(
                AuditAction.API_KEY_REVOKED,
                tenant=key.tenant,
                entity=key,
                data={"prefix": key.prefix},
                request=request,
            )
        count = len(keys)
        self.message_user(
            request,
            ngettext("%(n)d key revoked.", "%(n)d keys revoked.", count) % {"n": count},
            messages.SUCCESS,
        )
        return None


@admin.register(ApiRequest)
class ApiRequestAdmin(TenantScopedAdmin, admin.ModelAdmin):
    """Read-only: one row per request a key made."""

    view_role = Role.ADMIN
    read_only = True
    allow_add = False
    list_display = ["created_at", "api_key", "method", "path", "status", "ip"]
    list_filter = [("api_key", admin.RelatedOnlyFieldListFilter), "method", "status"]
    search_fields = ["path", "idempotency_key", "ip"]
    date_hierarchy = "created_at"
    list_select_related = ["api_key"]
    fields = ["created_at", "tenant", "api_key", "method", "path", "status"]
    fields += ["idempotency_key", "ip"]
    readonly_fields = fields
    show_full_result_count = False
