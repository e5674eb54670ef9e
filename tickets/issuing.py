"""Creating a ticket: the one function the kiosk (and the benchmark, and tests) call."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, F, OuterRef, QuerySet
from django.utils.translation import gettext as _

from customers.identity import remember
from equipment.models import Equipment
from tenants import history, webhooks
from tenants.br import clean_name, normalize_cpf, normalize_phone, visible_text
from tenants.compiled import CompiledRead
from tenants.models import Tenant, WebhookEvent
from tickets import credits
from tickets.models import (
    Channel,
    DailyCounter,
    Extra,
    Package,
    Priority,
    Service,
    Ticket,
    TicketExtra,
    TicketLine,
    TicketPackage,
    new_token,
)
from tickets.payloads import ticket_payload
from tickets.waivers import attach_signed, check_sale


def number_ticket(ticket: Ticket, prefix: str) -> None:
    """Give the ticket just written the next number of its tenant's local day.

    Call inside the ticket's transaction, as its last writes: the upsert leaves the counter
    row locked until the commit, so parallel sales queue here one by one, and a rolled-back
    sale gives its number back (no gaps). This lock is the one thing sales of a tenant wait
    for, so everything that does not need the number is written before it: at 16 kiosks the
    sales waited for each other's ticket, lines and history inserts (bench/README.md).
    """
    day = ticket.day
    table = DailyCounter._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (tenant_id, day, last) VALUES (%s, %s, 1) "
            f"ON CONFLICT (tenant_id, day) DO UPDATE SET last = {table}.last + 1 RETURNING last",
            [ticket.tenant_id, day],
        )
        ticket.sequence = cursor.fetchone()[0]
        ticket.number = f"{prefix}{ticket.sequence:03d}"
        cursor.execute(
            f"UPDATE {Ticket._meta.db_table} SET sequence = %s, number = %s WHERE id = %s",
            [ticket.sequence, ticket.number, ticket.pk],
        )


# Most of one extra a customer may take in one ticket.
MAX_EXTRA_QUANTITY = 20


def runnable_services(tenant: Tenant) -> QuerySet[Service]:
    """The tenant's services on sale that an online device can run today: what may be sold
    while the studio is open (`sellable_ids` adds the opening hours). One query."""
    return _runnable(tenant.pk)


def _runnable(tenant_id: int) -> QuerySet[Service]:
    runs = Equipment.objects.able_to_run(OuterRef("pk"))
    return Service.objects.sellable().filter(tenant_id=tenant_id).filter(Exists(runs))


@CompiledRead
def _runnable_ids(tenant_id: int) -> QuerySet[Service]:
    # The kiosk's welcome asks on every return to it: its statement is built once.
    return _runnable(tenant_id).only("pk")


@CompiledRead
def _runnable_of(tenant_id: int, *service_ids: int) -> QuerySet[Service]:
    # Every sale reads the services it sells: one statement per number of services.
    return _runnable(tenant_id).filter(id__in=service_ids)


def sellable_ids(tenant: Tenant) -> set[int]:
    """The ids of the services that may be sold right now (none while the studio is closed)."""
    if not tenant.is_open():
        return set()
    return {service.pk for service in _runnable_ids(tenant.pk)}


def _clean_customer(name: str, cpf: str, phone: str, consent_version: str) -> dict[str, str]:
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, str] = {}
    try:
        cleaned["customer_name"] = clean_name(name)[:80]
    except ValidationError as error:
        errors["customer_name"] = error.messages
    try:
        cleaned["customer_cpf"] = normalize_cpf(cpf) if visible_text(cpf) else ""
    except ValidationError as error:
        errors["customer_cpf"] = error.messages
    try:
        cleaned["customer_phone"] = normalize_phone(phone) if visible_text(phone) else ""
    except ValidationError as error:
        errors["customer_phone"] = error.messages
    if not (consent_version or "").strip():
        errors["consent_version"] = [_("Consent to the privacy terms is required.")]
    cleaned["consent_version"] = (consent_version or "").strip()[:20]
    if errors:
        raise ValidationError(errors)
    return cleaned


def create_ticket(
    tenant: Tenant,
    *,
    service_ids: Iterable[int],
    extras: Mapping[int, int] | None = None,
    customer_name: str,
    cpf: str = "",
    phone: str = "",
    consent_version: str,
    priority: str = Priority.NORMAL,
    idempotency_key: str = "",
    use_sessions: Iterable[int] = (),
    buy_packages: Iterable[int] = (),
    cpf_on_invoice: bool = False,
    waivers: Iterable[int] = (),
    channel: str = Channel.KIOSK,
) -> Ticket:
    """Create a ticket in `pending_payment` with one line per service and its extras.

    What may be sold is decided here, whoever sells: the studio open, each service on sale
    and runnable by an online device, each extra on sale, in stock and at most
    MAX_EXTRA_QUANTITY. `extras` maps extra id → quantity. Prices are copied from the
    catalog. Raises ValidationError (keyed by field, for forms) when input is bad or
    something cannot be sold; then nothing is written and no stock is taken. With an
    `idempotency_key` already used by this tenant, returns that ticket instead of creating
    another.

    A CPF (given with consent, as every ticket is) links the ticket to its customer record,
    created on the first visit. `use_sessions` are the chosen services paid with one of the
    customer's package sessions, taken here (price 0; none left refuses the sale);
    `buy_packages` are packages bought on this ticket: their price is added, they become the
    customer's when the ticket is paid, and the chosen services they cover use them then.
    `cpf_on_invoice`: the customer asked for their CPF on the NFS-e (kept only
    with a CPF). `waivers` are the health waivers signed in this visit (tickets/waivers.py):
    a service that asks a questionnaire is sold only with a valid one, signed now or on file
    for this CPF; they are linked to the ticket and its customer. `channel` says where it
    was sold: one sold from the phone is never printed (tickets/printing.py mark_paid).
    """
    # A used key is looked up only when this sale fails: every purchase has a key and almost
    # none is a repeat (a read on each sale). The unique index on the key refuses the repeat
    # (its number and stock rolled back), and a check that now fails because the first went
    # through (it took the last extra) still answers with the first ticket.
    try:
        customer: dict[str, str | bool] = {
            **_clean_customer(customer_name, cpf, phone, consent_version)
        }
        customer["cpf_on_invoice"] = cpf_on_invoice and bool(customer["customer_cpf"])
        if priority not in Priority.values:
            raise ValidationError({"priority": [_("Unknown priority.")]})
        if not tenant.is_open():
            raise ValidationError({"services": [_("The studio is closed now.")]})
        ids = list(dict.fromkeys(int(i) for i in service_ids))
        services = _runnable_of(tenant.pk, *ids) if ids else []
        if not ids or len(services) != len(ids):
            raise ValidationError({"services": [_("Choose at least one available service.")]})
        services.sort(key=lambda s: (s.display_order, s.name))
        wanted = {int(k): int(v) for k, v in (extras or {}).items() if int(v) > 0}
        if any(q > MAX_EXTRA_QUANTITY for q in wanted.values()):
            raise ValidationError(
                {"extras": [_("At most %(n)s of each extra.") % {"n": MAX_EXTRA_QUANTITY}]}
            )
        catalog = wanted and {
            e.id: e for e in Extra.objects.sellable().for_tenant(tenant).filter(id__in=wanted)
        }
        if len(catalog) != len(wanted):
            raise ValidationError({"extras": [_("An extra you chose is no longer available.")]})
        sessions = {int(i) for i in use_sessions} & set(ids)
        bought = _packages(tenant, buy_packages, customer)
        if sessions and not customer["customer_cpf"]:
            raise ValidationError({"customer_cpf": [_("Package sessions need your CPF.")]})
        covered = {item.service_id for p in bought for item in p.items.all()} - sessions
        signed = [int(i) for i in waivers]
        check_sale(tenant, services, cpf=customer["customer_cpf"], signed=signed)
        sale = Sale(services, catalog, wanted, sessions, covered, bought, signed)
        with transaction.atomic():
            return _insert(tenant, sale, customer, priority, idempotency_key, channel)
    except (ValidationError, IntegrityError):
        existing = _replayed(tenant, idempotency_key)
        if existing is None:
            raise
        return existing


def _replayed(tenant: Tenant, idempotency_key: str) -> Ticket | None:
    """The tenant's ticket already created with `idempotency_key` (a double tap), if any."""
    if not idempotency_key:
        return None
    return Ticket.objects.filter(tenant=tenant, idempotency_key=idempotency_key).first()


def _packages(tenant: Tenant, ids: Iterable[int], customer: dict[str, str]) -> list[Package]:
    wanted = {int(i) for i in ids}
    if not wanted:
        return []
    if not customer["customer_cpf"]:
        raise ValidationError({"customer_cpf": [_("A package needs your CPF.")]})
    found = list(
        Package.objects.sellable()
        .for_tenant(tenant)
        .filter(pk__in=wanted)
        .prefetch_related("items")
    )
    if len(found) != len(wanted):
        raise ValidationError({"services": [_("A package you chose is no longer on sale.")]})
    return found


@dataclass
class Sale:
    """What create_ticket checked, for _insert to write."""

    services: list[Service]
    catalog: dict[int, Extra]
    wanted: dict[int, int]
    sessions: set[int]  # services paid with a session the customer has
    covered: set[int]  # services paid with a session of a package bought here
    packages: list[Package]
    waivers: list[int]  # health waivers signed in this visit

    def price_of(self, service: Service) -> Decimal:
        paid_with_session = service.pk in self.sessions or service.pk in self.covered
        return Decimal("0") if paid_with_session else service.price


def _insert(tenant, sale: Sale, customer, priority, idempotency_key, channel) -> Ticket:
    services, catalog, wanted = sale.services, sale.catalog, sale.wanted
    # Stock first, in id order so two tickets taking the same extras cannot deadlock. The
    # conditional UPDATE is the check: a row count of 0 means someone else took the last one.
    for extra_id in sorted(wanted):
        quantity = wanted[extra_id]
        if catalog[extra_id].stock is None:
            continue
        taken = Extra.objects.filter(id=extra_id, stock__gte=quantity).update(
            stock=F("stock") - quantity
        )
        if not taken:
            raise ValidationError(
                {"extras": [_("“%(name)s” is sold out.") % {"name": catalog[extra_id].name}]}
            )
    total = (
        sum((sale.price_of(s) for s in services), Decimal("0"))
        + sum((catalog[i].price * q for i, q in wanted.items()), Decimal("0"))
        + sum((p.price for p in sale.packages), Decimal("0"))
    )
    record = None
    if customer["customer_cpf"]:
        record = remember(
            tenant,
            cpf=customer["customer_cpf"],
            name=customer["customer_name"],
            phone=customer["customer_phone"],
            consent_version=customer["consent_version"],
        )
    ticket = Ticket(
        customer=record,
        tenant=tenant,
        day=tenant.today(),
        # Until number_ticket, last in this transaction, numbers it: unique per ticket, and
        # seen by no one (the row is not committed before it has its number).
        sequence=0,
        number=f"-{new_token()[:11]}",
        priority=priority,
        channel=channel,
        total=total,
        idempotency_key=idempotency_key,
        **customer,
    )
    # Without its history row (bulk_create sends no signal): the row is recorded once numbered.
    Ticket.objects.bulk_create([ticket])
    customer_key = ticket.customer_cpf or ticket.token
    rank = Priority.rank(priority)
    lines = TicketLine.objects.bulk_create(
        [
            TicketLine(
                tenant=tenant,
                ticket=ticket,
                service=service,
                price=sale.price_of(service),
                covered=service.pk in sale.covered,
                position=position,
                priority_rank=rank,
                customer_key=customer_key,
            )
            for position, service in enumerate(services)
        ]
    )
    if sale.packages:
        TicketPackage.objects.bulk_create(
            TicketPackage(tenant=tenant, ticket=ticket, package=p, price=p.price)
            for p in sale.packages
        )
    spending = [line for line in lines if line.service_id in sale.sessions]
    if not spending:
        history.record_created(lines)
    attach_signed(ticket, sale.waivers)
    if wanted:
        TicketExtra.objects.bulk_create(
            TicketExtra(
                tenant=tenant,
                ticket=ticket,
                extra=catalog[i],
                quantity=q,
                unit_price=catalog[i].price,
            )
            for i, q in wanted.items()
        )
    number_ticket(ticket, services[0].prefix or tenant.ticket_prefix)
    history.record_created([ticket])
    if spending:
        # After the number, which a session's ledger entry shows; the lines' history rows
        # then copy what spending wrote to them.
        for line in spending:
            credits.spend(line, record)
        history.record_created(lines)
    webhooks.enqueue(tenant, WebhookEvent.TICKET_CREATED, lambda: ticket_payload(ticket))
    return ticket
