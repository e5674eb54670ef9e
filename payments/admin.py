"""Admin of payments: settings with masked secrets, sessions with refunds, notifications, receipts.

Scoped by `TenantScopedAdmin` (tenants/admin.py): a manager sees and acts on their tenants'
rows only. Sessions, notifications and receipts are read-only here; money moves only through
payments/sessions.py (the refund action calls `refund`).
"""

from __future__ import annotations

import logging

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import ActionLocation
from django.template.response import TemplateResponse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from payments.brcode import CITY_LIMIT, NAME_LIMIT, clean_merchant_text, normalize_pix_key
from payments.models import Notification, PaymentSession, PaymentSettings, PointApi, Receipt
from payments.providers import ProviderError
from payments.providers.mercadopago_orders import MercadoPagoOrdersProvider
from payments.receipts import brl, render_receipt_text
from payments.sessions import refund
from tenants.admin import TenantScopedAdmin, WriteOnlySecretsForm, mask
from tenants.errors import DomainError
from tenants.models import Role

log = logging.getLogger(__name__)
SECRETS = ("mercadopago_access_token", "mercadopago_webhook_secret")
STATUS_COLOURS = {
    "pending": "#b45309",
    "paid": "#16a34a",
    "failed": "#dc2626",
    "canceled": "#6b7280",
    "refunded": "#7c3aed",
}


class PaymentSettingsForm(WriteOnlySecretsForm):
    secrets = SECRETS

    class Meta:
        model = PaymentSettings
        fields = "__all__"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if "pix_key" in self.fields:
            self.fields["pix_key"].help_text = gettext(
                "CPF, CNPJ, mobile phone with +55, e-mail or random key. Saved the way the "
                "Central Bank's key directory writes it (digits only, +55…, lower case)."
            )
        if "payer_email" in self.fields:
            self.fields["payer_email"].help_text = gettext(
                "Optional: an address of the studio's that MercadoPago receipts may go to. "
                "Never the MercadoPago account's own e-mail (MercadoPago refuses it). Blank: "
                "each sale gets an address of its own on the platform's domain."
            )

    def clean_pix_key(self) -> str:
        """Stored as the DICT stores it (payments/brcode.py): the bank app looks it up so."""
        key = self.cleaned_data.get("pix_key", "")
        return normalize_pix_key(key) if key else key

    def clean_merchant_name(self) -> str:
        name = self.cleaned_data.get("merchant_name", "")
        return clean_merchant_text(name, NAME_LIMIT) if name else name

    def clean_merchant_city(self) -> str:
        city = self.cleaned_data.get("merchant_city", "")
        return clean_merchant_text(city, CITY_LIMIT) if city else city

    def clean(self) -> dict:
        cleaned = super().clean()
        # Checked again when used (providers/mercadopago.py): the contact e-mail may change.
        typed = (cleaned.get("payer_email") or "").strip()
        tenant = cleaned.get("tenant") or getattr(self.instance, "tenant", None)
        if typed and tenant and typed.casefold() == tenant.contact_email.strip().casefold():
            self.add_error(
                "payer_email",
                gettext(
                    "This is the studio's contact e-mail, usually its MercadoPago account's: "
                    "MercadoPago refuses a payer who is the account receiving. Leave it blank."
                ),
            )
        return cleaned


@admin.register(PaymentSettings)
class PaymentSettingsAdmin(TenantScopedAdmin, SimpleHistoryAdmin):
    form = PaymentSettingsForm
    allow_revert = False
    list_display = [
        "tenant",
        "methods",
        "pix_provider",
        "point_integration",
        "token_masked",
        "secret_masked",
    ]
    list_select_related = ["tenant"]
    actions = ["check_point_terminal"]
    fieldsets = [
        (None, {"fields": ["tenant", "pix_enabled", "card_enabled", "cash_enabled"]}),
        (
            _("MercadoPago"),
            {
                "fields": [
                    "pix_provider",
                    "mercadopago_access_token",
                    "mercadopago_webhook_secret",
                    "mercadopago_point_device",
                    "point_api",
                    "payer_email",
                ]
            },
        ),
        (_("Static PIX"), {"fields": ["pix_key", "merchant_name", "merchant_city"]}),
    ]

    @admin.display(description=_("methods offered"))
    def methods(self, obj: PaymentSettings) -> str:
        return ", ".join(obj.enabled_methods()) or "—"

    @admin.display(description=_("Point integration"), ordering="point_api")
    def point_integration(self, obj: PaymentSettings) -> str:
        if not obj.mercadopago_point_device:
            return "—"
        if obj.point_api == PointApi.LEGACY_INTENTS:
            return format_html('<strong style="color:#b45309">{}</strong>', gettext("legacy"))
        return gettext("Orders API")

    @admin.action(description=_("Check the Point terminal at MercadoPago"))
    def check_point_terminal(self, request, queryset):
        """Is the configured terminal in this MercadoPago account, and in PDV mode?"""
        for config in queryset.select_related("tenant")[:20]:
            terminal = config.mercadopago_point_device
            if not terminal or not config.mercadopago_access_token:
                self.message_user(
                    request,
                    gettext("%(tenant)s: no Point terminal or access token configured.")
                    % {"tenant": config.tenant},
                    messages.WARNING,
                )
                continue
            try:
                mode = MercadoPagoOrdersProvider(config).terminal_mode()
            except ProviderError as error:
                log.warning("terminal check for %s failed: %s", config.tenant, error)
                self.message_user(
                    request,
                    gettext("%(tenant)s: MercadoPago did not answer; try again.")
                    % {"tenant": config.tenant},
                    messages.ERROR,
                )
                continue
            names = {"tenant": config.tenant, "terminal": terminal, "mode": mode}
            if mode == "PDV":
                text, level = gettext("%(tenant)s: %(terminal)s is in PDV mode."), messages.SUCCESS
            elif mode is None:
                text = gettext(
                    "%(tenant)s: %(terminal)s is not a terminal of this MercadoPago account."
                )
                level = messages.ERROR
            else:
                text = gettext(
                    "%(tenant)s: %(terminal)s is in %(mode)s mode. Set it to PDV (point of "
                    "sale) in MercadoPago and restart the terminal."
                )
                level = messages.ERROR
            self.message_user(request, text % names, level)

    @admin.display(description=_("access token"))
    def token_masked(self, obj: PaymentSettings) -> str:
        return mask(obj.mercadopago_access_token)

    @admin.display(description=_("webhook secret"))
    def secret_masked(self, obj: PaymentSettings) -> str:
        return mask(obj.mercadopago_webhook_secret)


class RefundForm(forms.Form):
    reason = forms.CharField(
        label=_("reason"),
        max_length=200,
        widget=forms.TextInput(attrs={"size": 60}),
        help_text=_("Recorded in the payment's history."),
    )


class NotificationInline(TenantScopedAdmin, admin.TabularInline):
    model = Notification
    tenant_field = "tenant"
    read_only = True
    allow_add = False
    extra = 0
    fields = ["received_at", "kind", "action", "data_id", "request_id", "outcome", "detail"]
    readonly_fields = fields
    ordering = ["received_at"]


@admin.register(PaymentSession)
class PaymentSessionAdmin(TenantScopedAdmin, SimpleHistoryAdmin):
    read_only = True  # money moves only through payments/sessions.py
    allow_add = False
    allow_revert = False
    list_display = [
        "id",
        "ticket",
        "tenant",
        "method",
        "provider",
        "status_badge",
        "amount_brl",
        "created_at",
        "needs_attention",
    ]
    list_filter = [
        ("tenant", admin.RelatedOnlyFieldListFilter),
        "status",
        "method",
        "provider",
        "needs_attention",
    ]
    search_fields = ["ticket__number", "external_id", "provider_payment_id", "receipt__code"]
    list_select_related = ["tenant", "ticket"]
    list_per_page = 50
    date_hierarchy = "created_at"
    inlines = [NotificationInline]
    actions = ["refund_sessions"]
    fields = [
        "tenant",
        "ticket",
        "method",
        "provider",
        "status_badge",
        "amount_brl",
        "external_id",
        "provider_payment_id",
        "provider_status",
        "created_at",
        "expires_at",
        "paid_at",
        "failed_at",
        "canceled_at",
        "refunded_at",
        "confirmed_by",
        "amount_received",
        "refunded_by",
        "refund_reason",
        "refund_external_id",
        "needs_attention",
        "attention_note",
        "receipt_link",
    ]
    readonly_fields = ["status_badge", "amount_brl", "receipt_link"]

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, obj: PaymentSession) -> str:
        return format_html(
            '<span style="color:{}">&#9679;</span> {}',
            STATUS_COLOURS[obj.status],
            obj.get_status_display(),
        )

    @admin.display(description=_("amount"), ordering="amount")
    def amount_brl(self, obj: PaymentSession) -> str:
        return brl(obj.amount)

    @admin.display(description=_("receipt"))
    def receipt_link(self, obj: PaymentSession) -> str:
        receipt = Receipt.objects.filter(session=obj).first()
        if receipt is None:
            return "—"
        return format_html('<a href="../../../receipt/{}/change/">{}</a>', receipt.pk, receipt.code)

    def has_refund_permission(self, request) -> bool:
        return self._may(request, Role.MANAGER)

    @admin.action(
        permissions=["refund"],
        description=_("Refund selected payments"),
        location=[ActionLocation.CHANGE_LIST, ActionLocation.CHANGE_FORM],
    )
    def refund_sessions(self, request, queryset):
        sessions = list(queryset.select_related("tenant", "ticket").order_by("pk")[:20])
        form = RefundForm(request.POST if "apply" in request.POST else None)
        if not form.is_valid():
            prefix = f"{ActionLocation.CHANGE_FORM.value}-"
            field = f"{prefix}action" if f"{prefix}action" in request.POST else "action"
            context = {
                **self.admin_site.each_context(request),
                "title": gettext("Refund payments"),
                "opts": self.opts,
                "sessions": sessions,
                "form": form,
                "action": "refund_sessions",
                "action_field": field,
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(
                request, "admin/payments/paymentsession/refund_action.html", context
            )
        done = []
        for session in sessions:
            try:
                refund(session.tenant, session.pk, request.user, form.cleaned_data["reason"])
            except DomainError as error:
                self.message_user(request, f"#{session.pk}: {error}", messages.ERROR)
            else:
                done.append(f"#{session.pk}")
        if done:
            self.message_user(
                request,
                gettext("Refunded: %(ids)s.") % {"ids": ", ".join(done)},
                messages.SUCCESS,
            )
        return None


@admin.register(Notification)
class NotificationAdmin(TenantScopedAdmin, admin.ModelAdmin):
    read_only = True
    allow_add = False
    list_display = ["received_at", "tenant", "provider", "kind", "data_id", "outcome", "session"]
    list_filter = [("tenant", admin.RelatedOnlyFieldListFilter), "provider", "outcome", "kind"]
    search_fields = ["data_id", "request_id"]
    list_select_related = ["tenant", "session"]
    date_hierarchy = "received_at"


@admin.register(Receipt)
class ReceiptAdmin(TenantScopedAdmin, admin.ModelAdmin):
    read_only = True
    allow_add = False
    list_display = ["code", "tenant", "session", "created_at"]
    list_filter = [("tenant", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["code", "session__ticket__number"]
    list_select_related = ["tenant", "session"]
    fields = ["code", "tenant", "session", "created_at", "printable"]
    readonly_fields = ["printable"]

    @admin.display(description=_("printable text"))
    def printable(self, obj: Receipt) -> str:
        return format_html("<pre>{}</pre>", render_receipt_text(obj))
