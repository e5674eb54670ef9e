"""The house's shape, read from the source: which app may import which, and no circles.

docs/architecture.md draws the same rules. The import graph is read with `ast`, every import
statement counted wherever it stands (a lazy import inside a function is still an arrow).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = (
    "tenants",
    "customers",
    "equipment",
    "tickets",
    "payments",
    "messaging",
    "fiscal",
    "totem",
    "panel",
    "ops",
    "api",
    "config",
)

# What each app's domain modules may import, bottom to top. Screens and workers (below) sit
# above every domain module and may call any of them.
BELOW = {
    "tenants": set(),
    # A customer exists without devices or tickets; a ticket links to its customer.
    "customers": {"tenants"},
    "equipment": {"tenants"},
    "tickets": {"tenants", "customers", "equipment"},
    "payments": {"tenants", "customers", "equipment", "tickets"},
    "messaging": {"tenants", "customers", "equipment", "tickets", "payments"},
    # Above payments: an NFS-e follows a paid sale, and payments never learns of it.
    "fiscal": {"tenants", "customers", "equipment", "tickets", "payments"},
}
# Entry points: what a person or a process drives (admin, views, sockets, commands, the
# spooler's loop). They are the top layer whatever app they live in.
ENTRY_POINTS = ("admin", "admin_printing", "spooler", "management")
# Screens and the back office sit above the domain, side by side: none imports another
# (only `config`, which wires them into URLs, routing and the worker, knows them all).
SCREENS = {"totem", "panel", "ops", "api"}


def project_modules() -> dict[str, Path]:
    found = {}
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def imports_of(path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules `path` imports, resolved to the longest module name that exists."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


def graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imports_of(path, modules) - {name} for name, path in modules.items()}


def test_the_base_app_imports_no_other_app_of_the_project():
    arrows = [
        f"{module} -> {target}"
        for module, targets in graph().items()
        if module.split(".")[0] == "tenants"
        for target in targets
        if target.split(".")[0] != "tenants"
    ]
    assert arrows == []


def test_domain_modules_import_only_the_apps_below_them():
    arrows = []
    for module, targets in graph().items():
        app, *rest = module.split(".")
        if app not in BELOW or (rest and rest[0] in ENTRY_POINTS):
            continue
        for target in targets:
            other = target.split(".")[0]
            if other != app and other not in BELOW[app]:
                arrows.append(f"{module} -> {target}")
    assert arrows == []


def test_screens_import_no_other_screen():
    arrows = [
        f"{module} -> {target}"
        for module, targets in graph().items()
        for target in targets
        if target.split(".")[0] in SCREENS
        and module.split(".")[0] not in ("config", target.split(".")[0])
    ]
    assert arrows == []


def cycles_in(edges: dict[str, set[str]]) -> list[list[str]]:
    cycles: list[list[str]] = []
    state: dict[str, int] = defaultdict(int)  # 0 unseen, 1 on the path, 2 done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(edges.get(module, ())):
            if state[target] == 1:
                cycles.append(path[path.index(target) :] + [target])
            elif state[target] == 0:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(edges):
        if state[module] == 0:
            visit(module)
    return cycles


def test_no_module_imports_itself_back_through_others():
    assert cycles_in(graph()) == []


def test_no_module_hides_an_arrow_behind_apps_get_model():
    hidden = [
        str(path.relative_to(ROOT))
        for path in project_modules().values()
        if "get_model(" in path.read_text()
    ]
    assert hidden == []


def test_the_checks_see_an_arrow_and_a_circle(tmp_path):
    """The graph is real: a lazy import inside a function is an arrow like any other."""
    modules = {"tenants.a": tmp_path / "a.py", "tickets.b": tmp_path / "b.py"}
    modules["tenants.a"].write_text("def f():\n    from tickets.b import g\n")
    modules["tickets.b"].write_text("from tenants import a\n")
    assert imports_of(modules["tenants.a"], modules) == {"tickets.b"}
    back = imports_of(modules["tickets.b"], modules | {"tenants": tmp_path})
    assert back == {"tenants", "tenants.a"}
    assert cycles_in({"tenants.a": {"tickets.b"}, "tickets.b": {"tenants.a"}}) == [
        ["tenants.a", "tickets.b", "tenants.a"]
    ]
