"""The operator roster is a controlled, audited record: who may change it, and every change kept.

Through the CLI's entry (``flows.cli.main``) on a real SQLite file and on PostgreSQL: the first
operator is a supervisor and needs no acting operator; from then on only an active supervisor
changes the roster (``--operator``), never leaving it without one; every change is a row of
``operator_changes`` (who, what, the role before and after) that the database refuses to edit.
"""

from __future__ import annotations

import json

import pytest
import sqlalchemy.exc as sa_exc
from sqlalchemy import text

from flows import runtime
from models.db import downgrade, make_engine, upgrade
from models.store import CaseStore
from tests.integration.test_hostile_input import run_cli, refused_in_one_line


@pytest.fixture
def store(db_url, tmp_path, monkeypatch):
    """A store migrated to head that the CLI uses (SQLite file or PostgreSQL schema)."""
    engine = make_engine(db_url)
    upgrade(engine)
    monkeypatch.setenv("COLLECTFLOW_DATABASE_URL", db_url)
    monkeypatch.setenv("COLLECTFLOW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COLLECTFLOW_KEY_DIR", str(tmp_path / "keys"))
    monkeypatch.setenv("COLLECTFLOW_SECRET_KEY", "roster-tests-secret-key-0123456789-abcdef")
    runtime.forget()
    yield CaseStore(engine)
    runtime.forget()
    engine.dispose()


def cli(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    """Run one command; a roster's state is read afresh by the next one (``runtime.forget``)."""
    runtime.forget()
    return run_cli(monkeypatch, capsys, *args)


def ok(monkeypatch, capsys, *args: str) -> None:
    code, err = cli(monkeypatch, capsys, *args)
    assert code == 0, err


def state(store: CaseStore):
    """Everything a roster change writes: the roster, its history, the cases' digest."""
    return [(o.operator_id, o.role.value, o.active) for o in store.operators()], store.operator_changes(), store.digest()


def in_use(monkeypatch, capsys) -> None:
    """sup-1 (supervisor, first, with no acting operator), op-li (collector), aud (auditor), col-x (collector, deactivated)."""
    ok(monkeypatch, capsys, "operators", "add", "sup-1", "--role", "supervisor")
    for operator, role in (("op-li", "collector"), ("aud", "auditor"), ("col-x", "collector")):
        ok(monkeypatch, capsys, "operators", "add", operator, "--role", role, "--operator", "sup-1")
    ok(monkeypatch, capsys, "operators", "deactivate", "col-x", "--operator", "sup-1")


def fold(history: list[dict]) -> list[tuple[str, str, bool]]:
    """The roster the history gives: each operator's last role and whether it is active."""
    roster = {}
    for row in history:
        roster[row["operator"]] = (row["operator"], row["role_after"], row["active"])
    return sorted(roster.values())


@pytest.mark.parametrize("role", ["collector", "auditor"])
def test_the_first_operator_on_the_roster_is_a_supervisor_and_needs_no_acting_operator(store, monkeypatch, capsys, role):
    before = state(store)
    code, err = cli(monkeypatch, capsys, "operators", "add", "op-li", "--role", role)
    refused_in_one_line(code, err, f"--role: '{role}' for the first operator on the roster; the first is a supervisor")
    assert state(store) == before and before[0] == [] and before[1] == []

    ok(monkeypatch, capsys, "operators", "add", "sup-1", "--role", "supervisor")
    (change,) = store.operator_changes()
    assert (change["operator"], change["change"], change["role_before"], change["role_after"], change["actor"]) == (
        "sup-1", "added", None, "supervisor", "system",
    )
    ok(monkeypatch, capsys, "operators", "add", "op-li", "--role", role, "--operator", "sup-1")
    assert [c["actor"] for c in store.operator_changes()] == ["system", "sup-1"]


REFUSED_ACTORS = [
    ([], "--operator: none given, and collectflow operators {verb} needs an active supervisor"),
    (["--operator", "op-li"], "--operator: 'op-li' is a collector; collectflow operators {verb} needs a supervisor"),
    (["--operator", "aud"], "--operator: 'aud' is an auditor; collectflow operators {verb} needs a supervisor"),
    (["--operator", "col-x"], "--operator: 'col-x' is deactivated on the operator roster"),
    (["--operator", "op-zhao"], "--operator: 'op-zhao' is not on the operator roster"),
    (["--operator", "system"], "--operator: 'system' is reserved"),
    (["--operator", "op li"], "--operator: 'op li' is not an operator id"),
]


@pytest.mark.parametrize("change", [
    ["add", "op-li", "--role", "supervisor"],  # a collector making itself a supervisor
    ["add", "op-new", "--role", "collector"],
    ["add", "col-x", "--role", "collector"],  # a reactivation
    ["deactivate", "sup-1"],
], ids=" ".join)
def test_once_the_roster_is_in_use_only_an_active_supervisor_changes_it(store, monkeypatch, capsys, change):
    in_use(monkeypatch, capsys)
    before = state(store)
    for acting, refusal in REFUSED_ACTORS:
        code, err = cli(monkeypatch, capsys, "operators", *change, *acting)
        refused_in_one_line(code, err, refusal.format(verb=change[0]))
        assert state(store) == before


def test_the_last_active_supervisor_is_neither_deactivated_nor_given_another_role(store, monkeypatch, capsys):
    in_use(monkeypatch, capsys)
    before = state(store)
    code, err = cli(monkeypatch, capsys, "operators", "deactivate", "sup-1", "--operator", "sup-1")
    refused_in_one_line(code, err, "operator 'sup-1' is the last active supervisor on the roster; deactivated, no one could change the roster again")
    code, err = cli(monkeypatch, capsys, "operators", "add", "sup-1", "--role", "collector", "--operator", "sup-1")
    refused_in_one_line(code, err, "--role: 'collector' for 'sup-1', the last active supervisor on the roster, would leave no one")
    assert state(store) == before

    ok(monkeypatch, capsys, "operators", "add", "op-li", "--role", "supervisor", "--operator", "sup-1")
    ok(monkeypatch, capsys, "operators", "deactivate", "sup-1", "--operator", "sup-1")  # another supervisor is left
    code, err = cli(monkeypatch, capsys, "operators", "deactivate", "op-li", "--operator", "op-li")
    refused_in_one_line(code, err, "operator 'op-li' is the last active supervisor")
    assert [o.operator_id for o in store.operators() if o.active and o.role.value == "supervisor"] == ["op-li"]


@pytest.mark.parametrize("change, refusal", [
    (["add", "op-li", "--role", "collector"], "operator 'op-li' is already an active collector; nothing to change"),
    (["deactivate", "col-x"], "operator 'col-x' is already inactive; nothing to change"),
    (["deactivate", "op-zhao"], "operator 'op-zhao' is not on the operator roster; nothing to deactivate"),
    (["add", "op li", "--role", "collector"], "operator_id: 'op li' is not an operator id"),
    (["add", "system", "--role", "collector"], "operator_id: 'system' is reserved"),
    (["add", "op-new", "--role", "boss"], "--role: 'boss' is not one of collector, supervisor, auditor"),
], ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_a_change_that_changes_nothing_or_names_no_operator_is_refused_naming_it(store, monkeypatch, capsys, change, refusal):
    in_use(monkeypatch, capsys)
    before = state(store)
    code, err = cli(monkeypatch, capsys, "operators", *change, "--operator", "sup-1")
    refused_in_one_line(code, err, refusal)
    assert state(store) == before


def test_every_change_is_recorded_with_the_role_before_and_after_and_who_made_it(store, monkeypatch, capsys):
    in_use(monkeypatch, capsys)
    ok(monkeypatch, capsys, "operators", "add", "op-li", "--role", "supervisor", "--operator", "sup-1")
    ok(monkeypatch, capsys, "operators", "add", "col-x", "--role", "auditor", "--operator", "op-li")
    history = store.operator_changes()
    assert [(c["operator"], c["change"], c["role_before"], c["role_after"], c["active"], c["actor"]) for c in history] == [
        ("sup-1", "added", None, "supervisor", True, "system"),
        ("op-li", "added", None, "collector", True, "sup-1"),
        ("aud", "added", None, "auditor", True, "sup-1"),
        ("col-x", "added", None, "collector", True, "sup-1"),
        ("col-x", "deactivated", "collector", "collector", False, "sup-1"),
        ("op-li", "role_changed", "collector", "supervisor", True, "sup-1"),
        ("col-x", "reactivated", "collector", "auditor", True, "op-li"),
    ]
    assert [c["change_id"] for c in history] == sorted(c["change_id"] for c in history)
    assert all(c["recorded_at"].endswith("+00:00") for c in history)
    assert fold(history) == sorted((o.operator_id, o.role.value, o.active) for o in store.operators())
    assert [c["change"] for c in store.operator_changes("col-x")] == ["added", "deactivated", "reactivated"]


def test_operators_history_prints_the_changes_as_json_and_as_a_table(store, monkeypatch, capsys):
    from flows import cli as entry

    in_use(monkeypatch, capsys)
    monkeypatch.setattr("sys.argv", ["collectflow", "operators", "history", "col-x", "--json"])
    runtime.forget()
    with pytest.raises(SystemExit) as ended:
        entry.main()
    out = capsys.readouterr().out
    assert (ended.value.code or 0) == 0
    assert [(r["change"], r["actor"]) for r in json.loads(out)] == [("added", "sup-1"), ("deactivated", "sup-1")]
    monkeypatch.setattr("sys.argv", ["collectflow", "operators", "history"])
    runtime.forget()
    with pytest.raises(SystemExit):
        entry.main()
    out = capsys.readouterr().out
    assert "5 roster change(s)" in out and "deactivated" in out and "sup-1" in out
    code, err = cli(monkeypatch, capsys, "operators", "history", "op-zhao")
    refused_in_one_line(code, err, "operator_id: 'op-zhao' is not on the operator roster")


@pytest.mark.parametrize("statement", [
    "UPDATE operator_changes SET actor = 'someone-else'",
    "UPDATE operator_changes SET role_after = 'collector'",
    "DELETE FROM operator_changes",
    "DELETE FROM operators",
])
def test_the_database_refuses_to_edit_the_roster_history_or_remove_an_operator(store, monkeypatch, capsys, statement):
    in_use(monkeypatch, capsys)
    before = state(store)
    with pytest.raises(sa_exc.IntegrityError, match="append-only"):
        with store.engine.begin() as conn:
            conn.execute(text(statement))
    assert state(store) == before


@pytest.mark.postgres
def test_on_postgresql_the_roster_history_is_not_truncated_either(postgres_database, monkeypatch, capsys, tmp_path):
    import uuid

    import psycopg
    from sqlalchemy.engine import make_url

    schema = f"t_{uuid.uuid4().hex[:12]}"
    conninfo = make_url(postgres_database).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    engine = make_engine(make_url(postgres_database).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False))
    try:
        upgrade(engine)
        from states.operators import AddOperator

        CaseStore(engine).change_roster(AddOperator("sup-1", "supervisor"))
        with pytest.raises(sa_exc.IntegrityError, match="append-only"):
            with engine.begin() as conn:
                conn.execute(text("TRUNCATE operator_changes"))
        assert len(CaseStore(engine).operator_changes()) == 1
    finally:
        engine.dispose()
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def test_an_upgraded_store_records_each_operator_already_on_its_roster_once(store, monkeypatch, capsys):
    downgrade(store.engine, "0018")
    with store.engine.begin() as conn:
        for operator, role, active in (("sup-old", "supervisor", True), ("col-old", "collector", False)):
            conn.execute(
                text("INSERT INTO operators (operator_id, role, active, added_at) VALUES (:o, :r, :a, CURRENT_TIMESTAMP)"),
                {"o": operator, "r": role, "a": active},
            )
    upgrade(store.engine)
    history = store.operator_changes()
    assert [(c["operator"], c["change"], c["role_before"], c["role_after"], c["active"], c["actor"]) for c in history] == [
        ("col-old", "already_on_roster", None, "collector", False, "system"),
        ("sup-old", "already_on_roster", None, "supervisor", True, "system"),
    ]
    assert fold(history) == sorted((o.operator_id, o.role.value, o.active) for o in store.operators())
    code, err = cli(monkeypatch, capsys, "operators", "add", "col-old", "--role", "collector")  # the roster is in use
    refused_in_one_line(code, err, "--operator: none given")
    ok(monkeypatch, capsys, "operators", "add", "col-old", "--role", "collector", "--operator", "sup-old")
    assert [c["change"] for c in store.operator_changes("col-old")] == ["already_on_roster", "reactivated"]


def test_a_roster_with_no_one_active_is_bootstrapped_again_by_a_supervisor(store, monkeypatch, capsys):
    downgrade(store.engine, "0018")  # only a store from before 0019 can hold a roster with no one active
    with store.engine.begin() as conn:
        conn.execute(text("INSERT INTO operators (operator_id, role, active, added_at) VALUES ('col-old', 'collector', false, CURRENT_TIMESTAMP)"))
    upgrade(store.engine)
    code, err = cli(monkeypatch, capsys, "operators", "add", "col-old", "--role", "collector")
    refused_in_one_line(code, err, "--role: 'collector' for the first operator on the roster")
    ok(monkeypatch, capsys, "operators", "add", "col-old", "--role", "supervisor")
    assert [(c["change"], c["role_before"], c["role_after"], c["actor"]) for c in store.operator_changes()][-1] == (
        "reactivated", "collector", "supervisor", "system",
    )
