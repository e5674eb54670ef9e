"""Admin of NFS-e: per-tenant settings with write-only secrets, service codes, and the
requests with the provider's words and the actions a person takes on them.

Invoices are read-only here; they move only through fiscal/issuing.py (each action calls one
of its functions). Scoped by `TenantScopedAdmin`: a manager sees their tenants' rows only.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from fiscal import issuing
from fiscal.models import FiscalSettings, Invoice, InvoiceItem, ServiceTaxCode
from tenants.admin import TenantScopedAdmin, WriteOnlySecretsForm
from tenants.br import normalize_cnpj
from tenants.errors import DomainError
from tenants.money import brl


class FiscalSettingsForm(WriteOnlySecretsForm):
    secrets = ("api_token", "webhook_secret")
    # Room for "11.222.333/0001-81" as typed; stored as 14 digits (clean_cnpj).
    cnpj = forms.CharField(label=_("CNPJ"), max_length=18, required=False)

    class Meta:
        model = FiscalSettings
        exclude = ["enabled_since"]

    def clean_cnpj(self) -> str:
        # Typed with dots, slash and dash; stored as its 14 digits.
        typed = self.cleaned_data.get("cnpj", "")
        return normalize_cnpj(typed) if typed else typed


@admin.register(FiscalSettings)
class FiscalSettingsAdmin(TenantScopedAdmin, SimpleHistoryAdmin):
    form = FiscalSettingsForm
    allow_revert = False
    list_display = ["tenant", "enabled", "provider", "environment", "cnpj", "issue_mode"]
    list_select_related = ["tenant"]
    readonly_fields = ["enabled_since"]
    fieldsets = [
        (None, {"fields": ["tenant", "enabled", "enabled_since", "issue_mode"]}),
        (_("Provider"), {"fields": ["provider", "environment", "api_token", "webhook_secret"]}),
        (
            _("Company and taxes (ask your accountant)"),
            {
                "fields": [
                    "cnpj",
                    "legal_name",
                    "municipal_registration",
                    "municipality_code",
                    "simples_nacional",
                    "iss_rate",
                    "lc116_item",
                    "national_code",
                    "cancel_window_days",
                ]
            },
        ),
    ]


@admin.register(ServiceTaxCode)
class ServiceTaxCodeAdmin(TenantScopedAdmin, admin.ModelAdmin):
    list_display = ["service", "tenant", "lc116_item", "national_code"]
    list_select_related = ["tenant", "service"]


class RecordForm(forms.Form):
    number = forms.CharField(label=_("NFS-e number"), max_length=20)
    url = forms.URLField(label=_("public page (optional)"), required=False, assume_scheme="https")


class InvoiceItemInline(TenantScopedAdmin, admin.TabularInline):
    model = InvoiceItem
    tenant_field = "invoice__tenant"
    read_only = True
    allow_add = False
    extra = 0
    fields = ["session", "description", "amount"]
    readonly_fields = fields

    def _row_tenant_id(self, obj) -> int:
        return obj.invoice.tenant_id


@admin.register(Invoice)
class InvoiceAdmin(TenantScopedAdmin, SimpleHistoryAdmin):
    read_only = True  # moved only through fiscal/issuing.py
    allow_add = False
    allow_revert = False
    list_display = [
        "reference",
        "tenant",
        "day",
        "status",
        "amount_brl",
        "number",
        "needs_attention",
        "message",
    ]
    list_filter = [("tenant", admin.RelatedOnlyFieldListFilter), "status", "needs_attention"]
    search_fields = ["reference", "number", "items__session__ticket__number"]
    list_select_related = ["tenant"]
    date_hierarchy = "created_at"
    inlines = [InvoiceItemInline]
    actions = ["send_again", "customer_asked_cpf", "record_number", "cancelled_by_hand", "resolved"]

    @admin.display(description=_("amount"), ordering="amount")
    def amount_brl(self, obj: Invoice) -> str:
        return brl(obj.amount)

    @admin.display(description=_("provider message"))
    def message(self, obj: Invoice) -> str:
        return format_html("<small>{}</small>", obj.provider_message[:200])

    def has_act_permission(self, request) -> bool:
        return self._may(request, self.edit_role)

    def _each(self, request, queryset, operation, done_text: str) -> None:
        done = []
        for invoice in queryset.order_by("pk")[:50]:
            try:
                operation(invoice)
            except DomainError as error:
                self.message_user(request, f"{invoice.reference}: {error}", messages.ERROR)
            else:
                done.append(invoice.reference)
        if done:
            self.message_user(request, done_text % {"refs": ", ".join(done)}, messages.SUCCESS)

    @admin.action(permissions=["act"], description=_("Send again (after fixing the settings)"))
    def send_again(self, request, queryset):
        self._each(request, queryset, issuing.retry, gettext("Queued again: %(refs)s."))

    @admin.action(permissions=["act"], description=_("The customer asked for the CPF on it"))
    def customer_asked_cpf(self, request, queryset):
        self._each(request, queryset, issuing.request_cpf, gettext("CPF added: %(refs)s."))

    @admin.action(permissions=["act"], description=_("Mark cancelled (cancelled by hand)"))
    def cancelled_by_hand(self, request, queryset):
        self._each(
            request, queryset, issuing.mark_cancelled_by_hand, gettext("Cancelled: %(refs)s.")
        )

    @admin.action(permissions=["act"], description=_("Mark as looked at"))
    def resolved(self, request, queryset):
        count = queryset.update(needs_attention=False)
        self.message_user(request, gettext("%(count)s marked.") % {"count": count})

    @admin.action(permissions=["act"], description=_("Record the number issued by hand"))
    def record_number(self, request, queryset):
        invoices = list(queryset.order_by("pk")[:20])
        form = RecordForm(request.POST if "apply" in request.POST else None)
        if len(invoices) != 1:
            self.message_user(request, gettext("Choose one NFS-e."), messages.ERROR)
            return None
        if not form.is_valid():
            context = {
                **self.admin_site.each_context(request),
                "title": gettext("Record the NFS-e number"),
                "opts": self.opts,
                "invoices": invoices,
                "form": form,
                "action": "record_number",
                "action_field": "action",
            }
            return TemplateResponse(request, "admin/fiscal/invoice/record_action.html", context)
        number, url = form.cleaned_data["number"], form.cleaned_data["url"]
        self._each(
            request,
            queryset.filter(pk=invoices[0].pk),
            lambda invoice: issuing.record_manual(invoice, number, url),
            gettext("Recorded: %(refs)s."),
        )
        return None
