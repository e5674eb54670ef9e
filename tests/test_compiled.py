"""Reads compiled once per process (tenants/compiled.py) read what the ORM reads."""

from __future__ import annotations

from datetime import time, timedelta

import pytest
from django.db import connection
from django.db.models import Count
from django.utils import timezone

from equipment.models import Equipment
from panel import views
from tenants.compiled import CompiledRead, padded
from tenants.models import OpeningHours, _read_hours
from tests.conftest import make_device, make_service, queued_ticket
from tickets.models import Service, TicketLine


def test_a_compiled_read_makes_the_instances_the_orm_makes(tenant, other_tenant, cryo, boots):
    station = make_device(tenant, "Combo", [boots, cryo])
    make_device(other_tenant, "Theirs", [make_service(other_tenant)])

    services = views._SERVICES(tenant.pk, station.pk)
    assert services == [cryo, boots]  # the display order
    assert [vars(s) | {"_state": None} for s in services] == [
        vars(s) | {"_state": None}
        for s in Service.objects.filter(pk__in=[cryo.pk, boots.pk]).order_by("display_order")
    ]
    assert not services[0]._state.adding  # saved rows, as the ORM's


def test_a_compiled_read_stays_in_its_tenant(tenant, other_tenant, cryo):
    ours = make_device(tenant, "Ours", [cryo])
    theirs = make_device(other_tenant, "Theirs", [make_service(other_tenant)])

    assert views._STATION(tenant.pk, ours.pk) == [ours]
    assert views._STATION(tenant.pk, theirs.pk) == []
    assert views._SERVICES(tenant.pk, theirs.pk) == []
    assert views._NEIGHBOURS(tenant.pk, theirs.pk) == []


def test_a_compiled_values_read_converts_as_the_orm_does(tenant, cryo):
    ticket = queued_ticket(tenant, [cryo])
    TicketLine.objects.filter(ticket=ticket).update(no_show_at=timezone.now() - timedelta(1))
    read = CompiledRead(
        lambda tenant_id: TicketLine.objects.filter(tenant_id=tenant_id).values(
            "pk", "queued_at", "no_show_at", "covered", "ticket__day"
        ),
    )

    assert read(tenant.pk) == list(
        TicketLine.objects.filter(tenant=tenant).values(
            "pk", "queued_at", "no_show_at", "covered", "ticket__day"
        )
    )


def test_a_compiled_read_refuses_a_key_that_does_not_reach_its_statement(tenant):
    read = CompiledRead(lambda tenant_id, unused: Equipment.objects.filter(tenant_id=tenant_id))

    with pytest.raises(ValueError):
        read(tenant.pk, 1)


def test_a_compiled_read_runs_for_each_key_in_one_statement(
    tenant, other_tenant, cryo, boots, django_assert_num_queries
):
    first, second = queued_ticket(tenant, [cryo, boots]), queued_ticket(tenant, [cryo])

    with django_assert_num_queries(1):
        parts = views._QUEUE.each(
            [(tenant.pk, cryo.pk), (tenant.pk, boots.pk), (other_tenant.pk, cryo.pk)]
        )
    assert [sorted(row["ticket_id"] for row in part) for part in parts] == [
        sorted([first.pk, second.pk]),
        [first.pk],
        [],  # another tenant's key reads nothing of this one
    ]


def test_a_compiled_read_answers_as_the_orm_for_each_tenant(tenant, other_tenant):
    """The statement is built once, for a marker tenant id; each call reads its own tenant's
    rows, the same ones the ORM would, converted the same way, and sees a change at once."""
    OpeningHours.objects.create(tenant=tenant, weekday=0, opens=time(8), closes=time(12))
    OpeningHours.objects.create(tenant=tenant, weekday=0, opens=time(14), closes=time(20))
    OpeningHours.objects.create(tenant=other_tenant, weekday=3, opens=time(9), closes=time(10))

    def fields(rows):
        return [(h.pk, h.tenant_id, h.weekday, h.opens, h.closes) for h in rows]

    for owner in (tenant, other_tenant, tenant):
        assert fields(_read_hours(owner.pk)) == fields(OpeningHours.objects.for_tenant(owner))
    OpeningHours.objects.filter(tenant=other_tenant).delete()
    assert _read_hours(other_tenant.pk) == []


def test_a_compiled_read_must_take_the_tenant_as_a_parameter(db):
    @CompiledRead
    def everyone(tenant_id: int):
        return OpeningHours.objects.all()

    with pytest.raises(ValueError, match="every key must be a parameter"):
        everyone(1)


def test_a_compiled_read_refuses_a_date_fixed_when_built(db):
    # The statement outlives the call that built it: "today" would stay the first day.
    @CompiledRead
    def today(tenant_id: int):
        return TicketLine.objects.filter(tenant_id=tenant_id, queued_at__gte=timezone.now())

    with pytest.raises(ValueError, match="must not fix a date or time"):
        today(1)


def test_a_compiled_read_gives_instances_their_annotations(tenant, other_tenant, cryo, boots):
    make_device(tenant, "Combo", [boots, cryo])
    make_device(tenant, "Cryo 2", [cryo])
    make_device(other_tenant, "Theirs", [make_service(other_tenant)])

    @CompiledRead
    def services(tenant_id: int):
        return (
            Service.objects.filter(tenant_id=tenant_id)
            .annotate(devices=Count("equipment"))
            .order_by("pk")
        )

    assert [(s.pk, s.name, s.devices) for s in services(tenant.pk)] == [
        (cryo.pk, cryo.name, 2),
        (boots.pk, boots.name, 1),
    ]


def test_an_id_no_column_can_hold_finds_nothing_as_in_the_orm(tenant, cryo):
    station = make_device(tenant, "Ours", [cryo])
    huge = 10**20  # a URL's digits that never were an id

    assert views._STATION(tenant.pk, huge) == list(Equipment.objects.filter(pk=huge)) == []
    parts = views._SERVICES.each([(tenant.pk, huge), (tenant.pk, station.pk)])
    assert parts[0] == [] and parts[1] == [cryo]  # each key keeps its place


def test_a_compiled_read_takes_a_slug_a_datetime_and_a_date_as_keys(tenant, other_tenant, cryo):
    """The clock's values are the caller's, passed at each call as the ORM would pass them
    (SQLite: as text, in UTC), never the first call's."""
    early, late = queued_ticket(tenant, [cryo]), queued_ticket(tenant, [cryo])
    now = timezone.now()
    TicketLine.objects.filter(ticket=early).update(queued_at=now - timedelta(hours=2))
    TicketLine.objects.filter(ticket=late).update(queued_at=now - timedelta(minutes=5))
    read = CompiledRead(
        lambda slug, since, day: TicketLine.objects.filter(
            tenant__slug=slug, queued_at__gte=since, ticket__day=day
        ).values("ticket_id")
    )
    today = early.day

    def tickets(*keys):
        return sorted(row["ticket_id"] for row in read(*keys))

    assert tickets(tenant.slug, now - timedelta(hours=3), today) == [early.pk, late.pk]
    assert tickets(tenant.slug, now - timedelta(hours=1), today) == [late.pk]
    assert tickets(tenant.slug, now - timedelta(hours=3), today - timedelta(days=1)) == []
    assert tickets(other_tenant.slug, now - timedelta(hours=3), today) == []


def test_padded_ids_make_a_few_statements(tenant, cryo):
    """A list of ids padded to a multiple of 32 is one statement for 1 to 32 ids."""
    tickets = [queued_ticket(tenant, [cryo]) for _ in range(3)]
    read = CompiledRead(
        lambda tenant_id, *ids: TicketLine.objects.filter(tenant_id=tenant_id, ticket_id__in=ids)
    )

    for some in (tickets[:1], tickets):
        ids = [ticket.pk for ticket in some]
        assert sorted(line.ticket_id for line in read(tenant.pk, *padded(ids))) == ids
    assert len(read._statements) == 1


def test_a_compiled_read_joins_what_select_related_joins(tenant, other_tenant, cryo, boots):
    """The related instances, a reverse one-to-one absent included, as the ORM makes them."""
    ticket = queued_ticket(tenant, [cryo, boots])
    make_device(other_tenant, "Theirs", [make_service(other_tenant)])
    read = CompiledRead(
        lambda tenant_id: (
            TicketLine.objects.filter(tenant_id=tenant_id)
            .select_related("ticket", "ticket__remote", "service")
            .order_by("position")
        )
    )

    lines = read(tenant.pk)
    orm = list(
        TicketLine.objects.filter(tenant=tenant)
        .select_related("ticket", "ticket__remote", "service")
        .order_by("position")
    )
    assert [(line.pk, line.ticket, line.service) for line in lines] == [
        (line.pk, line.ticket, line.service) for line in orm
    ]
    assert lines[0].ticket.number == ticket.number and lines[1].service.name == boots.name
    assert not hasattr(lines[0].ticket, "remote")  # no row: not there, as with the ORM
    assert read(other_tenant.pk) == []


@pytest.mark.postgres
def test_a_read_planned_per_call_is_never_prepared(tenant, cryo):
    """The queues are planned for the service asked (a long queue among many short ones),
    never by a prepared statement's one plan for any service; other reads are prepared."""
    station = make_device(tenant, "Ours", [cryo])
    queued_ticket(tenant, [cryo])
    for _ in range(8):  # psycopg prepares a statement run 5 times on a connection
        views._QUEUE.each([(tenant.pk, cryo.pk)])
        views._STATION(tenant.pk, station.pk)

    def prepared(fragment: str) -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s",
                [f"%{fragment}%"],
            )
            return cursor.fetchone()[0]

    assert prepared('AS "part"') == 0
    assert prepared('FROM "equipment_equipment"') >= 1
