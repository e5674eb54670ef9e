"""Admin of what is recorded: the audit log, outgoing webhooks and their deliveries, and the
audited save of settings that every settings admin shares.

Every class is scoped with `TenantScopedAdmin` (a manager sees only their tenants' rows;
others' answer 404). Settings saved here leave an audit entry naming the fields changed, never
their values when they are secrets.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from tenants.admin import DeletedFilter, SoftDeleteAdmin, TenantConsistentForm, TenantScopedAdmin
from tenants.audit import record
from tenants.models import (
    AuditAction,
    AuditLog,
    Role,
    WebhookAttempt,
    WebhookEndpoint,
    WebhookEvent,
    WebhookOutbox,
)
from tenants.netguard import Refused
from tenants.webhooks import check_target, retry

SECRET_FIELDS = frozenset({"secret", "smtp_password"})


def _loggable(name: str, value):
    if name in SECRET_FIELDS:
        return "***"
    if value is None or isinstance(value, str | int | float | bool | list):
        return value
    return str(value)


class AuditedSettingsAdmin:
    """`save_model` that writes a `settings_changed` entry with the fields changed."""

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        changed = list(form.changed_data)
        if change and not changed:
            return
        values = {name: _loggable(name, form.cleaned_data.get(name)) for name in changed}
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
    list_display = ["created_at", "tenant", "username", "action", "object_name", "ip"]
    list_filter = ["action", ("tenant", admin.RelatedOnlyFieldListFilter), "created_at"]
    search_fields = ["username", "entity_id", "ip"]
    date_hierarchy = "created_at"
    list_select_related = ["tenant"]
    fields = ["created_at", "tenant", "user", "username", "action", "object_name", "entity"]
    fields += ["entity_id", "data", "ip"]
    readonly_fields = fields
    show_full_result_count = False

    @admin.display(description=_("object"))
    def object_name(self, obj: AuditLog) -> str:
        return obj.object_name


# --- outgoing webhooks -------------------------------------------------------------------------


class WebhookEndpointForm(TenantConsistentForm):
    event_types = forms.MultipleChoiceField(
        label=_("events"),
        choices=WebhookEvent.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None chosen sends every event."),
    )
    secret = forms.CharField(
        label=_("signing secret"),
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text=_(
            "At least 16 characters, shared with the receiver. Never shown again; "
            "leave empty to keep the current one."
        ),
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["tenant", "target_url", "secret", "enabled", "event_types"]

    def clean_target_url(self) -> str:
        url = self.cleaned_data["target_url"]
        try:
            check_target(url)  # checked again at every delivery: names can change
        except Refused as error:
            raise forms.ValidationError(str(error)) from None
        return url

    def clean_secret(self) -> str:
        secret = self.cleaned_data["secret"]
        if not secret:
            if not self.instance.pk:
                raise forms.ValidationError(_("A new webhook needs a secret."))
            return self.instance.secret
        if len(secret) < 16:
            raise forms.ValidationError(_("Use at least 16 characters."))
        return secret


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(
    TenantScopedAdmin, SoftDeleteAdmin, AuditedSettingsAdmin, SimpleHistoryAdmin
):
    form = WebhookEndpointForm
    list_display = ["target_url", "tenant", "enabled", "events", "is_deleted", "created_at"]
    list_filter = ["enabled", ("tenant", admin.RelatedOnlyFieldListFilter), DeletedFilter]
    actions = ["soft_delete", "restore"]

    @admin.display(description=_("events"))
    def events(self, obj) -> str:
        return ", ".join(obj.event_types) or gettext("all")


class WebhookAttemptInline(admin.TabularInline):
    """Read-only; shown only inside an outbox row the user may already see.

    A tenant reads delivered or not and our reason; the receiver's HTTP status only a platform
    superuser sees (with private addresses allowed it may be an internal service's).
    """

    model = WebhookAttempt
    extra = 0
    fields = ["number", "at", "delivered", "error", "duration_ms"]
    readonly_fields = [*fields, "status_code"]

    def get_fields(self, request, obj=None):
        if request.user.is_superuser:
            return [*self.fields[:3], "status_code", *self.fields[3:]]
        return self.fields

    @admin.display(description=_("delivered"), boolean=True)
    def delivered(self, obj: WebhookAttempt) -> bool:
        return obj.ok

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.is_active and request.user.is_staff


@admin.register(WebhookOutbox)
class WebhookOutboxAdmin(TenantScopedAdmin, admin.ModelAdmin):
    """The delivery log: what was sent where, how often, and what the receiver answered."""

    read_only = True
    allow_add = False
    list_display = ["created_at", "tenant", "event_type", "endpoint", "status", "attempts"]
    list_display += ["next_attempt_at", "last_error"]
    list_filter = ["status", "event_type", ("tenant", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["tenant", "endpoint"]
    date_hierarchy = "created_at"
    fields = ["event_id", "tenant", "endpoint", "event_type", "payload", "status", "attempts"]
    fields += ["next_attempt_at", "last_error", "created_at", "delivered_at"]
    readonly_fields = fields
    inlines = [WebhookAttemptInline]
    actions = ["retry_now"]

    def has_retry_permission(self, request) -> bool:
        return self._may(request, Role.MANAGER)

    @admin.action(permissions=["retry"], description=_("Send the selected events again now"))
    def retry_now(self, request, queryset) -> None:
        count = retry(queryset)
        self.message_user(
            request, gettext("Events queued again: %(count)d.") % {"count": count}, messages.SUCCESS
        )
