"""An operator's morning in a real Chromium: log in, pick a station, call, start, complete."""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client

from tests import daphne_server
from tests.accessibility import assert_accessible
from tests.conftest import CHROMIUM, REQUIRE_SERVERS, make_device, queued_ticket, wait_for_js
from tickets.models import TicketLine
from tickets.queue import call_line, call_next, complete, no_show, start

daphne = daphne_server.daphne

SHOTS = Path(tempfile.mkdtemp(prefix="panel-shots-"))
print(f"\npanel screenshots: {SHOTS}")


def shot(page, name: str) -> None:
    page.screenshot(path=SHOTS / f"{name}.png", full_page=True)
    assert_accessible(page, name)


pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists() and not REQUIRE_SERVERS,
        reason=f"needs Chromium at {CHROMIUM} (apt-get install chromium)",
    ),
]


def watch_console(page, *, websocket: bool) -> list[str]:
    """Console errors and uncaught exceptions of the page, collected for the final assert.

    Django's live server speaks no WebSocket: there (websocket=False) the realtime socket's
    failed handshake is expected and the panel falls back to polling; any other error counts.
    """
    problems: list[str] = []

    def on_console(msg) -> None:
        if msg.type != "error":
            return
        if not websocket and msg.text.startswith("WebSocket connection to"):
            return
        problems.append(msg.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(str(error)))
    return problems


def log_in_and_pick(page, base_url: str, station: str) -> None:
    page.goto(base_url + "/")
    shot(page, "login")
    page.get_by_label("Usuário").fill("alice")
    page.get_by_label("Senha de acesso").fill("pw-alice")
    page.get_by_role("button", name="Entrar").click()
    page.get_by_role("heading", name="Escolha a sua estação").wait_for()
    shot(page, "station-picker")
    page.get_by_role("button", name=station).click()
    page.get_by_test_id("station").filter(has_text=station).wait_for()
    shot(page, "panel")


def test_an_operator_logs_in_calls_next_starts_and_completes(
    page, live_server, transactional_db, alice, tenant, cryo, boots
):
    problems = watch_console(page, websocket=False)
    make_device(tenant, "Crio 1", [cryo], location="Sala 1")
    ticket = queued_ticket(tenant, [cryo, boots], customer_name="Maria Souza")
    line = TicketLine.objects.get(ticket=ticket, service=cryo)

    log_in_and_pick(page, live_server.url, "Crio 1")
    queue = page.locator(f"#queue-{cryo.pk}")
    queue.get_by_test_id("queue-row").filter(has_text="C001").wait_for()
    assert "Bota de compressão: Aguardando" in queue.inner_text()

    # Set in this document: still there after the actions only if they swapped in place.
    page.evaluate("window.notReloaded = true")
    queue.get_by_role("button", name="Chamar próximo").click()
    mine = page.get_by_test_id("mine-row").filter(has_text="C001")
    mine.get_by_test_id("line-status").filter(has_text="Chamado").wait_for()
    page.get_by_test_id("flash").get_by_text(
        "Senha C001 chamada para Crioterapia em Crio 1."
    ).wait_for()
    # And in the lasting status region a screen reader reads, outside the swapped panel.
    announce = page.get_by_test_id("announce")
    announce.get_by_text("Senha C001 chamada para Crioterapia em Crio 1.").wait_for(
        state="attached"
    )
    assert queue.get_by_test_id("queue-row").count() == 0

    mine.get_by_role("button", name="Iniciar").click()
    mine.get_by_test_id("line-status").filter(has_text="Em atendimento").wait_for()

    mine.get_by_role("button", name="Concluir").click()
    # In the flash: the lasting status region says it too, so the text alone is ambiguous.
    page.get_by_test_id("flash").get_by_text("Crioterapia da senha C001 concluído.").wait_for()
    assert page.get_by_test_id("mine-row").count() == 0
    assert page.evaluate("window.notReloaded") is True
    line.refresh_from_db()
    ticket.refresh_from_db()
    assert line.status == "completed"
    assert ticket.status == "in_queue"  # the boots still wait in their own queue
    assert problems == []


def test_a_missed_service_is_called_again_from_its_queue_and_served(
    page, live_server, transactional_db, alice, tenant, cryo, boots
):
    """Seed 000's ticket: cryotherapy missed while the boots waited; the boots were served."""
    problems = watch_console(page, websocket=False)
    crio = make_device(tenant, "Crio 1", [cryo], location="Sala 1")
    bota = make_device(tenant, "Bota 1", [boots])
    ticket = queued_ticket(tenant, [cryo, boots], customer_name="Maria Souza")
    line = TicketLine.objects.get(ticket=ticket, service=cryo)
    call_line(tenant, line.pk, crio)
    no_show(tenant, line.pk)
    served = call_next(boots, bota)
    start(tenant, served.pk)
    complete(tenant, served.pk)

    log_in_and_pick(page, live_server.url, "Crio 1")
    queue = page.locator(f"#queue-{cryo.pk}")
    missed = queue.get_by_test_id("missed-row").filter(has_text="C001")
    missed.wait_for()
    assert "Não compareceram" in queue.inner_text()
    assert "Bota de compressão: Concluído" in missed.inner_text()

    missed.get_by_role("button", name="Chamar de novo").click()
    page.get_by_test_id("flash").get_by_text(
        "Senha C001 chamada para Crioterapia em Crio 1."
    ).wait_for()
    mine = page.get_by_test_id("mine-row").filter(has_text="C001")
    mine.get_by_test_id("line-status").filter(has_text="Chamado").wait_for()
    assert queue.get_by_test_id("missed-row").count() == 0
    mine.get_by_role("button", name="Iniciar").click()
    mine.get_by_test_id("line-status").filter(has_text="Em atendimento").wait_for()
    mine.get_by_role("button", name="Concluir").click()
    # In the flash: the lasting status region says it too, so the text alone is ambiguous.
    page.get_by_test_id("flash").get_by_text("Crioterapia da senha C001 concluído.").wait_for()
    ticket.refresh_from_db()
    assert ticket.status == "completed"
    assert problems == []


def open_panel_on_daphne(page, daphne, alice, tenant, device) -> None:
    # The Daphne process hashes passwords with the real hashers, not the suite's fast one:
    # the browser gets a session made here instead (the login page is driven above).
    client = Client()
    client.force_login(alice)
    session = client.session
    session[f"panel_station_{tenant.pk}"] = device.pk
    session.save()
    host = daphne.split(":")[0]
    page.context.add_cookies(
        [{"name": "sessionid", "value": session.session_key, "domain": host, "path": "/"}]
    )
    page.goto(f"http://{daphne}/t/{tenant.slug}/painel/")
    page.get_by_test_id("station").filter(has_text=device.name).wait_for()
    wait_for_js(page, "document.body.dataset.live === 'open'")


def in_another_thread(act) -> None:
    """Run `act` as another request would: Playwright's loop owns this thread, and the
    broadcast after commit needs a thread of its own."""

    def run() -> None:
        try:
            act()
        finally:
            connection.close()  # this thread's own connection, or the test DB stays in use

    worker = threading.Thread(target=run)
    worker.start()
    worker.join()


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_on_daphne_a_new_ticket_appears_without_waiting_for_the_poll(
    page, daphne, alice, tenant, cryo
):
    problems = watch_console(page, websocket=True)
    device = make_device(tenant, "Crio 1", [cryo])
    open_panel_on_daphne(page, daphne, alice, tenant, device)
    assert page.get_by_test_id("queue-row").count() == 0

    in_another_thread(lambda: queued_ticket(tenant, [cryo]))
    # The poll comes every 10 s; the WebSocket event brings the row well before.
    page.get_by_test_id("queue-row").filter(has_text="C001").wait_for(timeout=5000)
    assert problems == []


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_on_daphne_a_line_missed_elsewhere_joins_its_queue_s_list_at_once(
    page, daphne, alice, tenant, cryo, boots
):
    problems = watch_console(page, websocket=True)
    device = make_device(tenant, "Crio 1", [cryo])
    ticket = queued_ticket(tenant, [cryo, boots])
    line = call_next(cryo, make_device(tenant, "Crio 2", [cryo]))
    open_panel_on_daphne(page, daphne, alice, tenant, device)
    assert page.get_by_test_id("missed-row").count() == 0

    # The no-show timeout of the expiry job, or another station's button.
    in_another_thread(lambda: no_show(tenant, line.pk))
    page.get_by_test_id("missed-row").filter(has_text=ticket.number).wait_for(timeout=5000)
    assert problems == []


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_on_daphne_each_panel_action_is_one_request_its_own_events_refresh_nothing(
    page, daphne, alice, tenant, cryo
):
    """Call next, start, complete: each one POST whose answer is the changed panel. The
    action's own events still reach the socket; the panel's render already shows them
    (data-seqs), so they bring no second request. Another station's news still does."""
    problems = watch_console(page, websocket=True)
    device = make_device(tenant, "Crio 1", [cryo])
    queued_ticket(tenant, [cryo])
    open_panel_on_daphne(page, daphne, alice, tenant, device)
    queue = page.locator(f"#queue-{cryo.pk}")
    queue.get_by_test_id("queue-row").filter(has_text="C001").wait_for()
    page.wait_for_timeout(1000)  # the re-read a (re)connected socket asks for, done
    requests: list[str] = []
    page.on("request", lambda request: requests.append(f"{request.method} {request.url}"))
    mine = page.get_by_test_id("mine-row").filter(has_text="C001")

    queue.get_by_role("button", name="Chamar próximo").click()
    mine.get_by_test_id("line-status").filter(has_text="Chamado").wait_for()
    page.wait_for_timeout(1500)  # the events' debounce (150 ms) and then some
    assert [r.split()[0] for r in requests] == ["POST"], requests
    mine.get_by_role("button", name="Iniciar").click()
    mine.get_by_test_id("line-status").filter(has_text="Em atendimento").wait_for()
    mine.get_by_role("button", name="Concluir").click()
    mine.wait_for(state="detached")
    page.wait_for_timeout(1500)
    assert [r.split()[0] for r in requests] == ["POST"] * 3, requests

    # A ticket sold elsewhere is not in the last render: that event re-reads the panel.
    in_another_thread(lambda: queued_ticket(tenant, [cryo]))
    queue.get_by_test_id("queue-row").filter(has_text="C002").wait_for(timeout=5000)
    assert [r.split()[0] for r in requests] == ["POST"] * 3 + ["GET"], requests
    assert problems == []
