"""A stored payload edited into text that is not a JSON object: verify names the event, in one
process and in two, and every command that reads the case refuses it in one line (no traceback)."""

from __future__ import annotations

import json
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

import models.audit
from models.audit import rebuild_case, verify
from models.errors import StoreError
from models.tables import events
from tests.integration.builders import advance, book, disable_event_triggers, pay
from tests.integration.test_hostile_input import OVERDUE, cli_db, run_cli  # noqa: F401 - cli_db is a fixture


def _not_an_object(text: str) -> bool:
    try:
        return not isinstance(json.loads(text), dict)
    except ValueError:
        return True


unreadable_payloads = st.one_of(
    st.sampled_from(["", " ", "not json{", "{", '{"a":', "[1,2]", "null", "3", '"text"', "true", "NaN", "{'a': 1}", "\ufeff{}"]),
    st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=40).filter(_not_an_object),
)


def set_payload(engine, case_id: str, seq: int, text: str) -> None:
    with engine.begin() as conn:
        disable_event_triggers(conn)
        conn.execute(update(events).where(events.c.case_id == case_id, events.c.seq == seq).values(payload=text))


def payload_of(engine, case_id: str, seq: int) -> str:
    with engine.connect() as conn:
        return conn.execute(select(events.c.payload).where(events.c.case_id == case_id, events.c.seq == seq)).scalar_one()


@pytest.fixture
def three_cases(store):
    ids = book(store, 3)
    advance(store, ids, date(2024, 4, 1))
    pay(store, ids[1], "500.00", date(2024, 4, 2), "BANK-0402-7")
    advance(store, ids, date(2024, 5, 1))
    assert verify(store.engine, workers=1).ok
    return store, ids


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=unreadable_payloads, seq=st.sampled_from([1, 2, 3]))
def test_any_payload_that_is_not_a_json_object_is_one_finding_naming_its_event(three_cases, text, seq):
    store, ids = three_cases
    original = payload_of(store.engine, ids[1], seq)
    set_payload(store.engine, ids[1], seq, text)
    try:
        report = verify(store.engine, workers=1)
    finally:
        set_payload(store.engine, ids[1], seq, original)
    assert [(f.case_id, f.seq) for f in report.findings] == [(ids[1], seq)], report.findings
    assert report.findings[0].problem.startswith("payload is ") and report.findings[0].problem.endswith(": edited")
    assert report.events_checked > 0 and report.cases_checked == 3


def test_two_processes_report_the_unreadable_payloads_one_process_reports(three_cases, monkeypatch):
    store, ids = three_cases
    set_payload(store.engine, ids[0], 1, "not json{")  # the opening event: terms and borrower checks read it too
    payment_seq = next(e.seq for e in store.events(ids[1]) if e.type == "PaymentReceived")
    set_payload(store.engine, ids[1], payment_seq, "[1,2]")  # the payments check reads it
    set_payload(store.engine, ids[2], 3, "{}")  # a JSON object of the wrong shape: the replay says so
    monkeypatch.setattr(models.audit, "VERIFY_CHUNK", 1)
    one, two = verify(store.engine, workers=1), verify(store.engine, workers=2)
    assert two.findings == one.findings
    problems = [str(f) for f in one.findings]
    assert problems[:2] == [
        f"case {ids[0]} seq 1: payload is not JSON (Expecting value: line 1 column 1 (char 0)): edited",
        f"case {ids[1]} seq {payment_seq}: payload is a JSON list, not an object: edited",
    ]
    assert {f.case_id for f in one.findings} == set(ids)
    assert any("replay fails" in p and ids[2] in p for p in problems), problems
    with pytest.raises(StoreError, match="not rebuilt, its events fail: payload is not JSON"):
        rebuild_case(store, ids[0], on=date(2024, 5, 2), actor="sup-wang", reason="row corrupt")


@pytest.mark.parametrize("command", [["case", "replay"], ["case", "export", "--out", "x.json"], ["case", "show"], ["case", "quote"]])
def test_a_command_reading_a_case_with_an_unreadable_payload_refuses_it_in_one_line(cli_db, monkeypatch, capsys, tmp_path, command):
    case_id, store = cli_db
    monkeypatch.chdir(tmp_path)
    set_payload(store.engine, case_id, 1, "not json{")
    args = [*command[:2], case_id, *command[2:]]
    code, err = run_cli(monkeypatch, capsys, *args)
    assert code == 2 and "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "payload is not JSON" in lines[0], err
    assert f"{case_id} seq 1" in lines[0] or f"case {case_id}: cannot be loaded: seq 1: CaseOpened payload" in lines[0], lines[0]
    assert "UnreadablePayload" not in lines[0] and lines[0].count(case_id) == 1, lines[0]
    code, _ = run_cli(monkeypatch, capsys, "verify")
    assert code == 1
