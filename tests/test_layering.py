"""The layering rules the design card sets: the domain imports no adapter library, the bot no torch."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

from tests.support.services import REPO


def loaded_after_import(modules: str) -> set[str]:
    code = (
        "import sys, json\n"
        f"import {modules}\n"
        "print(json.dumps(sorted(m for m in ('torch', 'diffusers', 'transformers', 'discord', 'sqlalchemy',"
        " 'celery') if m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout))


def test_the_domain_imports_no_discord_torch_or_sql() -> None:
    assert loaded_after_import("domain.prompt, domain.catalog, domain.spec, domain.errors") == set()


def test_the_bot_does_not_import_torch() -> None:
    loaded = loaded_after_import("bot.client, bot.cogs.imagine, bot.delivery, imagine.cli, imagine.runner")
    assert "discord" in loaded and not loaded & {"torch", "diffusers", "transformers"}


def _module_imports(path: Path) -> set[str]:
    """The project modules ``path`` imports at module level (not under ``TYPE_CHECKING``, not inside functions)."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] in PACKAGES}


PACKAGES = ("bot", "db", "domain", "imagine", "inference")


def _import_graph() -> dict[str, set[str]]:
    modules: dict[str, Path] = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            parts = path.relative_to(REPO).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return {name: {m for m in _module_imports(path) if m in modules and m != name}
            for name, path in modules.items()}


def test_no_module_level_import_cycles() -> None:
    graph = _import_graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for target in sorted(graph[name]):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target):], target] if target in path else [name, target])
            elif target not in state:
                visit(target, [*path, target])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    # A package's __init__ re-exporting its own modules is not a cycle between modules.
    real = [c for c in cycles if not all(m == c[0] or m.startswith(c[0] + ".") or c[0].startswith(m + ".")
                                         for m in c)]
    assert real == []


def test_the_bot_writes_no_sql_itself() -> None:
    """Database writes live in ``db/``: the bot calls them, it builds no INSERT, UPDATE or DELETE."""
    writers = {"insert", "update", "delete"}
    offenders = []
    for path in (REPO / "bot").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
                offenders += [f"{path.relative_to(REPO)}: {a.name}" for a in node.names if a.name in writers]
    assert offenders == []
