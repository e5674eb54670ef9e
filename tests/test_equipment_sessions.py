"""Devices as a studio runs them: session timers, cool-down, maintenance windows, their
states and events, and the database's refusal to call onto a device that is not ready."""

from __future__ import annotations

import json
import threading
from datetime import datetime, time, timedelta
from time import monotonic

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from equipment.models import DeviceServiceSettings, DeviceState, Equipment
from tenants.errors import DomainError
from tenants.models import AuditLog
from tests import daphne_server
from tests.conftest import make_device, make_service, queued_ticket
from tickets import devices, events, queue
from tickets.models import TicketLine
from tickets.queue import QueueError


@pytest.fixture
def cryo_chamber(tenant, cryo):
    """Cryotherapy as studios run it: 3 min at most, then 5 min before the next customer."""
    cryo.duration_minutes, cryo.hard_maximum, cryo.cooldown_minutes = 3, True, 5
    cryo.save()
    return make_device(tenant, "Crio 1", [cryo], location="Sala 1")


def line_of(ticket) -> TicketLine:
    return ticket.lines.get()


def serve(tenant, service, device) -> TicketLine:
    """Call, start and complete the next customer of `service` on `device`."""
    line = queue.call_next(service, device)
    queue.start(tenant, line.pk)
    return queue.complete(tenant, line.pk)


def state_of(device: Equipment) -> str:
    device = Equipment.objects.select_related("tenant").get(pk=device.pk)
    return devices.states([device])[0].state


# --- settings and the session timer ----------------------------------------------------------


def test_a_started_session_ends_at_the_devices_own_length_else_the_services(
    tenant, cryo, cryo_chamber
):
    queued_ticket(tenant, [cryo])
    line = queue.call_next(cryo, cryo_chamber)
    before = timezone.now()
    line = queue.start(tenant, line.pk)
    assert line.session_hard_maximum is True
    assert timedelta(minutes=3) <= line.session_ends_at - before < timedelta(minutes=3, seconds=5)

    queue.complete(tenant, line.pk)
    DeviceServiceSettings.objects.create(
        equipment=cryo_chamber, service=cryo, session_minutes=2, cooldown_minutes=1
    )
    Equipment.objects.filter(pk=cryo_chamber.pk).update(cooling_until=None)
    queued_ticket(tenant, [cryo])
    line = queue.start(tenant, queue.call_next(cryo, cryo_chamber).pk)
    assert line.session_ends_at - line.started_at == pytest.approx(
        timedelta(minutes=2), abs=timedelta(seconds=1)
    )
    done = queue.complete(tenant, line.pk)
    assert done.cooling_until - done.completed_at == pytest.approx(
        timedelta(minutes=1), abs=timedelta(seconds=1)
    )


def test_the_planned_end_is_kept_when_the_settings_change_mid_session(tenant, cryo, cryo_chamber):
    queued_ticket(tenant, [cryo])
    line = queue.start(tenant, queue.call_next(cryo, cryo_chamber).pk)
    planned = line.session_ends_at
    cryo.duration_minutes = 20
    cryo.save()
    line.refresh_from_db()
    assert line.session_ends_at == planned


# --- cool-down ------------------------------------------------------------------------------


def test_after_a_session_the_device_cools_down_and_call_next_refuses_it(tenant, cryo, cryo_chamber):
    queued_ticket(tenant, [cryo])
    queued_ticket(tenant, [cryo])
    done = serve(tenant, cryo, cryo_chamber)
    cryo_chamber.refresh_from_db()
    assert cryo_chamber.cooling_until == done.cooling_until
    assert state_of(cryo_chamber) == DeviceState.COOLING

    with pytest.raises(QueueError, match="resfriamento até"):
        queue.call_next(cryo, cryo_chamber)
    waiting = TicketLine.objects.get(status="waiting")
    with pytest.raises(QueueError, match="resfriamento até"):
        queue.call_line(tenant, waiting.pk, cryo_chamber)

    # Time passes (the timestamp, not a process, decides): the device is free.
    Equipment.objects.filter(pk=cryo_chamber.pk).update(
        cooling_until=timezone.now() - timedelta(seconds=1)
    )
    assert state_of(cryo_chamber) == DeviceState.FREE
    assert queue.call_next(cryo, cryo_chamber).pk == waiting.pk


def test_a_session_cancelled_while_running_cools_the_device_a_missed_call_does_not(
    tenant, cryo, cryo_chamber, alice
):
    queued_ticket(tenant, [cryo])
    queued_ticket(tenant, [cryo])
    line = queue.call_next(cryo, cryo_chamber)
    queue.no_show(tenant, line.pk)
    assert state_of(cryo_chamber) == DeviceState.FREE

    line = queue.start(tenant, queue.call_next(cryo, cryo_chamber).pk)
    queue.cancel_line(tenant, line.pk, user=alice, reason="passou mal")
    assert state_of(cryo_chamber) == DeviceState.COOLING


def test_an_operator_ends_a_cool_down_early_with_a_reason_audited(
    tenant, cryo, cryo_chamber, alice
):
    queued_ticket(tenant, [cryo])
    done = serve(tenant, cryo, cryo_chamber)
    with pytest.raises(DomainError, match="motivo"):
        devices.end_cooldown(tenant, cryo_chamber.pk, user=alice, reason=" ")

    devices.end_cooldown(tenant, cryo_chamber.pk, user=alice, reason="limpeza rápida")
    assert state_of(cryo_chamber) == DeviceState.FREE
    entry = AuditLog.objects.get(action="cooldown_ended")
    assert (entry.user, entry.data["reason"]) == (alice, "limpeza rápida")
    assert entry.data["planned_until"] == done.cooling_until.isoformat()
    # The session's record of its cool-down is what was really spent, for the statistics.
    done.refresh_from_db()
    assert done.cooling_until <= timezone.now()
    with pytest.raises(DomainError, match="não está em resfriamento"):
        devices.end_cooldown(tenant, cryo_chamber.pk, user=alice, reason="de novo")


def test_another_tenants_device_cannot_be_released_early(
    other_tenant, tenant, cryo, cryo_chamber, alice
):
    queued_ticket(tenant, [cryo])
    serve(tenant, cryo, cryo_chamber)
    with pytest.raises(DomainError, match="não encontrado"):
        devices.end_cooldown(other_tenant, cryo_chamber.pk, user=alice, reason="x")


# --- maintenance and offline ----------------------------------------------------------------


def window_around_now(tenant, device, *, minutes_ago: int, length: int) -> None:
    local = tenant.local_now() - timedelta(minutes=minutes_ago)
    device.maintenance_starts = time(local.hour, local.minute)
    device.maintenance_minutes = length
    device.save()


def test_the_daily_maintenance_window_keeps_calls_off_the_device(tenant, cryo, cryo_chamber):
    queued_ticket(tenant, [cryo])
    window_around_now(tenant, cryo_chamber, minutes_ago=5, length=30)
    assert state_of(cryo_chamber) == DeviceState.MAINTENANCE
    with pytest.raises(QueueError, match="manutenção diária até"):
        queue.call_next(cryo, cryo_chamber)

    window_around_now(tenant, cryo_chamber, minutes_ago=40, length=30)
    assert state_of(cryo_chamber) == DeviceState.FREE
    queue.call_next(cryo, cryo_chamber)


def test_a_window_across_midnight_covers_both_sides(tenant):
    device = Equipment(tenant=tenant, maintenance_starts=time(23, 30), maintenance_minutes=60)
    zone = tenant.tzinfo
    assert device.maintenance_until(datetime(2026, 12, 5, 23, 45, tzinfo=zone)) == datetime(
        2026, 12, 6, 0, 30, tzinfo=zone
    )
    assert device.maintenance_until(datetime(2026, 12, 6, 0, 15, tzinfo=zone)) is not None
    assert device.maintenance_until(datetime(2026, 12, 6, 0, 30, tzinfo=zone)) is None
    assert device.maintenance_until(datetime(2026, 12, 5, 23, 29, tzinfo=zone)) is None


# --- the database's own rule --------------------------------------------------------------


@pytest.mark.parametrize("status", ["maintenance", "offline"])
def test_the_database_refuses_a_call_onto_a_device_that_is_not_online(
    tenant, cryo, cryo_chamber, status
):
    ticket = queued_ticket(tenant, [cryo])
    Equipment.objects.filter(pk=cryo_chamber.pk).update(status=status)
    with pytest.raises(IntegrityError, match="device_not_ready"), transaction.atomic():
        TicketLine.objects.filter(ticket=ticket).update(status="called", equipment=cryo_chamber)


def test_the_database_refuses_a_call_onto_a_cooling_device_whatever_the_code_does(
    tenant, cryo, cryo_chamber
):
    ticket = queued_ticket(tenant, [cryo])
    Equipment.objects.filter(pk=cryo_chamber.pk).update(
        cooling_until=timezone.now() + timedelta(minutes=2)
    )
    with pytest.raises(IntegrityError, match="device_not_ready"), transaction.atomic():
        TicketLine.objects.filter(ticket=ticket).update(status="called", equipment=cryo_chamber)
    Equipment.objects.filter(pk=cryo_chamber.pk).update(
        cooling_until=timezone.now() - timedelta(seconds=1)
    )
    TicketLine.objects.filter(ticket=ticket).update(status="called", equipment=cryo_chamber)


@pytest.mark.postgres
def test_the_database_refuses_a_call_inside_the_daily_window_on_postgresql(
    tenant, cryo, cryo_chamber
):
    ticket = queued_ticket(tenant, [cryo])
    window_around_now(tenant, cryo_chamber, minutes_ago=1, length=10)
    with pytest.raises(IntegrityError, match="maintenance window"), transaction.atomic():
        TicketLine.objects.filter(ticket=ticket).update(status="called", equipment=cryo_chamber)
    window_around_now(tenant, cryo_chamber, minutes_ago=20, length=10)
    TicketLine.objects.filter(ticket=ticket).update(status="called", equipment=cryo_chamber)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_parallel_operators_never_call_onto_a_chamber_whose_session_just_ended(tenant):
    """Saturday: three chambers finishing their sessions while twelve operators press
    *Call next* onto them at the same instant. A call that comes before the end is refused
    as busy, one after it as cooling: none lands on a chamber."""
    cryo = make_service(tenant, "Crioterapia", "C", minutes=3)
    cryo.hard_maximum, cryo.cooldown_minutes = True, 5
    cryo.save()
    chambers = [make_device(tenant, f"Crio {i}", [cryo]) for i in range(3)]
    running = []
    for chamber in chambers:
        queued_ticket(tenant, [cryo])
        running.append(queue.start(tenant, queue.call_next(cryo, chamber).pk))
    for _ in range(12):
        queued_ticket(tenant, [cryo])
    operators = 12
    barrier = threading.Barrier(operators + len(running))
    refusals: list[str] = []
    called: list[int] = []

    def operator(chamber):
        try:
            barrier.wait()
            for _ in range(3):
                try:
                    called.append(queue.call_next(cryo, chamber).pk)
                except QueueError as error:
                    refusals.append(str(error))
        finally:
            connection.close()

    def finisher(line):
        try:
            barrier.wait()
            queue.complete(tenant, line.pk)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=operator, args=(chambers[i % 3],)) for i in range(operators)
    ] + [threading.Thread(target=finisher, args=(line,)) for line in running]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert called == []
    assert len(refusals) == operators * 3
    assert all("ocupad" in r or "resfriamento" in r for r in refusals), set(refusals)
    assert TicketLine.objects.filter(status__in=["called", "in_progress"]).count() == 0
    assert TicketLine.objects.filter(status="completed").count() == 3
    assert (
        Equipment.objects.filter(
            pk__in=[c.pk for c in chambers], cooling_until__gt=timezone.now()
        ).count()
        == 3
    )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_cool_down_starting_between_check_and_call_is_refused_by_the_database(tenant):
    """The trigger is the last guard: an operator whose transaction read the device free
    before a session ended elsewhere still cannot call onto it."""
    cryo = make_service(tenant, "Crioterapia", "C", minutes=3)
    chamber = make_device(tenant, "Crio 1", [cryo])
    ticket = queued_ticket(tenant, [cryo])
    ready = threading.Event()
    cooled = threading.Event()
    errors: list[Exception] = []

    def late_operator():
        try:
            with transaction.atomic():
                list(Equipment.objects.filter(pk=chamber.pk))  # reads it free
                ready.set()
                cooled.wait(5)
                TicketLine.objects.filter(ticket=ticket).update(status="called", equipment=chamber)
        except IntegrityError as error:
            errors.append(error)
        finally:
            connection.close()

    thread = threading.Thread(target=late_operator)
    thread.start()
    ready.wait(5)
    Equipment.objects.filter(pk=chamber.pk).update(
        cooling_until=timezone.now() + timedelta(minutes=5)
    )
    cooled.set()
    thread.join()
    assert len(errors) == 1 and "device_not_ready" in str(errors[0])
    assert TicketLine.objects.get(ticket=ticket).status == "waiting"


# --- waits ----------------------------------------------------------------------------------


def test_estimated_waits_count_the_cool_down_between_customers(tenant, cryo, cryo_chamber):
    tickets = [queued_ticket(tenant, [cryo]) for _ in range(3)]
    # One chamber, 3 min a session and 5 min of cool-down: each customer ahead costs 8 min.
    places = [queue.place_of(line_of(t)) for t in tickets]
    assert [(p.position, p.wait_minutes) for p in places] == [(1, 0), (2, 8), (3, 16)]
    (stats,) = queue.service_stats(tenant, [cryo])
    assert stats.round_seconds == 8 * 60

    # A device of its own with a shorter cool-down pulls the average down.
    second = make_device(tenant, "Crio 2", [cryo])
    DeviceServiceSettings.objects.create(equipment=second, service=cryo, cooldown_minutes=1)
    assert queue.round_seconds(cryo) == 3 * 60 + 3 * 60
    assert queue.place_of(line_of(tickets[2])).wait_minutes == 6


def test_the_next_customers_wait_starts_when_a_chamber_is_free_again(tenant, cryo, cryo_chamber):
    now = timezone.now()
    queued_ticket(tenant, [cryo])
    line = queue.start(tenant, queue.call_next(cryo, cryo_chamber).pk)
    waiting = [queued_ticket(tenant, [cryo]) for _ in range(2)]
    # In session with 2 min left, then 5 of cool-down: the next waits 7 min, the one after 15.
    TicketLine.objects.filter(pk=line.pk).update(session_ends_at=now + timedelta(minutes=2))
    assert [queue.place_of(line_of(t)).wait_minutes for t in waiting] == [7, 15]

    queue.complete(tenant, line.pk)
    Equipment.objects.filter(pk=cryo_chamber.pk).update(cooling_until=now + timedelta(minutes=4))
    assert [queue.place_of(line_of(t)).wait_minutes for t in waiting] == [4, 12]


# --- events ---------------------------------------------------------------------------------


def test_every_state_change_is_an_equipment_update(
    tenant, cryo, cryo_chamber, alice, monkeypatch, django_capture_on_commit_callbacks
):
    sent: list[dict] = []
    monkeypatch.setattr(
        events, "_transmit", lambda layer, messages: sent.extend(m for _g, m in messages)
    )

    def states_sent() -> list[tuple[str, str | None]]:
        seen = [
            (m["state"], m["group"])
            for m in sent
            if m["type"] == "equipment_update" and m["group"] == events.tenant_group(tenant.id)
        ]
        sent.clear()
        return [state for state, _group in seen]

    queued_ticket(tenant, [cryo])
    with django_capture_on_commit_callbacks(execute=True):
        line = queue.call_next(cryo, cryo_chamber)
    assert states_sent() == ["in_use"]
    with django_capture_on_commit_callbacks(execute=True):
        queue.start(tenant, line.pk)
    assert states_sent() == ["in_use"]
    with django_capture_on_commit_callbacks(execute=True):
        queue.complete(tenant, line.pk)
    assert states_sent() == ["cooling"]
    with django_capture_on_commit_callbacks(execute=True):
        devices.end_cooldown(tenant, cryo_chamber.pk, user=alice, reason="limpa")
    assert states_sent() == ["free"]

    # The worker announces a cool-down that ran out by itself, once.
    Equipment.objects.filter(pk=cryo_chamber.pk).update(
        cooling_until=timezone.now() - timedelta(seconds=1)
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert devices.announce_cooled() == 1
        assert devices.announce_cooled() == 0
    assert states_sent() == ["free"]

    window_around_now(tenant, cryo_chamber, minutes_ago=0, length=30)
    with django_capture_on_commit_callbacks(execute=True):
        assert devices.announce_windows(timezone.now(), timedelta(minutes=1)) == 1
    assert states_sent() == ["maintenance"]


def test_the_event_names_the_device_and_its_times_and_reaches_its_stations(
    tenant, cryo, cryo_chamber, monkeypatch, django_capture_on_commit_callbacks
):
    sent: list[tuple[str, dict]] = []
    monkeypatch.setattr(events, "_transmit", lambda layer, messages: sent.extend(messages))
    queued_ticket(tenant, [cryo])
    with django_capture_on_commit_callbacks(execute=True):
        line = queue.start(tenant, queue.call_next(cryo, cryo_chamber).pk)
    updates = [(g, m) for g, m in sent if m["type"] == "equipment_update"]
    groups = {g for g, _m in updates}
    assert groups == {events.tenant_group(tenant.id), events.service_group(tenant.id, cryo.pk)}
    last = updates[-1][1]
    assert (last["equipment_id"], last["room"], last["state"]) == (
        cryo_chamber.pk,
        "Sala 1",
        "in_use",
    )
    assert last["ends_at"] == line.session_ends_at.isoformat()
    assert last["hard_maximum"] is True
    # Public screens (the TV) may see it: nothing personal in it.
    assert events.public(last)["ends_at"] == last["ends_at"]


# --- on real Daphne ------------------------------------------------------------------------

daphne = daphne_server.daphne


def socket_events(client, kind: str, count: int) -> list[dict]:
    """The next `count` events of `kind` a `websockets` client receives (5 s at most)."""
    deadline = monotonic() + 5
    found: list[dict] = []
    while len(found) < count and monotonic() < deadline:
        event = json.loads(client.recv(timeout=max(deadline - monotonic(), 0.01)))
        if event["type"] == kind:
            found.append(event)
    assert len(found) == count, f"{len(found)} of {count} {kind}"
    return found


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_station_and_the_tv_on_daphne_hear_each_state_of_a_chamber(daphne, tenant, alice):
    from websockets.sync.client import connect

    from tests.test_realtime import cookie_header, pair_display, session_of

    cryo = make_service(tenant, "Crioterapia", "C", minutes=3)
    cryo.hard_maximum, cryo.cooldown_minutes = True, 5
    cryo.save()
    chamber = make_device(tenant, "Crio 1", [cryo], location="Sala 1")
    queued_ticket(tenant, [cryo])
    origin = f"http://{daphne}"
    station = connect(
        f"ws://{daphne}/ws/t/{tenant.slug}/panel/?equipment={chamber.pk}",
        origin=origin,
        additional_headers={"Cookie": f"sessionid={session_of(alice)}"},
    )
    tv = connect(
        f"ws://{daphne}/ws/t/{tenant.slug}/display/",
        origin=origin,
        additional_headers={"Cookie": cookie_header(pair_display(tenant))},
    )
    with station, tv:
        for client in (station, tv):
            assert json.loads(client.recv(timeout=5))["type"] == "hello"
        line = queue.call_next(cryo, chamber)
        line = queue.start(tenant, line.pk)
        queue.complete(tenant, line.pk)
        devices.end_cooldown(tenant, chamber.pk, user=alice, reason="limpeza rápida")
        Equipment.objects.filter(pk=chamber.pk).update(status="maintenance")
        devices.announce_device(chamber.pk)
        Equipment.objects.filter(pk=chamber.pk).update(status="offline")
        devices.announce_device(chamber.pk)

        heard = {
            name: socket_events(client, "equipment_update", 6)
            for name, client in (("station", station), ("tv", tv))
        }
    for name, updates in heard.items():
        assert [u["state"] for u in updates] == [
            "in_use",
            "in_use",
            "cooling",
            "free",
            "maintenance",
            "offline",
        ], name
        assert {u["equipment_id"] for u in updates} == {chamber.pk}
    started, cooling = heard["tv"][1], heard["tv"][2]
    assert started["ends_at"] == line.session_ends_at.isoformat() and started["hard_maximum"]
    assert datetime.fromisoformat(cooling["until"]) > timezone.now() + timedelta(minutes=4)
    # The TV hears the room, never who is in it.
    assert not {"customer_name", "number", "ticket_id"} & set(heard["tv"][1])


def test_a_devices_settings_take_only_a_service_of_its_own_studio(tenant, other_tenant, cryo):
    from django.core.exceptions import ValidationError

    chamber = make_device(tenant, "Crio 1", [cryo])
    theirs = make_service(other_tenant, "Crioterapia", "C")
    with pytest.raises(ValidationError, match="estúdio deste equipamento"):
        DeviceServiceSettings(equipment=chamber, service=theirs, cooldown_minutes=1).full_clean()
