"""An operator's morning in a real Chromium: log in, pick a station, call, start, complete."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import REQUIRE_SERVERS, make_device, queued_ticket
from tickets.models import TicketService

CHROMIUM = "/usr/bin/chromium"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists() and not REQUIRE_SERVERS,
        reason=f"needs Chromium at {CHROMIUM} (apt-get install chromium)",
    ),
]

# The live server runs in a thread of this process; Playwright's sync API makes Django think
# it is inside an event loop.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    # The operators' browsers are in Portuguese; the panel follows Accept-Language.
    return {**browser_context_args, "locale": "pt-BR"}


def test_an_operator_logs_in_calls_next_starts_and_completes(
    page, live_server, transactional_db, alice, tenant, cryo, boots
):
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    make_device(tenant, "Crio 1", [cryo], location="Sala 1")
    ticket = queued_ticket(tenant, [cryo, boots], customer_name="Maria Souza")
    line = TicketService.objects.get(ticket=ticket, service=cryo)

    page.goto(live_server.url + "/")
    page.get_by_label("Usuário").fill("alice")
    page.get_by_label("Senha de acesso").fill("pw-alice")
    page.get_by_role("button", name="Entrar").click()

    page.get_by_role("heading", name="Escolha a sua estação").wait_for()
    page.get_by_role("button", name="Crio 1").click()
    page.get_by_test_id("station").filter(has_text="Crio 1").wait_for()
    queue = page.locator(f"#queue-{cryo.pk}")
    queue.get_by_test_id("queue-row").filter(has_text="C001").wait_for()
    assert "Bota de compressão: Aguardando" in queue.inner_text()

    # Set in this document: still there after the actions only if they swapped in place.
    page.evaluate("window.notReloaded = true")
    queue.get_by_role("button", name="Chamar próximo").click()
    mine = page.get_by_test_id("mine-row").filter(has_text="C001")
    mine.get_by_test_id("line-status").filter(has_text="Chamado").wait_for()
    page.get_by_text("Senha C001 chamada para Crioterapia em Crio 1.").wait_for()
    assert queue.get_by_test_id("queue-row").count() == 0

    mine.get_by_role("button", name="Iniciar").click()
    mine.get_by_test_id("line-status").filter(has_text="Em atendimento").wait_for()

    mine.get_by_role("button", name="Concluir").click()
    page.get_by_text("Crioterapia da senha C001 concluído.").wait_for()
    assert page.get_by_test_id("mine-row").count() == 0
    assert page.evaluate("window.notReloaded") is True
    line.refresh_from_db()
    ticket.refresh_from_db()
    assert line.status == "completed"
    assert ticket.status == "in_queue"  # the boots still wait in their own queue
    assert problems == []
