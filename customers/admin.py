"""Admin of customers who come back: the customers (search by name or a full CPF/phone, their
tickets and packages, a package sold at the counter), the packages and memberships a studio
sells, and what each customer holds, with the manager's moves on it (adjust sessions with a
reason, renew a membership). Scoped to the tenants the user manages.

Balances never change by a form field: only through tickets/credits.py, which writes the
ledger row and the audit entry.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import ActionLocation
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from customers.models import Customer
from tenants.access import tenants_for
from tenants.admin import (
    DeletedFilter,
    SoftDeleteAdmin,
    TenantConsistentForm,
    TenantScopedAdmin,
)
from tenants.br import clean_name, normalize_cpf, normalize_phone, visible_text
from tenants.clock import local_time
from tenants.errors import DomainError
from tenants.models import Role
from tickets import credits, waivers
from tickets.admin import badge, document_digits, money
from tickets.models import (
    CreditEntry,
    CustomerPackage,
    Package,
    PackageCredit,
    PackageService,
    PackageSharing,
    Questionnaire,
    Ticket,
    Waiver,
    WaiverQuestion,
)

# A customer added by hand at the front desk agreed on paper, not at the kiosk.
COUNTER_CONSENT = "balcao"


def sessions_of(package: CustomerPackage) -> str:
    """ "Crioterapia: 7/10": sessions left of those bought, per service."""
    return ", ".join(
        f"{c.service}: {c.balance}/{c.granted}"
        if c.balance is not None
        else gettext("%(service)s: unlimited, %(n)s a day") % {"service": c.service, "n": c.per_day}
        for c in package.credits.all()
    )


def action_page(model_admin, request, action: str, title: str, obj, form) -> TemplateResponse:
    """An action's page for one row and its form; it posts back where the action came from
    (the list, or the row's own page)."""
    prefix = f"{ActionLocation.CHANGE_FORM.value}-"
    field = f"{prefix}action" if f"{prefix}action" in request.POST else "action"
    context = {
        **model_admin.admin_site.each_context(request),
        "title": title,
        "opts": model_admin.opts,
        "objects": [obj],
        "form": form,
        "action": action,
        "action_field": field,
        "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, "admin/package_action.html", context)


class CustomerForm(TenantConsistentForm):
    # Typed with punctuation at the counter; stored as digits (the model's 11).
    cpf = forms.CharField(label=_("CPF"), max_length=14)
    phone = forms.CharField(label=_("phone"), max_length=16, required=False)

    class Meta:
        model = Customer
        fields = ["tenant", "cpf", "name", "phone", "email"]

    def clean_cpf(self) -> str:
        return normalize_cpf(self.cleaned_data["cpf"])

    def clean_name(self) -> str:
        return clean_name(self.cleaned_data["name"])

    def clean_phone(self) -> str:
        value = self.cleaned_data["phone"]
        return normalize_phone(value) if visible_text(value) else ""

    def clean(self) -> dict:
        cleaned = super().clean()
        tenant = cleaned.get("tenant") or (
            self.instance.tenant if self.instance.tenant_id else None
        )
        cpf = cleaned.get("cpf")
        if tenant and cpf:
            taken = Customer.objects.filter(tenant=tenant, cpf=cpf).exclude(pk=self.instance.pk)
            if taken.exists():
                raise ValidationError({"cpf": gettext("This CPF is already a customer here.")})
        return cleaned


class CustomerPackageInline(TenantScopedAdmin, admin.TabularInline):
    model = CustomerPackage
    read_only = True
    extra = 0
    show_change_link = True
    fields = ["package", "sessions_left", "valid_until_local", "price"]
    readonly_fields = fields

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("package", "tenant")
            .prefetch_related("credits__service")
        )

    @admin.display(description=_("sessions left"))
    def sessions_left(self, obj: CustomerPackage) -> str:
        return sessions_of(obj)

    @admin.display(description=_("valid until"))
    def valid_until_local(self, obj: CustomerPackage) -> str:
        return local_time(obj.valid_until, obj.tenant)


class CustomerWaiverInline(TenantScopedAdmin, admin.TabularInline):
    """The health forms signed: version, when, outcome; never an answer (none is stored)."""

    model = Waiver
    read_only = True
    extra = 0
    fields = ["version", "signed_name", "signed_at", "outcome", "valid_until", "clear_reason"]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("version__questionnaire__service")


class CustomerTicketInline(TenantScopedAdmin, admin.TabularInline):
    """The customer's visits, newest first."""

    model = Ticket
    fk_name = "customer"
    read_only = True
    extra = 0
    show_change_link = True
    fields = ["number", "day", "status_badge", "services", "total_brl"]
    readonly_fields = fields
    verbose_name_plural = _("tickets")

    def get_queryset(self, request):
        return (
            super().get_queryset(request).prefetch_related("lines__service").order_by("-created_at")
        )

    @admin.display(description=_("status"))
    def status_badge(self, obj: Ticket) -> str:
        return badge(obj.status_colour, obj.get_status_display())

    @admin.display(description=_("services"))
    def services(self, obj: Ticket) -> str:
        return ", ".join(
            f"{line.service}{' (' + gettext('package') + ')' if line.covered else ''}"
            for line in obj.lines.all()
        )

    @admin.display(description=_("total"))
    def total_brl(self, obj: Ticket) -> str:
        return money(obj.total)


class SellForm(forms.Form):
    package = forms.ModelChoiceField(label=_("package"), queryset=Package.objects.none())

    def __init__(self, *args, customer: Customer, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["package"].queryset = Package.objects.sellable().for_tenant(customer.tenant)


@admin.register(Customer)
class CustomerAdmin(TenantScopedAdmin, admin.ModelAdmin):
    form = CustomerForm
    list_display = ["name", "cpf_shown", "phone_shown", "sessions", "last_seen_local", "tenant"]
    list_filter = [("tenant", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["name"]
    search_help_text = _("Name, or a full CPF or phone (punctuation is fine).")
    list_select_related = ["tenant"]
    inlines = [CustomerPackageInline, CustomerWaiverInline, CustomerTicketInline]
    actions = ["sell_package"]
    fields = [
        "tenant",
        "cpf",
        "name",
        "phone",
        "email",
        "sessions",
        "consent_version",
        "consent_at",
        "created_at",
        "last_seen_at",
    ]
    readonly_fields = ["sessions", "consent_version", "consent_at", "created_at", "last_seen_at"]

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        # The CPF is the customer: a different one is another customer.
        return [*fields, "cpf"] if obj is not None else fields

    def get_search_results(self, request, queryset, search_term):
        # Exact only: a partial match would let anyone probe stored CPFs digit by digit.
        document = document_digits(search_term)
        if document:
            return queryset.filter(Q(cpf=document) | Q(phone=document)), False
        return super().get_search_results(request, queryset, search_term)

    def save_model(self, request, obj: Customer, form, change) -> None:
        if not change:
            now = timezone.now()
            obj.consent_version, obj.consent_at, obj.last_seen_at = COUNTER_CONSENT, now, now
        super().save_model(request, obj, form, change)

    @admin.display(description=_("CPF"))
    def cpf_shown(self, obj: Customer) -> str:
        return obj.cpf_masked

    @admin.display(description=_("phone"))
    def phone_shown(self, obj: Customer) -> str:
        return obj.phone_masked

    @admin.display(description=_("last visit"), ordering="last_seen_at")
    def last_seen_local(self, obj: Customer) -> str:
        return local_time(obj.last_seen_at, obj.tenant)

    @admin.display(description=_("package sessions"))
    def sessions(self, obj: Customer) -> str:
        return ", ".join(f"{b.service}: {b.left}" for b in credits.balances(obj)) or "—"

    @admin.action(
        permissions=["change"],
        description=_("Sell a package at the counter"),
        location=[ActionLocation.CHANGE_LIST, ActionLocation.CHANGE_FORM],
    )
    def sell_package(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, gettext("Choose one customer at a time."), messages.ERROR)
            return None
        customer = queryset.select_related("tenant").get()
        form = SellForm(request.POST if "apply" in request.POST else None, customer=customer)
        if form.is_valid():
            package = form.cleaned_data["package"]
            try:
                credits.sell_at_counter(customer.tenant, customer, package, user=request.user)
            except DomainError as error:
                form.add_error("package", str(error))
            else:
                self.message_user(
                    request,
                    gettext("“%(package)s” sold to %(name)s.")
                    % {"package": package.name, "name": customer.name},
                    messages.SUCCESS,
                )
                return None
        return action_page(
            self, request, "sell_package", gettext("Sell a package at the counter"), customer, form
        )


# --- packages and what customers hold ---------------------------------------------------


class PackageServiceForm(forms.ModelForm):
    class Meta:
        model = PackageService
        fields = ["service", "sessions", "per_day"]

    def clean(self) -> dict:
        cleaned = super().clean()
        # A package being added has no row yet; its services are then limited to the
        # manager's studios by the inline's choices.
        package = self.instance.package if self.instance.package_id else None
        service = cleaned.get("service")
        if service is not None and package and service.tenant_id != package.tenant_id:
            self.add_error("service", gettext("Choose a service of the package's company."))
        if cleaned.get("sessions") is None and cleaned.get("per_day") is None:
            self.add_error(
                "per_day", gettext("Unlimited sessions need a daily limit (at most per day).")
            )
        return cleaned


class ParentPermissionsInline(admin.TabularInline):
    """The rows of a form owned by its parent (a package's services, a questionnaire's
    questions): whoever may edit the parent edits them. Managers hold no Django model
    permissions (TenantScopedAdmin decides by role), so Django's default would hide these
    inlines from every manager who is not a superuser."""

    def _parent(self) -> admin.ModelAdmin:
        return self.admin_site.get_model_admin(self.parent_model)

    def has_view_permission(self, request, obj=None) -> bool:
        return self._parent().has_view_permission(request, obj)

    def has_add_permission(self, request, obj=None) -> bool:
        parent = self._parent()
        return parent.has_change_permission(request, obj) or parent.has_add_permission(request)

    def has_change_permission(self, request, obj=None) -> bool:
        return self._parent().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self._parent().has_change_permission(request, obj)


class PackageServiceInline(ParentPermissionsInline):
    """The services a package covers; scoped through its package (the parent admin)."""

    model = PackageService
    form = PackageServiceForm
    extra = 1
    min_num = 1

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "service" and not request.user.is_superuser:
            kwargs["queryset"] = db_field.related_model.objects.filter(
                tenant__in=tenants_for(request.user, Role.MANAGER)
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(Package)
class PackageAdmin(TenantScopedAdmin, SoftDeleteAdmin, SimpleHistoryAdmin):
    list_display = ["name", "tenant", "kind", "price_brl", "validity_days", "covers", "is_active"]
    list_filter = [("tenant", admin.RelatedOnlyFieldListFilter), "kind", "is_active", DeletedFilter]
    search_fields = ["name"]
    list_select_related = ["tenant"]
    actions = ["soft_delete", "restore"]
    inlines = [PackageServiceInline]
    fields = [
        "tenant",
        "name",
        "kind",
        "price",
        "validity_days",
        "shareable",
        "is_active",
        "created_at",
        "deleted_at",
    ]
    readonly_fields = ["created_at", "deleted_at"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("items__service")

    @admin.display(description=_("price"), ordering="price")
    def price_brl(self, obj: Package) -> str:
        return money(obj.price)

    @admin.display(description=_("covers"))
    def covers(self, obj: Package) -> str:
        return ", ".join(str(item) for item in obj.items.all())


class PackageCreditInline(TenantScopedAdmin, admin.TabularInline):
    model = PackageCredit
    read_only = True
    extra = 0
    fields = ["service", "granted", "balance"]
    readonly_fields = fields


class AdjustForm(forms.Form):
    credit = forms.ModelChoiceField(label=_("service"), queryset=PackageCredit.objects.none())
    change = forms.IntegerField(
        label=_("sessions to add"),
        help_text=_("A negative number removes sessions."),
    )
    reason = forms.CharField(
        label=_("reason"),
        max_length=200,
        widget=forms.TextInput(attrs={"size": 60}),
        help_text=_("Recorded in the package's history and in the audit log."),
    )

    def __init__(self, *args, package: CustomerPackage, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["credit"].queryset = package.credits.select_related("service")


class PackageSharingInline(TenantScopedAdmin, admin.TabularInline):
    """The other CPFs the owner named (shareable packages); added by the action, audited."""

    model = PackageSharing
    read_only = True
    extra = 0
    fields = ["cpf_shown", "added_at", "added_by"]
    readonly_fields = fields

    @admin.display(description=_("CPF"))
    def cpf_shown(self, obj: PackageSharing) -> str:
        return str(obj)


class ShareForm(forms.Form):
    cpf = forms.CharField(label=_("CPF of the person the owner names"), max_length=14)


@admin.register(CustomerPackage)
class CustomerPackageAdmin(TenantScopedAdmin, admin.ModelAdmin):
    """What a customer holds. Sold at the kiosk (paid ticket) or from the customer's page
    (counter sale); here only read, adjusted with a reason, or renewed."""

    allow_add = False
    list_display = ["package", "customer", "tenant", "sessions_left", "valid_until_local"]
    list_filter = [("tenant", admin.RelatedOnlyFieldListFilter), "package"]
    search_fields = ["customer__name", "package__name"]
    list_select_related = ["tenant", "package", "customer"]
    inlines = [PackageCreditInline, PackageSharingInline]
    actions = ["adjust_sessions", "renew_membership", "share_package"]
    fields = [
        "tenant",
        "customer",
        "package",
        "price",
        "valid_from",
        "valid_until",
        "ticket",
        "ledger",
    ]
    readonly_fields = fields

    @admin.display(description=_("session movements"))
    def ledger(self, obj: CustomerPackage) -> str:
        """Every movement of the package's sessions, oldest first, with who and why."""
        entries = (
            CreditEntry.objects.filter(credit__customer_package=obj)
            .select_related("credit__service", "line__ticket", "user")
            .order_by("created_at", "id")
        )
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:+d}</td><td>{}</td><td>{}</td>"
            "<td>{}</td></tr>",
            (
                (
                    local_time(e.created_at, obj.tenant),
                    e.credit.service,
                    e.get_kind_display(),
                    e.change,
                    e.balance_after,
                    e.user or "—",
                    e.reason or "—",
                )
                for e in entries
            ),
        )
        head = format_html(
            "<tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
            gettext("when"),
            gettext("service"),
            gettext("kind"),
            gettext("change"),
            gettext("left after"),
            gettext("user"),
            gettext("reason"),
        )
        return format_html("<table>{}{}</table>", head, rows)

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("credits__service")

    @admin.display(description=_("sessions left"))
    def sessions_left(self, obj: CustomerPackage) -> str:
        return sessions_of(obj)

    @admin.display(description=_("valid until"), ordering="valid_until")
    def valid_until_local(self, obj: CustomerPackage) -> str:
        return local_time(obj.valid_until, obj.tenant)

    def _one(self, request, queryset) -> CustomerPackage | None:
        if queryset.count() != 1:
            self.message_user(request, gettext("Choose one package at a time."), messages.ERROR)
            return None
        return queryset.select_related("tenant", "package", "customer").get()

    @admin.action(
        permissions=["view"],
        description=_("Adjust sessions (with a reason)"),
        location=[ActionLocation.CHANGE_LIST, ActionLocation.CHANGE_FORM],
    )
    def adjust_sessions(self, request, queryset):
        package = self._one(request, queryset)
        if package is None:
            return None
        form = AdjustForm(request.POST if "apply" in request.POST else None, package=package)
        if form.is_valid():
            try:
                credits.adjust(
                    package.tenant,
                    form.cleaned_data["credit"].pk,
                    form.cleaned_data["change"],
                    user=request.user,
                    reason=form.cleaned_data["reason"],
                )
            except DomainError as error:
                form.add_error("change", str(error))
            else:
                self.message_user(request, gettext("Sessions adjusted."), messages.SUCCESS)
                return None
        return action_page(
            self, request, "adjust_sessions", gettext("Adjust sessions"), package, form
        )

    @admin.action(
        permissions=["view"],
        description=_("Renew membership for the next period"),
        location=[ActionLocation.CHANGE_LIST, ActionLocation.CHANGE_FORM],
    )
    def renew_membership(self, request, queryset):
        package = self._one(request, queryset)
        if package is None:
            return None
        try:
            renewed = credits.renew(package.tenant, package.pk, user=request.user)
        except DomainError as error:
            self.message_user(request, str(error), messages.ERROR)
        else:
            self.message_user(
                request,
                gettext("Renewed until %(date)s.")
                % {"date": local_time(renewed.valid_until, package.tenant)},
                messages.SUCCESS,
            )
        return None

    @admin.action(
        permissions=["view"],
        description=_("Share with another CPF the owner names"),
        location=[ActionLocation.CHANGE_LIST, ActionLocation.CHANGE_FORM],
    )
    def share_package(self, request, queryset):
        package = self._one(request, queryset)
        if package is None:
            return None
        form = ShareForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            try:
                credits.share(
                    package.tenant, package.pk, form.cleaned_data["cpf"], user=request.user
                )
            except DomainError as error:
                form.add_error("cpf", str(error))
            else:
                self.message_user(request, gettext("Package shared."), messages.SUCCESS)
                return None
        return action_page(
            self, request, "share_package", gettext("Share the package"), package, form
        )


# --- health waivers -----------------------------------------------------------------------------


class WaiverQuestionInline(ParentPermissionsInline):
    """The yes/no questions, in order; scoped through the questionnaire (the parent admin)."""

    model = WaiverQuestion
    extra = 3
    fields = ["position", "text", "blocks_on"]


@admin.register(Questionnaire)
class QuestionnaireAdmin(TenantScopedAdmin, admin.ModelAdmin):
    """A service's health form. Saving changed questions publishes a new version: customers
    who signed the old one answer again at their next visit."""

    list_display = ["service", "tenant", "version_shown", "validity_months", "is_active"]
    list_filter = [("tenant", admin.RelatedOnlyFieldListFilter), "is_active"]
    list_select_related = ["tenant", "service"]
    inlines = [WaiverQuestionInline]
    fields = ["tenant", "service", "validity_months", "is_active"]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "service" and not request.user.is_superuser:
            kwargs["queryset"] = db_field.related_model.objects.filter(
                tenant__in=tenants_for(request.user, Role.MANAGER)
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_related(self, request, form, formsets, change) -> None:
        super().save_related(request, form, formsets, change)
        waivers.publish(form.instance, user=request.user)

    @admin.display(description=_("version"))
    def version_shown(self, obj: Questionnaire) -> str:
        current = waivers.current_version(obj)
        return str(current.number) if current else "—"


@admin.register(Waiver)
class WaiverAdmin(TenantScopedAdmin, admin.ModelAdmin):
    """Signatures as kept (LGPD art. 11): version, time, outcome; the team clears one in the
    operator panel, with a reason."""

    read_only = True
    allow_add = False
    list_display = ["version", "customer", "signed_at", "outcome", "valid_until", "tenant"]
    list_filter = [("tenant", admin.RelatedOnlyFieldListFilter), "outcome"]
    list_select_related = ["tenant", "customer", "version__questionnaire__service"]
    fields = [
        "tenant",
        "version",
        "customer",
        "ticket",
        "signed_name",
        "signed_at",
        "outcome",
        "valid_until",
        "cleared_at",
        "cleared_by",
        "clear_reason",
    ]
    readonly_fields = fields
