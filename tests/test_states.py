"""Both state machines, every pair of states: allowed moves pass, all others are refused."""

from __future__ import annotations

import itertools

import pytest

from tenants.errors import InvalidTransition
from tests.conftest import make_ticket
from tickets.models import (
    LINE_TRANSITIONS,
    TICKET_STAMPS,
    TICKET_TRANSITIONS,
    LineStatus,
    TicketLine,
    TicketStatus,
    change_line_status,
    change_ticket_status,
    is_final,
    line_is_final,
    status_info,
    valid_transitions,
)

TICKET_PAIRS = list(itertools.product(TicketStatus.values, repeat=2))
LINE_PAIRS = list(itertools.product(LineStatus.values, repeat=2))


def test_the_tables_name_every_state():
    assert set(TICKET_TRANSITIONS) == set(TicketStatus.values)
    assert set(LINE_TRANSITIONS) == set(LineStatus.values)


def test_the_ticket_table_is_the_product_one():
    assert valid_transitions("pending_payment") == {"paid", "cancelled"}
    assert valid_transitions("paid") == {"printing", "print_error", "in_queue", "cancelled"}
    assert valid_transitions("printing") == {"in_queue", "print_error", "cancelled"}
    assert valid_transitions("print_error") == {"printing", "in_queue", "cancelled"}
    # + completed from in_queue and called: the last open line cancelled, another completed.
    assert valid_transitions("in_queue") == {"called", "expired", "cancelled", "completed"}
    assert valid_transitions("called") == {
        "in_progress",
        "in_queue",
        "expired",
        "cancelled",
        "completed",
    }
    assert valid_transitions("in_progress") == {"completed", "cancelled", "in_queue", "called"}
    assert valid_transitions("expired") == {"called", "cancelled"}
    assert is_final("completed") and is_final("cancelled") and not is_final("expired")
    assert line_is_final("completed") and line_is_final("cancelled")
    # A missed line may be called again until its window ends; then it is expired for good.
    assert not line_is_final("no_show") and line_is_final("expired")
    assert LINE_TRANSITIONS["no_show"] == {"called", "cancelled", "expired"}


def test_status_info_gives_a_pt_br_label_and_a_colour():
    info = status_info("in_queue")
    assert info["label"] == "Na fila"
    assert info["colour"].startswith("#")
    assert info["next"] == ["called", "cancelled", "completed", "expired"]


@pytest.mark.parametrize(("current", "target"), TICKET_PAIRS)
def test_ticket_machine(db, tenant, cryo, alice, current, target):
    ticket = make_ticket(tenant, [cryo])
    # Put the ticket in `current` directly: the test sets up the precondition, the function
    # under test is the one that checks.
    type(ticket).objects.filter(pk=ticket.pk).update(status=current)
    ticket.refresh_from_db()
    if target in TICKET_TRANSITIONS[current]:
        change_ticket_status(ticket, target, user=alice, reason="teste")
        ticket.refresh_from_db()
        assert ticket.status == target
        assert getattr(ticket, TICKET_STAMPS[target]) is not None
        last = ticket.history.first()
        assert last.history_user == alice
        assert last.history_change_reason == "teste"
    else:
        with pytest.raises(InvalidTransition) as refused:
            change_ticket_status(ticket, target, user=alice, reason="teste")
        assert str(TicketStatus(current).label) in str(refused.value)
        assert str(TicketStatus(target).label) in str(refused.value)
        ticket.refresh_from_db()
        assert ticket.status == current


@pytest.mark.parametrize(("current", "target"), LINE_PAIRS)
def test_line_machine(db, tenant, cryo, alice, current, target):
    ticket = make_ticket(tenant, [cryo])
    TicketLine.objects.filter(ticket=ticket).update(status=current)
    line = ticket.lines.get()
    if target in LINE_TRANSITIONS[current]:
        change_line_status(line, target, user=alice, reason="teste")
        line.refresh_from_db()
        assert line.status == target
        assert line.history.first().history_user == alice
    else:
        with pytest.raises(InvalidTransition) as refused:
            change_line_status(line, target, user=alice, reason="teste")
        assert str(LineStatus(current).label) in str(refused.value)
        line.refresh_from_db()
        assert line.status == current


def test_cancelling_records_the_reason(db, tenant, cryo, alice):
    ticket = make_ticket(tenant, [cryo])
    change_ticket_status(ticket, "cancelled", user=alice, reason="cliente desistiu")
    ticket.refresh_from_db()
    assert ticket.cancellation_reason == "cliente desistiu"
    assert ticket.cancelled_at is not None
