"""Admin of the back office: where alerts go, the alerts, and daily statistics.

Scoped with `TenantScopedAdmin` like every tenant-owned admin; settings saved here are audited.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.validators import validate_email
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from ops.models import Alert, DailyStats, DeviceDailyStats, NotificationSettings
from ops.notifications import check_smtp_host, check_smtp_port
from ops.views import minutes
from tenants.admin import TenantConsistentForm, TenantScopedAdmin
from tenants.admin_audit import AuditedSettingsAdmin
from tenants.netguard import Refused
from tenants.webhooks import check_target


class NotificationSettingsForm(TenantConsistentForm):
    """Checks where alerts go as outgoing webhooks are checked (ops/notifications.py).

    `acting_user` is set per request by the admin. An SMTP host and port a platform superuser
    saved stay trusted while others edit the rest; a change of either by anyone else is
    checked and clears the trust (compared with the stored row, as a history revert starts
    from an old version's values).
    """

    acting_user = None
    smtp_password = forms.CharField(
        label=_("SMTP password"),
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text=_("Never shown again; leave empty to keep the current one."),
    )

    class Meta:
        model = NotificationSettings
        fields = "__all__"

    def clean_slack_webhook_url(self) -> str:
        url = self.cleaned_data["slack_webhook_url"]
        if url:
            try:
                check_target(url)  # checked again at every send: names can change
            except Refused as error:
                raise forms.ValidationError(str(error)) from None
        return url

    def clean_smtp_password(self) -> str:
        return self.cleaned_data["smtp_password"] or self.instance.smtp_password

    def clean_email_to(self) -> str:
        value = self.cleaned_data["email_to"]
        for address in [a.strip() for a in value.split(",") if a.strip()]:
            try:
                validate_email(address)
            except forms.ValidationError:
                raise forms.ValidationError(
                    _("“%(address)s” is not an e-mail address.") % {"address": address}
                ) from None
        return value

    def clean(self) -> dict:
        cleaned = super().clean()
        if cleaned.get("enabled") and not (
            cleaned.get("slack_webhook_url") or cleaned.get("email_to")
        ):
            raise forms.ValidationError(_("Give a Slack webhook or an e-mail address to alert."))
        host, port = (cleaned.get("smtp_host") or "").strip(), cleaned.get("smtp_port")
        if port is None:
            return cleaned  # the field's own error
        trusted = self._smtp_set_by_platform(host, port)
        self.instance.smtp_set_by_platform = trusted
        if host and not trusted:  # empty: the platform's own mailer
            try:
                check_smtp_port(port)
            except Refused as error:
                self.add_error("smtp_port", str(error))
            try:
                check_smtp_host(host, port)  # checked again at every send
            except Refused as error:
                self.add_error("smtp_host", str(error))
        return cleaned

    def _smtp_set_by_platform(self, host: str, port: int) -> bool:
        user = self.acting_user
        if user is not None and user.is_active and user.is_superuser:
            return True
        return NotificationSettings.objects.filter(
            pk=self.instance.pk, smtp_set_by_platform=True, smtp_host=host, smtp_port=port
        ).exists()


@admin.register(NotificationSettings)
class NotificationSettingsAdmin(TenantScopedAdmin, AuditedSettingsAdmin, SimpleHistoryAdmin):
    form = NotificationSettingsForm
    list_display = ["tenant", "enabled", "slack_webhook_url", "email_to"]
    fieldsets = [
        (None, {"fields": ["tenant", "enabled"]}),
        (_("Where to"), {"fields": ["slack_webhook_url", "email_to", "email_from"]}),
        (
            _("SMTP (empty: the server's own)"),
            {
                "fields": [
                    "smtp_host",
                    "smtp_port",
                    "smtp_username",
                    "smtp_password",
                    "smtp_use_tls",
                ]
            },
        ),
        (
            _("When"),
            {
                "fields": [
                    "queue_length_threshold",
                    "wait_minutes_threshold",
                    "payment_failures_threshold",
                ]
            },
        ),
    ]

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        form.acting_user = request.user  # a class made for this request
        return form


@admin.register(Alert)
class AlertAdmin(TenantScopedAdmin, admin.ModelAdmin):
    read_only = True
    allow_add = False
    list_display = ["opened_at", "tenant", "kind", "message", "resolved_at", "notified"]
    list_display += ["send_error"]
    list_filter = ["kind", ("tenant", admin.RelatedOnlyFieldListFilter)]
    readonly_fields = ["tenant", "kind", "key", "message", "opened_at", "resolved_at", "notified"]
    readonly_fields += ["send_error"]


@admin.register(DailyStats)
class DailyStatsAdmin(TenantScopedAdmin, admin.ModelAdmin):
    read_only = True
    allow_add = False
    list_display = ["day", "tenant", "service", "tickets", "completed", "revenue"]
    list_display += ["avg_wait", "p95_wait", "no_shows", "cancellations"]
    list_filter = [("tenant", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["tenant", "service"]
    date_hierarchy = "day"
    exclude = ["hourly"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields if f.name != "hourly"]

    # A manager reads waits in minutes, as on the dashboard, not in stored seconds.
    @admin.display(description=_("average wait"), ordering="avg_wait_seconds")
    def avg_wait(self, obj: DailyStats) -> str:
        return minutes(obj.avg_wait_seconds)

    @admin.display(description=_("95th percentile wait"), ordering="p95_wait_seconds")
    def p95_wait(self, obj: DailyStats) -> str:
        return minutes(obj.p95_wait_seconds)


@admin.register(DeviceDailyStats)
class DeviceDailyStatsAdmin(TenantScopedAdmin, admin.ModelAdmin):
    """Each device's day (ops/utilisation.py), written by snapshot_daily_stats only."""

    read_only = True
    allow_add = False
    list_display = ["day", "tenant", "equipment", "sessions", "in_use", "cooling", "idle"]
    list_display += ["revenue"]
    list_filter = [("tenant", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["tenant", "equipment"]
    date_hierarchy = "day"

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    @admin.display(description=_("in use"), ordering="seconds_in_use")
    def in_use(self, obj: DeviceDailyStats) -> str:
        return minutes(obj.seconds_in_use)

    @admin.display(description=_("cooling down"), ordering="seconds_cooling")
    def cooling(self, obj: DeviceDailyStats) -> str:
        return minutes(obj.seconds_cooling)

    @admin.display(description=_("idle"), ordering="seconds_idle")
    def idle(self, obj: DeviceDailyStats) -> str:
        return minutes(obj.seconds_idle)
