"""Admin of printers (connection, paper, texts), their print jobs, and the test page.

Imported at the end of equipment/admin.py. Scoped like every tenant-owned admin
(`TenantScopedAdmin`): a manager sees and acts on his studios' printers and jobs only.
"""

from __future__ import annotations

import copy

from django.contrib import admin, messages
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from equipment import destinations
from equipment.models import Connection, JobKind, JobStatus, PrinterSettings, PrintJob
from equipment.printing import PrintingError, print_test_page
from tenants.admin import TenantConsistentForm, TenantScopedAdmin
from tickets.printing import reprint


class PrinterSettingsForm(TenantConsistentForm):
    """Checks where the printer points against the platform's lists, unless a platform
    superuser saves it (equipment/destinations.py).

    `acting_user` is set per request by the admin. A destination a superuser set stays
    trusted while others edit only the paper and texts; a change of the connection by anyone
    else is checked and clears the trust. The comparison is with the stored row, not the
    form's initial data: a history revert starts from an old version's values.
    """

    acting_user = None

    def clean(self) -> dict:
        cleaned = super().clean()
        printer = copy.copy(self.instance)
        for name in (*destinations.DESTINATION_FIELDS, "equipment"):
            if name in cleaned:
                setattr(printer, name, cleaned[name])
        printer.set_by_platform = self.instance.set_by_platform = self._set_by_platform(printer)
        # Blank fields are the model's to report (PrinterSettings.clean).
        given = printer.host if printer.connection == Connection.NETWORK else printer.device
        if printer.set_by_platform or not printer.equipment_id or not given.strip():
            return cleaned
        try:
            destinations.check(printer)
        except destinations.DestinationRefused as error:
            self.add_error(error.field if error.field in self.fields else None, error.message)
        return cleaned

    def _set_by_platform(self, printer: PrinterSettings) -> bool:
        user = self.acting_user
        if user is not None and user.is_active and user.is_superuser:
            return True
        stored = (
            PrinterSettings.objects.filter(pk=self.instance.pk, set_by_platform=True)
            .values(*destinations.DESTINATION_FIELDS)
            .first()
        )
        return stored is not None and all(
            stored[name] == getattr(printer, name) for name in destinations.DESTINATION_FIELDS
        )


@admin.register(PrinterSettings)
class PrinterSettingsAdmin(TenantScopedAdmin, SimpleHistoryAdmin):
    form = PrinterSettingsForm
    tenant_field = "equipment__tenant"
    list_display = [
        "equipment",
        "tenant",
        "connection",
        "address",
        "paper_width",
        "prints_tickets",
        "prints_receipts",
        "status",
        "last_seen",
    ]
    list_filter = ["connection", "paper_width", "prints_tickets", "equipment__status"]
    search_fields = ["equipment__name", "equipment__identifier", "host", "device"]
    list_select_related = ["equipment__tenant"]
    actions = ["test_page"]
    fieldsets = [
        (
            None,
            {
                "fields": ["equipment", "prints_tickets", "prints_receipts"],
                "description": _(
                    "First add the printer as a device of kind “Printer”, then choose it here."
                ),
            },
        ),
        (
            _("Connection"),
            {"fields": ["connection", "host", "port", "device", "baudrate"]},
        ),
        (_("Paper"), {"fields": ["paper_width", "print_logo", "header_text", "footer_text"]}),
    ]

    def _row_tenant_id(self, obj: PrinterSettings) -> int:
        return obj.equipment.tenant_id

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            fields.append("equipment")  # its jobs and history stay with that device
        return fields

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        form.acting_user = request.user  # a class made for this request
        return form

    @admin.display(description=_("company/branch"))
    def tenant(self, obj: PrinterSettings):
        return obj.equipment.tenant

    @admin.display(description=_("status"), ordering="equipment__status")
    def status(self, obj: PrinterSettings) -> str:
        return obj.equipment.get_status_display()

    @admin.display(description=_("last seen"), ordering="equipment__last_seen_at")
    def last_seen(self, obj: PrinterSettings):
        return obj.equipment.last_seen_at

    @admin.action(description=_("Print a test page"))
    def test_page(self, request, queryset):
        queued = 0
        for printer in queryset.select_related("equipment__tenant"):
            # Checked here to say so at once; the spooler checks again when it connects.
            try:
                destinations.check(printer)
            except destinations.DestinationRefused as error:
                self.message_user(request, f"{printer}: {error.message}", messages.ERROR)
                continue
            print_test_page(printer.equipment, user=request.user)
            queued += 1
        self.message_user(
            request,
            gettext(
                "Test pages queued: %(count)d. They print within seconds if run_printer_spooler "
                "is running."
            )
            % {"count": queued},
            messages.SUCCESS,
        )


@admin.register(PrintJob)
class PrintJobAdmin(TenantScopedAdmin, admin.ModelAdmin):
    # Jobs are moved by the spooler and the domain functions, never edited by hand.
    read_only = True
    list_display = [
        "id",
        "created_at",
        "tenant",
        "printer",
        "kind",
        "ticket",
        "status",
        "attempts",
        "short_error",
        "printed_at",
    ]
    list_filter = [
        ("tenant", admin.RelatedOnlyFieldListFilter),
        "status",
        "kind",
        ("printer", admin.RelatedOnlyFieldListFilter),
    ]
    search_fields = ["ticket__number", "last_error"]
    list_select_related = ["tenant", "printer", "ticket"]
    date_hierarchy = "created_at"
    actions = ["print_again"]

    @admin.display(description=_("last error"))
    def short_error(self, obj: PrintJob) -> str:
        return obj.last_error[:80]

    @admin.action(description=_("Print again"))
    def print_again(self, request, queryset):
        """Tickets go through `reprint` (counted, audited, print_error → printing); receipts
        and test pages are queued again as they were."""
        done = 0
        for job in queryset.select_related("ticket", "printer"):
            if job.status in (JobStatus.PENDING, JobStatus.PRINTING):
                continue
            try:
                if job.kind == JobKind.TICKET:
                    reprint(job.tenant, job.ticket_id, request.user)
                else:
                    PrintJob.objects.create(
                        tenant=job.tenant,
                        printer=job.printer,
                        kind=job.kind,
                        payload=job.payload,
                        created_by=request.user,
                    )
                done += 1
            except PrintingError as error:
                self.message_user(request, str(error), messages.ERROR)
        self.message_user(
            request, gettext("Queued again: %(count)d.") % {"count": done}, messages.SUCCESS
        )
