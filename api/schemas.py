"""What the API reads and answers, and how a model becomes an answer.

Amounts are strings with two decimals ("120.00") beside `currency` ("BRL"), never floats;
times are ISO 8601 with the offset of the tenant's zone; every object says what it is in
`object`, as Stripe's do.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from django.utils.translation import gettext as _
from ninja import Field, Schema
from pydantic import model_validator
from pydantic_core import PydanticCustomError

from customers.models import Customer
from equipment.models import Equipment
from payments.models import Method, PaymentSession
from tenants.models import Tenant
from tickets.credits import Balance
from tickets.models import CustomerPackage, Extra, Priority, Service, TicketLine
from tickets.queue import LinePlace, ServiceStats, estimate_wait_minutes, wait_level

Currency = Literal["BRL"]
# An id the database can hold (a bigint): past it, SQLite refuses the query with an error.
Id = Annotated[int, Field(ge=1, le=2**63 - 1)]
Amount = Field(..., pattern=r"^\d+\.\d{2}$", examples=["120.00"])


def amount(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.2f}"


def local(tenant: Tenant, when: datetime | None) -> datetime | None:
    return None if when is None else when.astimezone(tenant.tzinfo)


# --- catalog --------------------------------------------------------------------------------


class ServiceOut(Schema):
    object: Literal["service"] = "service"
    id: int
    name: str
    description: str
    price: str = Amount
    currency: Currency = "BRL"
    duration_minutes: int
    ticket_prefix: str
    available: bool = Field(..., description="On sale now: studio open and a device online.")


def service_out(service: Service, sellable: set[int]) -> ServiceOut:
    return ServiceOut(
        id=service.pk,
        name=service.name,
        description=service.description,
        price=amount(service.price),
        duration_minutes=service.duration_minutes,
        ticket_prefix=service.prefix or service.tenant.ticket_prefix,
        available=service.pk in sellable,
    )


class ExtraOut(Schema):
    object: Literal["extra"] = "extra"
    id: int
    name: str
    price: str = Amount
    currency: Currency = "BRL"
    stock: int | None = Field(..., description="Null: unlimited.")


def extra_out(extra: Extra) -> ExtraOut:
    return ExtraOut(id=extra.pk, name=extra.name, price=amount(extra.price), stock=extra.stock)


# --- lines and tickets ----------------------------------------------------------------------


class PlaceOut(Schema):
    position: int = Field(..., description="1 = next to be called.")
    estimated_wait_minutes: int


class LineOut(Schema):
    object: Literal["line"] = "line"
    id: int
    ticket_id: int
    ticket_number: str
    service_id: int
    service_name: str
    status: str
    priority: str
    price: str = Amount
    currency: Currency = "BRL"
    device_id: int | None
    call_count: int
    queued_at: datetime | None
    called_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    paid_with_package: bool = Field(
        ..., description="Paid with a session of the customer's package (its price is 0)."
    )
    place: PlaceOut | None = Field(
        ..., description="Where a waiting line stands; given on a line's and a ticket's page."
    )


def line_out(line: TicketLine, place: LinePlace | None = None) -> LineOut:
    tenant = line.ticket.tenant
    return LineOut(
        id=line.pk,
        ticket_id=line.ticket_id,
        ticket_number=line.ticket.number,
        service_id=line.service_id,
        service_name=line.service.name,
        status=line.status,
        priority=line.ticket.priority,
        price=amount(line.price),
        device_id=line.equipment_id,
        call_count=line.call_count,
        queued_at=local(tenant, line.queued_at),
        called_at=local(tenant, line.called_at),
        started_at=local(tenant, line.started_at),
        completed_at=local(tenant, line.completed_at),
        paid_with_package=line.covered,
        place=PlaceOut(position=place.position, estimated_wait_minutes=place.wait_minutes)
        if place
        else None,
    )


class TicketExtraOut(Schema):
    extra_id: int
    name: str
    quantity: int
    unit_price: str = Amount
    currency: Currency = "BRL"


class PaymentRef(Schema):
    id: int
    method: str
    status: str


class TicketOut(Schema):
    object: Literal["ticket"] = "ticket"
    id: int
    number: str
    status: str
    priority: str
    customer_id: int | None = Field(..., description="The customer record (a CPF was given).")
    customer_name: str
    customer_cpf: str = Field(..., description="Masked: ***.456.789-**, or empty.")
    customer_phone: str = Field(..., description="Masked, or empty.")
    total: str = Amount
    currency: Currency = "BRL"
    created_at: datetime
    paid_at: datetime | None
    queued_at: datetime | None
    completed_at: datetime | None
    cancelled_at: datetime | None
    cancellation_reason: str
    status_url: str = Field(..., description="The ticket's public page, for the customer.")
    lines: list[LineOut]
    extras: list[TicketExtraOut]
    payments: list[PaymentRef]


class Input(Schema):
    """An object of a request's body. Ninja's Schema reads the attributes of whatever it is
    given (to build answers from ORM objects), so a list or a number would otherwise pass as
    an object of defaults."""

    @model_validator(mode="before")
    @classmethod
    def an_object(cls, value: Any) -> Any:
        # Ninja's own wrap validator ran first: the value is inside its DjangoGetter.
        if not isinstance(getattr(value, "_obj", value), dict):
            raise PydanticCustomError("model_type", "Input should be an object")
        return value


class ExtraWanted(Input):
    extra_id: Id
    quantity: int = Field(..., ge=1, le=2**15 - 1)


class CustomerIn(Input):
    name: str = Field(..., min_length=1, max_length=200)
    cpf: str = Field("", max_length=20, description="Optional; validated.")
    phone: str = Field("", max_length=30)


class PaymentIn(Input):
    """How the ticket is paid: `counter` (cash, confirmed there with confirm_cash) or `paid`
    elsewhere (the integration's own checkout), with its method and reference."""

    type: Literal["counter", "paid"] = "counter"
    method: Method | None = Field(None, description="For paid: how it was paid.")
    reference: str = Field(
        "", max_length=64, description="For paid: the payment's id in your system (unique)."
    )

    @model_validator(mode="after")
    def paid_says_how(self) -> PaymentIn:
        if self.type == "paid" and (self.method is None or not self.reference.strip()):
            raise ValueError(_("A paid ticket needs its payment's method and reference."))
        return self


class TicketIn(Input):
    services: list[Id] = Field(..., min_length=1, max_length=20)
    extras: list[ExtraWanted] = Field([], max_length=50)
    customer: CustomerIn | None = Field(None, description="Who, typed; or `customer_id`.")
    customer_id: Id | None = Field(
        None, description="A customer of the studio (GET /customers?cpf=…), instead of `customer`."
    )
    use_sessions: list[Id] = Field(
        [],
        max_length=20,
        description="Services of this ticket paid with a session of the customer's packages "
        "(the one ending first); none left refuses the sale. Needs a customer with a CPF.",
    )
    priority: Priority = Priority.NORMAL
    consent_version: str = Field(
        ..., min_length=1, max_length=20, description="The privacy terms the customer accepted."
    )
    payment: PaymentIn = Field(default_factory=lambda: PaymentIn(type="counter"))

    @model_validator(mode="after")
    def one_customer_and_sessions_of_its_services(self) -> TicketIn:
        if (self.customer is None) == (self.customer_id is None):
            raise ValueError(_("Give either customer or customer_id."))
        if not set(self.use_sessions) <= set(self.services):
            raise ValueError(_("use_sessions must name services of this ticket."))
        return self


class CancelIn(Input):
    reason: str = Field(..., min_length=1, max_length=200)


# --- calls ----------------------------------------------------------------------------------


class DeviceIn(Input):
    device_id: Id


# --- queues ---------------------------------------------------------------------------------


class QueueOut(Schema):
    object: Literal["queue"] = "queue"
    service_id: int
    service_name: str
    waiting: int
    in_service: int
    devices_online: int
    average_wait_minutes: int | None = Field(..., description="Today's, from arrival to call.")
    average_duration_minutes: int
    estimated_wait_minutes: int = Field(..., description="For a customer joining now.")
    wait_level: Literal["ok", "warning", "critical"]


def queue_out(tenant: Tenant, stats: ServiceStats) -> QueueOut:
    wait = estimate_wait_minutes(stats.waiting, stats.devices, stats.average_duration_minutes * 60)
    return QueueOut(
        service_id=stats.service.pk,
        service_name=stats.service.name,
        waiting=stats.waiting,
        in_service=stats.in_service,
        devices_online=stats.devices,
        average_wait_minutes=stats.average_wait_minutes,
        average_duration_minutes=stats.average_duration_minutes,
        estimated_wait_minutes=wait,
        wait_level=wait_level(tenant, wait),
    )


# --- payments -------------------------------------------------------------------------------


class PaymentOut(Schema):
    object: Literal["payment"] = "payment"
    id: int
    ticket_id: int
    method: str
    provider: str
    status: str
    amount: str = Amount
    currency: Currency = "BRL"
    amount_received: str | None
    created_at: datetime
    expires_at: datetime
    paid_at: datetime | None


def payment_out(session: PaymentSession) -> PaymentOut:
    tenant = session.tenant
    return PaymentOut(
        id=session.pk,
        ticket_id=session.ticket_id,
        method=session.method,
        provider=session.provider,
        status=session.status,
        amount=amount(session.amount),
        amount_received=amount(session.amount_received),
        created_at=local(tenant, session.created_at),
        expires_at=local(tenant, session.expires_at),
        paid_at=local(tenant, session.paid_at),
    )


class ConfirmCashIn(Input):
    amount_received: str = Field(..., pattern=r"^\d{1,8}(\.\d{1,2})?$", examples=["150.00"])


# --- devices --------------------------------------------------------------------------------


class DeviceOut(Schema):
    object: Literal["device"] = "device"
    id: int
    name: str
    kind: str
    location: str
    status: str
    services: list[int]
    last_seen_at: datetime | None
    current_line_id: int | None = Field(..., description="The line it serves now, if any.")


def device_out(device: Equipment) -> DeviceOut:
    # Prefetched: only its called or in-service line (one at most, by a unique index).
    busy = [line.pk for line in device.lines.all()]
    return DeviceOut(
        id=device.pk,
        name=device.name,
        kind=device.kind,
        location=device.location,
        status=device.status,
        services=sorted(s.pk for s in device.services.all()),
        last_seen_at=local(device.tenant, device.last_seen_at),
        current_line_id=busy[0] if busy else None,
    )


# --- customers and their packages -------------------------------------------------------------


class BalanceOut(Schema):
    service_id: int
    service_name: str
    sessions_left: int
    valid_until: datetime = Field(..., description="When the first of these sessions ends.")


class CustomerOut(Schema):
    """A customer, with personal data masked as the studio's admin shows it: an integrator
    looks a customer up by the CPF it already has; it never needs it read back."""

    object: Literal["customer"] = "customer"
    id: int
    name: str
    cpf: str = Field(..., description="Masked: ***.456.789-**.")
    phone: str = Field(..., description="Masked: (11) *****-4321, or empty.")
    created_at: datetime
    last_seen_at: datetime
    balances: list[BalanceOut] = Field(
        ..., description="Sessions left per service in the customer's live packages."
    )


def customer_out(customer: Customer, balances: list[Balance]) -> CustomerOut:
    tenant = customer.tenant
    return CustomerOut(
        id=customer.pk,
        name=customer.name,
        cpf=customer.cpf_masked,
        phone=customer.phone_masked,
        created_at=local(tenant, customer.created_at),
        last_seen_at=local(tenant, customer.last_seen_at),
        balances=[
            BalanceOut(
                service_id=b.service.pk,
                service_name=b.service.name,
                sessions_left=b.left,
                valid_until=local(tenant, b.valid_until),
            )
            for b in balances
        ],
    )


class PackageSessionsOut(Schema):
    service_id: int
    service_name: str
    granted: int
    left: int


class CustomerPackageOut(Schema):
    object: Literal["customer_package"] = "customer_package"
    id: int
    package_id: int
    name: str
    kind: Literal["package", "membership"]
    price: str = Amount
    currency: Currency = "BRL"
    valid_from: datetime
    valid_until: datetime
    live: bool = Field(..., description="Within its validity now.")
    sessions: list[PackageSessionsOut]


def customer_package_out(sold: CustomerPackage) -> CustomerPackageOut:
    tenant = sold.tenant
    return CustomerPackageOut(
        id=sold.pk,
        package_id=sold.package_id,
        name=sold.package.name,
        kind=sold.package.kind,
        price=amount(sold.price),
        valid_from=local(tenant, sold.valid_from),
        valid_until=local(tenant, sold.valid_until),
        live=sold.is_live,
        sessions=[
            PackageSessionsOut(
                service_id=credit.service_id,
                service_name=credit.service.name,
                granted=credit.granted,
                left=credit.balance,
            )
            for credit in sold.credits.all()
        ],
    )


# --- pages of lists (pagination.page) --------------------------------------------------------


class Page(Schema):
    object: Literal["list"] = "list"
    has_more: bool
    next_cursor: str | None


class ServiceList(Page):
    data: list[ServiceOut]


class ExtraList(Page):
    data: list[ExtraOut]


class TicketList(Page):
    data: list[TicketOut]


class LineList(Page):
    data: list[LineOut]


class QueueList(Page):
    data: list[QueueOut]


class PaymentList(Page):
    data: list[PaymentOut]


class DeviceList(Page):
    data: list[DeviceOut]


class CustomerList(Page):
    data: list[CustomerOut]


class CustomerPackageList(Page):
    data: list[CustomerPackageOut]
