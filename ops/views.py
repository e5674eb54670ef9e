"""The manager's pages, mounted at /t/<slug>/gestao/: dashboard, CSV exports, LGPD requests."""

from __future__ import annotations

import csv
import json
from datetime import date, timedelta

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods

from messaging.feedback import summary as feedback_summary
from ops import charts, retention, utilisation
from ops.models import DailyStats
from ops.stats import compute_day, day_bounds, wait_percentiles
from payments.models import PaymentSession
from tenants.access import tenant_member_required
from tenants.audit import record
from tenants.br import mask_cpf, mask_phone, normalize_cpf
from tenants.errors import DomainError
from tenants.models import AuditAction, Role, Tenant
from tenants.money import brl
from tickets.models import LineStatus, Service, Ticket, TicketLine

HISTORY_DAYS = 30
MAX_EXPORT_DAYS = 366


def minutes(seconds: float | None) -> str:
    return "—" if seconds is None else f"{round(seconds / 60)} min"


def _hours_shown(today_hourly: list[int], average: list[float]) -> range:
    """Hours with any activity today or on average, widened to at least 8:00–18:00."""
    busy = [h for h in range(24) if today_hourly[h] or average[h]]
    first, last = min([8, *busy]), max([18, *busy])
    return range(first, last + 1)


def _history(tenant: Tenant, today: date) -> tuple[list[date], dict, dict]:
    """The stored days of the 30-day window (the 29 before today), their totals by day, and
    per service counts. Today, live, is added by the caller: the window includes it, so
    "in the last 30 days" is never less than "today". Waits are not summed from stored days:
    see `ops.stats.wait_percentiles`."""
    days = [today - timedelta(days=n) for n in range(HISTORY_DAYS - 1, 0, -1)]
    rows = DailyStats.objects.for_tenant(tenant).filter(day__gte=days[0], day__lt=today)
    totals: dict[date, DailyStats] = {}
    per_service: dict[int, dict] = {}
    for row in rows:
        if row.service_id is None:
            totals[row.day] = row
            continue
        agg = per_service.setdefault(row.service_id, {"tickets": 0, "no_shows": 0})
        agg["tickets"] += row.tickets
        agg["no_shows"] += row.no_shows
    return days, totals, per_service


@require_GET
@tenant_member_required(Role.MANAGER)
def dashboard(request: HttpRequest, slug: str) -> HttpResponse:
    tenant = request.tenant
    today = tenant.today()
    live = compute_day(tenant, today)
    total = live[None]
    days, history, per_service = _history(tenant, today)

    average_hourly = [0.0] * 24
    counted = [d for d in days if d in history and history[d].hourly]
    for day in counted:
        for hour, value in enumerate(history[day].hourly):
            average_hourly[hour] += value / len(counted)
    hours = _hours_shown(total.hourly, average_hourly)
    hourly_chart = charts.bar_chart(
        [f"{h}h" for h in hours],
        [total.hourly[h] for h in hours],
        title=_("Tickets per hour today"),
        line=[round(average_hourly[h], 1) for h in hours] if counted else None,
        line_label=_("average of the last 30 days"),
    )

    services = list(Service.objects.for_tenant(tenant).alive().order_by("display_order", "name"))
    window_waits = wait_percentiles(tenant, days[0], today)
    wait_rows = []
    service_table = []
    for service in services:
        today_row = live.get(service.id)
        agg = dict(per_service.get(service.id) or {"tickets": 0, "no_shows": 0})
        if today_row is not None:
            # The window includes today: its live figures join the stored days'.
            agg["tickets"] += today_row.tickets
            agg["no_shows"] += today_row.no_shows
        waits = window_waits.get(service.id)
        if today_row is None and service.id not in per_service and not waits:
            continue
        typical, long = waits or (None, None)
        if waits:
            wait_rows.append((service.name, typical / 60, long / 60))
        service_table.append(
            {
                "name": service.name,
                "today": today_row,
                "month_tickets": agg["tickets"],
                "month_median": minutes(typical),
                "month_p95": minutes(long),
                "month_no_shows": agg["no_shows"],
            }
        )
    wait_chart = charts.hbar_chart(
        wait_rows,
        title=_("Wait per service in the last 30 days: median and 95th percentile"),
        fmt=lambda v: f"{round(v)} min",
        first_label=_("median"),
        second_label=_("95th percentile"),
    )

    all_days = [*days, today]
    labels = [d.strftime("%d/%m") for d in all_days]
    revenue = [float(history[d].revenue) if d in history else 0 for d in days]
    revenue_chart = charts.bar_chart(
        labels,
        [*revenue, float(total.revenue)],
        title=_("Revenue per day"),
        fmt=lambda v: brl(v).replace(",00", ""),
        colour="#16a34a",
        label_every=5,
    )
    no_show_chart = charts.bar_chart(
        labels,
        [*[history[d].no_shows if d in history else 0 for d in days], total.no_shows],
        title=_("No-shows per day"),
        colour="#9ca3af",
        label_every=5,
    )
    waiting_now = TicketLine.objects.for_tenant(tenant).filter(
        status=LineStatus.WAITING, queued_at__isnull=False
    )
    context = {
        "tenant": tenant,
        "today": today,
        # Customers' scores over the same 30 days (messaging/feedback.py; ops/_feedback.html).
        "feedback": feedback_summary(tenant, since=timezone.now() - timedelta(days=HISTORY_DAYS)),
        "total": total,
        "revenue_today": brl(total.revenue),
        # The stored 29 days before today and today's live figures: the window includes today.
        "revenue_month": brl(sum((h.revenue for h in history.values()), total.revenue)),
        "tickets_month": sum((h.tickets for h in history.values()), total.tickets),
        "avg_wait_today": minutes(total.avg_wait_seconds),
        "p95_wait_today": minutes(total.p95_wait_seconds),
        "waiting_now": waiting_now.count(),
        "hourly_chart": hourly_chart,
        "wait_chart": wait_chart,
        "revenue_chart": revenue_chart,
        "no_show_chart": no_show_chart,
        "service_table": service_table,
        "export_form": ExportForm(
            initial={"start": today - timedelta(days=HISTORY_DAYS), "end": today}
        ),
        "has_history": bool(history),
        **utilisation.dashboard_context(tenant, today),
    }
    return render(request, "ops/dashboard.html", context)


# --- CSV exports ------------------------------------------------------------------------------


class ExportForm(forms.Form):
    start = forms.DateField(
        label=gettext_lazy("From"),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    end = forms.DateField(
        label=gettext_lazy("To"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )

    def clean(self) -> dict:
        cleaned = super().clean()
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end:
            if end < start:
                raise ValidationError(_("The end date is before the start date."))
            if (end - start).days >= MAX_EXPORT_DAYS:
                raise ValidationError(_("Export at most one year at a time."))
        return cleaned


def _export_range(request: HttpRequest) -> tuple[date, date] | HttpResponse:
    form = ExportForm(request.GET)
    if not form.is_valid():
        errors = "; ".join(m for ms in form.errors.values() for m in ms)
        return HttpResponseBadRequest(errors, content_type="text/plain; charset=utf-8")
    return form.cleaned_data["start"], form.cleaned_data["end"]


# A cell a spreadsheet would read as a formula (OWASP "CSV injection"): =, +, -, @, tab, CR.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value):
    """Text that starts like a formula gets a leading apostrophe, which spreadsheets show as
    text and never run. Only text is touched (a customer's name, a service, a reason): our
    own numbers and dates are written as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


class SafeWriter:
    """csv.writer whose rows go through `spreadsheet_safe`, cell by cell."""

    def __init__(self, out) -> None:
        self._writer = csv.writer(out)

    def writerow(self, row) -> None:
        self._writer.writerow([spreadsheet_safe(cell) for cell in row])


def _csv_response(filename: str) -> tuple[HttpResponse, SafeWriter]:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    # A BOM so spreadsheet programs set to pt-BR open the accents right.
    response.write("\ufeff")
    return response, SafeWriter(response)


def _local(value, tenant: Tenant) -> str:
    return timezone.localtime(value, tenant.tzinfo).strftime("%Y-%m-%d %H:%M:%S") if value else ""


@require_GET
@tenant_member_required(Role.MANAGER)
def export_tickets(request: HttpRequest, slug: str) -> HttpResponse:
    tenant = request.tenant
    found = _export_range(request)
    if isinstance(found, HttpResponse):
        return found
    start, end = found
    response, writer = _csv_response(f"{tenant.slug}-tickets-{start}-{end}.csv")
    writer.writerow(
        ["day", "number", "status", "priority", "services", "total", "customer", "cpf", "phone"]
        + ["created_at", "paid_at", "completed_at", "cancelled_at", "cancellation_reason"]
    )
    tickets = (
        Ticket.objects.for_tenant(tenant)
        .filter(day__gte=start, day__lte=end)
        .prefetch_related("lines__service")
        .order_by("day", "sequence")
    )
    count = 0
    for ticket in tickets.iterator(chunk_size=500):
        count += 1
        writer.writerow(
            [
                ticket.day,
                ticket.number,
                ticket.status,
                ticket.priority,
                " + ".join(line.service.name for line in ticket.lines.all()),
                ticket.total,
                ticket.customer_name,
                mask_cpf(ticket.customer_cpf),
                mask_phone(ticket.customer_phone),
                _local(ticket.created_at, tenant),
                _local(ticket.paid_at, tenant),
                _local(ticket.completed_at, tenant),
                _local(ticket.cancelled_at, tenant),
                ticket.cancellation_reason,
            ]
        )
    record(
        AuditAction.EXPORTED_CSV,
        tenant=tenant,
        user=request.user,
        entity="tickets.ticket",
        data={"start": start, "end": end, "rows": count},
        request=request,
    )
    return response


@require_GET
@tenant_member_required(Role.MANAGER)
def export_payments(request: HttpRequest, slug: str) -> HttpResponse:
    tenant = request.tenant
    found = _export_range(request)
    if isinstance(found, HttpResponse):
        return found
    start, end = found
    first, last = day_bounds(tenant, start)[0], day_bounds(tenant, end)[1]
    response, writer = _csv_response(f"{tenant.slug}-payments-{start}-{end}.csv")
    writer.writerow(
        ["id", "ticket", "method", "provider", "status", "amount", "created_at", "paid_at"]
        + ["refunded_at", "confirmed_by", "refunded_by", "refund_reason", "provider_id"]
    )
    sessions = (
        PaymentSession.objects.filter(tenant=tenant, created_at__gte=first, created_at__lt=last)
        .select_related("ticket", "confirmed_by", "refunded_by")
        .order_by("created_at", "pk")
    )
    count = 0
    for session in sessions.iterator(chunk_size=500):
        count += 1
        writer.writerow(
            [
                session.pk,
                session.ticket.number,
                session.method,
                session.provider,
                session.status,
                session.amount,
                _local(session.created_at, tenant),
                _local(session.paid_at, tenant),
                _local(session.refunded_at, tenant),
                session.confirmed_by.get_username() if session.confirmed_by else "",
                session.refunded_by.get_username() if session.refunded_by else "",
                session.refund_reason,
                session.external_id,
            ]
        )
    record(
        AuditAction.EXPORTED_CSV,
        tenant=tenant,
        user=request.user,
        entity="payments.paymentsession",
        data={"start": start, "end": end, "rows": count},
        request=request,
    )
    return response


# --- LGPD: a customer's data, exported or erased by CPF -----------------------------------------


class CpfForm(forms.Form):
    cpf = forms.CharField(label=gettext_lazy("Customer's CPF"), max_length=20)

    def clean_cpf(self) -> str:
        return normalize_cpf(self.cleaned_data["cpf"])


@require_http_methods(["GET", "POST"])
@tenant_member_required(Role.MANAGER)
def customer_data(request: HttpRequest, slug: str) -> HttpResponse:
    """Export (JSON download) or erase what the tenant holds about a CPF. Both audited."""
    tenant = request.tenant
    form = CpfForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        cpf = form.cleaned_data["cpf"]
        if request.POST.get("action") == "erase":
            if request.POST.get("confirm") != "yes":
                form.add_error(None, _("Tick the confirmation to erase."))
            else:
                try:
                    count = retention.erase_customer(
                        tenant,
                        cpf,
                        user=request.user,
                        request=request,
                        close_packages=request.POST.get("close_packages") == "yes",
                    )
                except DomainError as refused:
                    form.add_error(None, str(refused))
                    live = retention.live_sessions(tenant, cpf)
                    return render(
                        request,
                        "ops/customer_data.html",
                        {"tenant": tenant, "form": form, "live_sessions": live},
                    )
                messages.success(
                    request,
                    _("%(count)s tickets of %(cpf)s anonymised.")
                    % {"count": count, "cpf": mask_cpf(cpf)},
                )
                return redirect("ops_customer_data", slug=tenant.slug)
        else:
            data = retention.export_customer(tenant, cpf, user=request.user, request=request)
            response = HttpResponse(
                json.dumps(data, ensure_ascii=False, indent=2, default=str),
                content_type="application/json; charset=utf-8",
            )
            response["Content-Disposition"] = f'attachment; filename="lgpd-{tenant.slug}.json"'
            return response
    return render(request, "ops/customer_data.html", {"tenant": tenant, "form": form})


@require_GET
@tenant_member_required(Role.MANAGER)
def dashboard_devices(request: HttpRequest, slug: str) -> HttpResponse:
    """The dashboard's devices section alone: it re-reads itself every few seconds."""
    tenant = request.tenant
    context = {"tenant": tenant, **utilisation.dashboard_context(tenant, tenant.today())}
    return render(request, "ops/devices.html#devices", context)
