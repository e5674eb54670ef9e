"""Legal priority as the law now reads: Lei 10.048/2000 art. 1º as amended by Lei 14.626/2023
(obese persons, autism, reduced mobility, blood donors — donors after every other group) and
80+ first (Lei 13.466/2017). The kiosk offers every group, the queue orders the classes, the
operator sees the class and never the reason, the TV and the phone see neither."""

from __future__ import annotations

import importlib
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client

from equipment.models import Kind
from tests.conftest import make_device, queued_ticket
from tests.test_identity_input import migrate, migrate_to_latest
from tests.test_kiosk import buy, identify, kiosk_cart, pair, url
from tests.test_panel import panel_url, pick_station
from tickets import queue
from tickets.models import Priority, Ticket, TicketLine

BEFORE = ("tickets", "0007_canonical_customer_identity")
AFTER = ("tickets", "0008_priority_blood_donors")

# Each legal group as the kiosk shows it in pt-BR, and the class it gives.
GROUPS = {
    "60 anos ou mais": Priority.PRIORITY,
    "80 anos ou mais": Priority.PRIORITY_80,
    "Gestante ou lactante": Priority.PRIORITY,
    "Com criança de colo": Priority.PRIORITY,
    "Pessoa com deficiência": Priority.PRIORITY,
    "Transtorno do espectro autista": Priority.PRIORITY,
    "Mobilidade reduzida": Priority.PRIORITY,
    "Pessoa com obesidade": Priority.PRIORITY,
    "Doador(a) de sangue (comprovante de até 120 dias)": Priority.BLOOD_DONOR,
}


# --- the queue -------------------------------------------------------------------------------


def test_the_queue_serves_80_plus_then_the_legal_groups_by_arrival_then_donors_then_the_rest(
    tenant, cryo
):
    arrivals = [
        ("normal", Priority.NORMAL),
        ("donor", Priority.BLOOD_DONOR),
        ("obese", Priority.PRIORITY),
        ("eighty", Priority.PRIORITY_80),
        ("pregnant", Priority.PRIORITY),
        ("donor 2", Priority.BLOOD_DONOR),
        ("normal 2", Priority.NORMAL),
        ("eighty 2", Priority.PRIORITY_80),
    ]
    tickets = {
        name: queued_ticket(tenant, [cryo], customer_name=f"Cliente {name}", priority=priority)
        for name, priority in arrivals
    }
    expected = ["eighty", "eighty 2", "obese", "pregnant", "donor", "donor 2", "normal"]
    expected.append("normal 2")
    order = [line.ticket for line in queue.queue_lines(cryo)]
    assert order == [tickets[name] for name in expected]
    # Where each one stands is the same order, and call-next follows it.
    assert [queue.place_of(line).position for line in queue.queue_lines(cryo)] == list(range(1, 9))
    devices = [make_device(tenant, f"Crio {i}", [cryo]) for i in range(8)]
    assert [queue.call_next(cryo, device).ticket for device in devices] == order


def test_blood_donors_count_as_priority_calls_for_the_interleave(tenant, cryo):
    """One normal call after every 2 calls ahead of normal customers: donors are ahead of them
    too, so a stream of donors and priorities cannot starve the rest."""
    tenant.priority_interleave = 2
    tenant.save()
    devices = [make_device(tenant, f"Crio {i}", [cryo]) for i in range(5)]
    normal = queued_ticket(tenant, [cryo], customer_name="Normal")
    donors = [queued_ticket(tenant, [cryo], priority=Priority.BLOOD_DONOR) for _ in range(2)]
    priority = queued_ticket(tenant, [cryo], priority=Priority.PRIORITY)
    calls = [queue.call_next(cryo, device).ticket for device in devices[:4]]
    assert calls == [priority, donors[0], normal, donors[1]]


# --- the kiosk -------------------------------------------------------------------------------


@pytest.fixture
def kiosk_client(tenant, cryo) -> Client:
    make_device(tenant, "Crio 1", [cryo])
    client = Client()
    pair(client, tenant, make_device(tenant, "Totem 1", kind=Kind.KIOSK))
    return client


def test_the_kiosk_offers_every_legal_group_in_portuguese(kiosk_client, tenant, cryo):
    kiosk_client.post(url(tenant, "kiosk_start"))
    kiosk_client.post(url(tenant, "kiosk_services"), {"toggle": cryo.pk})
    page = kiosk_client.get(url(tenant, "kiosk_identify")).content.decode()
    for label in ["Sem prioridade", *GROUPS]:
        assert f"<span>{label}</span>" in page, label
    assert "Um documento poderá ser solicitado na recepção." in page


@pytest.mark.parametrize("group", ["obesity", "blood_donor", "autism", "mobility"])
def test_each_group_the_law_added_gives_its_class_and_only_the_class_is_kept(
    kiosk_client, tenant, cryo, group
):
    kiosk_client.post(url(tenant, "kiosk_start"))
    kiosk_client.post(url(tenant, "kiosk_services"), {"toggle": cryo.pk})
    assert identify(kiosk_client, tenant, priority=group).status_code == 302
    expected = Priority.BLOOD_DONOR if group == "blood_donor" else Priority.PRIORITY
    customer = kiosk_cart(kiosk_client)["customer"]
    assert customer["priority"] == expected
    assert group == expected or group not in str(kiosk_cart(kiosk_client))
    buy(kiosk_client, tenant)
    ticket = Ticket.objects.get()
    assert ticket.priority == expected
    assert ticket.lines.get().priority_rank == Priority.rank(expected)


def test_going_back_shows_a_donor_their_choice_and_asks_the_others_again(
    kiosk_client, tenant, cryo
):
    kiosk_client.post(url(tenant, "kiosk_start"))
    kiosk_client.post(url(tenant, "kiosk_services"), {"toggle": cryo.pk})
    identify(kiosk_client, tenant, priority="blood_donor")
    page = kiosk_client.get(url(tenant, "kiosk_identify"))
    assert page.context["form"].initial["priority"] == "blood_donor"
    identify(kiosk_client, tenant, priority="obesity")
    page = kiosk_client.get(url(tenant, "kiosk_identify"))
    # The reason was never kept: one of several groups cannot be told again.
    assert page.context["form"].initial["priority"] == ""
    assert "escolha de novo" in page.content.decode()


# --- who sees what ---------------------------------------------------------------------------


def test_the_operator_sees_the_class_on_the_badge_and_never_the_reason(client, alice, tenant, cryo):
    station = make_device(tenant, "Crio 1", [cryo])
    queued_ticket(tenant, [cryo], customer_name="Ana Reis", priority=Priority.PRIORITY_80)
    queued_ticket(tenant, [cryo], customer_name="Bia Lima", priority=Priority.PRIORITY)
    queued_ticket(tenant, [cryo], customer_name="Caio Dias", priority=Priority.BLOOD_DONOR)
    queued_ticket(tenant, [cryo], customer_name="Davi Rosa")
    client.force_login(alice)
    pick_station(client, tenant, station)
    page = client.get(panel_url(tenant)).content.decode()
    assert '<span class="badge badge-priority_80">Prioritário 80+</span>' in page
    assert '<span class="badge badge-priority">Prioritário</span>' in page
    assert '<span class="badge badge-blood_donor">Doador de sangue</span>' in page
    assert page.count('class="badge badge-') == 3  # the normal customer has none
    for reason in ["obesidade", "Gestante", "deficiência", "autista"]:
        assert reason not in page
    # Rows in the order the queue calls them.
    names = ["Ana", "Bia", "Caio", "Davi"]
    assert sorted(names, key=page.index) == names


def test_the_tv_and_the_phone_never_show_the_class(tenant, cryo):
    ticket = queued_ticket(tenant, [cryo], priority=Priority.BLOOD_DONOR)
    phone = Client().get(f"/t/{tenant.slug}/senha/{ticket.token}/")
    assert phone.status_code == 200
    assert ticket.number in phone.content.decode()
    for word in ["Doador", "doador", "sangue", "Prioritário", "blood_donor"]:
        assert word not in phone.content.decode()


# --- stored lines ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_migration_renumbers_normal_lines_behind_blood_donors_and_back(
    tenant, cryo, monkeypatch
):
    module = importlib.import_module(f"tickets.migrations.{AFTER[1]}")
    monkeypatch.setattr(module, "BATCH", 2)  # several batches from a handful of rows
    normals = [queued_ticket(tenant, [cryo]) for _ in range(3)]
    priority = queued_ticket(tenant, [cryo], priority=Priority.PRIORITY)
    eighty = queued_ticket(tenant, [cryo], priority=Priority.PRIORITY_80)
    try:
        migrate(BEFORE)
        ranks = dict(TicketLine.objects.values_list("ticket_id", "priority_rank"))
        # What the old code stored: 80+ 0, priority 1, normal 2.
        assert [ranks[t.pk] for t in (eighty, priority, *normals)] == [0, 1, 2, 2, 2]
        # Through AFTER and the migrations after it: selling a donor needs today's models.
        migrate_to_latest()
        donor = queued_ticket(tenant, [cryo], priority=Priority.BLOOD_DONOR)
        ranks = dict(TicketLine.objects.values_list("ticket_id", "priority_rank"))
        assert [ranks[t.pk] for t in (eighty, priority, donor, *normals)] == [0, 1, 2, 3, 3, 3]
        assert list(queue.queue_lines(cryo).values_list("ticket_id", flat=True)) == [
            t.pk for t in (eighty, priority, donor, *normals)
        ]
        # Back: a donor becomes the nearest class the old code knows; normal is 2 again.
        migrate(BEFORE)
        # Only the columns the old schema has: later migrations added others to Ticket.
        old = Ticket.objects.filter(pk=donor.pk).values_list("priority", flat=True).get()
        assert old == Priority.PRIORITY
        ranks = dict(TicketLine.objects.values_list("ticket_id", "priority_rank"))
        assert [ranks[t.pk] for t in (eighty, priority, donor, *normals)] == [0, 1, 1, 2, 2, 2]
    finally:
        migrate_to_latest()
    assert set(
        TicketLine.objects.filter(ticket__in=normals).values_list("priority_rank", flat=True)
    ) == {3}


def test_cleanup_puts_a_line_left_with_the_old_normal_rank_back_in_its_class(tenant, cryo):
    """A process not yet restarted when blood donors took rank 2 queues a normal customer
    with 2: the consistency check finds it and --fix puts it behind the donors again."""
    late = queued_ticket(tenant, [cryo])
    TicketLine.objects.filter(ticket=late).update(priority_rank=2)
    donor = queued_ticket(tenant, [cryo], priority=Priority.BLOOD_DONOR)
    assert queue.queue_lines(cryo).first().ticket == late  # taken for a donor who came first

    out = StringIO()
    call_command("cleanup_inconsistent_states", stdout=out)
    assert "1 found" in out.getvalue()
    assert late.number in out.getvalue()
    call_command("cleanup_inconsistent_states", "--fix", stdout=StringIO())
    assert late.lines.get().priority_rank == Priority.rank(Priority.NORMAL)
    assert queue.queue_lines(cryo).first().ticket == donor
    out = StringIO()
    call_command("cleanup_inconsistent_states", stdout=out)
    assert "0 found" in out.getvalue()
