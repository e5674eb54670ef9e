"""axe-core run in the page a browser test is looking at: every screen a person sees must have
no accessibility violation of any impact.

axe-core comes from npm (tests/axe/package.json; `.ci/run` installs it). Without it the check
skips with the command to install it, except under TOTEM_REQUIRE_SERVERS=1 (CI), where it fails
so a run cannot pass by skipping it.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

from tests.conftest import REQUIRE_SERVERS

AXE = Path(__file__).parent / "axe" / "node_modules" / "axe-core" / "axe.min.js"
INSTALL = "cd tests/axe && npm install --no-audit --no-fund"


@cache
def axe_source() -> str:
    return AXE.read_text()


def assert_accessible(page, name: str) -> None:
    """Fails listing each violation axe-core's default rules find on `page` (the screen `name`)
    with its rule id, impact and the selectors of the elements at fault."""
    if not AXE.exists():
        message = f"needs axe-core at {AXE} ({INSTALL})"
        if REQUIRE_SERVERS:
            pytest.fail(f"TOTEM_REQUIRE_SERVERS is set but axe-core is missing: {message}")
        pytest.skip(message)
    # page.evaluate is not subject to the page's Content-Security-Policy, which would refuse
    # an injected <script> (the pages allow only their own nonced scripts).
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(axe_source())
    violations = page.evaluate(
        """async () => (await axe.run(document)).violations.map(v => ({
            id: v.id, impact: v.impact, help: v.help,
            targets: v.nodes.map(n => n.target.join(' ')),
        }))"""
    )
    found = "\n".join(
        f"  {v['id']} ({v['impact']}): {v['help']} — {', '.join(v['targets'][:5])}"
        for v in violations
    )
    assert not violations, f"axe-core on {name} ({page.url}):\n{found}"
