"""Admin: a tenant's WhatsApp account (secrets write-only), opt-ins and the message log."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from messaging.models import (
    Feedback,
    FeedbackScore,
    Message,
    RemoteJoin,
    RemoteTicket,
    Subscription,
    WhatsAppAccount,
)
from tenants.admin import TenantConsistentForm, TenantScopedAdmin
from tenants.models import Role

SECRETS = ("access_token", "app_secret", "verify_token")


class WhatsAppAccountForm(TenantConsistentForm):
    """Secrets are write-only: the field is always empty, and empty keeps what is saved."""

    class Meta:
        model = WhatsAppAccount
        fields = "__all__"
        widgets = {name: forms.PasswordInput(render_value=False) for name in SECRETS}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for name in SECRETS:
            if name not in self.fields or not self.instance.pk:
                continue
            self.fields[name].required = False
            self.fields[name].help_text = gettext("Saved. Leave blank to keep it.")

    def clean(self):
        cleaned = super().clean()
        for name in SECRETS:
            if self.instance.pk and not cleaned.get(name):
                cleaned[name] = getattr(self.instance, name)
        return cleaned


@admin.register(WhatsAppAccount)
class WhatsAppAccountAdmin(TenantScopedAdmin, admin.ModelAdmin):
    form = WhatsAppAccountForm
    # Tokens that send in the studio's name: its administrators only.
    view_role = Role.ADMIN
    edit_role = Role.ADMIN
    list_display = ["tenant", "enabled", "phone_number_id", "notify_ahead"]
    list_select_related = ["tenant"]
    fieldsets = [
        (None, {"fields": ["tenant", "enabled", "notify_ahead"]}),
        (
            _("WhatsApp Cloud API"),
            {
                "fields": [
                    "phone_number_id",
                    "access_token",
                    "app_secret",
                    "verify_token",
                    "api_version",
                ]
            },
        ),
        (
            _("Approved templates"),
            {
                "fields": [
                    "language",
                    "template_approaching",
                    "template_called",
                    "template_feedback",
                ]
            },
        ),
    ]


@admin.register(Subscription)
class SubscriptionAdmin(TenantScopedAdmin, admin.ModelAdmin):
    read_only = True
    list_display = ["ticket", "masked_phone", "consent_version", "opted_in_at", "opted_out_at"]
    list_select_related = ["ticket"]
    list_filter = ["opted_out_via"]
    # The number is shown masked, never in full (LGPD): only the send uses it.
    fields = [
        "ticket",
        "masked_phone",
        "consent_version",
        "opted_in_at",
        "opted_out_at",
        "opted_out_via",
    ]
    readonly_fields = fields

    @admin.display(description=_("phone"))
    def masked_phone(self, obj: Subscription) -> str:
        return obj.phone_masked or "—"


@admin.register(Message)
class MessageAdmin(TenantScopedAdmin, admin.ModelAdmin):
    read_only = True
    list_display = [
        "created_at",
        "kind",
        "template",
        "status",
        "delivery",
        "attempts",
        "last_error",
    ]
    list_filter = ["kind", "status", "delivery"]
    fields = [
        "subscription",
        "kind",
        "template",
        "status",
        "attempts",
        "sent_at",
        "delivery",
        "delivery_at",
        "last_error",
    ]
    readonly_fields = fields


class FeedbackScoreInline(admin.TabularInline):
    model = FeedbackScore
    fields = ["line", "score"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Feedback)
class FeedbackAdmin(TenantScopedAdmin, admin.ModelAdmin):
    read_only = True
    list_display = ["created_at", "ticket", "comment"]
    list_select_related = ["ticket"]
    fields = ["ticket", "comment", "created_at"]
    readonly_fields = fields
    inlines = [FeedbackScoreInline]


@admin.register(RemoteJoin)
class RemoteJoinAdmin(TenantScopedAdmin, admin.ModelAdmin):
    list_display = ["tenant", "enabled", "paused", "pay_at_counter", "max_waiting", "poster"]
    list_select_related = ["tenant"]
    readonly_fields = ["poster"]

    @admin.display(description=_("QR poster"))
    def poster(self, obj: RemoteJoin) -> str:
        if not obj.pk:
            return "—"
        url = reverse("join_poster", args=[obj.tenant.slug])
        return format_html('<a href="{}" target="_blank">{}</a>', url, gettext("Print the poster"))


@admin.register(RemoteTicket)
class RemoteTicketAdmin(TenantScopedAdmin, admin.ModelAdmin):
    read_only = True
    list_display = ["ticket", "created_at"]
    list_select_related = ["ticket"]
    fields = ["ticket", "created_at"]
    readonly_fields = fields
