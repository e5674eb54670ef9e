"""One WebSocket client for every screen: static/js/live.js (reconnect with backoff, pings,
sequence gaps, the revoked close code). Read from the source, like tests/test_architecture.py."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT / "static" / "js" / "live.js"


def scripts() -> list[Path]:
    return [path for path in (ROOT / "static").rglob("*.js") if "vendor" not in path.parts]


def test_no_script_but_the_shared_client_opens_a_websocket():
    own = [path for path in scripts() if path != SHARED and "WebSocket(" in path.read_text()]
    assert own == []


def test_the_tv_the_panel_the_phone_and_the_kiosk_connect_through_the_shared_client():
    users = {
        path.relative_to(ROOT).as_posix()
        for path in scripts()
        if "Totem.live.connect(" in path.read_text()
    }
    assert users >= {
        "static/totem/display.js",  # the TV
        "static/panel/panel.js",  # the operator's panel
        "static/totem/ticket.js",  # the customer's phone
        "static/kiosk/payment.js",  # the kiosk's payment screen
    }
