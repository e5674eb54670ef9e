"""The operator panel: the station's queues, the lines I serve, and one action per button.

Views stay thin. They look every row up through the tenant (another tenant's id is a 404),
call one domain function of `tickets/queue.py`, and answer with the refreshed panel: the
`live` partial for HTMX, a redirect for a plain form post (PRG), so the page also works
without JavaScript. A refusal (`DomainError`) becomes a message shown beside the row or
queue it concerns — never a 500.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter

from django.contrib.auth.decorators import login_required
from django.db.models import Exists, F, OuterRef, Prefetch, prefetch_related_objects
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.backends.utils import csrf_input
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect, trigger_client_event

from customers.models import first_name
from equipment.models import Equipment
from panel.forms import CashForm, ReasonForm, StationForm, TransferForm, first_error
from payments.models import PaymentSession, SessionStatus
from payments.sessions import confirm_cash, confirm_static_pix
from tenants.access import tenant_member_required, tenants_for
from tenants.compiled import CompiledRead, padded
from tenants.errors import DomainError
from tenants.models import Membership, Role, Tenant
from tickets import devices, events, queue, waivers
from tickets.models import (
    LINE_ACTIVE,
    LineStatus,
    Priority,
    Service,
    Ticket,
    TicketLine,
    TicketStatus,
    Waiver,
    WaiverOutcome,
    status_is,
)
from tickets.printing import REPRINTABLE, move_to_queue, reprint

L, T = LineStatus, TicketStatus
# Rows shown per queue: a queue of thousands renders as fast as one of ten ("+N more").
# Twenty is more than an operator reads before calling next; rendering is most of the
# panel's time (bench: four queues of 50 rows took 270 ms at p95 on a shared 2-core box).
QUEUE_LIMIT = 20
# Rows shown in the side lists (my lines, payments, print errors) and of the missed lines of
# the station's queues.
SIDE_LIMIT = 30
# A row's ticket with what its badges read — from the phone, on the way (messaging) — in the
# same query: a reverse one-to-one read per row would be a query per row.
TICKET_BADGES = ("ticket", "ticket__remote", "ticket__arrival")
FLASH_KEY = "panel_flash"


def _station_key(tenant: Tenant) -> str:
    return f"panel_station_{tenant.pk}"


# The panel's station and its services: read on every render and every refresh, each a
# statement compiled once per process (tenants/compiled.py), scoped to the request's tenant.
_STATION = CompiledRead(
    lambda tenant_id, device_id: (
        Equipment.objects.service_devices().filter(tenant_id=tenant_id, pk=device_id).order_by()[:1]
    ),
)
_SERVICES = CompiledRead(
    lambda tenant_id, device_id: (
        Service.objects.sellable()
        .filter(tenant_id=tenant_id, equipment=device_id)
        .order_by("display_order", "name")
    ),
)


def _station(request: HttpRequest) -> Equipment | None:
    """The service device chosen in this session for the request's tenant, if it still is one."""
    device_id = request.session.get(_station_key(request.tenant))
    if device_id is None:
        return None
    for station in _STATION(request.tenant.pk, device_id):
        station.tenant = request.tenant  # its maintenance window's zone: spares a join
        return station
    return None


# --- the screens ----------------------------------------------------------------------------


@require_GET
@never_cache
@login_required
def home(request: HttpRequest) -> HttpResponse:
    """The site's root (where a login lands): the user's one studio, else a choice of them.

    In a studio a manager lands on the dashboard, an operator on the station picker. The
    dashboard is named, not imported: the screens do not import each other.
    """
    tenants = list(tenants_for(request.user).order_by("name")[:100])
    roles = dict(
        Membership.objects.filter(user=request.user, tenant__in=tenants).values_list(
            "tenant_id", "role"
        )
    )
    for tenant in tenants:
        role = Role.ADMIN if request.user.is_superuser else roles.get(tenant.pk, Role.OPERATOR)
        manages = Role.rank(role) >= Role.rank(Role.MANAGER)
        tenant.landing = reverse("ops_dashboard" if manages else "panel", args=[tenant.slug])
    if len(tenants) == 1:
        return redirect(tenants[0].landing)
    return render(request, "panel/home.html", {"tenants": tenants}, status=200 if tenants else 403)


@require_GET
@tenant_member_required(Role.OPERATOR)
def panel(request: HttpRequest, slug: str) -> HttpResponse:
    station = _station(request)
    if station is None or "trocar" in request.GET:
        if request.htmx:
            # The station was removed while the page polled: show the picker, full page.
            return HttpResponseClientRedirect(reverse("panel", args=[slug]))
        return _render_stations(request, StationForm(request.tenant), current=station)
    return _render_panel(request, station, request.session.pop(FLASH_KEY, None))


@require_POST
@tenant_member_required(Role.OPERATOR)
def choose_station(request: HttpRequest, slug: str) -> HttpResponse:
    form = StationForm(request.tenant, request.POST)
    if not form.is_valid():
        return _render_stations(request, form, current=_station(request), status=400)
    request.session[_station_key(request.tenant)] = form.cleaned_data["station"].pk
    return redirect("panel", slug=slug)


def _render_stations(
    request: HttpRequest, form: StationForm, *, current: Equipment | None, status: int = 200
) -> HttpResponse:
    stations = (
        form.fields["station"]
        .queryset.select_related("tenant")
        .prefetch_related(Prefetch("services", queryset=Service.objects.sellable()))
    )
    context = {
        "tenant": request.tenant,
        "form": form,
        # Each with its state now: a cooling chamber or one in maintenance shows it here.
        "devices": devices.states(list(stations)),
        "current": current,
    }
    return render(request, "panel/stations.html", context, status=status)


@dataclass
class Other:
    """Another service of a row's ticket and where it stands: read as plain values, not as
    model instances (a hundred of them per render were a sixth of the panel's time)."""

    service: str
    status: str
    label: str


@dataclass(slots=True)
class Row:
    """A line as the panel shows it, as plain values: how long it waited (and its colour),
    its ticket and badges, the other services, whether the ticket's health form waits for
    the team, and for a missed line until when it can be called again, for a stuck one when
    it closes. A queue's rows are read with `.values()`: the line, ticket and badges as
    model instances, and the template walking them, cost ~0.25 ms per row (bench/README.md
    "Sixth round"). My rows also carry their line (status, device, session timer).

    What the template prints of a row is text escaped once here (`key`, `number`, `name`,
    `level`, `wait`, the URLs): the template escaped each value at each of its uses, ~11 per
    queue row, a third of the rows' render (bench/README.md, "Eighth round")."""

    pk: int
    # The pk as the page prints it (the ids of the row and of its "more…" slot).
    key: str
    ticket_id: int
    number: str
    name: str
    priority: str
    priority_label: str
    covered: bool
    remote: bool
    arrival: bool
    minutes: int
    # "12 min"
    wait: str
    level: str
    others: list[Other]
    waiver_pending: bool
    # Whether any badge above shows: most rows have none, and skip testing each.
    badges: bool
    call_url: str
    more_url: str
    deadline: datetime | None = None
    no_show_at: datetime | None = None
    line: TicketLine | None = None


@dataclass
class Queue:
    stats: queue.ServiceCounts
    rows: list[Row]
    more: int
    missed: list[Row] = field(default_factory=list)
    flash: dict | None = None


@dataclass
class Tickets:
    """What the rows need of their tickets beyond the row's own line, read once for all."""

    lines: dict[int, list[tuple[int, Other]]]
    waiver_pending: set[int]

    @classmethod
    def of(cls, tenant: Tenant, ids: set[int]) -> Tickets:
        if not ids:
            return cls(lines={}, waiver_pending=set())
        by_ticket: dict[int, list[tuple[int, Other]]] = defaultdict(list)
        pending: set[int] = set()
        for row in _TICKET_LINES(tenant.pk, *padded(sorted(ids))):
            ticket_id, status = row["ticket_id"], row["status"]
            by_ticket[ticket_id].append(
                (row["pk"], Other(row["service__name"], status, L(status).label))
            )
            if row["waiver_pending"]:
                pending.add(ticket_id)
        return cls(lines=by_ticket, waiver_pending=pending)


# The lines of the rows' tickets, in their order, each with its service's name and whether
# its ticket's health form waits for the team (a warning on each of its lines): one query,
# compiled once per process and multiple of 32 tickets (`padded`).
_TICKET_LINES = CompiledRead(
    lambda tenant_id, *ticket_ids: (
        TicketLine.objects.filter(tenant_id=tenant_id, ticket_id__in=ticket_ids)
        .annotate(
            waiver_pending=Exists(
                Waiver.objects.filter(
                    ticket_id=OuterRef("ticket_id"), outcome=WaiverOutcome.NEEDS_STAFF
                )
            )
        )
        .order_by("ticket_id", "position")
        .values("ticket_id", "pk", "status", "service__name", "waiver_pending")
    ),
)


@dataclass
class LineUrls:
    """The addresses of a row's "call this one" and "more…", reversed once per render and
    completed per row: reversing them in the template, twice per row, was a tenth of its
    time."""

    call: tuple[str, str]
    more: tuple[str, str]
    # Any id: the URL is cut at it, from the right (the slug may hold the same digits).
    SAMPLE = 987654321

    @classmethod
    def of(cls, slug: str) -> LineUrls:
        def cut(url: str) -> tuple[str, str]:
            before, after = url.rsplit(f"/{cls.SAMPLE}/", 1)
            return f"{before}/", f"/{after}"

        return cls(
            call=cut(reverse("panel_line", args=[slug, cls.SAMPLE, "chamar"])),
            more=cut(reverse("panel_line_detail", args=[slug, cls.SAMPLE])),
        )

    @staticmethod
    def of_line(parts: tuple[str, str], pk: int) -> str:
        return f"{parts[0]}{pk}{parts[1]}"


# What a queue's or missed row shows of its line, its ticket and the ticket's badges (from
# the phone, on the way), in the same query: the badges' reverse one-to-ones are LEFT JOINs.
ROW_VALUES = {
    "number": F("ticket__number"),
    "customer_name": F("ticket__customer_name"),
    "priority": F("ticket__priority"),
    "day": F("ticket__day"),
    "remote": F("ticket__remote__id"),
    "arrival": F("ticket__arrival__id"),
}
ROW_FIELDS = ("pk", "ticket_id", "service_id", "queued_at", "no_show_at", "covered")


# A queue's first rows (`queue.queue_lines` of one service of the tenant), compiled once;
# the station's queues are read in one statement (`CompiledRead.each`): building and
# compiling the four queues' queries was ~5 ms of every render's CPU. Planned at each call:
# a generic plan sorted a long queue's every line (22 ms at 10,000 waiting, bench screens).
_QUEUE = CompiledRead(
    lambda tenant_id, service_id: (
        queue.queue_lines(Service(pk=service_id))
        .filter(tenant_id=tenant_id)
        .values(*ROW_FIELDS, "priority_rank", **ROW_VALUES)[:QUEUE_LIMIT]
    ),
    planned_per_call=True,
)


# The station's queues' missed lines that may be called again (`queue.recoverable_lines`),
# newest first, compiled once (per number of services).
_MISSED = CompiledRead(
    lambda tenant_id, since, day, *service_ids: (
        queue.missed_since(tenant_id, since, day)
        .filter(service__in=service_ids)
        .order_by("-no_show_at", "-id")
        .values(*ROW_FIELDS, **ROW_VALUES)[:SIDE_LIMIT]
    ),
)


def _queue_rows(tenant: Tenant, services: list[Service]) -> dict[int, list[dict]]:
    """The first QUEUE_LIMIT waiting lines of each service, as ROW_FIELDS and ROW_VALUES read
    them, in queue order."""
    parts = _QUEUE.each([(tenant.pk, service.pk) for service in services])
    order = itemgetter("priority_rank", "queued_at", "pk")
    return {
        service.pk: sorted(rows, key=order) for service, rows in zip(services, parts, strict=True)
    }


def _values_of(line: TicketLine) -> dict:
    """A line read as a model instance (my rows), as ROW_FIELDS and ROW_VALUES read one."""
    ticket = line.ticket
    return {
        "pk": line.pk,
        "ticket_id": line.ticket_id,
        "covered": line.covered,
        "number": ticket.number,
        "customer_name": ticket.customer_name,
        "priority": ticket.priority,
        # The badges' ids, as ROW_VALUES reads them (None without one).
        "remote": ticket.remote.pk if hasattr(ticket, "remote") else None,
        "arrival": ticket.arrival.pk if hasattr(ticket, "arrival") else None,
    }


def _row(
    values: dict,
    tickets: Tickets,
    urls: LineUrls,
    *,
    minutes: int,
    level: str = "ok",
    deadline: datetime | None = None,
    line: TicketLine | None = None,
) -> Row:
    pk, ticket_id, priority = values["pk"], values["ticket_id"], values["priority"]
    badges = {
        "covered": values["covered"],
        "remote": values["remote"] is not None,
        "arrival": values["arrival"] is not None,
        "waiver_pending": ticket_id in tickets.waiver_pending,
    }
    return Row(
        pk=pk,
        key=escape(pk),
        ticket_id=ticket_id,
        number=escape(values["number"]),
        name=escape(first_name(values["customer_name"])),
        priority=priority,
        priority_label="" if priority == Priority.NORMAL else str(Priority(priority).label),
        **badges,
        badges=priority != Priority.NORMAL or any(badges.values()),
        minutes=minutes,
        wait=escape(f"{minutes} min"),
        level=escape(level),
        others=[other for other_pk, other in tickets.lines.get(ticket_id, []) if other_pk != pk],
        call_url=escape(LineUrls.of_line(urls.call, pk)),
        more_url=escape(LineUrls.of_line(urls.more, pk)),
        deadline=deadline,
        no_show_at=values.get("no_show_at"),
        line=line,
    )


def _minutes_since(since: datetime, now: datetime) -> int:
    return max(0, int((now - since).total_seconds() // 60))


def _closes_at(tenant: Tenant, line: TicketLine, now) -> datetime | None:
    """When the expiry job closes a stuck line; None while it is not stuck."""
    stuck = queue.stuck_at(line, tenant)
    return stuck + queue.STUCK_GRACE if stuck is not None and stuck <= now else None


# The side lists: the tenant's tickets waiting for a payment, and those whose ticket did not
# print (compiled once, as the station).
_PENDING = CompiledRead(
    lambda tenant_id: (
        Ticket.objects.filter(tenant_id=tenant_id)
        .filter(status_is(Ticket, T.PENDING_PAYMENT))
        .order_by("created_at")[:SIDE_LIMIT]
    ),
)
_PRINT_ERRORS = CompiledRead(
    lambda tenant_id: (
        Ticket.objects.filter(tenant_id=tenant_id)
        .filter(status_is(Ticket, T.PRINT_ERROR))
        .order_by("print_error_at")[:SIDE_LIMIT]
    ),
)


def _panel_context(request: HttpRequest, station: Equipment, flash: dict | None) -> dict:
    """Everything the panel shows, in a number of queries that does not grow with the queues."""
    tenant = request.tenant
    now = timezone.now()
    services = _SERVICES(tenant.pk, station.pk)
    # Where each of the socket's groups (panel/consumers.py) stood before anything below was
    # read: panel.js skips the refresh for events up to these numbers, already in this render
    # — among them the operator's own action, whose answer is this render (one request).
    groups = [events.service_group(tenant.id, s.pk) for s in services]
    seqs = events.current_sequences(groups or [events.tenant_group(tenant.id)])
    rows = _queue_rows(tenant, services)
    waiting = [(stats, rows[stats.service.pk]) for stats in queue.service_counts(tenant, services)]
    devices_now = _devices_now(tenant, station, now)
    # The station's own call (one at most: line_one_active_per_equipment), whoever made it:
    # one login shared by every station of a studio must not list the others' calls.
    serving = [devices_now["station_now"].line] if devices_now["station_now"].line else []
    # Who did not show up and may still be called again, in one query for every queue.
    missed = (
        _MISSED(tenant.pk, *queue.recoverable_window(tenant, now), *(s.pk for s in services))
        if services
        else []
    )
    # The other services of every row's ticket and its health form, in one query for every
    # list, not one per queue: a sixth of the panel's time at 10,000 waiting went to
    # compiling and preparing those IN (…) queries.
    tickets = Tickets.of(
        tenant,
        {line.ticket_id for line in serving}
        | {values["ticket_id"] for values in missed}
        | {values["ticket_id"] for _, lines in waiting for values in lines},
    )
    urls = LineUrls.of(tenant.slug)
    queues = []
    for stats, lines in waiting:
        rows = []
        for values in lines:
            minutes = queue.waited_minutes(values["queued_at"], now)
            level = queue.wait_level(tenant, minutes)
            rows.append(_row(values, tickets, urls, minutes=minutes, level=level))
        queues.append(
            Queue(
                stats=stats,
                rows=rows,
                more=max(stats.waiting - len(lines), 0),
                missed=[
                    _row(
                        values,
                        tickets,
                        urls,
                        minutes=_minutes_since(values["no_show_at"], now),
                        deadline=queue.recoverable_until(
                            values["no_show_at"], values["day"], tenant
                        ),
                    )
                    for values in missed
                    if values["service_id"] == stats.service.pk
                ],
            )
        )
    mine = [
        _row(
            _values_of(line),
            tickets,
            urls,
            minutes=_minutes_since(line.started_at or line.called_at, now),
            deadline=_closes_at(tenant, line, now),
            line=line,
        )
        for line in serving
    ]
    # With their open payment sessions: cash and static PIX are confirmed here.
    pending = _PENDING(tenant.pk)
    prefetch_related_objects(
        pending,
        Prefetch(
            "payment_sessions",
            queryset=PaymentSession.objects.filter(status=SessionStatus.PENDING).order_by(
                "-created_at"
            ),
            to_attr="open_sessions",
        ),
    )
    print_errors = _PRINT_ERRORS(tenant.pk)

    flash = _place(flash, queues, mine, [*pending, *print_errors])
    for q in queues:
        if flash and flash.get("where") == "queue" and flash.get("service") == q.stats.service.pk:
            q.flash = flash
    return {
        "tenant": tenant,
        "station": station,
        # What the station and the other devices of its services are doing now, and the
        # server's time, which their timers count from.
        **devices_now,
        "now": now,
        "seqs": seqs,
        "queues": queues,
        "mine": mine,
        "pending": pending,
        "print_errors": print_errors,
        "flash": flash,
        "hide_names": tenant.hide_customer_names,
        # The hidden CSRF field of every form, built once (~85 forms: a queue's every row).
        "csrf_input": csrf_input(request),
    }


# The station's neighbours: the tenant's other service devices that run one of its services.
_NEIGHBOURS = CompiledRead(
    lambda tenant_id, device_id: (
        Equipment.objects.service_devices()
        .filter(
            tenant_id=tenant_id,
            pk__in=Equipment.services.through.objects.filter(
                service__in=Service.objects.sellable().filter(equipment=device_id)
            ).values("equipment_id"),
        )
        .exclude(pk=device_id)
        .order_by("name")[:SIDE_LIMIT]
    ),
)


# The lines active on these devices (one each at most: line_one_active_per_equipment), with
# what the station's own row shows (its ticket, badges and service), compiled once.
_ACTIVE = CompiledRead(
    lambda tenant_id, *device_ids: TicketLine.objects.filter(
        status_is(TicketLine, *LINE_ACTIVE), tenant_id=tenant_id, equipment__in=device_ids
    ).select_related(*TICKET_BADGES, "service"),
)


def _devices_now(tenant: Tenant, station: Equipment, now) -> dict:
    """The station's state and its neighbours' (the other devices of its services), in two
    queries: the neighbours, then every active line on them. The station's line comes with
    what its row shows (ticket, badges, service): it is also the operator's own call."""
    others = _NEIGHBOURS(tenant.pk, station.pk)
    devices_ids = padded([station.pk, *(device.pk for device in others)])
    active = {line.equipment_id: line for line in _ACTIVE(tenant.pk, *devices_ids)}
    station_now = devices.state_of(station, active.get(station.pk), now)
    if station_now.line is not None:
        station_now.line.equipment = station
    others_now = []
    for device in others:
        device.tenant = tenant  # its maintenance window's zone
        others_now.append(devices.state_of(device, active.get(device.pk), now))
    return {"station_now": station_now, "others_now": others_now}


def _place(
    flash: dict | None, queues: list[Queue], mine: list[Row], tickets: list[Ticket]
) -> dict | None:
    """Decide where the message goes: beside its row, atop its queue, else atop the panel."""
    if not flash:
        return None
    shown_lines = {row.pk for q in queues for row in [*q.rows, *q.missed]}
    shown_lines |= {row.pk for row in mine}
    shown_services = {q.stats.service.pk for q in queues}
    if flash.get("line") in shown_lines:
        where = "line"
    elif flash.get("ticket") in {ticket.pk for ticket in tickets}:
        where = "ticket"
    elif flash.get("service") in shown_services:
        where = "queue"
    else:
        where = "top"
    return {**flash, "where": where}


def _render_panel(request: HttpRequest, station: Equipment, flash: dict | None) -> HttpResponse:
    context = _panel_context(request, station, flash)
    template = "panel/panel.html#live" if request.htmx else "panel/panel.html"
    return render(request, template, context)  # in the studio's zone (tenant_member_required)


@require_GET
@tenant_member_required(Role.OPERATOR)
def line_detail(request: HttpRequest, slug: str, line_id: int) -> HttpResponse:
    """The rarer actions of a line (transfer, cancel), loaded into its row on demand."""
    tenant = request.tenant
    line = get_object_or_404(
        TicketLine.objects.for_tenant(tenant).select_related("ticket", "service"), pk=line_id
    )
    context = {
        "tenant": tenant,
        "line": line,
        "hide_names": tenant.hide_customer_names,
        "can_transfer": line.status == L.WAITING,
        "can_cancel_line": line.status in (*queue.OPEN_LINES, L.NO_SHOW),
        "can_cancel_ticket": line.ticket.status not in (T.COMPLETED, T.CANCELLED),
        "can_reprint": line.ticket.status in REPRINTABLE,
        # Named by service only: why it blocked was never kept (tickets/waivers.py).
        "pending_waivers": [
            w.version.questionnaire.service.name for w in waivers.pending_for(line.ticket)
        ],
        "transfer_services": Service.objects.sellable()
        .for_tenant(tenant)
        .exclude(pk__in=line.ticket.lines.values("service_id")),
    }
    template = "panel/line.html#more" if request.htmx else "panel/line.html"
    return render(request, template, context)


# --- actions --------------------------------------------------------------------------------


def _respond(request: HttpRequest, data: dict) -> HttpResponse:
    if request.htmx:
        station = _station(request)
        if station is None:
            request.session[FLASH_KEY] = data
            return HttpResponseClientRedirect(reverse("panel", args=[request.tenant.slug]))
        response = _render_panel(request, station, data)
        # The message is also written into the page's lasting status region (panel.js):
        # a region swapped in with the panel is not reliably read by screen readers. Fired on
        # receipt, while the button that asked is still in the page to bubble it up.
        announce = {"message": data["message"], "level": data["level"]}
        return trigger_client_event(response, "panel:announce", announce)
    request.session[FLASH_KEY] = data
    return redirect("panel", slug=request.tenant.slug)


def _run(
    request: HttpRequest,
    act: Callable[[], str],
    *,
    line: int | None = None,
    service: int | None = None,
    ticket: int | None = None,
) -> HttpResponse:
    """Run one domain action; its message, or its refusal, goes back to the panel.

    `line`, `service` and `ticket` say where the message belongs on the screen.
    """
    try:
        message, level = act(), "ok"
    except DomainError as error:
        message, level = str(error), "error"
    return _respond(request, _flash(message, level, line=line, service=service, ticket=ticket))


def _flash(
    message: str,
    level: str,
    *,
    line: int | None = None,
    service: int | None = None,
    ticket: int | None = None,
) -> dict:
    """What the panel shows of an action's outcome; `line`, `service`, `ticket`: beside what."""
    flash = {"message": message, "level": level, "line": line, "service": service}
    if ticket is not None:
        flash["ticket"] = ticket
    return flash


def _require_station(request: HttpRequest) -> Equipment:
    """The session's station, for a domain call: only its key, not its row. Every such call
    locks the device and re-checks it under the lock (tenant, kind, not deleted, free), and
    the refreshed panel reads it after the action: reading it here too was two queries of
    every call (bench/README.md, seventh round)."""
    device_id = request.session.get(_station_key(request.tenant))
    if device_id is None:
        raise queue.QueueError(_("Choose your station first."))
    return Equipment(pk=device_id, tenant=request.tenant)


def _called_message(line: TicketLine) -> str:
    return _("Ticket %(number)s called for %(service)s at %(device)s.") % {
        "number": line.ticket.number,
        "service": line.service.name,
        "device": line.equipment.name if line.equipment else "—",
    }


@require_POST
@tenant_member_required(Role.OPERATOR)
def call_next(request: HttpRequest, slug: str, service_id: int) -> HttpResponse:
    service = get_object_or_404(Service.objects.for_tenant(request.tenant), pk=service_id)
    service.tenant = request.tenant  # call next reads its policies: spares a query per call

    def act() -> str:
        line = queue.call_next(service, _require_station(request), user=request.user)
        # Whoever waited ahead and was passed over is named, with the reason.
        return " ".join([_called_message(line), *queue.passed_over(line)])

    return _run(request, act, service=service.pk)


def _with_reason(request: HttpRequest, act: Callable[[str], str]) -> Callable[[], str]:
    def run() -> str:
        form = ReasonForm(request.POST)
        if not form.is_valid():
            raise queue.QueueError(_("Say why (the reason is required)."))
        return act(form.cleaned_data["reason"])

    return run


def _line_action(request: HttpRequest, line: TicketLine, action: str) -> Callable[[], str]:
    """The domain call behind each row button, returning the message the panel shows."""
    tenant, user = request.tenant, request.user
    names = {"number": line.ticket.number, "service": line.service.name}

    def call() -> str:
        station = _require_station(request)
        return _called_message(queue.call_line(tenant, line.pk, station, user=user))

    def again() -> str:
        done = queue.reannounce(tenant, line.pk, user=user)
        if done.status == L.NO_SHOW:
            return _("Ticket %(number)s was called too many times: marked as no-show.") % names
        return _("Ticket %(number)s called again (call %(n)s).") % {
            **names,
            "n": done.call_count,
        }

    def begin() -> str:
        queue.start(tenant, line.pk, user=user)
        return _("%(service)s of ticket %(number)s started.") % names

    def finish() -> str:
        queue.complete(tenant, line.pk, user=user)
        return _("%(service)s of ticket %(number)s completed.") % names

    def back() -> str:
        queue.send_back(tenant, line.pk, user=user, reason=_("sent back by the operator"))
        return _("Ticket %(number)s is back in the %(service)s queue.") % names

    def missed() -> str:
        queue.no_show(tenant, line.pk, user=user)
        return _("Ticket %(number)s did not show up for %(service)s.") % names

    def cancel(reason: str) -> str:
        queue.cancel_line(tenant, line.pk, user=user, reason=reason)
        return _("%(service)s of ticket %(number)s cancelled: %(reason)s") % {
            **names,
            "reason": reason,
        }

    def move() -> str:
        form = TransferForm(tenant, request.POST)
        if not form.is_valid():
            raise queue.QueueError(first_error(form))
        target = form.cleaned_data["service"]
        queue.transfer(tenant, line.pk, target, user=user)
        return _("Ticket %(number)s moved to the %(service)s queue.") % {
            **names,
            "service": target.name,
        }

    actions = {
        "chamar": call,
        "rechamar": again,
        "iniciar": begin,
        "concluir": finish,
        "devolver": back,
        "ausente": missed,
        "cancelar": _with_reason(request, cancel),
        "transferir": move,
    }
    if action not in actions:
        raise Http404("action")
    return actions[action]


@require_POST
@tenant_member_required(Role.OPERATOR)
def line_action(request: HttpRequest, slug: str, line_id: int, action: str) -> HttpResponse:
    line = get_object_or_404(
        TicketLine.objects.for_tenant(request.tenant).select_related("ticket", "service"),
        pk=line_id,
    )
    act = _line_action(request, line, action)
    return _run(request, act, line=line.pk, service=line.service_id)


def _ticket_action(request: HttpRequest, ticket: Ticket, action: str) -> Callable[[], str]:
    tenant, user = request.tenant, request.user
    names = {"number": ticket.number}

    def cancel(reason: str) -> str:
        queue.cancel_ticket(tenant, ticket.pk, user=user, reason=reason)
        return _("Ticket %(number)s cancelled: %(reason)s") % {**names, "reason": reason}

    def print_again() -> str:
        reprint(tenant, ticket.pk, user=user)
        return _("Ticket %(number)s sent to the printer again.") % names

    def to_queue() -> str:
        move_to_queue(tenant, ticket.pk, user=user)
        return _("Ticket %(number)s is in the queue without a printed ticket.") % names

    def clear_waiver(reason: str) -> str:
        waivers.clear(tenant, ticket.pk, user=user, reason=reason)
        return _("Health form of ticket %(number)s cleared.") % names

    actions: dict[str, Callable[[], str]] = {
        "cancelar": _with_reason(request, cancel),
        "reimprimir": print_again,
        "para-fila": to_queue,
        "liberar-termo": _with_reason(request, clear_waiver),
    }
    if action not in actions:
        raise Http404("action")
    return actions[action]


@require_POST
@tenant_member_required(Role.OPERATOR)
def ticket_action(request: HttpRequest, slug: str, ticket_id: int, action: str) -> HttpResponse:
    ticket = get_object_or_404(Ticket.objects.for_tenant(request.tenant), pk=ticket_id)
    # The row the button sits on, only to show the outcome beside it. Not isdigit(): "²" is
    # a digit to it and 5000 nines are too, and int() refuses both.
    try:
        row = int(request.POST.get("row", ""))
    except ValueError:
        row = None
    return _run(request, _ticket_action(request, ticket, action), line=row, ticket=ticket.pk)


@require_POST
@tenant_member_required(Role.OPERATOR)
def end_cooldown(request: HttpRequest, slug: str) -> HttpResponse:
    """The station's cool-down ends now (cleaned sooner…): the reason is required, audited."""

    def act(reason: str) -> str:
        station = devices.end_cooldown(
            request.tenant, _require_station(request).pk, user=request.user, reason=reason
        )
        return _("%(device)s is free: cool-down ended early (%(reason)s).") % {
            "device": station.name,
            "reason": reason,
        }

    return _run(request, _with_reason(request, act))


@require_POST
@tenant_member_required(Role.OPERATOR)
def payment_action(request: HttpRequest, slug: str, session_id: int, action: str) -> HttpResponse:
    """Confirm a payment an operator sees arrive: cash at the counter, or a static PIX.

    The confirmation reads the session and its ticket itself, under their locks; only a
    refusal reads the session again, to show the message beside its ticket (and to answer
    404 for another tenant's session). Reading it first cost every confirmation a query.
    """
    tenant, user = request.tenant, request.user

    def cash() -> tuple[PaymentSession, str]:
        form = CashForm(request.POST)
        if not form.is_valid():
            raise queue.QueueError(first_error(form))
        amount = form.cleaned_data["amount_received"]
        session = confirm_cash(tenant, session_id, user, amount)
        return session, _("Cash payment of ticket %(number)s confirmed.")

    def pix() -> tuple[PaymentSession, str]:
        session = confirm_static_pix(tenant, session_id, user)
        return session, _("PIX of ticket %(number)s confirmed.")

    actions = {"dinheiro": cash, "pix": pix}
    if action not in actions:
        raise Http404("action")
    try:
        session, message = actions[action]()
    except DomainError as error:
        refused = get_object_or_404(
            PaymentSession.objects.filter(tenant=tenant).only("ticket_id"), pk=session_id
        )
        return _respond(request, _flash(str(error), "error", ticket=refused.ticket_id))
    message %= {"number": session.ticket.number}
    return _respond(request, _flash(message, "ok", ticket=session.ticket_id))
