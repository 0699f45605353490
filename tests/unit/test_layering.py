"""The three floors point one way: flows/ -> models/ -> states/, never back up.

states/ imports no orchestration, persistence, UI or I/O library and no
module of the floors above it, and never uses float, files or the wall
clock; models/ never imports flows/ (nor Prefect, Typer or Rich: it is
persistence, not an entry point)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STATES = ROOT / "states"
FORBIDDEN = (
    "prefect", "sqlmodel", "sqlalchemy", "alembic", "psycopg", "typer", "rich", "pydantic", "models", "flows",
    "os", "io", "pathlib", "shutil", "socket", "subprocess", "sqlite3", "tempfile", "urllib", "time",
)
SOURCES = sorted(STATES.rglob("*.py"))
MODELS_FORBIDDEN = ("flows", "prefect", "typer", "rich")
MODEL_SOURCES = sorted(p for p in (ROOT / "models").rglob("*.py"))


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


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_states_opens_no_file(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    calls = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "open"]
    assert not calls, f"{path.name} opens files on lines {calls}: the domain takes text, the floors above read it"


@pytest.mark.parametrize("path", MODEL_SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_models_never_imports_the_entry_points(path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    bad = [
        f"{path.name}:{line} imports {name}"
        for name, line in imported_modules(tree)
        if name.split(".")[0] in MODELS_FORBIDDEN
    ]
    assert not bad, bad


def test_the_layer_checks_see_every_floor():
    assert {p.parent.name for p in MODEL_SOURCES} >= {"models", "versions"}
    assert len(SOURCES) >= 15
