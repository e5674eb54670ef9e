"""Random sequences of operations through the domain functions keep every invariant.

Hypothesis drives sales, payments, calls, starts, completions, send-backs, no-shows,
cancellations, transfers, missed services expiring and stuck ones closing in any order, and
after each step the database must hold: one active line per device; no customer twice at once
in one service; each queued ticket's status equals the aggregate of its lines; a ticket with a
missed service that may be called again is neither completed nor cancelled; stock never
negative and equal to what was bought back; a ticket's total equals the sum of its items.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Sum
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tenants.errors import DomainError
from tests.conftest import make_device, make_service
from tickets import printing, queue
from tickets.issuing import create_ticket
from tickets.models import Extra, Priority, Ticket, TicketExtra, TicketLine

OPS = [
    "sell",
    "pay",
    "call_next",
    "call_line",
    "start",
    "complete",
    "send_back",
    "no_show",
    "reannounce",
    "cancel_line",
    "cancel_ticket",
    "transfer",
    "expire",
    "expire_missed",
    "close_stuck",
]
CPFS = ["", "", "52998224725", "11144477735"]  # shared CPFs: the same customer twice
STOCK = 5


class Rollback(Exception):
    pass


def build_world(tenant):
    services = [make_service(tenant, f"S{i}", "ABC"[i]) for i in range(3)]
    devices = [
        make_device(tenant, f"D{i}", [services[i % 3], services[(i + 1) % 3]]) for i in range(4)
    ]
    extra = Extra.objects.create(tenant=tenant, name="Toalha", price=Decimal("5.00"), stock=STOCK)
    return services, devices, extra


def apply(op: str, a: int, b: int, tenant, services, devices, extra) -> None:
    lines = list(TicketLine.objects.filter(tenant=tenant).order_by("id"))
    tickets = list(Ticket.objects.filter(tenant=tenant).order_by("id"))
    line = lines[a % len(lines)] if lines else None
    ticket = tickets[a % len(tickets)] if tickets else None
    device = devices[b % len(devices)]
    if op == "sell":
        chosen = [s.id for i, s in enumerate(services) if (a >> i) & 1] or [services[0].id]
        create_ticket(
            tenant,
            service_ids=chosen,
            extras={extra.id: b % 3},
            customer_name="Cliente",
            cpf=CPFS[b % len(CPFS)],
            consent_version="1",
            priority=Priority.values[a % len(Priority.values)],
        )
    elif op == "pay" and ticket:
        with transaction.atomic():
            locked = Ticket.objects.select_for_update().get(pk=ticket.pk)
            if locked.status == "pending_payment":
                printing.mark_paid(locked)
    elif op == "call_next":
        queue.call_next(services[a % 3], device)
    elif op == "call_line" and line:
        queue.call_line(tenant, line.id, device)
    elif op == "start" and line:
        queue.start(tenant, line.id)
    elif op == "complete" and line:
        queue.complete(tenant, line.id)
    elif op == "send_back" and line:
        queue.send_back(tenant, line.id)
    elif op == "no_show" and line:
        queue.no_show(tenant, line.id)
    elif op == "reannounce" and line:
        queue.reannounce(tenant, line.id)
    elif op == "cancel_line" and line:
        queue.cancel_line(tenant, line.id, reason="teste")
    elif op == "cancel_ticket" and ticket:
        queue.cancel_ticket(tenant, ticket.id, reason="teste")
    elif op == "transfer" and line:
        queue.transfer(tenant, line.id, services[b % 3])
    elif op == "expire" and ticket:
        queue.expire_ticket(tenant, ticket.id, reason="teste")
    elif op == "expire_missed" and line:  # the reactivation window is over
        queue.expire_missed(tenant, line.id, now=timezone.now() + timedelta(days=1))
    elif op == "close_stuck" and line:  # left called or in service overnight
        queue.close_stuck(tenant, line.id, before=timezone.now() + timedelta(days=2))


def check_invariants(tenant, extra) -> None:
    active = TicketLine.objects.filter(tenant=tenant, status__in=["called", "in_progress"])
    per_device = active.values("equipment").annotate(n=Count("id")).filter(n__gt=1)
    assert not per_device.exists(), "a device serves two lines"
    assert not active.filter(equipment__isnull=True).exists(), "an active line without device"
    per_customer = active.values("service", "customer_key").annotate(n=Count("id"))
    assert not per_customer.filter(n__gt=1).exists(), "a customer twice in one service"

    queued_states = {"in_queue", "called", "in_progress"}
    for ticket in Ticket.objects.filter(tenant=tenant).prefetch_related("lines", "extras"):
        statuses = [line.status for line in ticket.lines.all()]
        if ticket.status in queued_states:
            assert queue.aggregate_status(statuses) == ticket.status, (ticket.status, statuses)
        if ticket.status in ("completed", "cancelled", "expired"):
            open_lines = {"waiting", "called", "in_progress"} & set(statuses)
            assert not open_lines, (ticket.status, statuses)
        if "no_show" in statuses:  # a missed service may be called again: the ticket is open
            assert ticket.status not in ("completed", "cancelled"), (ticket.status, statuses)
        items = sum(line.price for line in ticket.lines.all()) + sum(
            e.subtotal for e in ticket.extras.all()
        )
        assert ticket.total == items

    extra.refresh_from_db()
    assert extra.stock >= 0
    held = (
        TicketExtra.objects.filter(extra=extra)
        .exclude(ticket__status="cancelled", ticket__paid_at__isnull=True)
        .aggregate(n=Sum("quantity"))["n"]
        or 0
    )
    assert extra.stock + held == STOCK, "stock lost or created"

    # The queue is ordered by the line's copy of its ticket's class, whatever happened since.
    ranks = TicketLine.objects.filter(tenant=tenant).values_list(
        "priority_rank", "ticket__priority"
    )
    assert all(rank == Priority.rank(priority) for rank, priority in ranks), "rank ≠ class"


operations = st.lists(
    st.tuples(st.sampled_from(OPS), st.integers(0, 63), st.integers(0, 63)),
    min_size=1,
    max_size=30,
)


@pytest.mark.django_db
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=operations)
def test_random_operations_keep_every_invariant(tenant, ops):
    try:
        with transaction.atomic():
            services, devices, extra = build_world(tenant)
            for op, a, b in ops:
                try:
                    with transaction.atomic():
                        apply(op, a, b, tenant, services, devices, extra)
                except (DomainError, ValidationError):
                    pass  # a refusal is a fine answer; the invariants must still hold
                check_invariants(tenant, extra)
            raise Rollback
    except Rollback:
        pass
