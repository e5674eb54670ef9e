"""Admin of tenants and memberships, and the tenant scoping every tenant-owned admin shares.

The membership role is the permission: a staff user who manages a tenant (role manager or
admin) uses the admin for that tenant's rows without Django model permissions assigned one by
one; a superuser sees everything. Rows of other tenants are filtered out of every queryset, so
their URLs answer 404 — an outsider does not even learn they exist.
"""

from __future__ import annotations

import zoneinfo
from datetime import datetime

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist, PermissionDenied, ValidationError
from django.db import IntegrityError, models, transaction
from django.db.models import QuerySet
from django.http import Http404, HttpRequest
from django.utils import timezone
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin
from simple_history.models import DeletedObject
from simple_history.template_utils import HistoricalRecordContextHelper

from tenants.access import tenants_for
from tenants.clock import EMPTY, local_time
from tenants.models import Membership, Role, Tenant


def _tenant_ids(request: HttpRequest, role: str) -> frozenset[int]:
    """Ids of the live tenants where the user holds at least `role`; one query per request."""
    cache = request.__dict__.setdefault("_admin_tenant_ids", {})
    if role not in cache:
        cache[role] = frozenset(tenants_for(request.user, role).values_list("pk", flat=True))
    return cache[role]


def _owned_by_tenant(model: type[models.Model]) -> bool:
    try:
        field = model._meta.get_field("tenant")
    except FieldDoesNotExist:
        return False
    return getattr(field, "related_model", None) is Tenant


class TenantConsistentForm(forms.ModelForm):
    """Refuses a row that points at another tenant's service, device, ticket…

    The choices are already limited to the user's tenants, but a user who manages two of them
    could still pair one tenant with the other's service.
    """

    def clean(self) -> dict:
        cleaned = super().clean()
        tenant = cleaned.get("tenant") or getattr(self.instance, "tenant", None)
        if not isinstance(tenant, Tenant):
            return cleaned
        for name, value in cleaned.items():
            if name == "tenant" or value is None:
                continue
            values = list(value) if isinstance(value, QuerySet) else [value]
            if any(
                isinstance(v, models.Model)
                and _owned_by_tenant(type(v))
                and v.tenant_id != tenant.pk
                for v in values
            ):
                self.add_error(
                    name, gettext("Choose only rows of %(tenant)s.") % {"tenant": tenant.name}
                )
        return cleaned


def mask(secret: str) -> str:
    """Enough to recognise a secret, never enough to use it."""
    if not secret:
        return gettext("(not set)")
    return "••••" + secret[-4:] if len(secret) > 8 else "••••"


class WriteOnlySecretsForm(TenantConsistentForm):
    """A settings form whose `secrets` (provider tokens, webhook secrets) are write-only:
    always shown empty with a mask of what is saved, and left empty, what is saved stays."""

    secrets: tuple[str, ...] = ()

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for name in self.secrets:
            if name not in self.fields:
                continue
            current = getattr(self.instance, name, "") if self.instance.pk else ""
            self.fields[name].widget = forms.PasswordInput(render_value=False)
            self.fields[name].required = False
            self.fields[name].help_text = gettext("Saved: %(masked)s. Leave blank to keep it.") % {
                "masked": mask(current)
            }

    def clean(self) -> dict:
        cleaned = super().clean()
        for name in self.secrets:
            if name in cleaned and not (cleaned.get(name) or "").strip() and self.instance.pk:
                cleaned[name] = getattr(self.instance, name)
        return cleaned


class ReadableHistory(HistoricalRecordContextHelper):
    """A history's changes as a manager reads them: a status by its label, a time in the
    zone active for the page (the row's tenant's), an empty value as a dash."""

    def prepare_delta_change_value(self, change, value):
        value = super().prepare_delta_change_value(change, value)
        field = self.model._meta.get_field(change.field)
        if value is None or value == "" or (isinstance(value, DeletedObject) and value.pk is None):
            return EMPTY
        if field.choices:
            return dict(field.flatchoices).get(value, value)
        if isinstance(value, bool):
            return gettext("Yes") if value else gettext("No")
        if isinstance(value, datetime):
            return local_time(value)  # the page runs in the row's tenant's zone
        return value


class TenantScopedAdmin:
    """Scopes a ModelAdmin or inline to the tenants the user manages.

    Put it first among the bases. `tenant_field` names the model's foreign key to Tenant
    (empty for Tenant itself). Viewing needs `view_role` in the row's tenant, adding and
    changing `edit_role`; `read_only` admins never change (rows moved by the domain only);
    real deletion is off unless `allow_delete` (tickets and history point at these rows).
    """

    tenant_field = "tenant"
    view_role: str = Role.MANAGER
    edit_role: str = Role.MANAGER
    read_only = False
    allow_add = True
    allow_delete = False
    # simple-history's "revert" writes a past version back field by field, status included.
    allow_revert = True
    form = TenantConsistentForm

    # --- who and which rows ------------------------------------------------------------

    def _staff(self, request: HttpRequest) -> bool:
        user = request.user
        return user.is_active and user.is_staff

    def tenant_ids(self, request: HttpRequest, role: str) -> frozenset[int] | None:
        """The tenants the user may act on with `role`; None means all (superuser)."""
        if request.user.is_superuser:
            return None
        return _tenant_ids(request, role)

    def _row_tenant_id(self, obj: models.Model) -> int:
        return obj.pk if not self.tenant_field else getattr(obj, f"{self.tenant_field}_id")

    def _may(self, request: HttpRequest, role: str, obj: models.Model | None = None) -> bool:
        if not self._staff(request):
            return False
        ids = self.tenant_ids(request, role)
        if ids is None:
            return True
        if obj is None:
            return bool(ids)
        return self._row_tenant_id(obj) in ids

    def scope(self, request: HttpRequest, queryset: QuerySet, role: str | None = None) -> QuerySet:
        ids = self.tenant_ids(request, role or self.view_role)
        if ids is None:
            return queryset
        return queryset.filter(**{f"{self.tenant_field or 'pk'}__in": ids})

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return self.scope(request, super().get_queryset(request))

    def get_object(self, request: HttpRequest, object_id: str, from_field=None):
        # Django redirects to the index with "doesn't exist" when the row is not in the
        # queryset; answer 404 instead, the same for a missing row and another tenant's.
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404
        return obj

    # --- times in the row's tenant's zone ---------------------------------------------------

    def row_tenant(self, obj: models.Model) -> Tenant | None:
        for step in self.tenant_field.split("__") if self.tenant_field else ():
            obj = getattr(obj, step)
        return obj

    def get_list_display(self, request: HttpRequest):
        """A list's date-and-time columns in each row's tenant's zone: a superuser's list
        mixes studios in São Paulo and Manaus, and a single zone for the page would show one
        of them an hour off."""
        return [self._in_row_zone(name) for name in super().get_list_display(request)]

    def get_list_select_related(self, request: HttpRequest):
        # Each row's zone comes with the row, not with a query per row.
        related = super().get_list_select_related(request)
        if self.tenant_field and isinstance(related, list | tuple):
            return [*related, self.tenant_field]
        return related

    def changelist_view(self, request: HttpRequest, extra_context=None):
        # The date filters ("Hoje", "Este mês") and the date drill-down count days in the
        # active zone: the user's studios' own when they share one, the server's otherwise.
        ids = self.tenant_ids(request, self.view_role)
        tenants = Tenant.objects.all() if ids is None else Tenant.objects.filter(pk__in=ids)
        zones = set(tenants.values_list("timezone", flat=True).distinct()[:2])
        if len(zones) != 1:
            return super().changelist_view(request, extra_context)
        with timezone.override(zoneinfo.ZoneInfo(zones.pop())):
            response = super().changelist_view(request, extra_context)
            return response.render() if hasattr(response, "render") else response

    def _in_row_zone(self, name):
        try:
            field = self.model._meta.get_field(name) if isinstance(name, str) else None
        except FieldDoesNotExist:
            return name
        if not isinstance(field, models.DateTimeField):
            return name

        @admin.display(description=field.verbose_name, ordering=name)
        def column(obj: models.Model) -> str:
            return local_time(getattr(obj, name), self.row_tenant(obj))

        column.__name__ = name  # the column keeps its CSS class and its place in the URL
        return column

    # --- one row's pages in its tenant's time zone -----------------------------------------

    def _row_zone(self, object_id: str):
        field = f"{self.tenant_field}__timezone" if self.tenant_field else "timezone"
        rows = self.model._base_manager.filter(pk=self.valid_pk(object_id))
        name = rows.values_list(field, flat=True).first()
        return zoneinfo.ZoneInfo(name) if name else timezone.get_current_timezone()

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if object_id is None:
            return super().changeform_view(request, object_id, form_url, extra_context)
        with timezone.override(self._row_zone(object_id)):
            response = super().changeform_view(request, object_id, form_url, extra_context)
            # Rendered here, inside the zone: a TemplateResponse would render after it.
            return response.render() if hasattr(response, "render") else response

    def get_historical_record_context_helper(self, request, historical_record):
        return ReadableHistory(self.model, historical_record)

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and self.tenant_field == "tenant" and "tenant" not in fields:
            # A row never moves to another tenant: its tickets and history stay where they are.
            fields.append("tenant")
        return fields

    def get_changeform_initial_data(self, request: HttpRequest) -> dict:
        initial = super().get_changeform_initial_data(request)
        ids = self.tenant_ids(request, self.edit_role)
        if self.tenant_field == "tenant" and ids is not None and len(ids) == 1:
            initial.setdefault("tenant", next(iter(ids)))
        return initial

    # --- permissions: the membership role, not Django model permissions ------------------

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._may(request, self.view_role)

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return self._may(request, self.view_role, obj)

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return not self.read_only and self._may(request, self.edit_role, obj)

    def has_add_permission(self, request: HttpRequest, *args) -> bool:
        # Inlines receive the parent object as a second argument.
        return self.allow_add and not self.read_only and self._may(request, self.edit_role)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return self.allow_delete and not self.read_only and self._may(request, self.edit_role, obj)

    # --- choices in forms ----------------------------------------------------------------

    def _scoped_choices(self, request: HttpRequest, model: type[models.Model], queryset):
        ids = self.tenant_ids(request, self.edit_role)
        if ids is None:
            return queryset
        if model is Tenant:
            return queryset.filter(pk__in=ids)
        if _owned_by_tenant(model):
            return queryset.filter(tenant__in=ids)
        if model is get_user_model():
            # Only people already in the user's tenants: usernames of other studios stay hidden.
            return queryset.filter(memberships__tenant__in=ids).distinct()
        return queryset

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        model = db_field.related_model
        kwargs["queryset"] = self._scoped_choices(
            request, model, kwargs.get("queryset", model._default_manager.all())
        )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        model = db_field.related_model
        kwargs["queryset"] = self._scoped_choices(
            request, model, kwargs.get("queryset", model._default_manager.all())
        )
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    # --- history pages answer 404 outside the user's tenants, like the change page --------

    def valid_pk(self, object_id: str):
        """The URL's id as the primary key's type, or 404 (never a 500 for /admin/…/abc/)."""
        try:
            return self.model._meta.pk.to_python(unquote(object_id))
        except ValidationError:
            raise Http404 from None

    def _object_in_scope(self, request: HttpRequest, object_id: str):
        """The live row, None for a superuser looking at a deleted one; 404 for outsiders."""
        obj = self.get_queryset(request).filter(pk=self.valid_pk(object_id)).first()
        if obj is None and not request.user.is_superuser:
            raise Http404
        return obj

    def history_view(self, request, object_id, extra_context=None):
        self._object_in_scope(request, object_id)
        with timezone.override(self._row_zone(object_id)):
            response = super().history_view(request, object_id, extra_context)
            return response.render() if hasattr(response, "render") else response

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        obj = self._object_in_scope(request, object_id)
        if request.method == "POST" and self.revert_disabled(request, obj):
            # simple-history saves the posted version without asking for permission.
            raise PermissionDenied
        return super().history_form_view(request, object_id, version_id, extra_context)

    def revert_disabled(self, request, obj=None) -> bool:
        if not self.allow_revert or not self.has_change_permission(request, obj):
            return True
        return super().revert_disabled(request, obj)


class DeletedFilter(admin.SimpleListFilter):
    """Soft-deleted rows stay hidden unless asked for."""

    title = _("deleted")
    parameter_name = "deleted"

    def lookups(self, request, model_admin):
        # Context: simple-history says "Deleted" of one history record (Excluído).
        return [("yes", pgettext_lazy("filter", "Deleted")), ("all", _("All"))]

    def choices(self, changelist):
        yield {
            "selected": self.value() is None,
            "query_string": changelist.get_query_string(remove=[self.parameter_name]),
            "display": _("Not deleted"),
        }
        for value, title in self.lookup_choices:
            yield {
                "selected": self.value() == value,
                "query_string": changelist.get_query_string({self.parameter_name: value}),
                "display": title,
            }

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(deleted_at__isnull=False)
        if self.value() == "all":
            return queryset
        return queryset.filter(deleted_at__isnull=True)


class SoftDeleteAdmin:
    """Configuration is soft-deleted and restored by actions, never deleted for real."""

    soft_delete_role: str = Role.MANAGER

    def has_soft_delete_permission(self, request: HttpRequest) -> bool:
        return self._may(request, self.soft_delete_role) and not self.read_only

    def _mark(self, request, queryset, deleted_at, reason: str) -> list[models.Model]:
        done = []
        # Re-selected by id: the changelist's queryset may be DISTINCT, which FOR UPDATE refuses.
        ids = list(queryset.values_list("pk", flat=True))
        rows = queryset.model._default_manager.filter(pk__in=ids)
        for obj in rows.select_for_update().order_by("pk"):
            obj.deleted_at = deleted_at
            obj._history_user = request.user
            obj._change_reason = reason
            try:
                with transaction.atomic():
                    obj.save(update_fields=["deleted_at"])
            except IntegrityError:
                # A restored device whose identifier a live device took meanwhile.
                self.message_user(
                    request,
                    gettext("%(obj)s cannot be restored: another live row uses its identifier.")
                    % {"obj": obj},
                    messages.ERROR,
                )
                continue
            done.append(obj)
        return done

    @admin.action(
        permissions=["soft_delete"], description=_("Soft delete selected %(verbose_name_plural)s")
    )
    def soft_delete(self, request, queryset):
        with transaction.atomic():
            done = self._mark(
                request, queryset.filter(deleted_at__isnull=True), timezone.now(), "soft deleted"
            )
        self.message_user(
            request,
            # No ngettext: the project's catalogue tooling fills singular messages only.
            gettext("Soft deleted: %(count)d.") % {"count": len(done)},
            messages.SUCCESS,
        )

    @admin.action(
        permissions=["soft_delete"], description=_("Restore selected %(verbose_name_plural)s")
    )
    def restore(self, request, queryset):
        with transaction.atomic():
            done = self._mark(request, queryset.filter(deleted_at__isnull=False), None, "restored")
        self.message_user(
            request,
            gettext("Restored: %(count)d.") % {"count": len(done)},
            messages.SUCCESS,
        )

    @admin.display(description=_("deleted"), boolean=True)
    def is_deleted(self, obj) -> bool:
        return obj.deleted_at is not None


# --- the models of this app ---------------------------------------------------------------


class TenantForm(forms.ModelForm):
    class Meta:
        model = Tenant
        fields = ["primary_colour", "accent_colour"]  # the admin adds its fieldsets' fields
        # The browser's colour picker (and its hex field) instead of typing "#rrggbb".
        widgets = {
            "primary_colour": forms.TextInput(attrs={"type": "color"}),
            "accent_colour": forms.TextInput(attrs={"type": "color"}),
        }


@admin.register(Tenant)
class TenantAdmin(TenantScopedAdmin, SoftDeleteAdmin, SimpleHistoryAdmin):
    tenant_field = ""
    form = TenantForm
    # Managers see their studio's settings; its administrators change them.
    edit_role = Role.ADMIN
    list_display = ["name", "slug", "timezone", "is_active", "is_deleted", "created_at"]
    list_filter = ["is_active", DeletedFilter]
    search_fields = ["name", "slug", "contact_email"]
    prepopulated_fields = {"slug": ["name"]}
    actions = ["soft_delete", "restore"]
    fieldsets = [
        (None, {"fields": ["name", "slug", "contact_email", "timezone", "is_active"]}),
        (
            _("Branding"),
            {
                "fields": ["logo", "primary_colour", "accent_colour", "welcome_image"],
                "description": _(
                    "Used on the kiosk, the TV, the phone page and the printed ticket. Text on "
                    "your colours is black or white, whichever reads better; the accent written "
                    "on the primary colour needs a contrast of at least 4.5:1."
                ),
            },
        ),
        (_("Tickets"), {"fields": ["ticket_prefix", "payment_timeout_minutes", "expiry_hours"]}),
        (
            _("Queue policy"),
            {
                "fields": [
                    "priority_interleave",
                    "no_show_calls",
                    "no_show_timeout_minutes",
                    "reactivation_minutes",
                    "stuck_line_factor",
                    "wait_warning_minutes",
                    "wait_critical_minutes",
                    "skip_customers_in_service",
                    "hide_customer_names",
                    "missed_sessions_come_back",
                ]
            },
        ),
        (_("Record"), {"fields": ["created_at", "deleted_at"]}),
    ]

    def get_readonly_fields(self, request, obj=None):
        if request.user.is_superuser:
            return ["created_at", "deleted_at"]
        # The slug is in every kiosk's and display's URL: only the operator of the
        # installation renames it.
        return ["slug", "created_at", "deleted_at"]

    def get_prepopulated_fields(self, request, obj=None):
        return self.prepopulated_fields if request.user.is_superuser else {}

    def has_add_permission(self, request, *args) -> bool:
        # A new tenant belongs to nobody yet: only a superuser can create one.
        return self._staff(request) and request.user.is_superuser

    def has_soft_delete_permission(self, request) -> bool:
        return self._staff(request) and request.user.is_superuser


@admin.register(Membership)
class MembershipAdmin(TenantScopedAdmin, SimpleHistoryAdmin):
    # Who may do what in a studio is for its administrators; managers only see it.
    edit_role = Role.ADMIN
    allow_delete = True
    list_display = ["user", "tenant", "role", "created_at"]
    list_filter = [("tenant", admin.RelatedOnlyFieldListFilter), "role"]
    search_fields = ["user__username", "user__first_name", "user__last_name", "user__email"]
    list_select_related = ["user", "tenant"]
    fields = ["user", "tenant", "role", "created_at"]
    readonly_fields = ["created_at"]
