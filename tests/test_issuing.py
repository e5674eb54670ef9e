"""Creating tickets: numbering, validation, stock."""

from __future__ import annotations

import threading
from datetime import time
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import translation

from equipment.models import Equipment, Status
from tenants.br import mask_cpf, normalize_cpf, normalize_phone
from tenants.models import OpeningHours
from tests.conftest import make_device, make_service, make_ticket
from tickets.issuing import MAX_EXTRA_QUANTITY, create_ticket
from tickets.models import Extra, Ticket


def test_a_ticket_is_created_awaiting_payment_with_one_line_per_service(tenant, cryo, boots):
    ticket = make_ticket(tenant, [boots, cryo], cpf="529.982.247-25", phone="(11) 91234-5678")
    assert ticket.status == "pending_payment"
    assert ticket.number == "C001"  # the first service by display order gives the prefix
    assert [line.service for line in ticket.lines.all()] == [cryo, boots]
    assert [line.price for line in ticket.lines.all()] == [Decimal("120.00"), Decimal("80.00")]
    assert all(line.status == "waiting" and line.queued_at is None for line in ticket.lines.all())
    assert ticket.total == Decimal("200.00")
    assert ticket.customer_cpf == "52998224725"
    assert ticket.customer_phone == "11912345678"
    created = ticket.history.get()  # recorded once numbered: the number is in it
    assert (created.history_type, created.number, created.sequence) == ("+", "C001", 1)
    assert all(line.history.count() == 1 for line in ticket.lines.all())


def test_numbers_follow_each_other_within_the_day_and_use_the_service_prefix(tenant, cryo, boots):
    numbers = [make_ticket(tenant, [s]).number for s in (cryo, boots, cryo)]
    assert numbers == ["C001", "B002", "C003"]


def test_a_service_without_prefix_uses_the_tenant_prefix(tenant):
    sauna = make_service(tenant, "Sauna", prefix="")
    assert make_ticket(tenant, [sauna]).number == "A001"


def test_numbering_restarts_each_local_day(tenant, cryo, monkeypatch):
    import datetime

    assert make_ticket(tenant, [cryo]).number == "C001"
    monkeypatch.setattr(type(tenant), "today", lambda self: datetime.date(2030, 1, 2))
    assert make_ticket(tenant, [cryo]).number == "C001"


def test_each_tenant_has_its_own_sequence(tenant, other_tenant, cryo):
    make_ticket(tenant, [cryo])
    theirs = make_service(other_tenant, "Crio", "C")
    assert make_ticket(other_tenant, [theirs]).number == "C001"


def test_prices_are_copied_so_later_changes_do_not_touch_sold_tickets(tenant, cryo):
    ticket = make_ticket(tenant, [cryo])
    cryo.price = Decimal("999.00")
    cryo.save()
    assert ticket.lines.get().price == Decimal("120.00")


def test_extras_take_stock_and_add_to_the_total(tenant, cryo, towel):
    ticket = make_ticket(tenant, [cryo], extras={towel.id: 2})
    towel.refresh_from_db()
    assert towel.stock == 0
    assert ticket.total == Decimal("130.00")
    assert ticket.extras.get().subtotal == Decimal("10.00")


def test_an_out_of_stock_extra_refuses_the_whole_ticket_and_takes_nothing(tenant, cryo, towel):
    water = Extra.objects.create(tenant=tenant, name="Água", price=Decimal("4.00"), stock=10)
    with pytest.raises(ValidationError) as refused:
        make_ticket(tenant, [cryo], extras={water.id: 1, towel.id: 3})
    assert "Toalha" in str(refused.value.message_dict["extras"])
    water.refresh_from_db()
    towel.refresh_from_db()
    assert (water.stock, towel.stock) == (10, 2)
    assert not Ticket.objects.exists()


def test_an_unlimited_extra_never_runs_out(tenant, cryo):
    gel = Extra.objects.create(tenant=tenant, name="Gel", price=Decimal("3.00"), stock=None)
    make_ticket(tenant, [cryo], extras={gel.id: 20})
    gel.refresh_from_db()
    assert gel.stock is None


@pytest.mark.parametrize("cpf", ["123.456.789-00", "111.111.111-11", "1234", "abc"])
def test_an_invalid_cpf_is_refused_on_its_field(tenant, cryo, cpf):
    with pytest.raises(ValidationError) as refused:
        make_ticket(tenant, [cryo], cpf=cpf)
    assert refused.value.message_dict["customer_cpf"] == ["CPF inválido."]
    assert not Ticket.objects.exists()


def test_cpf_and_phone_rules():
    assert normalize_cpf("52998224725") == "52998224725"
    assert mask_cpf("52998224725") == "***.982.247-**"
    assert normalize_phone("+55 (21) 3456-7890") == "2134567890"
    with pytest.raises(ValidationError):
        normalize_phone("(11) 81234-5678")  # 11 digits must be a mobile starting with 9
    with pytest.raises(ValidationError):
        normalize_phone("123")


def test_name_and_consent_are_required(tenant, cryo):
    with pytest.raises(ValidationError) as refused:
        make_ticket(tenant, [cryo], customer_name="  ", consent_version="")
    assert set(refused.value.message_dict) == {"customer_name", "consent_version"}


def test_services_must_belong_to_the_tenant_and_be_active(tenant, other_tenant, cryo):
    theirs = make_service(other_tenant, "Deles", "D")
    with pytest.raises(ValidationError):
        make_ticket(tenant, [cryo, theirs])
    cryo.is_active = False
    cryo.save()
    with pytest.raises(ValidationError):
        make_ticket(tenant, [cryo])
    assert not Ticket.objects.exists()


def test_the_same_idempotency_key_returns_the_same_ticket(tenant, cryo, towel):
    first = make_ticket(tenant, [cryo], extras={towel.id: 1}, idempotency_key="kiosk-1:abc")
    again = make_ticket(tenant, [cryo], extras={towel.id: 1}, idempotency_key="kiosk-1:abc")
    assert first.pk == again.pk
    towel.refresh_from_db()
    assert towel.stock == 1


def test_a_repeated_key_gets_its_ticket_even_where_the_sale_would_now_be_refused(
    tenant, cryo, towel
):
    # The first took the last towel and the service went off sale since: the repeat is not
    # "sold out" nor "unavailable" but the first ticket, and it takes no number.
    Extra.objects.filter(pk=towel.pk).update(stock=1)
    first = make_ticket(tenant, [cryo], extras={towel.id: 1}, idempotency_key="kiosk-1:abc")
    again = make_ticket(tenant, [cryo], extras={towel.id: 1}, idempotency_key="kiosk-1:abc")
    assert again.pk == first.pk
    cryo.is_active = False
    cryo.save()
    assert make_ticket(tenant, [cryo], idempotency_key="kiosk-1:abc").pk == first.pk
    cryo.is_active = True
    cryo.save()
    assert make_ticket(tenant, [cryo]).sequence == first.sequence + 1
    with pytest.raises(ValidationError):
        make_ticket(tenant, [cryo], extras={towel.id: 1}, idempotency_key="kiosk-1:other")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("creators", [20, 64])
def test_parallel_creators_get_distinct_gap_free_numbers_and_never_oversell(
    tenant, cryo, towel, creators
):
    stock = creators * 5 // 8
    Extra.objects.filter(pk=towel.pk).update(stock=stock)
    make_device(tenant, "Criocâmara", [cryo])
    barrier = threading.Barrier(creators)
    outcomes: list[str] = []

    def buy(i: int) -> None:
        try:
            barrier.wait()
            ticket = make_ticket(tenant, [cryo], extras={towel.id: 1})
            outcomes.append(ticket.number)
        except ValidationError:
            outcomes.append("sold out")
        finally:
            connection.close()

    threads = [threading.Thread(target=buy, args=(i,)) for i in range(creators)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    numbers = sorted(n for n in outcomes if n != "sold out")
    assert len(numbers) == stock and outcomes.count("sold out") == creators - stock
    assert numbers == [f"C{i:03d}" for i in range(1, stock + 1)]  # distinct and without gaps
    towel.refresh_from_db()
    assert towel.stock == 0


# --- what may be sold is decided where the sale happens -----------------------------------------


def test_a_service_no_online_device_can_run_is_refused_whoever_sells(tenant, cryo):
    device = make_device(tenant, "Criocâmara", [cryo])
    Equipment.objects.filter(pk=device.pk).update(status=Status.MAINTENANCE)

    with pytest.raises(ValidationError) as refused:
        create_ticket(tenant, service_ids=[cryo.pk], customer_name="Ana", consent_version="v1")

    assert "services" in refused.value.message_dict
    assert not Ticket.objects.exists()


def test_nothing_is_sold_while_the_studio_is_closed(tenant, cryo, towel):
    make_device(tenant, "Criocâmara", [cryo])
    tomorrow = (tenant.local_now().weekday() + 1) % 7
    OpeningHours.objects.create(tenant=tenant, weekday=tomorrow, opens=time(8), closes=time(9))

    with pytest.raises(ValidationError) as refused, translation.override("en"):
        create_ticket(
            tenant,
            service_ids=[cryo.pk],
            extras={towel.pk: 1},
            customer_name="Ana",
            consent_version="v1",
        )

    assert refused.value.message_dict == {"services": ["The studio is closed now."]}

    towel.refresh_from_db()
    assert towel.stock == 2 and not Ticket.objects.exists()


def test_more_than_the_limit_of_one_extra_is_refused(tenant, cryo):
    water = Extra.objects.create(tenant=tenant, name="Água", price=Decimal("3.00"))

    with pytest.raises(ValidationError, match=str(MAX_EXTRA_QUANTITY)):
        make_ticket(tenant, [cryo], extras={water.pk: MAX_EXTRA_QUANTITY + 1})
    assert make_ticket(tenant, [cryo], extras={water.pk: MAX_EXTRA_QUANTITY}).total == Decimal(
        "180.00"
    )
