"""Per-service queues: each line of a ticket is queued, called and served on its own."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from equipment.models import Equipment, Status
from tests.conftest import make_device, make_service, make_ticket, queued_ticket
from tickets import events, queue
from tickets.models import Extra, Ticket, TicketLine, TicketStatus, status_is
from tickets.queue import QueueError


@pytest.fixture
def cryo_1(tenant, cryo):
    return make_device(tenant, "Crio 1", [cryo], location="Sala 1")


@pytest.fixture
def cryo_2(tenant, cryo):
    return make_device(tenant, "Crio 2", [cryo], location="Sala 2")


@pytest.fixture
def boots_1(tenant, boots):
    return make_device(tenant, "Botas 1", [boots], location="Sala 3")


def line_of(ticket, service) -> TicketLine:
    return ticket.lines.get(service=service)


def status_of(ticket) -> str:
    ticket.refresh_from_db()
    return ticket.status


# --- the seed's acceptance tests --------------------------------------------------------------


def test_calling_one_service_leaves_the_other_in_its_own_queue(
    tenant, cryo, boots, cryo_1, boots_1, alice
):
    ticket = queued_ticket(tenant, [cryo, boots])

    called = queue.call_next(cryo, cryo_1, user=alice)

    assert called.ticket == ticket and called.service == cryo
    assert line_of(ticket, cryo).status == "called"
    assert line_of(ticket, boots).status == "waiting"
    assert list(queue.queue_lines(boots)) == [line_of(ticket, boots)]
    assert list(queue.queue_lines(cryo)) == []
    assert status_of(ticket) == "called"


def test_two_services_of_one_ticket_run_at_once_and_it_completes_only_with_the_last(
    tenant, cryo, boots, cryo_1, boots_1, alice
):
    ticket = queued_ticket(tenant, [cryo, boots])
    a = queue.call_next(cryo, cryo_1, user=alice)
    # Call-next would pass over a customer in service; the operator calls the line by hand.
    b = queue.call_line(tenant, line_of(ticket, boots).id, boots_1, user=alice)
    queue.start(tenant, a.id, user=alice)
    queue.start(tenant, b.id, user=alice)
    assert status_of(ticket) == "in_progress"

    queue.complete(tenant, a.id, user=alice)
    assert status_of(ticket) == "in_progress"
    assert line_of(ticket, cryo).duration_seconds is not None

    queue.complete(tenant, b.id, user=alice)
    assert status_of(ticket) == "completed"


def test_when_one_service_ends_while_another_waits_the_ticket_is_back_in_the_queue(
    tenant, cryo, boots, cryo_1, alice
):
    ticket = queued_ticket(tenant, [cryo, boots])
    a = queue.call_next(cryo, cryo_1, user=alice)
    queue.start(tenant, a.id, user=alice)
    queue.complete(tenant, a.id, user=alice)
    assert status_of(ticket) == "in_queue"
    history = [h.status for h in ticket.history.order_by("history_date")]
    assert history[-3:] == ["called", "in_progress", "in_queue"]


# --- a missed service can be called again (seed 000's two-service ticket) -------------------


def miss_cryo_then_serve_boots(tenant, cryo, boots, cryo_1, boots_1):
    """Seed 000's ticket: cryotherapy called and missed while the boots wait; then the boots
    are served."""
    ticket = queued_ticket(tenant, [cryo, boots])
    queue.no_show(tenant, queue.call_next(cryo, cryo_1).id)
    assert (line_of(ticket, boots).status, status_of(ticket)) == ("waiting", "in_queue")
    served = queue.call_next(boots, boots_1)
    queue.start(tenant, served.id)
    queue.complete(tenant, served.id)
    return ticket


def test_a_ticket_is_not_completed_while_a_missed_service_can_be_called_again(
    tenant, cryo, boots, cryo_1, boots_1
):
    ticket = miss_cryo_then_serve_boots(tenant, cryo, boots, cryo_1, boots_1)

    # Partly served with a missed service still callable: back in the queue, not completed.
    assert status_of(ticket) == "in_queue"
    assert list(queue.recoverable_lines(tenant, timezone.now())) == [line_of(ticket, cryo)]

    again = queue.call_line(tenant, line_of(ticket, cryo).id, cryo_1)
    assert (again.status, again.equipment, again.call_count) == ("called", cryo_1, 2)
    assert status_of(ticket) == "called"
    queue.start(tenant, again.id)
    queue.complete(tenant, again.id)
    assert status_of(ticket) == "completed"


def test_a_missed_service_cannot_be_called_again_once_its_window_is_over(
    tenant, cryo, boots, cryo_1, boots_1
):
    ticket = miss_cryo_then_serve_boots(tenant, cryo, boots, cryo_1, boots_1)
    cryo_line = line_of(ticket, cryo)
    late = timezone.now() - timedelta(minutes=tenant.reactivation_minutes + 1)
    TicketLine.objects.filter(pk=cryo_line.pk).update(no_show_at=late)

    assert not queue.recoverable_lines(tenant, timezone.now()).exists()
    with pytest.raises(QueueError, match="Acabou o prazo para chamar de novo Crioterapia"):
        queue.call_line(tenant, cryo_line.id, cryo_1)
    assert line_of(ticket, cryo).status == "no_show"


def test_when_the_window_ends_the_missed_service_expires_with_its_reason(
    midday, tenant, cryo, boots, cryo_1, boots_1
):
    ticket = miss_cryo_then_serve_boots(tenant, cryo, boots, cryo_1, boots_1)
    cryo_line = line_of(ticket, cryo)
    in_window = timezone.now() + timedelta(minutes=tenant.reactivation_minutes - 1)
    assert queue.expire_missed(tenant, cryo_line.id, now=in_window) is None

    after = timezone.now() + timedelta(minutes=tenant.reactivation_minutes + 1)
    expired = queue.expire_missed(tenant, cryo_line.id, now=after)

    assert (expired.status, expired.expired_at is not None) == ("expired", True)
    reason = expired.history.first().history_change_reason
    assert reason == "não compareceu e não foi chamado de novo em 60 min"
    assert status_of(ticket) == "completed"  # something was served; nothing more can be
    with pytest.raises(QueueError):
        queue.call_line(tenant, cryo_line.id, cryo_1)


def test_a_ticket_missed_entirely_stays_expired_until_its_window_ends(tenant, cryo, cryo_1):
    ticket = queued_ticket(tenant, [cryo])
    line = queue.call_next(cryo, cryo_1)
    queue.no_show(tenant, line.id)
    assert status_of(ticket) == "expired"

    queue.expire_missed(tenant, line.id, now=timezone.now() + timedelta(hours=2))
    assert (line_of(ticket, cryo).status, status_of(ticket)) == ("expired", "expired")


def test_cancelling_the_service_in_progress_keeps_the_missed_one_callable(
    tenant, cryo, boots, cryo_1, boots_1
):
    ticket = queued_ticket(tenant, [cryo, boots])
    queue.no_show(tenant, queue.call_next(cryo, cryo_1).id)
    boots_line = queue.call_next(boots, boots_1)
    queue.start(tenant, boots_line.id)
    queue.cancel_line(tenant, boots_line.id, reason="passou mal")

    # No in_progress → expired in the ticket's machine: it passes through the queue.
    assert status_of(ticket) == "expired"
    assert [h.status for h in ticket.history.order_by("history_date")][-2:] == [
        "in_queue",
        "expired",
    ]
    queue.call_line(tenant, line_of(ticket, cryo).id, cryo_1)
    assert status_of(ticket) == "called"


# --- order --------------------------------------------------------------------------------


def test_priority_80_then_priority_then_arrival(tenant, cryo, cryo_1, cryo_2):
    first_normal = queued_ticket(tenant, [cryo], customer_name="Ana")
    priority = queued_ticket(tenant, [cryo], customer_name="Bia", priority="priority")
    eighty = queued_ticket(tenant, [cryo], customer_name="Cida", priority="priority_80")
    order = [line.ticket for line in queue.queue_lines(cryo)]
    assert order == [eighty, priority, first_normal]
    assert queue.call_next(cryo, cryo_1).ticket == eighty


def test_interleave_lets_a_normal_customer_through_after_n_priority_calls(tenant, cryo):
    tenant.priority_interleave = 2
    tenant.save()
    devices = [make_device(tenant, f"Crio {i}", [cryo]) for i in range(4)]
    normal = queued_ticket(tenant, [cryo], customer_name="Normal")
    prios = [queued_ticket(tenant, [cryo], priority="priority") for _ in range(3)]
    calls = [queue.call_next(cryo, d).ticket for d in devices]
    assert calls == [prios[0], prios[1], normal, prios[2]]


def test_position_and_estimated_wait(tenant, cryo, cryo_1, cryo_2):
    tickets = [queued_ticket(tenant, [cryo]) for _ in range(5)]
    places = [queue.place_of(line_of(t, cryo)) for t in tickets]
    assert [p.position for p in places] == [1, 2, 3, 4, 5]
    # Two devices, 10 min expected each: the 1st and 2nd go now, the 3rd and 4th after 10 min.
    assert [p.wait_minutes for p in places] == [0, 0, 10, 10, 20]


def test_estimated_wait_uses_the_measured_duration_once_there_are_enough(tenant, cryo, cryo_1):
    for _ in range(5):
        ticket = queued_ticket(tenant, [cryo])
        line = queue.call_next(cryo, cryo_1)
        queue.start(tenant, line.id)
        TicketLine.objects.filter(pk=line.id).update(
            started_at=timezone.now() - timedelta(minutes=4)
        )
        queue.complete(tenant, line.id)
    assert ticket.lines.get().duration_seconds >= 240
    cryo.refresh_from_db()  # completing keeps the measured average on the service
    assert queue.average_duration_seconds(cryo) == pytest.approx(240, abs=5)


def test_waiting_colour_follows_the_tenant_thresholds(tenant):
    assert queue.wait_level(tenant, 3) == "ok"
    assert queue.wait_level(tenant, tenant.wait_warning_minutes) == "warning"
    assert queue.wait_level(tenant, tenant.wait_critical_minutes + 1) == "critical"


# --- conflicts ----------------------------------------------------------------------------


def test_a_busy_device_is_refused_with_the_ticket_it_serves(tenant, cryo, cryo_1):
    first = queued_ticket(tenant, [cryo])
    queued_ticket(tenant, [cryo])
    queue.call_next(cryo, cryo_1)
    with pytest.raises(QueueError, match=f"ocupado com a senha {first.number}"):
        queue.call_next(cryo, cryo_1)


def test_an_offline_device_or_one_that_cannot_run_the_service_is_refused(
    tenant, cryo, boots, cryo_1
):
    ticket = queued_ticket(tenant, [cryo, boots])
    with pytest.raises(QueueError, match="não atende Bota de compressão"):
        queue.call_line(tenant, line_of(ticket, boots).id, cryo_1)
    cryo_1.status = Status.MAINTENANCE
    cryo_1.save()
    with pytest.raises(QueueError, match="manutenção"):
        queue.call_next(cryo, cryo_1)


def test_an_empty_queue_says_so(tenant, cryo, cryo_1):
    with pytest.raises(QueueError, match="Ninguém"):
        queue.call_next(cryo, cryo_1)


def test_the_same_customer_is_never_twice_in_one_service(tenant, cryo, cryo_1, cryo_2):
    cpf = "529.982.247-25"
    first = queued_ticket(tenant, [cryo], cpf=cpf)
    second = queued_ticket(tenant, [cryo], cpf=cpf)
    queue.call_line(tenant, line_of(first, cryo).id, cryo_1)
    with pytest.raises(QueueError, match="já está em atendimento"):
        queue.call_line(tenant, line_of(second, cryo).id, cryo_2)
    assert line_of(second, cryo).status == "waiting"


def test_call_next_passes_over_a_customer_served_elsewhere(tenant, cryo, boots, cryo_1, boots_1):
    busy = queued_ticket(tenant, [boots, cryo])
    free = queued_ticket(tenant, [cryo])
    queue.call_next(boots, boots_1)  # `busy` is now in the boots
    assert queue.call_next(cryo, cryo_1).ticket == free
    # With the tenant's setting off, arrival order wins even so.
    tenant.skip_customers_in_service = False
    tenant.save()
    assert queue.call_next(cryo, make_device(tenant, "Crio 9", [cryo])).ticket == busy


def test_call_next_says_whom_it_passed_over_and_why(tenant, cryo, boots, cryo_1, boots_1):
    busy = queued_ticket(tenant, [boots, cryo])
    queue.call_next(boots, boots_1)  # `busy` is now in the boots
    queued_ticket(tenant, [cryo])
    called = queue.call_next(cryo, cryo_1)
    assert queue.passed_over(called) == [
        f"Senha {busy.number} pulada: em atendimento em {boots_1.name}."
    ]


def test_call_next_says_when_the_interleave_passed_a_priority_customer_over(tenant, cryo):
    tenant.priority_interleave = 1
    tenant.save()
    devices = [make_device(tenant, f"Crio {i}", [cryo]) for i in range(2)]
    queued_ticket(tenant, [cryo])
    first, second = (queued_ticket(tenant, [cryo], priority="priority") for _ in range(2))
    assert queue.passed_over(queue.call_next(cryo, devices[0])) == []  # `first`, in order
    normal = queue.call_next(cryo, devices[1])
    assert queue.passed_over(normal) == [
        f"Senha {second.number} pulada: vez de um cliente sem prioridade (regra de intercalação do "
        "estúdio)."
    ]


def test_a_ticket_not_yet_paid_cannot_be_called(tenant, cryo, cryo_1):
    ticket = make_ticket(tenant, [cryo])
    with pytest.raises(QueueError, match="ainda não está na fila"):
        queue.call_line(tenant, line_of(ticket, cryo).id, cryo_1)
    with pytest.raises(QueueError):
        queue.call_next(cryo, cryo_1)


def test_another_tenants_line_is_not_found(tenant, other_tenant, cryo, cryo_1):
    theirs = queued_ticket(other_tenant, [make_service(other_tenant, "Crio", "C")])
    with pytest.raises(QueueError, match="não encontrad"):
        queue.start(tenant, theirs.lines.get().id)


def test_a_refused_transition_names_both_states(tenant, cryo, cryo_1):
    ticket = queued_ticket(tenant, [cryo])
    with pytest.raises(QueueError, match="aguardando"):
        queue.complete(tenant, line_of(ticket, cryo).id)


# --- the other operations -----------------------------------------------------------------


def test_send_back_keeps_the_original_place_and_frees_the_device(tenant, cryo, cryo_1, alice):
    first = queued_ticket(tenant, [cryo])
    queued_ticket(tenant, [cryo])
    line = queue.call_next(cryo, cryo_1)
    queue.send_back(tenant, line.id, user=alice, reason="foi ao banheiro")
    assert status_of(first) == "in_queue"
    assert queue.queue_lines(cryo).first().ticket == first
    assert queue.call_next(cryo, cryo_1).ticket == first  # device is free again


def test_reannounce_counts_calls_and_past_the_limit_marks_no_show(tenant, cryo, cryo_1):
    tenant.no_show_calls = 2
    tenant.save()
    ticket = queued_ticket(tenant, [cryo])
    line = queue.call_next(cryo, cryo_1)
    assert queue.reannounce(tenant, line.id).call_count == 2
    queue.reannounce(tenant, line.id)
    assert line_of(ticket, cryo).status == "no_show"
    assert status_of(ticket) == "expired"  # every line gone
    queued_ticket(tenant, [cryo])
    queue.call_next(cryo, cryo_1)  # the device was freed


def test_calling_the_missed_line_of_an_expired_ticket_again_reactivates_it(tenant, cryo, cryo_1):
    ticket = queued_ticket(tenant, [cryo])
    line = queue.call_next(cryo, cryo_1)
    queue.no_show(tenant, line.id)
    assert status_of(ticket) == "expired"
    queue.call_line(tenant, line.id, cryo_1)
    ticket.refresh_from_db()
    assert ticket.status == "called" and ticket.reactivation_count == 1
    assert line_of(ticket, cryo).call_count == 2


def test_a_no_show_of_one_line_leaves_the_others_in_their_queues(tenant, cryo, boots, cryo_1):
    ticket = queued_ticket(tenant, [cryo, boots])
    queue.no_show(tenant, queue.call_next(cryo, cryo_1).id)
    assert status_of(ticket) == "in_queue"
    assert line_of(ticket, boots).status == "waiting"


def test_cancel_needs_a_reason_and_frees_the_device(tenant, cryo, boots, cryo_1, alice):
    ticket = queued_ticket(tenant, [cryo, boots])
    line = queue.call_next(cryo, cryo_1)
    with pytest.raises(QueueError, match="motivo"):
        queue.cancel_line(tenant, line.id, user=alice, reason=" ")
    queue.cancel_line(tenant, line.id, user=alice, reason="desistiu da crio")
    assert status_of(ticket) == "in_queue"
    assert line_of(ticket, cryo).cancellation_reason == "desistiu da crio"
    queue.cancel_ticket(tenant, ticket.id, user=alice, reason="foi embora")
    assert status_of(ticket) == "cancelled"
    assert line_of(ticket, boots).status == "cancelled"
    queued_ticket(tenant, [cryo])
    queue.call_next(cryo, cryo_1)


def test_cancelling_the_last_open_line_after_another_completed_completes_the_ticket(
    tenant, cryo, boots, cryo_1, alice
):
    ticket = queued_ticket(tenant, [cryo, boots])
    line = queue.call_next(cryo, cryo_1)
    queue.start(tenant, line.id)
    queue.complete(tenant, line.id)
    queue.cancel_line(tenant, line_of(ticket, boots).id, user=alice, reason="sem tempo")
    assert status_of(ticket) == "completed"


def test_cancelling_an_unpaid_ticket_gives_the_stock_back(tenant, cryo, towel, alice):
    ticket = make_ticket(tenant, [cryo], extras={towel.id: 2})
    queue.cancel_ticket(tenant, ticket.id, user=alice, reason="abandonado no totem")
    towel.refresh_from_db()
    assert towel.stock == 2


def test_transfer_keeps_the_queue_time_and_is_recorded(tenant, cryo, boots, alice):
    early = queued_ticket(tenant, [cryo])
    queued_ticket(tenant, [boots])
    moved = queue.transfer(tenant, line_of(early, cryo).id, boots, user=alice, reason="troca")
    assert moved.service == boots
    assert queue.queue_lines(boots).first().ticket == early
    assert moved.history.first().history_change_reason == "troca"
    with pytest.raises(QueueError):
        queue.transfer(tenant, moved.id, boots, user=alice)


def test_events_are_sent_only_after_commit_and_never_for_a_rollback(
    tenant, cryo, cryo_1, monkeypatch, django_capture_on_commit_callbacks
):
    sent = []
    monkeypatch.setattr("tickets.events._send", lambda batch: sent.extend(p for _, p in batch))
    queued_ticket(tenant, [cryo])
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(QueueError),
        transaction.atomic(),
    ):
        queue.call_next(cryo, cryo_1)
        raise QueueError("operator changed their mind")  # rolls the call back
    assert sent == []
    with django_capture_on_commit_callbacks(execute=True):
        queue.call_next(cryo, cryo_1)
        assert sent == []  # nothing before the commit
    kinds = [e["type"] for e in sent]
    assert {"ticket_called", "service_called", "queue_update"} <= set(kinds)
    called = next(e for e in sent if e["type"] == "service_called")
    assert called["service_id"] == cryo.id and called["equipment_id"] == cryo_1.id
    assert called["room"] == "Sala 1"


def test_service_stats_count_waiting_and_in_service(tenant, cryo, boots, cryo_1):
    for _ in range(3):
        queued_ticket(tenant, [cryo, boots])
    queue.call_next(cryo, cryo_1)
    Equipment.objects.filter(services=boots).update(status="offline")  # nothing runs boots now
    stats = {s.service.name: s for s in queue.service_stats(tenant, [cryo, boots])}
    assert (stats["Crioterapia"].waiting, stats["Crioterapia"].in_service) == (2, 1)
    assert stats["Crioterapia"].average_wait_minutes == 0
    assert (stats["Bota de compressão"].waiting, stats["Bota de compressão"].devices) == (3, 0)


# --- on PostgreSQL ------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("operators", [16, 64])
def test_operators_calling_next_in_parallel_never_share_a_line_or_a_device(tenant, operators):
    services = [make_service(tenant, f"Serviço {i}", "S") for i in range(2)]
    devices = [make_device(tenant, f"Dev {i}", [services[i % 2]]) for i in range(operators)]
    tickets = operators * 5 // 2  # two lines each: more lines than the 3 calls per operator
    for _ in range(tickets):
        queued_ticket(tenant, services)
    barrier = threading.Barrier(operators)
    claimed: list[int] = []
    errors: list[str] = []

    def operator(device, service):
        try:
            barrier.wait()
            for _ in range(3):
                line = queue.call_next(service, device)
                claimed.append(line.id)
                queue.start(tenant, line.id)
                queue.complete(tenant, line.id)
                # Back to the pool between calls, as a request does: 64 threads share a
                # pool of DATABASE_POOL_SIZE, and holding one for all three calls made the
                # last threads wait past the pool's timeout on a loaded machine.
                connection.close()
        except Exception as error:  # noqa: BLE001 - any failure is reported, none lost
            errors.append(repr(error))
        finally:
            connection.close()

    threads = [
        threading.Thread(target=operator, args=(d, services[i % 2])) for i, d in enumerate(devices)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    calls = operators * 3
    assert errors == []
    assert len(claimed) == calls and len(set(claimed)) == calls  # each call its own line
    assert TicketLine.objects.filter(status="completed").count() == calls
    assert TicketLine.objects.filter(call_count__gt=1).count() == 0
    assert TicketLine.objects.filter(status="waiting").count() == tickets * 2 - calls


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_database_refuses_a_second_active_line_on_one_device(tenant, cryo, cryo_1):
    from django.db import IntegrityError

    a, b = queued_ticket(tenant, [cryo]), queued_ticket(tenant, [cryo])
    TicketLine.objects.filter(ticket=a).update(status="called", equipment=cryo_1)
    with pytest.raises(IntegrityError):
        TicketLine.objects.filter(ticket=b).update(status="in_progress", equipment=cryo_1)


@pytest.mark.postgres
def test_the_claim_query_walks_the_queue_index_without_sorting(tenant, cryo, boots):
    now = timezone.now()
    tickets = Ticket.objects.bulk_create(
        Ticket(
            tenant=tenant,
            day=now.date(),
            sequence=i,
            number=f"X{i}",
            customer_name="x",
            consent_version="1",
            total=0,
            status="in_queue",
        )
        for i in range(3000)
    )
    statuses = ["waiting", "completed", "completed", "cancelled"]
    TicketLine.objects.bulk_create(
        TicketLine(
            tenant=tenant,
            ticket=t,
            service=(cryo, boots)[i % 2],
            price=0,
            status=statuses[i % 4],
            queued_at=now - timedelta(seconds=i),
            priority_rank=i % 3,
            customer_key=t.token,
        )
        for i, t in enumerate(tickets)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE tickets_ticketservice")
        cursor.execute("ANALYZE tickets_ticket")
    with transaction.atomic():
        assert queue.claim_query(cryo).first() is not None
        plan = queue.claim_query(cryo).explain()
    print(plan)
    assert "line_queue_order" in plan
    assert "Sort" not in plan
    assert "Seq Scan" not in plan


def test_expired_extras_are_untouched_by_queue_operations(tenant, cryo, towel, cryo_1):
    # Stock is taken at sale and given back only for unpaid cancellations.
    ticket = queued_ticket(tenant, [cryo], extras={towel.id: 1})
    queue.cancel_ticket(tenant, ticket.id, reason="pago, mas desistiu")
    assert Extra.objects.get(pk=towel.pk).stock == 1


def test_a_manager_cannot_force_a_queued_ticket_past_its_lines(tenant, cryo, bob):
    ticket = queued_ticket(tenant, [cryo])
    with pytest.raises(QueueError, match="segue seus serviços"):
        queue.move_by_hand(tenant, ticket.id, "completed", user=bob, reason="forçar")
    with pytest.raises(QueueError, match="motivo"):
        queue.move_by_hand(tenant, ticket.id, "expired", user=bob, reason="")
    queue.move_by_hand(tenant, ticket.id, "expired", user=bob, reason="foi embora")
    assert status_of(ticket) == "expired"
    assert line_of(ticket, cryo).status == "no_show"


def test_a_service_of_a_ticket_not_yet_in_the_queue_cannot_be_cancelled_alone(
    tenant, cryo, boots, alice
):
    # Found by the property test: the ticket would then be paid for a service it lost.
    ticket = make_ticket(tenant, [cryo, boots])
    with pytest.raises(QueueError, match="cancele a senha inteira"):
        queue.cancel_line(tenant, line_of(ticket, cryo).id, user=alice, reason="desistiu")
    assert line_of(ticket, cryo).status == "waiting"


def test_an_operations_events_go_out_together_numbered_in_order(
    tenant, cryo, cryo_1, monkeypatch, django_capture_on_commit_callbacks
):
    sends = []
    monkeypatch.setattr(events, "_transmit", lambda layer, messages: sends.append(messages))
    queued_ticket(tenant, [cryo])
    with django_capture_on_commit_callbacks(execute=True):
        line = queue.call_next(cryo, cryo_1)
    assert len(sends) == 1  # one numbering and one publishing round trip for the call
    tenant_messages = [m for group, m in sends[0] if group == events.tenant_group(tenant.id)]
    kinds = [m["type"] for m in tenant_messages]
    assert kinds == [
        "ticket_update",
        "ticket_called",
        "service_called",
        "queue_update",
        "equipment_update",
    ]
    numbers = [m["group_seq"] for m in tenant_messages]
    assert numbers == list(range(numbers[0], numbers[0] + 5))

    # An event whose savepoint rolls back stays behind; the rest of the batch goes.
    sends.clear()
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic(), events.batch():
        events.publish("queue_update", tenant_id=tenant.id, service_id=cryo.pk)
        with pytest.raises(QueueError), transaction.atomic():
            events.publish("ticket_update", tenant_id=tenant.id, ticket=line.ticket)
            raise QueueError("undone")
    assert [[m["type"] for _g, m in batch] for batch in sends] == [["queue_update"] * 2]


def test_a_status_written_into_a_statement_is_one_of_the_models_own(tenant, cryo):
    waiting = queued_ticket(tenant, [cryo])
    make_ticket(tenant, [cryo])  # pending payment

    paid = Ticket.objects.filter(status_is(Ticket, TicketStatus.IN_QUEUE))
    assert list(paid) == [waiting]
    with pytest.raises(ValueError):
        status_is(Ticket, "in_queue' OR '1' = '1")
    with pytest.raises(ValueError):
        status_is(TicketLine, TicketStatus.PENDING_PAYMENT)  # a ticket's, not a line's
