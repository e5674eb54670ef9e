"""The REST API for integrators, version 1: `/api/v1/`, documented at `/api/v1/docs`.

Built with django-ninja: the OpenAPI 3 document is generated from these signatures and
schemas, so it cannot drift from the code. Each route is one domain call, the same one the
screens make (tickets.issuing, tickets.queue, payments.sessions); the tenant is the API
key's, and every object is looked up in it, so another tenant's id is a 404.

A key acts as no person: what it does is in the API request log (api.models.ApiRequest)
under its name. The exceptions are the payments (cash received, paid elsewhere), which the
domain records and audits as confirmed by someone: the key's creator answers for them.
"""

from __future__ import annotations

from typing import Literal

from django.core.exceptions import ValidationError
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from ninja import NinjaAPI, Query
from ninja.renderers import JSONRenderer

from api import problems
from api.auth import KeyAuth, KeyThrottle
from api.idempotency import IdempotencyKey, idempotent
from api.models import Scope
from api.pagination import DEFAULT_LIMIT, MAX_LIMIT, page
from api.problems import Problem
from api.schemas import (
    CancelIn,
    ConfirmCashIn,
    CustomerList,
    CustomerOut,
    CustomerPackageList,
    DeviceIn,
    DeviceList,
    DeviceOut,
    ExtraList,
    Id,
    LineList,
    LineOut,
    PaymentList,
    PaymentOut,
    PaymentRef,
    QueueList,
    QueueOut,
    ServiceList,
    ServiceOut,
    TicketExtraOut,
    TicketIn,
    TicketList,
    TicketOut,
    amount,
    customer_out,
    customer_package_out,
    device_out,
    extra_out,
    line_out,
    local,
    payment_out,
    queue_out,
    service_out,
)
from customers.identity import find
from customers.models import Customer
from equipment.models import Equipment
from payments import sessions
from payments.models import Method, PaymentSession
from tenants.br import normalize_cpf
from tenants.models import Tenant
from tickets import credits, issuing, queue
from tickets.models import (
    LINE_ACTIVE,
    Channel,
    CustomerPackage,
    Extra,
    LineStatus,
    PackageCredit,
    Priority,
    Service,
    Ticket,
    TicketLine,
    TicketStatus,
)
from tickets.printing import status_url


class TotemApi(NinjaAPI):
    def get_openapi_operation_id(self, operation) -> str:
        """The view's name (`create_ticket`), which client generators make a method of."""
        return operation.view_func.__name__

    def get_openapi_schema(self, *args, **kwargs) -> dict:
        """Errors are documented as what they are: `application/problem+json`."""
        schema = super().get_openapi_schema(*args, **kwargs)
        for path in schema["paths"].values():
            for operation in path.values():
                for status, answer in operation.get("responses", {}).items():
                    if int(status) in PROBLEMS and "content" in answer:
                        answer["content"] = {problems.CONTENT_TYPE: answer["content"].popitem()[1]}
        return schema


class Utf8Renderer(JSONRenderer):
    # "Câmara", not "C\u00e2mara": the body is UTF-8 (Content-Type says so), and people read it.
    json_dumps_params = {"ensure_ascii": False}


api = TotemApi(
    title="Totem API",
    version="1",
    description=(
        "Tickets, queues and calls of one studio, for integrators. Authenticate with "
        "`Authorization: Bearer <API key>`; send an `Idempotency-Key` with every POST. "
        "Walk-through: docs/api.md."
    ),
    urls_namespace="api-v1",
    throttle=[KeyThrottle()],
    renderer=Utf8Renderer(),
)
problems.install(api)

READ, SELL, OPERATE = KeyAuth(Scope.READ), KeyAuth(Scope.SELL), KeyAuth(Scope.OPERATE)
Limit = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
Cursor = Query(None, max_length=500, description="`next_cursor` of the page before.")


# The refusals any route may answer (401 key, 403 scope, 404 not this tenant's, 409 the domain
# refused, 422 invalid, 429 rate limit, 400 a bad cursor); ninja's codes_4xx would list all 29.
PROBLEMS = frozenset({400, 401, 403, 404, 409, 422, 429})


def answers(status: int, schema) -> dict:
    return {status: schema, PROBLEMS: Problem}


def tenant_of(request: HttpRequest) -> Tenant:
    return request.auth.tenant


# --- catalog --------------------------------------------------------------------------------


@api.get("/services", response=answers(200, ServiceList), auth=READ, tags=["catalog"])
def list_services(request: HttpRequest, limit: int = Limit, cursor: str | None = Cursor):
    """The studio's services on sale, with whether each may be sold right now."""
    tenant = tenant_of(request)
    sellable = issuing.sellable_ids(tenant)
    services = Service.objects.sellable().for_tenant(tenant).select_related("tenant")
    return page(
        services,
        ["display_order", "name", "id"],
        cursor=cursor,
        limit=limit,
        render=lambda s: service_out(s, sellable),
    )


@api.get("/services/{service_id}", response=answers(200, ServiceOut), auth=READ, tags=["catalog"])
def get_service(request: HttpRequest, service_id: Id):
    tenant = tenant_of(request)
    service = get_object_or_404(
        Service.objects.sellable().for_tenant(tenant).select_related("tenant"), pk=service_id
    )
    return service_out(service, issuing.sellable_ids(tenant))


@api.get("/extras", response=answers(200, ExtraList), auth=READ, tags=["catalog"])
def list_extras(request: HttpRequest, limit: int = Limit, cursor: str | None = Cursor):
    extras = Extra.objects.sellable().for_tenant(tenant_of(request))
    return page(extras, ["name", "id"], cursor=cursor, limit=limit, render=extra_out)


# --- tickets --------------------------------------------------------------------------------


def _tickets(tenant: Tenant):
    return (
        Ticket.objects.for_tenant(tenant)
        .select_related("tenant")
        .prefetch_related(
            Prefetch("lines", TicketLine.objects.select_related("service")),
            Prefetch("extras__extra"),
            Prefetch("payment_sessions", PaymentSession.objects.order_by("created_at", "id")),
        )
    )


def ticket_out(ticket: Ticket, *, places: bool) -> TicketOut:
    """`places`: each waiting line's position and wait (queries per line: one ticket only)."""
    tenant = ticket.tenant
    lines = []
    for line in ticket.lines.all():
        line.ticket = ticket
        lines.append(line_out(line, queue.place_of(line) if places else None))
    return TicketOut(
        id=ticket.pk,
        number=ticket.number,
        status=ticket.status,
        priority=ticket.priority,
        customer_id=ticket.customer_id,
        customer_name=ticket.customer_name,
        customer_cpf=ticket.cpf_masked,
        customer_phone=ticket.phone_masked,
        total=amount(ticket.total),
        created_at=local(tenant, ticket.created_at),
        paid_at=local(tenant, ticket.paid_at),
        queued_at=local(tenant, ticket.queued_at),
        completed_at=local(tenant, ticket.completed_at),
        cancelled_at=local(tenant, ticket.cancelled_at),
        cancellation_reason=ticket.cancellation_reason,
        status_url=status_url(ticket),
        lines=lines,
        extras=[
            TicketExtraOut(
                extra_id=item.extra_id,
                name=item.extra.name,
                quantity=item.quantity,
                unit_price=amount(item.unit_price),
            )
            for item in ticket.extras.all()
        ],
        payments=[
            PaymentRef(id=s.pk, method=s.method, status=s.status)
            for s in ticket.payment_sessions.all()
        ],
    )


def _ticket(tenant: Tenant, ticket_id: Id) -> TicketOut:
    return ticket_out(get_object_or_404(_tickets(tenant), pk=ticket_id), places=True)


@api.post("/tickets", response=answers(201, TicketOut), auth=SELL, tags=["tickets"])
def create_ticket(
    request: HttpRequest, payload: TicketIn, idempotency_key: str = IdempotencyKey
) -> HttpResponse:
    """Sell a ticket, as the kiosk does (for a booking made elsewhere): its services each
    join their own queue once it is paid. `payment.type`: `counter` opens a cash payment
    that the counter confirms (`POST /payments/{id}/confirm_cash`); `paid` records a payment
    your checkout took (method and reference) and the ticket joins the queues at once. A
    ticket with nothing to pay goes straight to the queues: one whose services are all in
    `use_sessions` takes a session of each from the customer's packages (`customer_id`, or a
    `customer` with the CPF) and is paid by them."""
    tenant = tenant_of(request)

    def run():
        extras: dict[int, int] = {}
        for wanted in payload.extras:
            extras[wanted.extra_id] = extras.get(wanted.extra_id, 0) + wanted.quantity
        if payload.customer_id is not None:
            # A blank phone keeps the stored one (customers.identity.remember).
            record = get_object_or_404(_customers(tenant), pk=payload.customer_id)
            who = {"customer_name": record.name, "cpf": record.cpf, "phone": ""}
        else:
            typed = payload.customer
            who = {"customer_name": typed.name, "cpf": typed.cpf, "phone": typed.phone}
        ticket = issuing.create_ticket(
            tenant,
            service_ids=payload.services,
            extras=extras,
            **who,
            consent_version=payload.consent_version,
            priority=Priority(payload.priority).value,
            use_sessions=payload.use_sessions,
            channel=Channel.API,
        )
        if ticket.total == 0:
            sessions.issue_free_ticket(ticket)
        elif payload.payment.type == "paid":
            sessions.record_paid_elsewhere(
                ticket,
                method=payload.payment.method,
                reference=payload.payment.reference,
                user=request.auth.created_by,
            )
        else:
            sessions.start_payment(ticket, Method.CASH)
        return 201, _ticket(tenant, ticket.pk)

    return idempotent(request, idempotency_key, run)


@api.get("/tickets", response=answers(200, TicketList), auth=READ, tags=["tickets"])
def list_tickets(
    request: HttpRequest,
    status: TicketStatus | None = None,
    limit: int = Limit,
    cursor: str | None = Cursor,
):
    """The studio's tickets, newest first."""
    tickets = _tickets(tenant_of(request))
    if status:
        tickets = tickets.filter(status=status)
    return page(
        tickets,
        ["-created_at", "-id"],
        cursor=cursor,
        limit=limit,
        render=lambda t: ticket_out(t, places=False),
    )


@api.get("/tickets/{ticket_id}", response=answers(200, TicketOut), auth=READ, tags=["tickets"])
def get_ticket(request: HttpRequest, ticket_id: Id):
    """A ticket, each waiting line with its position and estimated wait."""
    return _ticket(tenant_of(request), ticket_id)


@api.post(
    "/tickets/{ticket_id}/cancel", response=answers(200, TicketOut), auth=SELL, tags=["tickets"]
)
def cancel_ticket(
    request: HttpRequest, ticket_id: Id, payload: CancelIn, idempotency_key: str = IdempotencyKey
) -> HttpResponse:
    """Cancel a ticket and its open lines (the reason is kept), as the panel does."""
    tenant = tenant_of(request)

    def run():
        ticket = get_object_or_404(Ticket.objects.for_tenant(tenant), pk=ticket_id)
        queue.cancel_ticket(tenant, ticket.pk, reason=payload.reason)
        return 200, _ticket(tenant, ticket.pk)

    return idempotent(request, idempotency_key, run)


# --- lines ----------------------------------------------------------------------------------

ServiceFilter = Query(None, description="One service's queue.")
SortOrder = Query(
    "queue", description="queue: the call order; arrival: first come, first served; -arrival."
)
SORT_ORDERS = {
    # Seed 000's sort orders: the call order (priority class, then arrival), or arrival.
    "queue": ["priority_rank", "queued_at", "id"],
    "arrival": ["queued_at", "id"],
    "-arrival": ["-queued_at", "-id"],
}


@api.get("/lines", response=answers(200, LineList), auth=READ, tags=["lines"])
def list_lines(
    request: HttpRequest,
    service_id: Id | None = ServiceFilter,
    priority_filter: Priority | None = None,
    include_called: bool = False,
    include_in_progress: bool = False,
    sort_order: Literal["queue", "arrival", "-arrival"] = SortOrder,
    limit: int = Limit,
    cursor: str | None = Cursor,
):
    """The lines in the queues: waiting (and, if asked, called or in service), per service.

    The `queue` order is the order call-next follows, save the studio's interleave rule
    (one normal customer after N priorities) and customers being served elsewhere.
    """
    statuses = [LineStatus.WAITING]
    if include_called:
        statuses.append(LineStatus.CALLED)
    if include_in_progress:
        statuses.append(LineStatus.IN_PROGRESS)
    lines = TicketLine.objects.for_tenant(tenant_of(request)).filter(
        status__in=statuses, queued_at__isnull=False
    )
    if service_id is not None:
        lines = lines.filter(service_id=service_id)
    if priority_filter is not None:
        lines = lines.filter(ticket__priority=priority_filter)
    lines = lines.select_related("ticket__tenant", "service")
    return page(lines, SORT_ORDERS[sort_order], cursor=cursor, limit=limit, render=line_out)


def _line(tenant: Tenant, line_id: Id) -> TicketLine:
    return get_object_or_404(
        TicketLine.objects.for_tenant(tenant).select_related("ticket__tenant", "service"),
        pk=line_id,
    )


def _line_answer(tenant: Tenant, line_id: Id) -> LineOut:
    line = _line(tenant, line_id)
    return line_out(line, queue.place_of(line))


@api.get("/lines/{line_id}", response=answers(200, LineOut), auth=READ, tags=["lines"])
def get_line(request: HttpRequest, line_id: Id):
    """A line, with its position and estimated wait while it waits: poll it to watch it."""
    return _line_answer(tenant_of(request), line_id)


def _device(tenant: Tenant, device_id: int) -> Equipment:
    return get_object_or_404(Equipment.objects.alive().for_tenant(tenant), pk=device_id)


@api.post(
    "/services/{service_id}/call_next",
    response=answers(200, LineOut),
    auth=OPERATE,
    tags=["calls"],
)
def call_next(
    request: HttpRequest, service_id: Id, payload: DeviceIn, idempotency_key: str = IdempotencyKey
) -> HttpResponse:
    """Call the next customer of a service's queue onto a device (as the panel's button)."""
    tenant = tenant_of(request)

    def run():
        service = get_object_or_404(
            Service.objects.for_tenant(tenant).select_related("tenant"), pk=service_id
        )
        line = queue.call_next(service, _device(tenant, payload.device_id))
        return 200, _line_answer(tenant, line.pk)

    return idempotent(request, idempotency_key, run)


def _line_action(request: HttpRequest, line_id: Id, key: str, act) -> HttpResponse:
    tenant = tenant_of(request)

    def run():
        act(tenant, _line(tenant, line_id).pk)
        return 200, _line_answer(tenant, line_id)

    return idempotent(request, key, run)


@api.post("/lines/{line_id}/call", response=answers(200, LineOut), auth=OPERATE, tags=["calls"])
def call_line(
    request: HttpRequest, line_id: Id, payload: DeviceIn, idempotency_key: str = IdempotencyKey
) -> HttpResponse:
    """Call this line onto a device, out of order (or a missed customer, again)."""
    return _line_action(
        request,
        line_id,
        idempotency_key,
        lambda tenant, pk: queue.call_line(tenant, pk, _device(tenant, payload.device_id)),
    )


@api.post("/lines/{line_id}/start", response=answers(200, LineOut), auth=OPERATE, tags=["calls"])
def start_line(
    request: HttpRequest, line_id: Id, idempotency_key: str = IdempotencyKey
) -> HttpResponse:
    """The called customer arrived: the service starts on the device."""
    return _line_action(request, line_id, idempotency_key, queue.start)


@api.post("/lines/{line_id}/complete", response=answers(200, LineOut), auth=OPERATE, tags=["calls"])
def complete_line(
    request: HttpRequest, line_id: Id, idempotency_key: str = IdempotencyKey
) -> HttpResponse:
    """The service ended: the device is free; the ticket completes with its last line."""
    return _line_action(request, line_id, idempotency_key, queue.complete)


@api.post("/lines/{line_id}/no_show", response=answers(200, LineOut), auth=OPERATE, tags=["calls"])
def no_show_line(
    request: HttpRequest, line_id: Id, idempotency_key: str = IdempotencyKey
) -> HttpResponse:
    """The called customer did not come: the device is free."""
    return _line_action(request, line_id, idempotency_key, queue.no_show)


# --- queues ---------------------------------------------------------------------------------


@api.get("/queues", response=answers(200, QueueList), auth=READ, tags=["queues"])
def list_queues(request: HttpRequest):
    """Each service's queue now: waiting, in service, devices, waits (one page: all)."""
    tenant = tenant_of(request)
    services = list(Service.objects.sellable().for_tenant(tenant).select_related("tenant"))
    data = [queue_out(tenant, stats) for stats in queue.service_stats(tenant, services)]
    return {"data": data, "has_more": False, "next_cursor": None}


@api.get("/queues/{service_id}", response=answers(200, QueueOut), auth=READ, tags=["queues"])
def get_queue(request: HttpRequest, service_id: Id):
    tenant = tenant_of(request)
    service = get_object_or_404(
        Service.objects.sellable().for_tenant(tenant).select_related("tenant"), pk=service_id
    )
    return queue_out(tenant, queue.service_stats(tenant, [service])[0])


# --- customers ------------------------------------------------------------------------------


def _customers(tenant: Tenant):
    return Customer.objects.for_tenant(tenant).select_related("tenant")


CpfQuery = Query(
    ...,
    min_length=1,
    max_length=20,
    description="The customer's full CPF, with or without punctuation. Required: the API "
    "finds a customer you already know; it does not list the studio's customers.",
)


@api.get("/customers", response=answers(200, CustomerList), auth=READ, tags=["customers"])
def find_customers(request: HttpRequest, cpf: str = CpfQuery):
    """The customer with this CPF, as a list of none or one (Stripe's `?email=` filter).

    Personal data comes back masked, as in the studio's admin. The CPF is not written to
    the API's request log (only the path is)."""
    tenant = tenant_of(request)
    try:
        cpf = normalize_cpf(cpf)
    except ValidationError as error:
        raise ValidationError({"cpf": error.messages}) from error
    customer = find(tenant, cpf)
    data = [] if customer is None else [customer_out(customer, credits.balances(customer))]
    return {"data": data, "has_more": False, "next_cursor": None}


@api.get(
    "/customers/{customer_id}", response=answers(200, CustomerOut), auth=READ, tags=["customers"]
)
def get_customer(request: HttpRequest, customer_id: Id):
    """A customer, with the sessions left per service in their live packages."""
    customer = get_object_or_404(_customers(tenant_of(request)), pk=customer_id)
    return customer_out(customer, credits.balances(customer))


@api.get(
    "/customers/{customer_id}/packages",
    response=answers(200, CustomerPackageList),
    auth=READ,
    tags=["customers"],
)
def list_customer_packages(
    request: HttpRequest, customer_id: Id, limit: int = Limit, cursor: str | None = Cursor
):
    """The packages and memberships the customer bought, newest first, ended ones too, with
    the sessions granted and left of each service."""
    tenant = tenant_of(request)
    customer = get_object_or_404(_customers(tenant), pk=customer_id)
    sold = (
        CustomerPackage.objects.for_tenant(tenant)
        .filter(customer=customer)
        .select_related("tenant", "package")
        .prefetch_related(
            Prefetch(
                "credits",
                PackageCredit.objects.select_related("service").order_by(
                    "service__display_order", "service__name"
                ),
            )
        )
    )
    return page(
        sold, ["-created_at", "-id"], cursor=cursor, limit=limit, render=customer_package_out
    )


# --- payments -------------------------------------------------------------------------------


def _payments(tenant: Tenant):
    return PaymentSession.objects.for_tenant(tenant).select_related("tenant")


@api.get("/payments", response=answers(200, PaymentList), auth=READ, tags=["payments"])
def list_payments(
    request: HttpRequest,
    ticket_id: Id | None = None,
    limit: int = Limit,
    cursor: str | None = Cursor,
):
    """Payment attempts, newest first; a ticket may have several (one paid at most)."""
    payments = _payments(tenant_of(request))
    if ticket_id is not None:
        payments = payments.filter(ticket_id=ticket_id)
    return page(payments, ["-created_at", "-id"], cursor=cursor, limit=limit, render=payment_out)


@api.get("/payments/{session_id}", response=answers(200, PaymentOut), auth=READ, tags=["payments"])
def get_payment(request: HttpRequest, session_id: Id):
    return payment_out(get_object_or_404(_payments(tenant_of(request)), pk=session_id))


@api.post(
    "/payments/{session_id}/confirm_cash",
    response=answers(200, PaymentOut),
    auth=SELL,
    tags=["payments"],
)
def confirm_cash(
    request: HttpRequest,
    session_id: Id,
    payload: ConfirmCashIn,
    idempotency_key: str = IdempotencyKey,
) -> HttpResponse:
    """The counter received the cash: the payment is paid and the ticket joins the queue."""
    tenant = tenant_of(request)

    def run():
        session = get_object_or_404(_payments(tenant), pk=session_id)
        sessions.confirm_cash(tenant, session.pk, request.auth.created_by, payload.amount_received)
        return 200, payment_out(get_object_or_404(_payments(tenant), pk=session_id))

    return idempotent(request, idempotency_key, run)


# --- devices --------------------------------------------------------------------------------


def _devices(tenant: Tenant):
    return (
        Equipment.objects.alive()
        .for_tenant(tenant)
        .select_related("tenant")
        .prefetch_related(
            "services", Prefetch("lines", TicketLine.objects.filter(status__in=LINE_ACTIVE))
        )
    )


@api.get("/devices", response=answers(200, DeviceList), auth=READ, tags=["devices"])
def list_devices(request: HttpRequest, limit: int = Limit, cursor: str | None = Cursor):
    """Kiosks, displays, printers and service devices, with their state."""
    return page(
        _devices(tenant_of(request)), ["name", "id"], cursor=cursor, limit=limit, render=device_out
    )


@api.get("/devices/{equipment_id}", response=answers(200, DeviceOut), auth=READ, tags=["devices"])
def get_device(request: HttpRequest, equipment_id: Id):
    return device_out(get_object_or_404(_devices(tenant_of(request)), pk=equipment_id))
