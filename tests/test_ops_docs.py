"""The ER diagram in docs/models.md cannot drift from the models."""

from __future__ import annotations

import re
from pathlib import Path

from django.conf import settings

from ops.management.commands.er_diagram import documented_models, entity, relationships

DOC = Path(settings.BASE_DIR) / "docs" / "models.md"
HINT = "run `manage.py er_diagram` and paste its output into docs/models.md"


def diagram() -> str:
    text = DOC.read_text()
    found = re.search(r"```mermaid\n(.*?)```", text, re.S)
    assert found, "docs/models.md has no mermaid block"
    return found.group(1)


def test_every_model_is_an_entity_of_the_diagram():
    declared = set(re.findall(r"^\s+(\w+) \{$", diagram(), re.M))
    missing = {entity(m) for m in documented_models()} - declared
    assert not missing, f"models missing from the ER diagram: {sorted(missing)}; {HINT}"


def test_every_foreign_key_is_a_relationship_of_the_diagram():
    lines = set(re.findall(r'^\s+(\w+) (\S+) (\w+) : "(\w+)"$', diagram(), re.M))
    missing = relationships(documented_models()) - lines
    assert not missing, f"relationships missing from the ER diagram: {sorted(missing)}; {HINT}"


def test_the_diagram_knows_the_main_relationships():
    text = diagram()
    assert 'Ticket ||--o{ TicketLine : "ticket"' in text
    assert 'Tenant |o--o{ AuditLog : "tenant"' in text
