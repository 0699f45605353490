"""The domain layer stays pure: states/ imports no orchestration, persistence or UI library,
no module of the layers above it, and never uses float or the wall clock."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

STATES = Path(__file__).resolve().parents[2] / "states"
FORBIDDEN = ("prefect", "sqlmodel", "sqlalchemy", "alembic", "psycopg", "typer", "rich", "pydantic", "models", "flows")
SOURCES = sorted(STATES.glob("*.py"))


def imported_modules(tree: ast.AST) -> list[tuple[str, int]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module, node.lineno))
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "__import__" and node.args:
            if isinstance(node.args[0], ast.Constant):
                found.append((str(node.args[0].value), node.lineno))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            found.append((str(node.args[0].value), node.lineno))
    return found


def test_states_has_modules_to_check():
    assert {p.name for p in SOURCES} >= {"case.py", "lifecycle.py", "events.py", "loan.py", "money.py"}


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_states_imports_nothing_from_the_layers_above_or_their_libraries(path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    bad = [
        f"{path.name}:{line} imports {name}"
        for name, line in imported_modules(tree)
        if name.split(".")[0] in FORBIDDEN
    ]
    assert not bad, bad


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_states_never_builds_a_float(path):
    text = path.read_text(encoding="utf-8")
    assert "float(" not in text, f"{path.name} calls float(): money and rates are Decimal"
    tree = ast.parse(text)
    literals = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, float)]
    assert not literals, f"{path.name}: float literals on lines {literals}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_states_never_reads_the_wall_clock(path):
    text = path.read_text(encoding="utf-8")
    assert not re.search(r"\b(date|datetime)\.(today|now|utcnow)\(|\btime\.time\(", text), path.name


def test_the_checker_catches_a_forbidden_import():
    tree = ast.parse("import prefect\nfrom sqlmodel import Field\nfrom models.store import X\nimport importlib\nimportlib.import_module('flows.daily')\n")
    names = [name.split(".")[0] for name, _ in imported_modules(tree)]
    assert {"prefect", "sqlmodel", "models", "flows"} <= set(names)
