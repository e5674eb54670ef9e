"""Zero-setup mode (SQLite, no Redis) is real time: what the spooler and the worker do reaches
the TV, the operator's panel and the customer's phone within a second.

A Daphne of its own, started as `make run` starts it — no DATABASE_URL but a SQLite file, no
REDIS_URL — so it runs the spooler and the worker itself (config/background.py), and the
events they raise reach the sockets through the in-memory channel layer. Each screen notes in
the browser when it changed (a MutationObserver and the page's clock); the test compares that
with the time the database stamped on the change, on the same machine's clock. The screens
poll only every 10 s (panel) and 60 s (TV, phone), so a change within a second came through
the socket.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CHROMIUM, REQUIRE_SERVERS, wait_for_js
from tests.daphne_server import BASE_DIR, DaphneProcess, server_env

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists() and not REQUIRE_SERVERS,
        reason=f"needs Chromium at {CHROMIUM} (apt-get install chromium)",
    ),
]

# From the database's stamp to the screen showing it: the event, the screen's debounce
# (150–300 ms) and its re-read over HTTP.
WITHIN_MS = 1000


class ZeroSetup:
    """The environment of `make run` on a database of its own, and its steps."""

    def __init__(self, folder: Path) -> None:
        env = server_env(
            DATABASE_URL=f"sqlite:///{folder / 'db.sqlite3'}",
            PRINTER_FILE_ROOT=str(folder / "printers"),
            MEDIA_ROOT=str(folder / "media"),
        )
        for name in ("REDIS_URL", "RUN_WORKERS_IN_WEB"):
            env.pop(name, None)  # the defaults, as a newcomer has them
        self.env = env

    def start_steps(self) -> None:
        self.steps = subprocess.Popen(
            [sys.executable, "-m", "tests.zero_setup_steps"],
            cwd=BASE_DIR,
            env=self.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def step(self, *args: str) -> dict:
        self.steps.stdin.write(" ".join(args) + "\n")
        self.steps.stdin.flush()
        answer = self.steps.stdout.readline()
        assert answer, f"step {args} failed (its error is above)"
        return json.loads(answer)

    def stop_steps(self) -> None:
        self.steps.stdin.close()
        self.steps.wait(timeout=10)


def watch(page, name: str, condition: str) -> None:
    """Note in `window.seen[name]` the page's time when `condition` (JS) first holds. In it,
    `has(selector, text)`: an element matching `selector` contains `text`."""
    page.evaluate(
        f"""() => {{
        const has = (selector, text) =>
            [...document.querySelectorAll(selector)].some((e) => e.textContent.includes(text));
        window.seen = window.seen || {{}};
        const note = () => {{
            if (!window.seen["{name}"] && ({condition})) window.seen["{name}"] = Date.now();
        }};
        new MutationObserver(note).observe(document, {{
            subtree: true, childList: true, characterData: true, attributes: true
        }});
        note();
    }}"""
    )


def seen(page, name: str) -> int:
    wait_for_js(page, f"window.seen && window.seen['{name}']", timeout=20)
    return page.evaluate(f"window.seen['{name}']")


def test_what_the_spooler_and_the_worker_do_reaches_every_screen_within_a_second(context, tmp_path):
    zero = ZeroSetup(tmp_path)
    zero.start_steps()
    studio = zero.step("setup")
    cryo = studio["cryo"]
    daphne = DaphneProcess(zero.env)
    try:
        daphne.wait_until_listening()
        base = f"http://{daphne.address}"

        tv = context.new_page()
        tv.goto(f"{base}/t/demo/display/")
        tv.get_by_label("Código de pareamento").fill(studio["display_code"])
        tv.get_by_role("button", name="Parear").click()
        tv.wait_for_selector("body[data-live='open']")

        panel = context.new_page()
        panel.goto(f"{base}/")
        panel.get_by_label("Usuário").fill("operator")
        panel.get_by_label("Senha de acesso").fill("demo-operator")
        panel.get_by_role("button", name="Entrar").click()
        panel.get_by_role("button", name="Criocâmara 1").click()
        panel.wait_for_selector("body[data-live='open']")

        ticket = zero.step("sell")
        assert ticket["status"] == "printing"  # the spooler inside Daphne saw the printer
        number = ticket["number"]
        phone = context.new_page()
        phone.goto(f"{base}/t/demo/senha/{ticket['token']}/")
        phone.wait_for_selector("body[data-live='open']")
        assert "Você é o próximo" not in phone.locator("#ticket-status").inner_text()
        for page in (tv, panel, phone):
            page.wait_for_load_state("networkidle")  # each screen's first re-read is back

        # The spooler prints it: printing → in_queue.
        watch(tv, "queued", f"has('.queue[data-service=\"{cryo}\"] .queue-count', '1 ')")
        watch(panel, "queued", f"has('#queue-{cryo} [data-testid=queue-row]', '{number}')")
        watch(phone, "queued", "has('#ticket-status', 'Você é o próximo')")
        zero.step("release", number)
        queued_on = {
            name: seen(page, "queued")
            for name, page in [("tv", tv), ("panel", panel), ("phone", phone)]
        }

        # The operator calls it (an event of Daphne's own), then the expiry job marks the
        # customer who never came.
        panel.locator(f"#queue-{cryo}").get_by_role("button", name="Chamar próximo").click()
        panel.get_by_test_id("mine-row").filter(has_text=number).wait_for()
        tv.locator(".now .call-number", has_text=number).wait_for()
        phone.locator(".your-turn").wait_for()
        watch(tv, "missed", f"!has('.now .call-number', '{number}')")
        watch(panel, "missed", f"!has('[data-testid=mine-row]', '{number}')")
        watch(phone, "missed", "!document.querySelector('.your-turn')")
        zero.step("late", number)
        missed_on = {
            name: seen(page, "missed")
            for name, page in [("tv", tv), ("panel", panel), ("phone", phone)]
        }

        stamps = zero.step("times", number)
        daphne.process.terminate()
        # SIGTERM stops Daphne with its spooler and worker, after the work in hand.
        assert daphne.process.wait(timeout=20) == 0
    finally:
        print(daphne.output())  # shown when the test fails: the spooler's and worker's lines
        daphne.stop()
        zero.stop_steps()
    assert stamps["no_show_at"], "the expiry job did not mark the no-show"
    late_by = {
        "printed": {name: at - stamps["queued_at"] for name, at in queued_on.items()},
        "no-show": {name: at - stamps["no_show_at"] for name, at in missed_on.items()},
    }
    assert all(0 <= ms <= WITHIN_MS for screens in late_by.values() for ms in screens.values()), (
        late_by
    )
