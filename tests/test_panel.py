"""The operator panel: who may see it, what it shows, and each button through the views."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tenants.models import Membership, Role
from tests.conftest import make_device, make_service, make_ticket, queued_ticket
from tickets import queue
from tickets.models import Priority, Ticket, TicketLine

HTMX = {"HX-Request": "true"}


def panel_url(tenant, *parts) -> str:
    return f"/t/{tenant.slug}/painel/" + "".join(f"{p}/" for p in parts)


def pick_station(client, tenant, device) -> None:
    response = client.post(panel_url(tenant, "estacao"), {"station": device.pk})
    assert response.status_code == 302


def line_of(ticket, service) -> TicketLine:
    return TicketLine.objects.get(ticket=ticket, service=service)


@pytest.fixture
def crio_1(tenant, cryo):
    return make_device(tenant, "Crio 1", [cryo], location="Sala 1")


@pytest.fixture
def bota_1(tenant, boots):
    return make_device(tenant, "Bota 1", [boots], location="Sala 2")


@pytest.fixture
def alice_client(client, alice, tenant, crio_1):
    client.force_login(alice)
    pick_station(client, tenant, crio_1)
    return client


# --- who may see it --------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_the_login_page(client, tenant):
    response = client.get(panel_url(tenant))
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/t/studio/painel/")


def test_the_login_page_speaks_portuguese(client, db):
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    assert "Entrar" in response.content.decode()


def test_the_site_root_sends_an_operator_to_the_panel_of_their_one_studio(client, alice, tenant):
    client.force_login(alice)
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == panel_url(tenant)


def test_the_site_root_lets_a_member_of_several_studios_choose(client, alice, other_tenant):
    Membership.objects.create(user=alice, tenant=other_tenant, role=Role.OPERATOR)
    client.force_login(alice)
    page = client.get("/").content.decode()
    assert panel_url(other_tenant) in page and "/t/studio/painel/" in page


def test_an_outsider_gets_404_on_the_panel_and_on_every_action(
    client, charlie, tenant, other_tenant, cryo, crio_1
):
    ticket = queued_ticket(tenant, [cryo])
    line = line_of(ticket, cryo)
    client.force_login(charlie)
    gets = [panel_url(tenant), panel_url(tenant, "linha", line.pk)]
    posts = [
        panel_url(tenant, "estacao"),
        panel_url(tenant, "servico", cryo.pk, "chamar"),
        *(
            panel_url(tenant, "linha", line.pk, action)
            for action in (
                "chamar",
                "rechamar",
                "iniciar",
                "concluir",
                "devolver",
                "ausente",
                "cancelar",
                "transferir",
            )
        ),
        panel_url(tenant, "senha", ticket.pk, "cancelar"),
    ]
    for url in gets:
        assert client.get(url).status_code == 404, url
    for url in posts:
        assert client.post(url, {"reason": "x", "station": crio_1.pk}).status_code == 404, url
    # Through his own studio's panel, alice's line and ticket do not exist either.
    charlies_device = make_device(other_tenant, "Outra", [])
    pick_station(client, other_tenant, charlies_device)
    for url in (
        panel_url(other_tenant, "linha", line.pk),
        panel_url(other_tenant, "linha", line.pk, "concluir"),
        panel_url(other_tenant, "senha", ticket.pk, "cancelar"),
        panel_url(other_tenant, "servico", cryo.pk, "chamar"),
    ):
        method = client.get if url.endswith(f"/{line.pk}/") else client.post
        assert method(url, {"reason": "x"}).status_code == 404, url
    assert (
        client.post(panel_url(other_tenant, "estacao"), {"station": crio_1.pk}).status_code == 400
    )
    line.refresh_from_db()
    assert line.status == "waiting"
    ticket.refresh_from_db()
    assert ticket.status == "in_queue"


def test_posts_without_the_csrf_token_are_refused(alice, tenant, cryo, crio_1):
    queued_ticket(tenant, [cryo])
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.post(panel_url(tenant, "estacao"), {"station": crio_1.pk}).status_code == 403
    client.get(panel_url(tenant))  # sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    assert (
        client.post(
            panel_url(tenant, "estacao"), {"station": crio_1.pk, "csrfmiddlewaretoken": token}
        ).status_code
        == 302
    )
    call = panel_url(tenant, "servico", cryo.pk, "chamar")
    assert client.post(call, headers=HTMX).status_code == 403
    assert not TicketLine.objects.filter(status="called").exists()
    # The HTMX way: the token travels in the X-CSRFToken header set on <body>.
    response = client.post(call, headers={**HTMX, "X-CSRFToken": token})
    assert response.status_code == 200
    assert TicketLine.objects.filter(status="called").count() == 1


# --- the station -----------------------------------------------------------------------------


def test_without_a_station_the_panel_asks_for_one_and_remembers_it_per_studio(
    client, alice, tenant, other_tenant, crio_1, bota_1
):
    Membership.objects.create(user=alice, tenant=other_tenant, role=Role.OPERATOR)
    elsewhere = make_device(other_tenant, "Sauna 9", [])
    client.force_login(alice)
    page = client.get(panel_url(tenant)).content.decode()
    assert "Crio 1" in page and "Bota 1" in page and "Sauna 9" not in page
    pick_station(client, tenant, bota_1)
    pick_station(client, other_tenant, elsewhere)
    page = client.get(panel_url(tenant)).content.decode()
    assert 'data-testid="station">Bota 1<' in page
    page = client.get(panel_url(other_tenant)).content.decode()
    assert 'data-testid="station">Sauna 9<' in page


def test_a_device_of_another_studio_or_kind_cannot_be_the_station(
    client, alice, tenant, other_tenant
):
    from equipment.models import Kind

    client.force_login(alice)
    for device in (
        make_device(other_tenant, "Alheio", []),
        make_device(tenant, "TV", [], kind=Kind.DISPLAY),
    ):
        response = client.post(panel_url(tenant, "estacao"), {"station": device.pk})
        assert response.status_code == 400
    assert f"panel_station_{tenant.pk}" not in client.session


# --- what it shows ---------------------------------------------------------------------------


def test_the_panel_shows_one_queue_per_service_the_station_runs(client, alice, tenant, cryo, boots):
    sauna = make_service(tenant, "Sauna", "S", order=2)
    station = make_device(tenant, "Combo", [cryo, boots])
    queued_ticket(tenant, [cryo, boots], customer_name="Maria Souza")
    queued_ticket(tenant, [sauna], customer_name="Pedro Lima")
    vip = queued_ticket(tenant, [boots], customer_name="Ana Reis", priority=Priority.PRIORITY_80)
    client.force_login(alice)
    pick_station(client, tenant, station)
    response = client.get(panel_url(tenant))
    page = response.content.decode()
    assert [q.stats.service for q in response.context["queues"]] == [cryo, boots]
    assert "Pedro" not in page  # sauna is not run at this station
    boots_rows = response.context["queues"][1].rows
    assert [row.ticket_id for row in boots_rows][0] == vip.pk  # 80+ first
    assert "Prioritário 80+" in page
    assert "Maria" in page and "Souza" not in page  # first name only
    # The ticket's other service and where it stands, on its row.
    assert "Bota de compressão: Aguardando" in page
    assert "Chamar próximo" in page


def test_waiting_times_are_coloured_by_the_studio_thresholds(alice_client, tenant, cryo):
    tenant.wait_warning_minutes, tenant.wait_critical_minutes = 5, 15
    tenant.save()
    for minutes in (1, 7, 30):
        ticket = queued_ticket(tenant, [cryo])
        TicketLine.objects.filter(ticket=ticket).update(
            queued_at=timezone.now() - timedelta(minutes=minutes)
        )
    rows = alice_client.get(panel_url(tenant)).context["queues"][0].rows
    assert [(row.minutes, row.level) for row in rows] == [
        (30, "critical"),
        (7, "warning"),
        (1, "ok"),
    ]


def test_a_studio_hiding_names_shows_numbers_only_and_never_a_cpf(alice_client, tenant, cryo):
    tenant.hide_customer_names = True
    tenant.save()
    queued_ticket(tenant, [cryo], customer_name="Joana Prado", cpf="529.982.247-25")
    page = alice_client.get(panel_url(tenant)).content.decode()
    assert "C001" in page
    assert "Joana" not in page
    assert "52998224725" not in page and "529.982" not in page


def test_pending_payments_and_print_errors_are_listed(alice_client, tenant, cryo):
    make_ticket(tenant, [cryo], customer_name="Paula Dias")
    print_error_ticket(tenant, [cryo]).__class__.objects.filter(status="print_error").update(
        customer_name="Rui Costa"
    )
    response = alice_client.get(panel_url(tenant))
    assert [t.customer_name for t in response.context["pending"]] == ["Paula Dias"]
    assert [t.customer_name for t in response.context["print_errors"]] == ["Rui Costa"]
    page = response.content.decode()
    assert "R$ 120,00" in page


# --- the seed's acceptance flow through the views -------------------------------------------


def test_each_service_of_a_ticket_is_called_and_served_on_its_own(
    client, alice, bob, tenant, cryo, boots, crio_1, bota_1
):
    ticket = queued_ticket(tenant, [cryo, boots])
    cryo_line, boots_line = line_of(ticket, cryo), line_of(ticket, boots)
    client.force_login(alice)
    pick_station(client, tenant, crio_1)
    bobs = Client()
    bobs.force_login(bob)
    pick_station(bobs, tenant, bota_1)

    # Alice calls cryotherapy (HTMX): only that line leaves its queue.
    response = client.post(panel_url(tenant, "servico", cryo.pk, "chamar"), headers=HTMX)
    assert response.status_code == 200
    assert 'id="panel-live"' in response.content.decode()
    assert "<html" not in response.content.decode()  # a partial, not the page
    assert "Senha C001 chamada para Crioterapia em Crio 1." in response.content.decode()
    cryo_line.refresh_from_db()
    boots_line.refresh_from_db()
    assert (cryo_line.status, cryo_line.equipment, cryo_line.operator) == ("called", crio_1, alice)
    assert boots_line.status == "waiting"
    assert list(queue.queue_lines(boots)) == [boots_line]
    assert [row.pk for row in bobs.get(panel_url(tenant)).context["queues"][0].rows] == [
        boots_line.pk
    ]

    # Bob calls the boots line of the same ticket in parallel (plain form post: PRG).
    response = bobs.post(panel_url(tenant, "linha", boots_line.pk, "chamar"))
    assert response.status_code == 302 and response["Location"] == panel_url(tenant)
    boots_line.refresh_from_db()
    assert (boots_line.status, boots_line.equipment) == ("called", bota_1)

    for who, line in ((client, cryo_line), (bobs, boots_line)):
        assert (
            who.post(panel_url(tenant, "linha", line.pk, "iniciar"), headers=HTMX).status_code
            == 200
        )

    client.post(panel_url(tenant, "linha", cryo_line.pk, "concluir"), headers=HTMX)
    ticket.refresh_from_db()
    assert line_of(ticket, cryo).status == "completed"
    assert ticket.status != "completed"

    response = bobs.post(panel_url(tenant, "linha", boots_line.pk, "concluir"))
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.status == "completed"
    # After the redirect, the outcome is shown once.
    page = bobs.get(panel_url(tenant)).content.decode()
    assert "Bota de compressão da senha C001 concluído." in page
    assert "concluído." not in bobs.get(panel_url(tenant)).content.decode()


def test_my_services_lists_lines_i_called_and_what_my_station_serves(
    client, alice, bob, tenant, cryo, crio_1
):
    mine = queued_ticket(tenant, [cryo])
    theirs = queued_ticket(tenant, [cryo])
    crio_2 = make_device(tenant, "Crio 2", [cryo])
    queue.call_line(tenant, line_of(mine, cryo).pk, crio_1, user=bob)
    queue.call_line(tenant, line_of(theirs, cryo).pk, crio_2, user=bob)
    client.force_login(alice)
    pick_station(client, tenant, crio_1)
    rows = client.get(panel_url(tenant)).context["mine"]
    assert [row.line.ticket for row in rows] == [mine]  # on my station, though bob called it
    queue.send_back(tenant, line_of(mine, cryo).pk)
    client.post(panel_url(tenant, "linha", line_of(theirs, cryo).pk, "devolver"))
    client.post(panel_url(tenant, "linha", line_of(theirs, cryo).pk, "chamar"))
    rows = client.get(panel_url(tenant)).context["mine"]
    assert [(row.line.ticket, row.line.operator) for row in rows] == [(theirs, alice)]


# --- refusals and the other buttons ----------------------------------------------------------


def test_a_busy_device_is_refused_with_the_message_beside_the_queue(alice_client, tenant, cryo):
    queued_ticket(tenant, [cryo])
    queued_ticket(tenant, [cryo])
    call = panel_url(tenant, "servico", cryo.pk, "chamar")
    assert alice_client.post(call, headers=HTMX).status_code == 200
    response = alice_client.post(call, headers=HTMX)
    assert response.status_code == 200
    assert response.context["flash"]["where"] == "queue"
    assert "Crio 1 está ocupado com a senha C001." in response.content.decode()
    assert TicketLine.objects.filter(status="called").count() == 1
    # Without HTMX: redirected, and the message waits on the panel.
    assert alice_client.post(call).status_code == 302
    assert "Crio 1 está ocupado" in alice_client.get(panel_url(tenant)).content.decode()


def test_a_refusal_on_a_row_is_shown_beside_that_row(alice_client, tenant, cryo):
    line = line_of(queued_ticket(tenant, [cryo]), cryo)
    response = alice_client.post(panel_url(tenant, "linha", line.pk, "iniciar"), headers=HTMX)
    assert response.status_code == 200
    assert response.context["flash"] == {
        "message": "Crioterapia da senha C001 está aguardando.",
        "level": "error",
        "line": line.pk,
        "service": cryo.pk,
        "where": "line",
    }


def test_calling_without_a_station_asks_for_one(client, alice, tenant, cryo, crio_1):
    queued_ticket(tenant, [cryo])
    client.force_login(alice)
    response = client.post(panel_url(tenant, "servico", cryo.pk, "chamar"), headers=HTMX)
    assert response.status_code == 200
    assert response["HX-Redirect"] == panel_url(tenant)
    assert not TicketLine.objects.filter(status="called").exists()


def test_the_called_line_buttons_call_again_send_back_and_mark_no_show(
    alice_client, tenant, cryo, crio_1
):
    line = line_of(queued_ticket(tenant, [cryo]), cryo)
    queue.call_line(tenant, line.pk, crio_1)

    def press(action):
        alice_client.post(panel_url(tenant, "linha", line.pk, action), headers=HTMX)
        line.refresh_from_db()

    press("rechamar")
    assert (line.status, line.call_count) == ("called", 2)
    press("devolver")
    assert (line.status, line.equipment) == ("waiting", None)
    press("chamar")
    press("ausente")
    assert line.status == "no_show"
    assert line.ticket.__class__.objects.get(pk=line.ticket_id).status == "expired"


def announced(response) -> dict:
    """What the panel's lasting status region is told to read aloud (HX-Trigger)."""
    return json.loads(response["HX-Trigger"])["panel:announce"]


def test_every_button_says_what_it_did_to_the_screen_reader(alice_client, tenant, cryo, boots):
    line = line_of(queued_ticket(tenant, [cryo]), cryo)
    number = line.ticket.number

    def press(action, data=None, target=line):
        response = alice_client.post(
            panel_url(tenant, "linha", target.pk, action), data or {}, headers=HTMX
        )
        assert response.status_code == 200
        return announced(response)

    call_next = alice_client.post(panel_url(tenant, "servico", cryo.pk, "chamar"), headers=HTMX)
    assert announced(call_next) == {
        "message": f"Senha {number} chamada para Crioterapia em Crio 1.",
        "level": "ok",
    }
    assert press("rechamar")["message"] == f"Senha {number} chamada de novo (chamada 2)."
    assert press("devolver")["message"] == f"Senha {number} voltou para a fila de Crioterapia."
    assert press("chamar")["message"] == f"Senha {number} chamada para Crioterapia em Crio 1."
    assert press("iniciar")["message"] == f"Crioterapia da senha {number} iniciado."
    assert press("concluir")["message"] == f"Crioterapia da senha {number} concluído."
    # A refusal says why, in the same region and beside the row.
    assert press("iniciar") == {
        "message": f"Crioterapia da senha {number} está concluído.",
        "level": "error",
    }

    other = line_of(queued_ticket(tenant, [cryo]), cryo)
    assert press("chamar", target=other)["level"] == "ok"
    assert press("ausente", target=other)["message"] == (
        f"Senha {other.ticket.number} não compareceu para Crioterapia."
    )
    third = line_of(queued_ticket(tenant, [cryo, boots]), cryo)
    assert press("transferir", {"service": boots.pk}, target=third)["level"] == "error"
    fourth = line_of(queued_ticket(tenant, [cryo]), cryo)
    assert press("transferir", {"service": boots.pk}, target=fourth)["message"] == (
        f"Senha {fourth.ticket.number} transferida para a fila de Bota de compressão."
    )
    assert press("cancelar", {"reason": "cliente desistiu"}, target=third)["message"] == (
        f"Crioterapia da senha {third.ticket.number} cancelado: cliente desistiu"
    )
    response = alice_client.post(
        panel_url(tenant, "senha", third.ticket_id, "cancelar"),
        {"reason": "passou mal", "row": third.pk},
        headers=HTMX,
    )
    assert announced(response)["message"] == (f"Senha {third.ticket.number} cancelada: passou mal")
    assert "cancelada: passou mal" in response.content.decode()  # shown on the panel too


def test_call_next_says_which_waiting_customer_it_passed_over_and_why(
    alice_client, tenant, cryo, boots
):
    busy = queued_ticket(tenant, [boots, cryo])
    boots_2 = make_device(tenant, "Bota 2", [boots])
    queue.call_next(boots, boots_2)
    free = queued_ticket(tenant, [cryo])
    response = alice_client.post(panel_url(tenant, "servico", cryo.pk, "chamar"), headers=HTMX)
    message = (
        f"Senha {free.number} chamada para Crioterapia em Crio 1. "
        f"Senha {busy.number} pulada: em atendimento em Bota 2."
    )
    assert announced(response)["message"] == message
    assert response.context["flash"]["where"] == "queue"
    assert message in response.content.decode()


def test_with_one_login_each_station_lists_only_its_own_calls(client, alice, tenant, cryo, crio_1):
    crio_2 = make_device(tenant, "Crio 2", [cryo])
    first, second = (queued_ticket(tenant, [cryo]) for _ in range(2))
    client.force_login(alice)
    pick_station(client, tenant, crio_1)
    client.post(panel_url(tenant, "linha", line_of(first, cryo).pk, "chamar"))
    other = Client()
    other.force_login(alice)  # the studio's one login, at the other station
    pick_station(other, tenant, crio_2)
    other.post(panel_url(tenant, "linha", line_of(second, cryo).pk, "chamar"))
    assert [row.line.ticket for row in client.get(panel_url(tenant)).context["mine"]] == [first]
    assert [row.line.ticket for row in other.get(panel_url(tenant)).context["mine"]] == [second]


def test_a_missed_service_is_listed_under_its_queue_and_called_again_onto_my_station(
    client, alice, tenant, cryo, boots, bota_1
):
    # Seed 000's ticket: cryotherapy missed while the boots wait, then the boots are served.
    station = make_device(tenant, "Combo", [cryo, boots])
    ticket = queued_ticket(tenant, [cryo, boots], customer_name="Maria Souza")
    cryo_line = line_of(ticket, cryo)
    queue.call_line(tenant, cryo_line.pk, station)
    queue.no_show(tenant, cryo_line.pk)
    served = queue.call_next(boots, bota_1)
    queue.start(tenant, served.pk)
    queue.complete(tenant, served.pk)
    client.force_login(alice)
    pick_station(client, tenant, station)

    response = client.get(panel_url(tenant))
    cryo_queue, boots_queue = response.context["queues"]
    assert [row.pk for row in cryo_queue.missed] == [cryo_line.pk]
    assert (cryo_queue.rows, boots_queue.missed) == ([], [])
    page = response.content.decode()
    assert "Não compareceram" in page and 'data-testid="missed-row"' in page
    assert "Bota de compressão: Concluído" in page  # the ticket's other service, on its row
    assert "pode ser chamado até" in page

    response = client.post(panel_url(tenant, "linha", cryo_line.pk, "chamar"), headers=HTMX)
    assert "Senha C001 chamada para Crioterapia em Combo." in response.content.decode()
    cryo_line.refresh_from_db()
    ticket.refresh_from_db()
    assert (cryo_line.status, cryo_line.equipment, ticket.status) == ("called", station, "called")
    assert response.context["queues"][0].missed == []
    assert [row.line for row in response.context["mine"]] == [cryo_line]


def test_a_missed_service_leaves_the_list_when_its_window_ends(alice_client, tenant, cryo, crio_1):
    ticket = queued_ticket(tenant, [cryo])
    line = line_of(ticket, cryo)
    queue.call_line(tenant, line.pk, crio_1)
    queue.no_show(tenant, line.pk)
    assert len(alice_client.get(panel_url(tenant)).context["queues"][0].missed) == 1
    TicketLine.objects.filter(pk=line.pk).update(
        no_show_at=timezone.now() - timedelta(minutes=tenant.reactivation_minutes + 1)
    )
    assert alice_client.get(panel_url(tenant)).context["queues"][0].missed == []
    # A stale form posted anyway is refused beside the queue, and nothing moves.
    response = alice_client.post(panel_url(tenant, "linha", line.pk, "chamar"), headers=HTMX)
    assert "Acabou o prazo para chamar de novo Crioterapia da senha C001." in (
        response.content.decode()
    )
    line.refresh_from_db()
    assert line.status == "no_show"


def test_a_stuck_service_is_flagged_on_my_services(midday, alice_client, tenant, cryo, crio_1):
    line = line_of(queued_ticket(tenant, [cryo]), cryo)
    queue.call_line(tenant, line.pk, crio_1)
    queue.start(tenant, line.pk)
    page = alice_client.get(panel_url(tenant)).content.decode()
    assert 'data-testid="stuck"' not in page and "row-stuck" not in page

    started = timezone.now() - timedelta(minutes=31)  # Crioterapia: 10 min × 3
    TicketLine.objects.filter(pk=line.pk).update(started_at=started)
    response = alice_client.get(panel_url(tenant))
    (row,) = response.context["mine"]
    assert row.deadline == started + timedelta(minutes=30) + queue.STUCK_GRACE
    page = response.content.decode()
    closes = timezone.localtime(row.deadline, tenant.tzinfo)
    assert f"Parado: encerra automaticamente às {closes:%H:%M}" in page
    assert "row-stuck" in page


def test_cancelling_needs_a_reason(alice_client, tenant, cryo, boots):
    ticket = queued_ticket(tenant, [cryo, boots])
    line = line_of(ticket, cryo)
    cancel_line = panel_url(tenant, "linha", line.pk, "cancelar")
    response = alice_client.post(cancel_line, {"reason": "  "}, headers=HTMX)
    assert "Informe o motivo (obrigatório)." in response.content.decode()
    line.refresh_from_db()
    assert line.status == "waiting"
    alice_client.post(cancel_line, {"reason": "desistiu da crio"}, headers=HTMX)
    line.refresh_from_db()
    assert (line.status, line.cancellation_reason) == ("cancelled", "desistiu da crio")

    cancel_ticket = panel_url(tenant, "senha", ticket.pk, "cancelar")
    alice_client.post(cancel_ticket, {"reason": ""}, headers=HTMX)
    ticket.refresh_from_db()
    assert ticket.status == "in_queue"
    alice_client.post(cancel_ticket, {"reason": "foi embora"})
    ticket.refresh_from_db()
    assert (ticket.status, ticket.cancellation_reason) == ("cancelled", "foi embora")


def test_a_waiting_line_is_transferred_to_another_service(alice_client, tenant, cryo, boots):
    line = line_of(queued_ticket(tenant, [cryo]), cryo)
    detail = alice_client.get(panel_url(tenant, "linha", line.pk), headers=HTMX)
    assert detail.status_code == 200
    assert "Bota de compressão" in detail.content.decode()
    alice_client.post(
        panel_url(tenant, "linha", line.pk, "transferir"), {"service": boots.pk}, headers=HTMX
    )
    line.refresh_from_db()
    assert line.service == boots


def test_a_transfer_to_another_studios_service_is_refused(alice_client, tenant, other_tenant, cryo):
    foreign = make_service(other_tenant, "Alheio", "X")
    line = line_of(queued_ticket(tenant, [cryo]), cryo)
    response = alice_client.post(
        panel_url(tenant, "linha", line.pk, "transferir"), {"service": foreign.pk}, headers=HTMX
    )
    assert response.status_code == 200
    assert response.context["flash"]["level"] == "error"
    line.refresh_from_db()
    assert line.service == cryo


def test_an_unknown_action_is_404(alice_client, tenant, cryo):
    line = line_of(queued_ticket(tenant, [cryo]), cryo)
    assert alice_client.post(panel_url(tenant, "linha", line.pk, "explodir")).status_code == 404


def test_actions_only_accept_post(alice_client, tenant, cryo):
    line = line_of(queued_ticket(tenant, [cryo]), cryo)
    assert alice_client.get(panel_url(tenant, "linha", line.pk, "chamar")).status_code == 405
    assert alice_client.get(panel_url(tenant, "servico", cryo.pk, "chamar")).status_code == 405


# --- payments and printing, through their own apps' functions --------------------------------


def test_cash_at_the_counter_is_confirmed_from_the_panel(alice_client, tenant, cryo):
    from payments.sessions import start_payment

    ticket = make_ticket(tenant, [cryo], customer_name="Paula Dias")
    session = start_payment(ticket, "cash")
    response = alice_client.get(panel_url(tenant))
    assert [t.pk for t in response.context["pending"]] == [ticket.pk]
    assert "Confirmar dinheiro" in response.content.decode()
    confirm = panel_url(tenant, "pagamento", session.pk, "dinheiro")
    response = alice_client.post(confirm, {"amount_received": "100,00"}, headers=HTMX)
    assert response.context["flash"]["where"] == "ticket"
    assert "menor" in response.context["flash"]["message"]  # less than the R$ 120 due
    assert announced(response) == {
        "message": response.context["flash"]["message"],
        "level": "error",
    }
    ticket.refresh_from_db()
    assert ticket.status == "pending_payment"
    response = alice_client.post(confirm, {"amount_received": "150,00"}, headers=HTMX)
    assert response.context["flash"]["level"] == "ok"
    assert "Pagamento em dinheiro da senha" in announced(response)["message"]
    ticket.refresh_from_db()
    session.refresh_from_db()
    assert ticket.status == "in_queue"
    assert (session.status, session.confirmed_by.username) == ("paid", "alice")
    assert str(session.amount_received) == "150.00"
    assert [row.ticket_id for row in response.context["queues"][0].rows] == [ticket.pk]


def test_static_pix_is_confirmed_from_the_panel(alice_client, tenant, cryo):
    from payments.models import PaymentSettings
    from payments.sessions import start_payment

    PaymentSettings.objects.create(
        tenant=tenant, pix_key="pix@studio.test", merchant_name="Studio", merchant_city="Recife"
    )
    ticket = make_ticket(tenant, [cryo])
    session = start_payment(ticket, "pix")
    alice_client.post(panel_url(tenant, "pagamento", session.pk, "pix"))
    ticket.refresh_from_db()
    assert ticket.status == "in_queue"


def test_an_outsider_cannot_confirm_a_payment(client, charlie, tenant, other_tenant, cryo):
    from payments.sessions import start_payment

    ticket = make_ticket(tenant, [cryo])
    session = start_payment(ticket, "cash")
    client.force_login(charlie)
    for slug_tenant in (tenant, other_tenant):
        url = panel_url(slug_tenant, "pagamento", session.pk, "dinheiro")
        assert client.post(url, {"amount_received": "200"}).status_code == 404
    ticket.refresh_from_db()
    assert ticket.status == "pending_payment"


def print_error_ticket(tenant, services) -> Ticket:
    from django.db import transaction

    from tickets.models import change_ticket_status

    ticket = make_ticket(tenant, services)
    with transaction.atomic():
        ticket = Ticket.objects.select_for_update().get(pk=ticket.pk)
        change_ticket_status(ticket, "paid")
        change_ticket_status(ticket, "print_error")
    return ticket


def test_a_print_error_is_reprinted_or_moved_to_the_queue_from_the_panel(
    alice_client, tenant, cryo
):
    ticket = print_error_ticket(tenant, [cryo])
    response = alice_client.get(panel_url(tenant))
    assert [t.pk for t in response.context["print_errors"]] == [ticket.pk]
    # No printer in service: refused beside the row, the ticket stays where it was.
    response = alice_client.post(panel_url(tenant, "senha", ticket.pk, "reimprimir"), headers=HTMX)
    assert response.status_code == 200
    assert response.context["flash"]["where"] == "ticket"
    assert response.context["flash"]["level"] == "error"
    response = alice_client.post(panel_url(tenant, "senha", ticket.pk, "para-fila"), headers=HTMX)
    ticket.refresh_from_db()
    assert ticket.status == "in_queue"
    assert [row.ticket_id for row in response.context["queues"][0].rows] == [ticket.pk]


# --- it stays fast ---------------------------------------------------------------------------


def fill_queue(tenant, services, count: int) -> None:
    """`count` tickets waiting in every service's queue, inserted in bulk (speed only)."""
    now = timezone.now()
    start = Ticket.objects.filter(tenant=tenant).count()
    tickets = Ticket.objects.bulk_create(
        Ticket(
            tenant=tenant,
            day=tenant.today(),
            sequence=start + i,
            number=f"Q{start + i:05d}",
            status="in_queue",
            customer_name=f"Cliente {i}",
            consent_version="2026-01",
            total=0,
            queued_at=now,
            priority=Priority.PRIORITY if i % 7 == 0 else Priority.NORMAL,
        )
        for i in range(count)
    )
    TicketLine.objects.bulk_create(
        TicketLine(
            tenant=tenant,
            ticket=ticket,
            service=service,
            position=position,
            price=0,
            customer_key=ticket.token,
            priority_rank=Priority.rank(ticket.priority),
            queued_at=now - timedelta(minutes=i % 40),
        )
        for i, ticket in enumerate(tickets)
        for position, service in enumerate(services)
    )


@pytest.mark.parametrize("headers", [{}, HTMX], ids=["page", "htmx"])
def test_the_panel_costs_the_same_queries_with_10_and_1000_waiting(
    alice, tenant, cryo, boots, headers, django_assert_num_queries
):
    station = make_device(tenant, "Combo", [cryo, boots])
    called = queued_ticket(tenant, [cryo])
    queue.call_line(tenant, line_of(called, cryo).pk, station, user=alice)
    client = Client()
    client.force_login(alice)
    pick_station(client, tenant, station)
    fill_queue(tenant, [cryo, boots], 10)
    with CaptureQueriesContext(connection) as small:
        assert client.get(panel_url(tenant), headers=headers).status_code == 200
    fill_queue(tenant, [cryo, boots], 990)
    with django_assert_num_queries(len(small.captured_queries)):
        response = client.get(panel_url(tenant), headers=headers)
    assert [len(q.rows) for q in response.context["queues"]] == [20, 20]
    assert "+980" in response.content.decode()


def miss(tenant, services, count: int) -> None:
    """`count` tickets whose lines in every service were just missed (bulk, speed only)."""
    fill_queue(tenant, services, count)
    waiting = TicketLine.objects.filter(tenant=tenant, status="waiting")
    waiting.update(status="no_show", no_show_at=timezone.now())


@pytest.mark.parametrize("headers", [{}, HTMX], ids=["page", "htmx"])
def test_the_panel_costs_the_same_queries_with_1_and_20_missed_lines(
    alice, tenant, cryo, boots, headers, django_assert_num_queries
):
    station = make_device(tenant, "Combo", [cryo, boots])
    stuck = queued_ticket(tenant, [cryo])
    queue.call_line(tenant, line_of(stuck, cryo).pk, station, user=alice)
    queue.start(tenant, line_of(stuck, cryo).pk)
    TicketLine.objects.filter(ticket=stuck).update(started_at=timezone.now() - timedelta(hours=2))
    client = Client()
    client.force_login(alice)
    pick_station(client, tenant, station)
    miss(tenant, [cryo, boots], 1)
    with CaptureQueriesContext(connection) as small:
        assert client.get(panel_url(tenant), headers=headers).status_code == 200
    miss(tenant, [cryo, boots], 19)
    with django_assert_num_queries(len(small.captured_queries)):
        response = client.get(panel_url(tenant), headers=headers)
    assert [len(q.missed) for q in response.context["queues"]] == [15, 15]  # 30 shown at most
    assert response.context["mine"][0].deadline is not None


def test_call_next_reads_the_tenant_once(client, alice, tenant, cryo, crio_1):
    """The call's tenant comes with the request; the service must not fetch it again."""
    queued_ticket(tenant, [cryo])
    client.force_login(alice)
    pick_station(client, tenant, crio_1)
    with CaptureQueriesContext(connection) as queries:
        response = client.post(panel_url(tenant, "servico", cryo.pk, "chamar"), headers=HTMX)
    assert "Senha C001 chamada" in response.content.decode()
    reads = [q["sql"] for q in queries if q["sql"].startswith('SELECT "tenants_tenant"')]
    assert len(reads) == 1, reads
