"""Admin of the catalog and of tickets, scoped to the tenants the user manages.

A ticket's status is never a form field here: it moves only through the "change status" and
"cancel" actions, which call the state machine (`change_ticket_status`, `cancel_ticket`) under
the ticket's row lock and record who and why in its history.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import ActionLocation
from django.db.models import Prefetch, Q
from django.template.response import TemplateResponse
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from tenants.admin import DeletedFilter, SoftDeleteAdmin, TenantConsistentForm, TenantScopedAdmin
from tenants.br import clean_name, typed_digits
from tenants.errors import DomainError
from tenants.money import brl
from tickets.models import (
    DailyCounter,
    Extra,
    Service,
    Ticket,
    TicketExtra,
    TicketLine,
    TicketStatus,
    valid_transitions,
)
from tickets.queue import cancel_ticket, hand_moves, move_by_hand

T = TicketStatus
# An action's page lists every ticket it touches; past this, filter the list first.
MAX_TICKETS_PER_ACTION = 100


def money(value) -> str:
    return brl(value) if value is not None else "—"


def badge(colour: str, label: str) -> str:
    return format_html('<span style="color:{}">&#9679;</span> {}', colour, label)


def document_digits(term: str) -> str:
    """The ASCII digits of a CPF or phone typed with any punctuation and in any script's
    digits (as the kiosk stores it), or "" for other searches."""
    found = typed_digits(term) or ""
    if len(found) in (12, 13) and found.startswith("55"):
        found = found[2:]
    return found if len(found) in (10, 11) else ""


class DocumentSearch:
    """Search by number and name, and by a full CPF or phone however it is punctuated.

    CPF and phone match exactly (and use the CPF index), never in part: a partial match would
    let anyone probe stored documents digit by digit.
    """

    document_path = ""

    def get_search_results(self, request, queryset, search_term):
        document = document_digits(search_term)
        if document:
            path = self.document_path
            return queryset.filter(
                Q(**{f"{path}customer_cpf": document}) | Q(**{f"{path}customer_phone": document})
            ), False
        return super().get_search_results(request, queryset, search_term)


# --- catalog --------------------------------------------------------------------------------


@admin.register(Service)
class ServiceAdmin(TenantScopedAdmin, SoftDeleteAdmin, SimpleHistoryAdmin):
    list_display = [
        "name",
        "tenant",
        "prefix",
        "price_brl",
        "duration_minutes",
        "display_order",
        "is_active",
        "is_deleted",
    ]
    list_filter = [("tenant", admin.RelatedOnlyFieldListFilter), "is_active", DeletedFilter]
    search_fields = ["name", "description"]
    list_select_related = ["tenant"]
    actions = ["soft_delete", "restore"]
    fields = [
        "tenant",
        "name",
        "description",
        "picture",
        "price",
        "duration_minutes",
        "hard_maximum",
        "cooldown_minutes",
        "prefix",
        "display_order",
        "is_active",
        "created_at",
        "deleted_at",
    ]
    readonly_fields = ["created_at", "deleted_at"]

    @admin.display(description=_("price"), ordering="price")
    def price_brl(self, obj: Service) -> str:
        return money(obj.price)


class ExtraForm(TenantConsistentForm):
    # The stock the manager saw: kiosks sell while the page is open, and saving a stale
    # number would silently give back or take away what they sold.
    stock_seen = forms.IntegerField(required=False, widget=forms.HiddenInput)

    class Meta:
        model = Extra
        fields = "__all__"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if "stock_seen" in self.fields:
            self.fields["stock_seen"].initial = self.instance.stock

    def clean(self) -> dict:
        cleaned = super().clean()
        if self.instance.pk and "stock" in self.changed_data:
            current = Extra.objects.filter(pk=self.instance.pk).values_list("stock", flat=True)
            current = current.first()
            if current != cleaned.get("stock_seen"):
                self.add_error(
                    "stock",
                    gettext(
                        "The stock changed while you edited it (now %(stock)s). "
                        "Check the number and save again."
                    )
                    % {"stock": current if current is not None else gettext("unlimited")},
                )
        return cleaned


@admin.register(Extra)
class ExtraAdmin(TenantScopedAdmin, SoftDeleteAdmin, SimpleHistoryAdmin):
    form = ExtraForm
    list_display = ["name", "tenant", "price_brl", "stock_display", "is_active", "is_deleted"]
    list_filter = [("tenant", admin.RelatedOnlyFieldListFilter), "is_active", DeletedFilter]
    search_fields = ["name"]
    list_select_related = ["tenant"]
    actions = ["soft_delete", "restore"]
    fields = [
        "tenant",
        "name",
        "price",
        "stock",
        "stock_seen",
        "is_active",
        "created_at",
        "deleted_at",
    ]
    readonly_fields = ["created_at", "deleted_at"]

    @admin.display(description=_("price"), ordering="price")
    def price_brl(self, obj: Extra) -> str:
        return money(obj.price)

    @admin.display(description=_("stock"), ordering="stock")
    def stock_display(self, obj: Extra) -> str:
        return str(obj.stock) if obj.stock is not None else gettext("unlimited")


# --- tickets --------------------------------------------------------------------------------


class TicketServiceInline(TenantScopedAdmin, admin.TabularInline):
    model = TicketLine
    read_only = True
    extra = 0
    show_change_link = True
    fields = [
        "service",
        "status_badge",
        "equipment",
        "operator",
        "call_count",
        "queued_at",
        "called_at",
        "started_at",
        "completed_at",
        "price_brl",
    ]
    readonly_fields = fields

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("ticket", "service", "equipment", "operator")
        )

    @admin.display(description=_("status"))
    def status_badge(self, obj: TicketLine) -> str:
        return badge(obj.status_colour, obj.get_status_display())

    @admin.display(description=_("price"))
    def price_brl(self, obj: TicketLine) -> str:
        return money(obj.price)


class TicketExtraInline(TenantScopedAdmin, admin.TabularInline):
    model = TicketExtra
    read_only = True
    extra = 0
    fields = ["extra", "quantity", "unit_price_brl", "subtotal_brl"]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("ticket", "extra")

    @admin.display(description=_("unit price"))
    def unit_price_brl(self, obj: TicketExtra) -> str:
        return money(obj.unit_price)

    @admin.display(description=_("subtotal"))
    def subtotal_brl(self, obj: TicketExtra) -> str:
        return money(obj.subtotal)


class ReasonForm(forms.Form):
    reason = forms.CharField(
        label=_("reason"),
        max_length=200,
        widget=forms.TextInput(attrs={"size": 60}),
        help_text=_("Recorded in each ticket's history."),
    )


class ChangeStatusForm(ReasonForm):
    target = forms.ChoiceField(label=_("new status"))
    field_order = ["target", "reason"]

    def __init__(self, *args, targets: set[str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["target"].choices = [(s.value, s.label) for s in T if s in targets]


class TicketForm(TenantConsistentForm):
    class Meta:
        model = Ticket
        fields = "__all__"

    def clean_customer_name(self) -> str:
        # A typo fixed here follows the kiosk's rule: no invisible characters, a letter.
        return clean_name(self.cleaned_data["customer_name"])


@admin.register(Ticket)
class TicketAdmin(DocumentSearch, TenantScopedAdmin, SimpleHistoryAdmin):
    allow_add = False  # Tickets are issued by the kiosk (tickets/issuing.py), never typed in.
    allow_revert = False
    form = TicketForm
    list_display = [
        "number",
        "tenant",
        "status_badge",
        "priority",
        "customer_name",
        "cpf",
        "phone",
        "services",
        "total_brl",
        "created_at",
    ]
    list_filter = [
        ("tenant", admin.RelatedOnlyFieldListFilter),
        "status",
        "priority",
        "channel",
        "day",
    ]
    search_fields = ["number", "customer_name"]
    search_help_text = _("Number, name, or a full CPF or phone (punctuation is fine).")
    list_select_related = ["tenant"]
    list_per_page = 50
    inlines = [TicketServiceInline, TicketExtraInline]
    actions = ["change_status", "cancel_tickets"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "tenant",
                    "number",
                    "day",
                    "status_badge",
                    "priority",
                    "channel",
                    "total_brl",
                ]
            },
        ),
        (
            _("Customer"),
            {"fields": ["customer_name", "cpf", "phone", "consent_version", "customer"]},
        ),
        (
            _("Timeline"),
            {
                "fields": [
                    "created_at",
                    "paid_at",
                    "printing_at",
                    "print_error_at",
                    "queued_at",
                    "called_at",
                    "started_at",
                    "completed_at",
                    "cancelled_at",
                    "expired_at",
                ]
            },
        ),
        (
            _("Notes"),
            {
                "fields": [
                    "operator_notes",
                    "cancellation_reason",
                    "print_attempts",
                    "reactivation_count",
                ]
            },
        ),
    ]
    # Everything but the name (a typo at the kiosk) and the notes: the status moves only by
    # the actions, the rest is the record of what happened.
    readonly_fields = [
        field
        for _title, options in fieldsets
        for field in options["fields"]
        if field not in ("customer_name", "operator_notes")
    ]

    def get_queryset(self, request):
        lines = TicketLine.objects.select_related("service").order_by("position")
        return super().get_queryset(request).prefetch_related(Prefetch("lines", queryset=lines))

    # --- columns ---

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, obj: Ticket) -> str:
        return badge(obj.status_colour, obj.get_status_display())

    @admin.display(description=_("CPF"))
    def cpf(self, obj: Ticket) -> str:
        return obj.cpf_masked or "—"

    @admin.display(description=_("phone"))
    def phone(self, obj: Ticket) -> str:
        return obj.phone_masked or "—"

    @admin.display(description=_("services"))
    def services(self, obj: Ticket) -> str:
        return ", ".join(line.service.name for line in obj.lines.all())

    @admin.display(description=_("total"), ordering="total")
    def total_brl(self, obj: Ticket) -> str:
        return money(obj.total)

    # --- pages ---

    def set_history_delta_changes(self, request, historical_records, foreign_keys_are_objs=True):
        # As simple-history does, but a changed CPF or phone (anonymised by retention) never
        # shows its old digits on the history page.
        previous = None
        for current in historical_records:
            if previous is not None:
                delta = previous.diff_against(
                    current,
                    excluded_fields=["customer_cpf", "customer_phone"],
                    foreign_keys_are_objs=foreign_keys_are_objs,
                )
                helper = self.get_historical_record_context_helper(request, previous)
                previous.history_delta_changes = helper.context_for_delta_changes(delta)
            previous = current

    # --- actions: the only way a status changes here ---

    def _selected(self, request, queryset) -> list[Ticket] | None:
        tickets = list(
            queryset.select_related("tenant").order_by("pk")[: MAX_TICKETS_PER_ACTION + 1]
        )
        if len(tickets) > MAX_TICKETS_PER_ACTION:
            self.message_user(
                request,
                gettext("Choose at most %(max)d tickets at a time.")
                % {"max": MAX_TICKETS_PER_ACTION},
                messages.ERROR,
            )
            return None
        return tickets

    def _action_page(self, request, *, action: str, title: str, tickets, form) -> TemplateResponse:
        # The page posts back where the action came from: the list, or one ticket's page.
        prefix = f"{ActionLocation.CHANGE_FORM.value}-"
        field = f"{prefix}action" if f"{prefix}action" in request.POST else "action"
        rows = [
            {
                "ticket": ticket,
                "next": [T(s).label for s in T if s in valid_transitions(ticket.status)],
            }
            for ticket in tickets
        ]
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.opts,
            "rows": rows,
            "form": form,
            "action": action,
            "action_field": field,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/tickets/ticket/status_action.html", context)

    @admin.action(
        permissions=["change"],
        description=_("Change status of selected tickets"),
        location=[ActionLocation.CHANGE_LIST, ActionLocation.CHANGE_FORM],
    )
    def change_status(self, request, queryset):
        tickets = self._selected(request, queryset)
        if tickets is None:
            return None
        # Only states a manager may reach from where some selected ticket is (the machine's,
        # less those its lines drive); each ticket is checked again under its lock.
        targets = set().union(*(hand_moves(t.status) for t in tickets))
        if not targets:
            self.message_user(
                request,
                gettext("These tickets are closed: their status cannot change."),
                messages.WARNING,
            )
            return None
        form = ChangeStatusForm(request.POST if "apply" in request.POST else None, targets=targets)
        if not form.is_valid():
            return self._action_page(
                request,
                action="change_status",
                title=gettext("Change the status of tickets"),
                tickets=tickets,
                form=form,
            )
        target, reason = form.cleaned_data["target"], form.cleaned_data["reason"]
        done = []
        for ticket in tickets:
            try:
                move_by_hand(ticket.tenant, ticket.pk, target, user=request.user, reason=reason)
            except DomainError as error:
                self.message_user(request, str(error), messages.ERROR)
            else:
                done.append(ticket.number)
        if done:
            self.message_user(
                request,
                gettext("Moved to “%(status)s”: %(numbers)s.")
                % {"status": T(target).label, "numbers": ", ".join(done)},
                messages.SUCCESS,
            )
        return None

    @admin.action(
        permissions=["change"],
        description=_("Cancel selected tickets"),
        location=[ActionLocation.CHANGE_LIST, ActionLocation.CHANGE_FORM],
    )
    def cancel_tickets(self, request, queryset):
        tickets = self._selected(request, queryset)
        if tickets is None:
            return None
        form = ReasonForm(request.POST if "apply" in request.POST else None)
        if not form.is_valid():
            return self._action_page(
                request,
                action="cancel_tickets",
                title=gettext("Cancel tickets"),
                tickets=tickets,
                form=form,
            )
        done = []
        for ticket in tickets:
            try:
                cancel_ticket(
                    ticket.tenant, ticket.pk, user=request.user, reason=form.cleaned_data["reason"]
                )
            except DomainError as error:
                self.message_user(request, str(error), messages.ERROR)
            else:
                done.append(ticket.number)
        if done:
            self.message_user(
                request,
                gettext("Cancelled: %(numbers)s.") % {"numbers": ", ".join(done)},
                messages.SUCCESS,
            )
        return None


@admin.register(TicketLine)
class TicketServiceAdmin(DocumentSearch, TenantScopedAdmin, SimpleHistoryAdmin):
    """Lines on their own, to look up; they move in the operator panel, not here."""

    read_only = True
    allow_add = False
    document_path = "ticket__"
    list_display = [
        "ticket",
        "service",
        "status_badge",
        "customer",
        "equipment",
        "operator",
        "queued_at",
        "tenant",
    ]
    list_filter = [
        ("tenant", admin.RelatedOnlyFieldListFilter),
        "status",
        ("service", admin.RelatedOnlyFieldListFilter),
        "queued_at",
    ]
    search_fields = ["ticket__number", "ticket__customer_name", "service__name"]
    search_help_text = TicketAdmin.search_help_text
    list_select_related = ["ticket", "service", "equipment", "operator", "tenant"]
    list_per_page = 50
    # Never customer_key: it holds the raw CPF when the customer gave one.
    fields = [
        "tenant",
        "ticket",
        "service",
        "status_badge",
        "price",
        "equipment",
        "operator",
        "call_count",
        "queued_at",
        "called_at",
        "started_at",
        "completed_at",
        "cancelled_at",
        "no_show_at",
        "duration_seconds",
        "cancellation_reason",
    ]
    readonly_fields = ["status_badge"]

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, obj: TicketLine) -> str:
        return badge(obj.status_colour, obj.get_status_display())

    @admin.display(description=_("customer"), ordering="ticket__customer_name")
    def customer(self, obj: TicketLine) -> str:
        return obj.ticket.customer_name


@admin.register(DailyCounter)
class DailyCounterAdmin(TenantScopedAdmin, admin.ModelAdmin):
    """The last number drawn per tenant and day: to look at, never to edit (numbers follow)."""

    read_only = True
    allow_add = False
    list_display = ["tenant", "day_display", "last_display"]
    list_filter = [("tenant", admin.RelatedOnlyFieldListFilter), "day"]
    list_select_related = ["tenant"]
    fields = ["tenant", "day_display", "last_display"]
    readonly_fields = ["day_display", "last_display"]
    ordering = ["-day", "tenant"]

    @admin.display(description=_("day"), ordering="day")
    def day_display(self, obj: DailyCounter) -> str:
        return date_format(obj.day, "SHORT_DATE_FORMAT")

    @admin.display(description=_("last sequence"), ordering="last")
    def last_display(self, obj: DailyCounter) -> int:
        return obj.last
