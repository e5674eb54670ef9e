"""The health form at the kiosk in a real Chromium: signed once and not asked on the next
visit; a blocking answer takes that service out, says only "fale com a equipe", and the rest
of the purchase goes on. Screenshots of every step, each checked by axe-core."""

from __future__ import annotations

import pytest

from equipment.models import Kind
from tests.conftest import make_device
from tests.test_customers import CPF
from tests.test_kiosk_browser import Kiosk
from tests.test_kiosk_browser import browser_context_args as kiosk_context_args
from tests.test_waivers import QUESTIONS, questionnaire_for
from tickets.models import Ticket, Waiver, WaiverOutcome

pytestmark = [pytest.mark.browser]
browser_context_args = kiosk_context_args


@pytest.fixture
def scene(transactional_db, tenant, cryo, boots):
    make_device(tenant, "Crio 1", [cryo])
    make_device(tenant, "Botas 1", [boots])
    questionnaire_for(cryo)
    return make_device(tenant, "Totem 1", kind=Kind.KIOSK)


def to_waiver(kiosk: Kiosk, page, *services, cpf=CPF) -> None:
    kiosk.choose(*services)
    page.get_by_role("link", name="Continuar").tap()
    page.get_by_role("button", name="Continuar").tap()  # extras
    kiosk.identify(name="Maria Souza", cpf=cpf)
    page.get_by_role("button", name="Continuar").tap()


def test_a_customer_signs_once_and_is_not_asked_on_the_next_visit(
    page, live_server, scene, tenant, cryo
):
    kiosk = Kiosk(page, live_server, tenant, "waiver-signed")
    kiosk.pair(scene)
    to_waiver(kiosk, page, cryo)
    page.get_by_role("heading", name="Termo de saúde: Crioterapia").wait_for()
    assert page.get_by_text(QUESTIONS[0][0]).is_visible()
    kiosk.shot("waiver")
    kiosk.sign_waiver(name="Maria Souza", shot="waiver-signing")
    page.get_by_role("heading", name="Confira e pague").wait_for()
    kiosk.shot("summary")
    page.get_by_test_id("pay-cash").tap()
    page.get_by_role("heading", name="Dirija-se ao caixa").wait_for()
    page.get_by_role("button", name="Concluir").tap()

    to_waiver(kiosk, page, cryo)  # the next visit: straight to the summary
    page.get_by_role("heading", name="Confira e pague").wait_for()
    assert Waiver.objects.get().outcome == WaiverOutcome.VALID
    kiosk.done()


def test_a_blocking_answer_refuses_that_service_only(page, live_server, scene, tenant, cryo, boots):
    kiosk = Kiosk(page, live_server, tenant, "waiver-blocked")
    kiosk.pair(scene)
    to_waiver(kiosk, page, cryo, boots)
    page.get_by_role("heading", name="Termo de saúde: Crioterapia").wait_for()
    kiosk.sign_waiver(answers=("yes", "yes"), name="Maria")
    page.get_by_role("heading", name="Confira e pague").wait_for()
    page.get_by_text("Crioterapia: fale com a equipe.").wait_for()
    kiosk.shot("summary-after-refusal")
    assert "cardíaca" not in page.content()
    page.get_by_test_id("pay-cash").tap()
    page.get_by_role("heading", name="Dirija-se ao caixa").wait_for()
    ticket = Ticket.objects.get()
    assert [line.service for line in ticket.lines.all()] == [boots]
    assert Waiver.objects.get().outcome == WaiverOutcome.NEEDS_STAFF
    kiosk.done()
