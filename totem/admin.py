"""Admin of device pairings: make a one-time code for a kiosk or display, revoke a pairing."""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from tenants.admin import TenantScopedAdmin
from totem import pairing
from totem.models import DisplaySlide, PairingCode


@admin.register(PairingCode)
class PairingCodeAdmin(TenantScopedAdmin, admin.ModelAdmin):
    list_display = ["equipment", "tenant", "code_shown", "expires_at", "used_at", "revoked_at"]
    list_filter = [("tenant", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["tenant", "equipment"]
    search_fields = ["equipment__name", "equipment__identifier"]
    fields = ["tenant", "equipment", "code", "expires_at", "used_at", "user_agent", "revoked_at"]
    readonly_fields = ["code", "expires_at", "used_at", "user_agent", "revoked_at"]
    actions = ["revoke"]
    # A pairing is never edited: a new code is made, an old pairing revoked.
    allow_revert = False

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def save_model(self, request, obj, form, change) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
        if not change:
            self.message_user(
                request,
                _("Type the code %(code)s on the device within %(minutes)s minutes.")
                % {
                    "code": obj.code,
                    "minutes": int((obj.expires_at - timezone.now()).total_seconds() // 60) + 1,
                },
                messages.SUCCESS,
            )

    @admin.display(description=_("code"))
    def code_shown(self, obj: PairingCode) -> str:
        # A spent or dead code is no secret any more, but showing it again helps nobody.
        if obj.used_at or obj.revoked_at or obj.expires_at <= timezone.now():
            return "—"
        return obj.code

    @admin.action(description=_("Revoke: the paired browser stops working at once"))
    def revoke(self, request, queryset) -> None:
        count = pairing.revoke(self.scope(request, queryset, self.edit_role))
        self.message_user(
            request,
            gettext("Pairings revoked: %(n)d.") % {"n": count},
        )


@admin.register(DisplaySlide)
class DisplaySlideAdmin(TenantScopedAdmin, admin.ModelAdmin):
    list_display = ["__str__", "tenant", "order", "active"]
    list_editable = ["order", "active"]
    list_filter = [("tenant", admin.RelatedOnlyFieldListFilter), "active"]
    list_select_related = ["tenant"]
    search_fields = ["title", "text"]
    fields = ["tenant", "title", "text", "image", "order", "active", "displays"]
    filter_horizontal = ["displays"]
    # A slide is content, not history: removing one leaves nothing pointing at it.
    allow_delete = True
