"""Real time: the three sockets, their refusals, sequence numbers, events only after commit,
and Redis down. The end-to-end tests against real Daphne processes are at the bottom."""

from __future__ import annotations

import itertools
import json
import logging
import statistics
import time
from contextlib import contextmanager
from datetime import datetime, timedelta

import pytest
from asgiref.sync import SyncToAsync, async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connections, transaction
from django.test import Client
from django.utils import timezone

from config.asgi import application
from tenants.redis_outage import RedisOutage
from tests import daphne_server
from tests.conftest import make_device, make_service, make_ticket, queued_ticket
from tickets import events
from tickets.models import Service
from tickets.queue import call_next, complete, expire_missed, no_show, start

ORIGIN = (b"origin", b"http://testserver")
# Real Daphne processes for the end-to-end tests at the bottom (fixtures).
two_daphnes = daphne_server.two_daphnes
realtime = pytest.mark.django_db(transaction=True)


async def open_socket(path: str, *, origin=ORIGIN, cookie: str = "", cookies=None):
    headers = [origin] if origin else []
    jar = dict(cookies or {})
    if cookie:
        jar["sessionid"] = cookie
    if jar:
        headers.append((b"cookie", cookie_header(jar).encode()))
    socket = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await socket.connect()
    return socket, connected


async def greeted(path: str, **kwargs):
    """A connected socket past its hello, and the hello's sequence numbers."""
    socket, connected = await open_socket(path, **kwargs)
    assert connected
    hello = await socket.receive_json_from(timeout=3)
    assert hello["type"] == "hello"
    return socket, hello["seqs"]


async def next_of(socket, kind: str) -> dict:
    """The next event of `kind`, skipping others (a call also sends queue updates)."""
    for _ in range(20):
        event = await socket.receive_json_from(timeout=3)
        if event["type"] == kind:
            return event
    raise AssertionError(f"no {kind}")


@pytest.fixture
def room(tenant, cryo):
    return make_device(tenant, "Cabine 1", [cryo], location="Sala 2")


@pytest.fixture
def tv(tenant) -> dict[str, str]:
    """The cookies of a browser paired as the tenant's display."""
    return pair_display(tenant)


@pytest.fixture
def boots_room(tenant, boots):
    return make_device(tenant, "Bota 1", [boots], location="Sala 3")


@pytest.fixture(autouse=True, scope="module")
def _close_worker_connections():
    # Async tests reach the database from asgiref's one worker thread; its connection would
    # outlive the tests and keep PostgreSQL from dropping the test database.
    yield
    SyncToAsync.single_thread_executor.submit(connections.close_all).result()


_tvs = itertools.count(1)


def pair_display(tenant, services=()) -> dict[str, str]:
    """Cookies of a browser paired as one of `tenant`'s displays (as the pairing page leaves)."""
    from equipment.models import Kind

    return pairing_cookies(make_device(tenant, f"TV {next(_tvs)}", services, kind=Kind.DISPLAY))


def pairing_cookies(device) -> dict[str, str]:
    """Cookies of a browser paired as `device` (a kiosk or display) with a code of its own."""
    from django.http import HttpResponse
    from django.test import RequestFactory

    from totem.models import PairingCode
    from totem.pairing import pair_response, redeem

    tenant = device.tenant
    pairing = redeem(tenant, PairingCode.objects.create(tenant=tenant, equipment=device).code)
    response = HttpResponse()
    pair_response(response, RequestFactory().get("/"), pairing)
    return {name: morsel.value for name, morsel in response.cookies.items()}


def cookie_header(cookies: dict[str, str]) -> str:
    return "; ".join(f"{name}={value}" for name, value in cookies.items())


def session_of(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


# --- the public display ---------------------------------------------------------------------


@realtime
async def test_the_display_hears_a_call_with_its_service_and_room(tenant, cryo, room, tv):
    ticket = await database_sync_to_async(queued_ticket)(tenant, [cryo])
    socket, seqs = await greeted(f"/ws/t/{tenant.slug}/display/", cookies=tv)
    group = events.tenant_group(tenant.id)

    await database_sync_to_async(call_next)(cryo, room)

    called = await next_of(socket, "ticket_called")
    assert called["number"] == ticket.number
    assert called["service"] == "Crioterapia"
    assert called["room"] == "Sala 2"
    assert called["service_id"] == cryo.id
    assert called["call_count"] == 1
    assert called["group"] == group
    assert called["group_seq"] > seqs[group]
    await socket.disconnect()


@realtime
async def test_the_display_numbers_its_events_one_after_another(tenant, cryo, room, tv):
    await database_sync_to_async(queued_ticket)(tenant, [cryo])
    socket, seqs = await greeted(f"/ws/t/{tenant.slug}/display/", cookies=tv)
    group = events.tenant_group(tenant.id)

    await database_sync_to_async(call_next)(cryo, room)

    numbers = []
    while len(numbers) < 4:  # ticket_update, ticket_called, service_called, queue_update
        numbers.append((await socket.receive_json_from(timeout=3))["group_seq"])
    assert numbers == [seqs[group] + n for n in (1, 2, 3, 4)]
    await socket.disconnect()


@realtime
async def test_a_display_of_some_services_hears_only_those(
    tenant, cryo, boots, room, boots_room, tv
):
    await database_sync_to_async(queued_ticket)(tenant, [cryo])
    await database_sync_to_async(queued_ticket)(tenant, [boots])
    socket, seqs = await greeted(f"/ws/t/{tenant.slug}/display/?services={boots.id}", cookies=tv)
    assert list(seqs) == [events.service_group(tenant.id, boots.id)]

    await database_sync_to_async(call_next)(cryo, room)
    await database_sync_to_async(call_next)(boots, boots_room)

    called = await next_of(socket, "ticket_called")
    assert called["service"] == "Bota de compressão"
    await socket.disconnect()


@realtime
async def test_a_display_set_to_some_services_hears_and_shows_only_those(
    tenant, cryo, boots, room, boots_room
):
    area = await database_sync_to_async(pair_display)(tenant, [boots])
    await database_sync_to_async(queued_ticket)(tenant, [cryo])
    await database_sync_to_async(queued_ticket)(tenant, [boots])
    socket, seqs = await greeted(f"/ws/t/{tenant.slug}/display/", cookies=area)
    assert list(seqs) == [events.service_group(tenant.id, boots.id)]

    await database_sync_to_async(call_next)(cryo, room)
    await database_sync_to_async(call_next)(boots, boots_room)

    assert (await next_of(socket, "ticket_called"))["service"] == "Bota de compressão"
    await socket.disconnect()

    assert await database_sync_to_async(board_services)(tenant, area) == ["Bota de compressão"]


@realtime
async def test_a_display_set_to_services_no_longer_on_sale_hears_and_shows_them_all(
    tenant, cryo, boots
):
    # Page and socket agree on what the TV is about (both ask totem.access.display_services).
    area = await database_sync_to_async(pair_display)(tenant, [boots])
    await database_sync_to_async(Service.objects.filter(pk=boots.pk).update)(is_active=False)
    socket, seqs = await greeted(f"/ws/t/{tenant.slug}/display/", cookies=area)
    assert list(seqs) == [events.tenant_group(tenant.id)]
    await socket.disconnect()
    assert await database_sync_to_async(board_services)(tenant, area) == ["Crioterapia"]


def board_services(tenant, cookies: dict[str, str]) -> list[str]:
    """The services the display's board shows, as a TV with these cookies reads it."""
    client = Client()
    for name, value in cookies.items():
        client.cookies[name] = value
    state = client.get(f"/t/{tenant.slug}/display/state/", headers={"HX-Request": "true"})
    return [service.name for service in state.context["queues"]]


@realtime
async def test_a_display_is_refused_for_an_unknown_tenant_or_another_tenants_service(
    tenant, other_tenant, cryo, tv
):
    theirs = await database_sync_to_async(make_service)(other_tenant)

    assert not (await open_socket("/ws/t/nowhere/display/", cookies=tv))[1]
    path = f"/ws/t/{tenant.slug}/display/"
    assert not (await open_socket(f"{path}?services={theirs.id}", cookies=tv))[1]
    assert not (await open_socket(f"{path}?services=x", cookies=tv))[1]
    socket, connected = await open_socket(f"{path}?services={cryo.id}", cookies=tv)
    assert connected
    await socket.disconnect()


@realtime
async def test_the_display_socket_needs_a_browser_paired_as_a_display_of_the_tenant(
    tenant, other_tenant, tv
):
    from totem.models import PairingCode

    theirs = await database_sync_to_async(pair_display)(other_tenant)
    path = f"/ws/t/{tenant.slug}/display/"

    assert not (await open_socket(path))[1]
    assert not (await open_socket(path, cookies=theirs))[1]
    assert not (await open_socket(path, cookies={"totem_display": "forged"}))[1]
    socket, connected = await open_socket(path, cookies=tv)
    assert connected
    await socket.disconnect()
    await PairingCode.objects.filter(tenant=tenant).aupdate(revoked_at=timezone.now())
    assert not (await open_socket(path, cookies=tv))[1]


@realtime
async def test_only_sockets_opened_from_this_site_are_accepted(tenant, tv):
    path = f"/ws/t/{tenant.slug}/display/"

    evil = (b"origin", b"http://evil.example")
    assert not (await open_socket(path, origin=evil, cookies=tv))[1]
    assert not (await open_socket(path, origin=None, cookies=tv))[1]
    socket, connected = await open_socket(path, cookies=tv)
    assert connected
    await socket.disconnect()


@realtime
async def test_public_sockets_never_carry_personal_data(tenant, cryo, alice, tv):
    ticket = await database_sync_to_async(queued_ticket)(tenant, [cryo], cpf="529.982.247-25")
    display, _ = await greeted(f"/ws/t/{tenant.slug}/display/", cookies=tv)
    phone, _ = await greeted(f"/ws/t/{tenant.slug}/senha/{ticket.token}/")
    cookie = await database_sync_to_async(session_of)(alice)
    panel, _ = await greeted(f"/ws/t/{tenant.slug}/panel/", cookie=cookie)

    def publish_with_a_name():
        with transaction.atomic():
            events.publish(
                "ticket_update", tenant_id=tenant.id, ticket=ticket, customer_name="Maria Souza"
            )

    await database_sync_to_async(publish_with_a_name)()

    for socket in (display, phone):
        event = await socket.receive_json_from(timeout=3)
        assert "customer_name" not in event
        assert "Maria" not in str(event)
    assert (await panel.receive_json_from(timeout=3))["customer_name"] == "Maria Souza"
    for socket in (display, phone, panel):
        await socket.disconnect()


@realtime
async def test_the_display_answers_a_ping_and_ignores_anything_else(tenant, tv):
    socket, _ = await greeted(f"/ws/t/{tenant.slug}/display/", cookies=tv)
    await socket.send_to(text_data="not json at all")
    await socket.send_json_to({"type": "ping"})
    assert await socket.receive_json_from(timeout=3) == {"type": "pong"}
    await socket.disconnect()


# --- the operator panel ---------------------------------------------------------------------


@realtime
async def test_the_panel_admits_only_members_of_the_tenant(tenant, other_tenant, alice, charlie):
    theirs = await database_sync_to_async(make_device)(other_tenant, "Deles")
    path = f"/ws/t/{tenant.slug}/panel/"
    alices = await database_sync_to_async(session_of)(alice)
    charlies = await database_sync_to_async(session_of)(charlie)

    assert not (await open_socket(path))[1]
    assert not (await open_socket(path, cookie=charlies))[1]
    assert not (await open_socket(f"{path}?equipment={theirs.id}", cookie=alices))[1]
    assert not (await open_socket(f"{path}?services=999999", cookie=alices))[1]
    socket, connected = await open_socket(path, cookie=alices)
    assert connected
    await socket.disconnect()


@realtime
async def test_a_station_hears_only_the_services_it_runs(
    tenant, cryo, boots, room, boots_room, alice
):
    await database_sync_to_async(queued_ticket)(tenant, [boots])
    cryo_ticket = await database_sync_to_async(queued_ticket)(tenant, [cryo])
    cookie = await database_sync_to_async(session_of)(alice)
    socket, seqs = await greeted(f"/ws/t/{tenant.slug}/panel/?equipment={room.id}", cookie=cookie)
    assert list(seqs) == [events.service_group(tenant.id, cryo.id)]

    await database_sync_to_async(call_next)(boots, boots_room)
    await database_sync_to_async(call_next)(cryo, room)

    event = await socket.receive_json_from(timeout=3)
    assert event["service_id"] == cryo.id
    assert event["number"] == cryo_ticket.number
    await socket.disconnect()


@realtime
async def test_a_station_hears_when_a_line_of_its_service_is_missed_and_when_it_expires(
    tenant, cryo, boots, room, alice
):
    ticket = await database_sync_to_async(queued_ticket)(tenant, [cryo, boots])
    line = await database_sync_to_async(call_next)(cryo, room)
    cookie = await database_sync_to_async(session_of)(alice)
    socket, _ = await greeted(f"/ws/t/{tenant.slug}/panel/?equipment={room.id}", cookie=cookie)

    await database_sync_to_async(no_show)(tenant, line.id)
    event = await next_of(socket, "queue_update")
    # panel.js refreshes on it: the line shows in its queue's "did not show up" list.
    assert (event["line_id"], event["status"], event["ticket_status"]) == (
        line.id,
        "no_show",
        "in_queue",
    )

    later = timezone.now() + timedelta(hours=2)
    await database_sync_to_async(expire_missed)(tenant, line.id, now=later)
    event = await next_of(socket, "queue_update")
    assert (event["line_id"], event["status"], event["number"]) == (
        line.id,
        "expired",
        ticket.number,
    )
    await socket.disconnect()


# --- the ticket's own page ------------------------------------------------------------------


@realtime
async def test_the_ticket_socket_needs_the_tickets_own_token_under_its_tenant(
    tenant, other_tenant, cryo
):
    ticket = await database_sync_to_async(queued_ticket)(tenant, [cryo])

    assert not (await open_socket(f"/ws/t/{tenant.slug}/senha/{'x' * 32}/"))[1]
    assert not (await open_socket(f"/ws/t/{tenant.slug}/senha/{ticket.token[:-1]}/"))[1]
    assert not (await open_socket(f"/ws/t/{other_tenant.slug}/senha/{ticket.token}/"))[1]
    socket, connected = await open_socket(f"/ws/t/{tenant.slug}/senha/{ticket.token}/")
    assert connected
    await socket.disconnect()


@realtime
async def test_the_kiosk_learns_on_the_tickets_socket_that_it_is_paid(tenant, cryo, alice):
    from payments.sessions import confirm_cash, start_payment

    ticket = await database_sync_to_async(make_ticket)(tenant, [cryo])
    session = await database_sync_to_async(start_payment)(ticket, "cash")
    socket, _ = await greeted(f"/ws/t/{tenant.slug}/senha/{ticket.token}/")

    await database_sync_to_async(confirm_cash)(tenant, session.pk, alice, "200")

    paid = await next_of(socket, "payment_update")
    assert (paid["ticket_id"], paid["payment_status"], paid["method"]) == (
        ticket.id,
        "paid",
        "cash",
    )
    await socket.disconnect()


@realtime
async def test_the_customers_phone_learns_its_ticket_is_called(tenant, cryo, room):
    ticket = await database_sync_to_async(queued_ticket)(tenant, [cryo])
    socket, seqs = await greeted(f"/ws/t/{tenant.slug}/senha/{ticket.token}/")
    assert events.ticket_group(ticket.token) in seqs

    await database_sync_to_async(call_next)(cryo, room)

    called = await next_of(socket, "ticket_called")
    assert (called["ticket_id"], called["room"]) == (ticket.id, "Sala 2")
    await socket.disconnect()


# --- after commit, never on rollback ----------------------------------------------------------


@realtime
async def test_events_wait_for_the_commit_and_never_leave_a_rolled_back_transaction(
    tenant, cryo, room, tv
):
    first = await database_sync_to_async(queued_ticket)(tenant, [cryo])
    second = await database_sync_to_async(queued_ticket)(tenant, [cryo])
    socket, _ = await greeted(f"/ws/t/{tenant.slug}/display/", cookies=tv)

    def call_then_roll_back():
        with pytest.raises(RuntimeError), transaction.atomic():
            call_next(cryo, room)
            raise RuntimeError("something after the call failed")

    def call_and_look_before_commit() -> bool:
        with transaction.atomic():
            line = call_next(cryo, room)
            heard_early = not async_to_sync(socket.receive_nothing)(0.3)
        return line, heard_early

    await database_sync_to_async(call_then_roll_back)()
    assert await socket.receive_nothing(0.3)

    line, heard_early = await database_sync_to_async(call_and_look_before_commit)()
    assert not heard_early
    called = await next_of(socket, "ticket_called")
    # The rolled-back call took the first ticket and gave it back: the committed one is it.
    assert called["number"] == line.ticket.number == first.number != second.number
    await socket.disconnect()


# --- Redis down -----------------------------------------------------------------------------


def closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens once the probe is closed


@pytest.fixture
def silent_port():
    """A port that accepts connections (the kernel completes them) and never answers."""
    import socket

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield server.getsockname()[1]


@pytest.mark.parametrize(
    "redis_is, counters_on_redis",
    [("closed", True), ("closed", False), ("silent", True)],
    ids=["closed-port", "closed-port-layer-only", "silent-server"],
)
def test_calling_and_completing_succeed_while_redis_is_unreachable(
    tenant,
    cryo,
    room,
    settings,
    caplog,
    django_capture_on_commit_callbacks,
    silent_port,
    redis_is,
    counters_on_redis,
):
    port = closed_port() if redis_is == "closed" else silent_port
    dead = f"redis://127.0.0.1:{port}/0"
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {
                "hosts": [{"address": dead, "socket_connect_timeout": 1, "socket_timeout": 2}]
            },
        }
    }
    settings.REDIS_URL = dead if counters_on_redis else ""
    RedisOutage._known.pop(dead, None)  # the port may have served an earlier test
    ticket = queued_ticket(tenant, [cryo])
    caplog.set_level(logging.WARNING)

    began = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True):
        line = call_next(cryo, room)
    with django_capture_on_commit_callbacks(execute=True):
        start(tenant, line.id)
    with django_capture_on_commit_callbacks(execute=True):
        complete(tenant, line.id)
    took = time.monotonic() - began

    line.refresh_from_db()
    ticket.refresh_from_db()
    assert (line.status, ticket.status) == ("completed", "completed")
    # One warning for the outage, not one per operation nor per event.
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 1 and "is unreachable" in warnings[0], warnings
    # A silent server costs one timeout (1 s), then is skipped for a while.
    assert took < 2.5, f"an unreachable Redis slowed the operations down to {took:.1f} s"


# --- the pages ------------------------------------------------------------------------------


def test_the_display_shows_calls_and_queues_without_any_personal_data(
    client, tenant, cryo, boots, room
):
    called = queued_ticket(tenant, [cryo], customer_name="Joana Prado")
    queued_ticket(tenant, [cryo, boots], customer_name="Pedro Lima")
    make_ticket(tenant, [cryo, boots])  # not paid: its lines wait for no queue yet
    call_next(cryo, room)

    for name, value in pair_display(tenant).items():
        client.cookies[name] = value
    page = client.get(f"/t/{tenant.slug}/display/")
    state = client.get(f"/t/{tenant.slug}/display/state/", headers={"HX-Request": "true"})

    for response in (page, state):
        html = response.content.decode()
        assert response.status_code == 200
        assert called.number in html and "Crioterapia" in html and "Sala 2" in html
        assert "Joana" not in html and "Pedro" not in html
    assert "<html" not in state.content.decode()
    queues = {s.name: s.waiting for s in state.context["queues"]}
    assert queues == {"Crioterapia": 1, "Bota de compressão": 1}
    assert [line.number for line in state.context["current"]] == [called.number]


def test_the_display_keeps_a_call_still_on_after_many_newer_calls_and_lists_the_newest_others(
    client, midday, cryo, room
):
    from tickets.models import TicketLine

    still_on = queued_ticket(midday, [cryo])
    call_next(cryo, room)
    # 40 later calls, all over: the first is older than the day's newest 32 calls.
    later = [queued_ticket(midday, [cryo]) for _ in range(40)]
    now = timezone.now()
    TicketLine.objects.filter(ticket=still_on).update(called_at=now - timedelta(hours=2))
    for n, ticket in enumerate(later):
        TicketLine.objects.filter(ticket=ticket).update(
            status="completed", called_at=now - timedelta(minutes=60 - n)
        )
    # Yesterday's call is on no list.
    TicketLine.objects.filter(ticket=later[-1]).update(called_at=now - timedelta(days=1))

    for name, value in pair_display(midday).items():
        client.cookies[name] = value
    state = client.get(f"/t/{midday.slug}/display/state/", headers={"HX-Request": "true"})

    assert [call.number for call in state.context["current"]] == [still_on.number]
    assert 7100 <= state.context["current"][0].age <= 7300
    newest = [ticket.number for ticket in reversed(later[:-1])][:20]
    assert [call.number for call in state.context["last"]] == newest


def test_the_display_of_an_unknown_tenant_or_unknown_services_is_an_error(client, tenant):
    for name, value in pair_display(tenant).items():
        client.cookies[name] = value
    assert client.get("/t/nowhere/display/").status_code == 404
    assert client.get(f"/t/{tenant.slug}/display/?services=999").status_code == 400
    assert client.get(f"/t/{tenant.slug}/display/state/?services=x").status_code == 400


def test_the_ticket_page_shows_each_service_with_its_place_in_line(
    client, tenant, cryo, boots, room
):
    queued_ticket(tenant, [cryo])
    ticket = queued_ticket(tenant, [cryo, boots])

    html = client.get(f"/t/{tenant.slug}/senha/{ticket.token}/").content.decode()

    assert ticket.number in html
    assert "Posição 2 na fila" in html  # behind the first cryotherapy customer
    assert "Você é o próximo" in html  # first for the boots
    assert "your-turn" not in html


def test_the_ticket_page_says_your_turn_when_called(client, tenant, cryo, room):
    ticket = queued_ticket(tenant, [cryo])
    call_next(cryo, room)

    response = client.get(f"/t/{tenant.slug}/senha/{ticket.token}/", headers={"HX-Request": "true"})

    html = response.content.decode()
    assert "your-turn" in html and "Sua vez!" in html and "Sala 2" in html
    assert "<html" not in html


def test_an_unpaired_browser_is_sent_to_pairing_and_its_board_reads_nothing(client, tenant):
    page = client.get(f"/t/{tenant.slug}/display/")
    state = client.get(f"/t/{tenant.slug}/display/state/", headers={"HX-Request": "true"})

    assert page.status_code == 302 and "/totem/" in page["Location"]
    assert state.status_code == 204 and state["HX-Redirect"]


def test_a_ticket_page_needs_the_right_token_under_the_right_tenant(
    client, tenant, other_tenant, cryo
):
    ticket = queued_ticket(tenant, [cryo])

    assert client.get(f"/t/{tenant.slug}/senha/{'x' * 32}/").status_code == 404
    assert client.get(f"/t/{other_tenant.slug}/senha/{ticket.token}/").status_code == 404


# --- end to end: real Daphne processes, PostgreSQL and Redis -------------------------------


@contextmanager
def display_client(address: str, slug: str, cookies: dict[str, str]):
    """A `websockets` client connected to a Daphne process as a paired display, past its hello."""
    from websockets.sync.client import connect

    with connect(
        f"ws://{address}/ws/t/{slug}/display/",
        origin=f"http://{address}",
        additional_headers={"Cookie": cookie_header(cookies)},
    ) as client:
        hello = json.loads(client.recv(timeout=5))
        assert hello["type"] == "hello"
        yield client


def since_stamped(event: dict) -> float:
    """Milliseconds from the event's creation (in the domain function) to now."""
    return (time.time() - datetime.fromisoformat(event["at"]).timestamp()) * 1000


def wait_for(client, kind: str) -> dict:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        event = json.loads(client.recv(timeout=max(deadline - time.monotonic(), 0.01)))
        if event["type"] == kind:
            return event
    raise AssertionError(f"no {kind} within 5 s")


def report(capsys, text: str) -> None:
    with capsys.disabled():
        print(f"\n    {text}")


@pytest.mark.postgres
@pytest.mark.redis
@realtime
def test_a_display_on_daphne_hears_a_call_made_through_the_queue(
    two_daphnes, tenant, cryo, room, tv, capsys
):
    daphne = two_daphnes[0]
    ticket = queued_ticket(tenant, [cryo])

    with display_client(daphne, tenant.slug, tv) as client:
        began = time.perf_counter()
        call_next(cryo, room)  # commits, then publishes through Redis
        called = wait_for(client, "ticket_called")
        heard = time.perf_counter()
        stamped = since_stamped(called)
        # The transport alone: outside a transaction an event is sent at once.
        transport = []
        for _ in range(20):
            sent = time.perf_counter()
            events.publish("ticket_update", tenant_id=tenant.id, ticket=ticket)
            wait_for(client, "ticket_update")
            transport.append((time.perf_counter() - sent) * 1000)

    assert (called["number"], called["service"], called["room"]) == (
        ticket.number,
        "Crioterapia",
        "Sala 2",
    )
    report(
        capsys,
        f"delivery: call→display {(heard - began) * 1000:.1f} ms, "
        f"event created→display {stamped:.1f} ms (includes the commit); "
        f"publish→display over 20 events: median {statistics.median(transport):.1f} ms, "
        f"max {max(transport):.1f} ms",
    )


def panel_post(address: str, path: str, user, station) -> int:
    """POST as `user` with `station` chosen, over plain HTTP to a Daphne process."""
    import http.client

    client = Client()
    client.force_login(user)
    session = client.session
    session[f"panel_station_{station.tenant_id}"] = station.pk
    session.save()
    csrf = "a" * 32
    connection = http.client.HTTPConnection(address, timeout=10)
    connection.request(
        "POST",
        path,
        body="",
        headers={
            "Cookie": f"sessionid={session.session_key}; csrftoken={csrf}",
            "X-CSRFToken": csrf,
            "Origin": f"http://{address}",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    status = connection.getresponse().status
    connection.close()
    return status


@pytest.mark.postgres
@pytest.mark.redis
@realtime
def test_a_call_made_in_the_panel_on_one_daphne_reaches_displays_on_both(
    two_daphnes, tenant, cryo, room, alice, tv, capsys
):
    daphne, second_daphne = two_daphnes
    ticket = queued_ticket(tenant, [cryo])

    with (
        display_client(daphne, tenant.slug, tv) as here,
        display_client(second_daphne, tenant.slug, tv) as there,
    ):
        status = panel_post(
            daphne, f"/t/{tenant.slug}/painel/servico/{cryo.id}/chamar/", alice, room
        )
        on_other = wait_for(there, "ticket_called")
        stamped = since_stamped(on_other)
        on_same = wait_for(here, "ticket_called")

    assert status in (200, 302)
    for called in (on_same, on_other):
        assert (called["number"], called["service"], called["room"]) == (
            ticket.number,
            "Crioterapia",
            "Sala 2",
        )
    report(
        capsys,
        f"delivery across processes: event created in Daphne A→display on Daphne B "
        f"{stamped:.1f} ms (includes the commit)",
    )
