"""The staff header and the team page in a real Chromium, on a desktop and on a phone.

The studio's administrator logs in, finds the team page from the header, adds an operator
with a one-time link; the operator opens the link on her phone, chooses a password, logs in
and lands on the station picker with only the panel in her header. Screenshots of each step
are saved under a temporary folder printed at the start (`pytest -s` shows it). Any console
error, or a page wider than the screen, fails the test.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from tests.accessibility import assert_accessible
from tests.conftest import CHROMIUM, REQUIRE_SERVERS, make_device

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists() and not REQUIRE_SERVERS,
        reason=f"needs Chromium at {CHROMIUM} (apt-get install chromium)",
    ),
]

DESKTOP = {"width": 1920, "height": 1080}
PHONE = {"width": 390, "height": 844}
PASSWORD = "ondas-do-mar-42"


class Screen:
    """A browser context of one size: its page, screenshots and console problems."""

    def __init__(self, browser, shots: Path, name: str, viewport: dict) -> None:
        self.context = browser.new_context(
            locale="pt-BR", viewport=viewport, has_touch=viewport is PHONE
        )
        self.page = self.context.new_page()
        self.shots, self.name, self.step = shots, name, 0
        self.problems: list[str] = []
        self.page.on(
            "console", lambda msg: self.problems.append(msg.text) if msg.type == "error" else None
        )
        self.page.on("pageerror", lambda error: self.problems.append(str(error)))

    def shot(self, what: str) -> None:
        self.step += 1
        path = self.shots / f"{self.name}-{self.step:02d}-{what}.png"
        self.page.screenshot(path=path, full_page=True)
        assert_accessible(self.page, f"{self.name} {what}")
        # Nothing may need sideways scrolling, the header's links least of all.
        width = self.page.evaluate("document.documentElement.scrollWidth")
        assert width <= self.page.viewport_size["width"], f"{what}: {width}px wide"

    def header(self) -> list[str]:
        return self.page.locator(".topbar-nav a").all_inner_texts()

    def log_in(self, base: str, username: str, password: str) -> None:
        self.page.goto(base + "/")
        self.shot("login")
        self.page.get_by_label("Usuário").fill(username)
        self.page.get_by_label("Senha de acesso").fill(password)
        self.page.get_by_role("button", name="Entrar").click()


@pytest.fixture
def shots() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="navigation-"))
    print(f"\nnavigation screenshots: {folder}")
    return folder


def test_an_admin_adds_an_operator_who_sets_her_password_on_her_phone(
    browser, live_server, transactional_db, tenant, cryo, dave, shots
):
    make_device(tenant, "Crio 1", [cryo], location="Sala 1")
    admin = Screen(browser, shots, "admin-desktop", DESKTOP)
    admin.log_in(live_server.url, "dave", "pw-dave")
    admin.page.get_by_role("heading", name="Gestão").wait_for()
    assert admin.header() == ["Painel", "Gestão", "Exportações", "LGPD", "Equipe", "Admin"]
    admin.shot("dashboard")

    admin.page.get_by_role("link", name="Equipe").click()
    admin.page.get_by_role("heading", name="Equipe").wait_for()
    admin.page.get_by_role("link", name="Adicionar pessoa").click()
    admin.page.get_by_label("Nome:", exact=True).fill("Rita")
    admin.page.get_by_label("Sobrenome:").fill("Lopes")
    admin.page.get_by_label("Login:").fill("rita")
    admin.shot("add")
    admin.page.get_by_role("button", name="Adicionar").click()
    link = admin.page.get_by_test_id("password-link").input_value()
    admin.shot("link")
    admin.page.get_by_role("link", name="Equipe").first.click()
    admin.page.get_by_role("link", name="Rita Lopes").click()
    admin.page.get_by_role("heading", name="Rita Lopes").wait_for()
    admin.shot("member")

    rita = Screen(browser, shots, "operator-phone", PHONE)
    rita.page.goto(link)
    rita.page.get_by_role("heading", name="Escolha a sua senha").wait_for()
    rita.page.get_by_label("Nova senha:", exact=True).fill(PASSWORD)
    rita.page.get_by_label("Confirmação da nova senha").fill(PASSWORD)
    rita.shot("choose-password")
    rita.page.get_by_role("button", name="Salvar a senha").click()
    rita.page.get_by_role("heading", name="Senha salva").wait_for()
    rita.log_in(live_server.url, "rita", PASSWORD)
    rita.page.get_by_role("heading", name="Escolha a sua estação").wait_for()
    assert rita.header() == ["Painel"]
    assert rita.page.get_by_role("button", name="Sair").is_visible()
    rita.shot("stations")

    manager_phone = Screen(browser, shots, "admin-phone", PHONE)
    manager_phone.log_in(live_server.url, "dave", "pw-dave")
    manager_phone.page.get_by_role("heading", name="Gestão").wait_for()
    for link_name in manager_phone.header():
        assert manager_phone.page.get_by_role("link", name=link_name).first.is_visible()
    manager_phone.shot("dashboard")
    manager_phone.page.get_by_role("link", name="Equipe").click()
    manager_phone.page.get_by_role("heading", name="Equipe").wait_for()
    manager_phone.shot("team")

    for screen in (admin, rita, manager_phone):
        assert screen.problems == []
        screen.context.close()
