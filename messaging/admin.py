"""Admin: a tenant's WhatsApp account (secrets write-only), opt-ins and the message log."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from messaging.models import Message, Subscription, WhatsAppAccount
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
