"""What the screens show of devices: the panel's session and cool-down timers (server times,
across reloads), ending a cool-down early, the station picker, the customer's phone."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from equipment.models import Equipment
from tenants.models import AuditLog
from tests.conftest import make_device, queued_ticket
from tickets import queue
from tickets.models import TicketLine


def panel_url(tenant, *parts) -> str:
    return f"/t/{tenant.slug}/painel/" + "".join(f"{p}/" for p in parts)


@pytest.fixture
def chamber(tenant, cryo):
    cryo.duration_minutes, cryo.hard_maximum, cryo.cooldown_minutes = 3, True, 5
    cryo.save()
    return make_device(tenant, "Crio 1", [cryo], location="Sala 1")


@pytest.fixture
def operator(client, alice, tenant, chamber):
    client.force_login(alice)
    assert client.post(panel_url(tenant, "estacao"), {"station": chamber.pk}).status_code == 302
    return client


def timer(html: str, testid: str) -> dict[str, str]:
    tag = re.search(rf'<[^>]*data-testid="{testid}"[^>]*>', html, re.S)
    assert tag, f"no {testid}"
    return dict(re.findall(r'data-([a-z-]+)="([^"]*)"', tag.group(0)))


def time_left(attrs: dict[str, str]) -> timedelta:
    """What a timer shows before any JavaScript runs: its end less the server's time."""
    return datetime.fromisoformat(attrs["ends-at"]) - datetime.fromisoformat(attrs["server-now"])


def test_the_panel_counts_a_session_down_to_the_servers_end_across_a_reload(
    operator, tenant, cryo, chamber
):
    queued_ticket(tenant, [cryo])
    line = queue.start(tenant, queue.call_next(cryo, chamber).pk)
    first = timer(operator.get(panel_url(tenant)).content.decode(), "session-timer")
    assert datetime.fromisoformat(first["ends-at"]) == line.session_ends_at
    assert first["hard"] == "true"

    # A reload later: the same end, a later server time, so the countdown goes on from there.

    TicketLine.objects.filter(pk=line.pk).update(
        started_at=line.started_at - timedelta(minutes=1),
        session_ends_at=line.session_ends_at - timedelta(minutes=1),
    )
    html = operator.get(panel_url(tenant), headers={"HX-Request": "true"}).content.decode()
    again = timer(html, "session-timer")
    left = datetime.fromisoformat(again["ends-at"]) - datetime.fromisoformat(again["server-now"])
    assert timedelta(minutes=1, seconds=55) < left <= timedelta(minutes=2)
    assert (
        'data-testid="hard-alert"' in html
        and "hidden>" in html.split('data-testid="hard-alert"')[1][:80]
    )

    # Past the end (a hard maximum): rendered over and insisting, with no JavaScript needed.
    TicketLine.objects.filter(pk=line.pk).update(
        session_ends_at=timezone.now() - timedelta(seconds=5)
    )
    html = operator.get(panel_url(tenant)).content.decode()
    assert "timer-over" in html
    banner = html.split('data-testid="hard-alert"')[1][:120]
    assert "hidden" not in banner.split(">")[0]
    assert "Tempo máximo atingido" in html


def test_a_cooling_station_shows_when_it_is_free_and_can_be_released_with_a_reason(
    operator, tenant, cryo, chamber, alice
):
    queued_ticket(tenant, [cryo])
    line = queue.start(tenant, queue.call_next(cryo, chamber).pk)
    queue.complete(tenant, line.pk)
    html = operator.get(panel_url(tenant)).content.decode()
    state = timer(html, "device-now")
    assert state["state"] == "cooling"
    cooling = timer(html, "cooling-timer")
    left = datetime.fromisoformat(cooling["ends-at"]) - datetime.fromisoformat(
        cooling["server-now"]
    )
    assert timedelta(minutes=4, seconds=55) < left <= timedelta(minutes=5)
    assert "Em resfriamento" in html

    refused = operator.post(panel_url(tenant, "estacao", "encerrar-resfriamento"), {"reason": ""})
    assert refused.status_code == 302
    assert "Informe o motivo" in operator.get(panel_url(tenant)).content.decode()
    assert not AuditLog.objects.filter(action="cooldown_ended").exists()

    operator.post(panel_url(tenant, "estacao", "encerrar-resfriamento"), {"reason": "limpo"})
    html = operator.get(panel_url(tenant)).content.decode()
    assert timer(html, "device-now")["state"] == "free"
    assert AuditLog.objects.get(action="cooldown_ended").user == alice


def test_call_next_onto_a_cooling_station_is_refused_beside_its_queue(
    operator, tenant, cryo, chamber
):
    queued_ticket(tenant, [cryo])
    queued_ticket(tenant, [cryo])
    line = queue.start(tenant, queue.call_next(cryo, chamber).pk)
    queue.complete(tenant, line.pk)
    response = operator.post(
        panel_url(tenant, "servico", cryo.pk, "chamar"), headers={"HX-Request": "true"}
    )
    assert "em resfriamento até" in response.content.decode()
    assert queue.service_stats(tenant, [cryo])[0].waiting == 1


def test_the_station_picker_shows_each_devices_state(operator, tenant, cryo, chamber):
    queued_ticket(tenant, [cryo])
    other = make_device(tenant, "Crio 2", [cryo])
    Equipment.objects.filter(pk=other.pk).update(status="maintenance")
    queue.call_next(cryo, chamber)
    html = operator.get(panel_url(tenant) + "?trocar=1").content.decode()
    assert "Em uso" in html and "Manutenção" in html


def test_the_customers_phone_says_when_the_session_ends(client, tenant, cryo, chamber):
    ticket = queued_ticket(tenant, [cryo])
    line = queue.start(tenant, queue.call_next(cryo, chamber).pk)
    html = client.get(f"/t/{tenant.slug}/senha/{ticket.token}/").content.decode()
    assert "termina em 3 min" in html
    ends = timer(html, "session-ends-timer")
    assert datetime.fromisoformat(ends["ends-at"]) == line.session_ends_at
    assert ends["text"] == "termina em {n} min"


def test_an_outsider_cannot_end_another_studios_cool_down(
    client, charlie, tenant, other_tenant, cryo, chamber
):
    queued_ticket(tenant, [cryo])
    queue.complete(tenant, queue.start(tenant, queue.call_next(cryo, chamber).pk).pk)
    client.force_login(charlie)
    response = client.post(panel_url(tenant, "estacao", "encerrar-resfriamento"), {"reason": "x"})
    assert response.status_code in (403, 404)
    chamber.refresh_from_db()
    assert chamber.cooling_until > timezone.now()


def test_the_tv_counts_down_the_rooms_the_studio_chose_and_names_no_one(
    client, tenant, cryo, chamber, boots
):
    from tests.test_realtime import pair_display

    Equipment.objects.filter(pk=chamber.pk).update(shows_timer_on_display=True)
    hidden = make_device(tenant, "Bota 1", [boots], location="Sala 3")
    ticket = queued_ticket(tenant, [cryo], customer_name="Joana Prado")
    queued_ticket(tenant, [boots])
    line = queue.start(tenant, queue.call_next(cryo, chamber).pk)
    queue.start(tenant, queue.call_next(boots, hidden).pk)
    client.cookies.load(pair_display(tenant))
    html = client.get(f"/t/{tenant.slug}/display/state/").content.decode()
    room = timer(html, "room-timer")
    assert room["equipment"] == str(chamber.pk)
    assert html.count('data-testid="room-timer"') == 1  # the boots' room did not ask for it
    ends = re.search(r'role="timer" data-ends-at="([^"]+)"', html).group(1)
    assert datetime.fromisoformat(ends) == line.session_ends_at
    assert "Joana" not in html and ticket.customer_name not in html

    queue.complete(tenant, line.pk)
    html = client.get(f"/t/{tenant.slug}/display/state/").content.decode()
    assert "livre em" in html


def test_the_station_shows_the_other_devices_of_its_services_with_their_timers(
    operator, tenant, cryo, chamber
):
    second = make_device(tenant, "Crio 2", [cryo])
    make_device(tenant, "Crio 3", [cryo])
    queued_ticket(tenant, [cryo])
    queue.complete(tenant, queue.start(tenant, queue.call_next(cryo, second).pk).pk)
    html = operator.get(panel_url(tenant)).content.decode()
    others = html.split('data-testid="device-others"')[1].split("</ul>")[0]
    assert "Crio 2: Em resfriamento" in others and "Crio 3: Livre" in others
    assert 'data-ends-at="' in others and "Crio 1" not in others
