"""History rows copied inside the database hold what the library's own rows would hold."""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext
from simple_history.signals import post_create_historical_record

from equipment.models import Equipment
from tests.conftest import make_device, make_service, make_ticket
from tickets.models import Service, TicketLine, TicketStatus, change_ticket_status

VARY = {"history_id", "history_date"}  # differ between any two rows


def _values(record) -> dict:
    return {
        f.attname: getattr(record, f.attname) for f in record._meta.fields if f.name not in VARY
    }


def _copied_into(history, queries) -> bool:
    """Whether `queries` wrote a row of `history` by copying it inside the database."""
    table = history._meta.db_table
    return any(f'INSERT INTO "{table}"' in q["sql"] and " SELECT " in q["sql"] for q in queries)


def _save_twice(instance, user, reason: str):
    """Save `instance` unchanged: first by the copy in the database, then by the library
    (which a listener on its per-record signal brings back). Return both history rows."""
    heard = []

    def listener(history_instance, **kwargs):
        heard.append(history_instance)

    history = type(instance).history.model
    ways = []
    for _ in range(2):
        instance._history_user, instance._change_reason = user, reason
        with CaptureQueriesContext(connection) as queries:
            instance.save()
        ways.append(_copied_into(history, queries))
        post_create_historical_record.connect(listener, sender=history)
    post_create_historical_record.disconnect(listener, sender=history)
    assert ways == [True, False], "first by the copy, then the library's way"
    assert len(heard) == 1
    library, copied = history.objects.filter(id=instance.pk).order_by("-history_id")[:2]
    return copied, library


def test_a_copied_row_equals_the_librarys(tenant, cryo, alice):
    ticket = make_ticket(tenant, [cryo], customer_name="Maria", cpf="529.982.247-25")
    change_ticket_status(ticket, TicketStatus.PAID, user=alice, reason="pago em dinheiro")
    copied, library = _save_twice(ticket, alice, "pago em dinheiro")
    assert _values(copied) == _values(library)
    assert copied.status == "paid" and copied.history_user == alice
    assert copied.history_change_reason == "pago em dinheiro" and copied.history_type == "~"

    cryo.name, cryo.price = "Crioterapia corpo inteiro", "150.00"
    copied, library = _save_twice(cryo, None, "")
    assert _values(copied) == _values(library)
    assert copied.name == "Crioterapia corpo inteiro" and copied.history_user is None


def test_a_status_change_writes_its_history_in_one_statement(tenant, cryo, alice):
    ticket = make_ticket(tenant, [cryo], customer_name="Maria")
    with CaptureQueriesContext(connection) as queries:
        change_ticket_status(ticket, TicketStatus.PAID, user=alice, reason="pago")
    assert len(queries) == 2  # the UPDATE and the history's INSERT … SELECT
    assert "INSERT INTO" in queries[1]["sql"] and "SELECT" in queries[1]["sql"]
    first, last = ticket.history.order_by("history_id")
    assert (first.history_type, first.status) == ("+", "pending_payment")
    assert (last.history_type, last.status, last.history_user) == ("~", "paid", alice)


def test_deletes_and_many_to_many_keep_the_librarys_way(tenant, cryo):
    service = make_service(tenant, "Bota", "B")
    service_id = service.pk
    service.delete()
    assert Service.history.filter(id=service_id).latest().history_type == "-"

    device = make_device(tenant, "Cabine 1", [cryo])
    record = Equipment.history.filter(id=device.pk).latest()
    assert list(record.services.values_list("service", flat=True)) == [cryo.pk]
    device.services.remove(cryo)
    record = Equipment.history.filter(id=device.pk).latest()
    assert list(record.services.all()) == []  # the m2m snapshot only the library takes


def test_lines_written_in_bulk_get_their_creation_rows(tenant, cryo, boots):
    with CaptureQueriesContext(connection) as queries:
        ticket = make_ticket(tenant, [cryo, boots], customer_name="Maria")
    assert _copied_into(TicketLine.history.model, queries)
    rows = TicketLine.history.filter(ticket_id=ticket.pk).order_by("position")
    assert [(r.history_type, r.service_id, r.status, r.price) for r in rows] == [
        ("+", cryo.pk, "waiting", cryo.price),
        ("+", boots.pk, "waiting", boots.price),
    ]

    history = TicketLine.history.model
    post_create_historical_record.connect(
        lambda **kw: None, sender=history, weak=False, dispatch_uid="test-bulk"
    )
    try:
        with CaptureQueriesContext(connection) as queries:
            again = make_ticket(tenant, [cryo], customer_name="Joana")
    finally:
        post_create_historical_record.disconnect(sender=history, dispatch_uid="test-bulk")
    assert not _copied_into(history, queries)  # someone listens: the library's way
    assert TicketLine.history.filter(ticket_id=again.pk, history_type="+").count() == 1
