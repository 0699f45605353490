"""What a collector sees before calling: the pending promise, the pause, the agency, the last contact;
and the snapshot that keeps them (v3), reading v2 where nothing is lost."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from states.case import CollectionCase, DomainError
from states.snapshot import SNAPSHOT_VERSION
from tests.unit.conftest import DUE, POLICY, D, contact_cmd, open_case, pause_cmd, promise_cmd, resume_cmd


def day(n: int):
    return DUE + timedelta(days=n)


def collector_case():
    case = open_case()
    case.advance(day(10), POLICY)
    case.record_contact(contact_cmd(case, "call", "borrower", "no_answer", datetime(2024, 3, 11, 9, 30)))
    case.record_contact(contact_cmd(case, "sms", "borrower", "connected", datetime(2024, 3, 11, 10, 15)))
    case.record_contact(contact_cmd(case, "call", "borrower", "connected", datetime(2024, 3, 11, 23, 0)))  # refused
    case.make_promise(promise_cmd(case, "300.00", day(20), day(10)), POLICY)
    case.pause(pause_cmd(case, "dispute", day(30), day(10)), POLICY)
    return case


def test_the_view_shows_the_promise_the_pause_and_the_last_contact_that_took_place():
    view = collector_case().view(day(12), POLICY)
    assert (view.promise_amount, view.projection.promise_until) == (D("300.00"), day(20))
    assert (view.pause_reason, view.projection.paused_until) == ("dispute", day(30))
    last = view.last_contact
    assert (last.at, last.channel, last.party, last.outcome) == (datetime(2024, 3, 11, 10, 15), "sms", "borrower", "connected")
    d = view.as_dict()
    assert d["promise_amount"] == "300.00" and d["promise_until"] == "2024-03-21"
    assert d["pause_reason"] == "dispute" and d["paused_until"] == "2024-03-31"
    assert (d["last_contact_at"], d["last_contact_channel"], d["last_contact_outcome"]) == ("2024-03-11T10:15", "sms", "connected")
    assert d["agency_id"] is None and d["placement_until"] is None
    assert json.dumps(d)


def test_the_view_shows_the_agency_placement():
    case = open_case()
    case.advance(day(95), POLICY)  # outsourced at DPD 91
    view = case.view(day(95), POLICY)
    assert view.projection.agency_id is not None and view.placement_until == case.placement_until > day(95)
    assert view.as_dict()["placement_until"] == case.placement_until.isoformat()


def test_a_lifted_pause_leaves_no_reason_behind():
    case = collector_case()
    case.resume(resume_cmd(case, day(12)))
    assert case.view(day(12)).pause_reason is None and case.view(day(12)).as_dict()["pause_reason"] is None


def test_a_new_case_shows_no_promise_pause_placement_or_contact():
    d = open_case().view(DUE).as_dict()
    assert [d[k] for k in ("promise_amount", "pause_reason", "placement_until", "last_contact_at")] == [None] * 4


def as_v3(snapshot: dict) -> dict:
    """A current snapshot as version 3 wrote it: the counters of one contact day (the latest) only."""
    days, failed, invalid = snapshot["contact"]
    day = max(days, default=None)
    connected, unanswered = days[day] if day else (0, {})
    return {**snapshot, "v": 3, "contact": [day, connected, unanswered, failed, invalid]}


def without_credit(snapshot: dict) -> dict:
    """A snapshot with the state an older version implies: no credit reporting (no notice was ever
    sent), no field visit scheduled."""
    return {**snapshot, "credit": [None, None, None], "visits": [None, 0]}


def as_v9(case: CollectionCase) -> dict:
    """A case's snapshot as version 9 wrote it: with its opening event's canonical JSON, and all
    five amounts of every installment."""
    rows = [row + ["0.00"] * (5 - len(row)) for row in case.snapshot()["installments"]]
    return {**case.snapshot(), "v": 9, "opened": case.terms.canonical_json(), "installments": rows}


def as_version(snapshot: dict, version: int) -> dict:
    """A v9 snapshot (``as_v9``) as an older version wrote it (the formats of the past are fixed)."""
    snapshot = {k: v for k, v in snapshot.items() if k != "visits"}
    if version == 5:
        return snapshot | {"v": 5}
    if version == 4:
        return {k: v for k, v in snapshot.items() if k != "credit"} | {"v": 4}
    old = {k: v for k, v in as_v3(snapshot).items() if k != "credit"}
    if version == 2:
        old = {k: v for k, v in old.items() if k not in ("pause_reason", "last_contact")} | {"v": 2}
    return old


def test_a_v3_snapshot_loads_with_its_days_contact_counters():
    case = collector_case()
    old = json.loads(json.dumps(as_version(as_v9(case), 3)))
    assert CollectionCase.from_snapshot(old).snapshot() == without_credit(case.snapshot())


def test_a_v4_snapshot_loads_with_no_credit_reporting_state():
    case = collector_case()
    assert case.snapshot()["credit"] != [None, None, None]  # in default: sent the pre-notice
    old = json.loads(json.dumps(as_version(as_v9(case), 4)))
    assert CollectionCase.from_snapshot(old).snapshot() == without_credit(case.snapshot())


def test_the_collector_fields_survive_a_snapshot_and_a_replay():
    case = collector_case()
    snapshot = json.loads(json.dumps(case.snapshot()))
    assert snapshot["v"] == SNAPSHOT_VERSION == 11
    restored = CollectionCase.from_snapshot(snapshot, case.terms)
    assert restored.snapshot() == case.snapshot()
    assert restored.view(day(12), POLICY) == CollectionCase.replay(case.log).view(day(12), POLICY) == case.view(day(12), POLICY)


def test_a_v2_snapshot_of_a_case_never_paused_or_contacted_still_loads():
    case = open_case()
    case.advance(day(40), POLICY)
    old = json.loads(json.dumps(as_version(as_v9(case), 2)))
    assert old["v"] == 2 and "pause_reason" not in old and "last_contact" not in old
    assert CollectionCase.from_snapshot(old).snapshot() == without_credit(case.snapshot())


def test_a_v2_snapshot_that_lacks_what_v3_adds_is_refused_so_the_case_is_replayed():
    old = as_version(as_v9(collector_case()), 2)
    with pytest.raises(DomainError, match="rebuild it by replay"):
        CollectionCase.from_snapshot(old)


def test_a_v10_snapshot_holds_no_terms_and_is_read_with_the_opening_event():
    case = collector_case()
    snapshot = json.loads(json.dumps(case.snapshot()))
    assert "opened" not in snapshot and len(snapshot["installments"]) == len(case.terms.schedule)
    fresh = open_case("case-3")
    assert fresh.snapshot()["installments"] == [[]] * len(fresh.terms.schedule)  # nothing paid or due: no amounts
    with pytest.raises(DomainError, match="read with the case's opening event"):
        CollectionCase.from_snapshot(snapshot)
    other = open_case("case-2")
    with pytest.raises(DomainError, match="the opening event given is seq 1 of case case-2"):
        CollectionCase.from_snapshot(snapshot, other.terms)
    shorter = {**snapshot, "installments": snapshot["installments"][:-1]}
    with pytest.raises(DomainError, match="installments"):
        CollectionCase.from_snapshot(shorter, case.terms)
    restored = CollectionCase.from_snapshot(snapshot, case.terms)
    assert restored.snapshot() == case.snapshot() and restored.terms == case.terms
    assert restored.view(day(12), POLICY) == case.view(day(12), POLICY)


def test_a_v9_snapshot_reads_as_v10_with_the_opening_event_it_carries():
    case = collector_case()
    old = json.loads(json.dumps(as_v9(case)))
    restored = CollectionCase.from_snapshot(old)
    assert restored.snapshot() == case.snapshot() and restored.terms == case.terms
    assert CollectionCase.from_snapshot(old, case.terms).snapshot() == case.snapshot()  # the event given wins
    assert restored.view(day(12), POLICY) == case.view(day(12), POLICY)
