"""A store holding ChargesAccrued v2 (as the previous release wrote them) and v3 side by side.

The v2 rows stay as stored (their hash is over that text): they verify, load, replay
and explain exactly as the same case written in v3; the charges report sums both.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import insert, select

from models.audit import timeline, verify
from models.report_totals import fill_from_events
from models.store import chain_hash, stored_canonical_json
from models.tables import events, payments
from states.caps import DEFAULT_LPR_TABLE
from states.case import CollectionCase
from states.events import (
    ChargesAccrued,
    PaymentReceived,
    canonical_json,
    field_payload_encoder,
)
from states.money import ZERO, to_fen
from states.snapshot import record_of
from tests.integration.builders import POLICY, payment, terms
from tests.unit.conftest import charges_v3_record

RECORDED_AT = datetime(2025, 1, 31, 18, 0, tzinfo=UTC)
NEW, OLD = "CASE-V3", "CASE-V2"
START = date(2024, 1, 15)


def loan(n: int):
    """A loan pressing on the cap: late fees, penalty and compound interest, a private cap."""
    return terms(n, principal=Decimal("20000.00"), annual_rate=Decimal("0.36"), term_months=6, compound_interest=True,
                 late_fee=Decimal("300.00"), late_fee_rate=Decimal("0.02"), cap_regime="private")


STEPS = [(40, "500.00"), (61, None), (62, None), (100, "3000.00"), (120, None), (150, None), (200, None)]


def history(case_id: str, n: int) -> tuple[CollectionCase, list, list]:
    case, opening = CollectionCase.open(case_id, loan(n), DEFAULT_LPR_TABLE)
    made = []
    for offset, amount in STEPS:
        day = START + timedelta(days=offset)
        if amount is None:
            made += case.advance(day, POLICY)
        else:
            made += case.record_payment(payment(case, amount, day, f"{case_id}-{offset}"), POLICY)
    return case, opening, made


def v2_form(event) -> dict:
    record = json.loads(event.canonical_json())
    if isinstance(event, ChargesAccrued):
        record["schema_version"] = 2
    record["payload"] = canonical_json(field_payload_encoder(type(event))(event))
    return record


def v3_form(event) -> dict:
    record = charges_v3_record(event) if isinstance(event, ChargesAccrued) else json.loads(event.canonical_json())
    return {**record, "payload": canonical_json(record["payload"])}


def append_v2(store, case_id: str, n: int, form=v2_form) -> list:
    """Book the case, then append its history as an earlier release stored it (by default ChargesAccrued v2)."""
    _case, opening, made = history(case_id, n)
    store.add_cases([(loan(n), CollectionCase.open(case_id, loan(n), DEFAULT_LPR_TABLE)[0], opening)])
    prev = store.case_row(case_id).last_hash
    rows, paid = [], []
    for event in made:
        record = form(event)
        record["business_date"] = event.business_date
        current = chain_hash(prev, stored_canonical_json(**record))
        rows.append({**record, "hash": current, "recorded_at": RECORDED_AT})
        prev = current
        if isinstance(event, PaymentReceived):
            paid.append({"payment_id": event.payment_id, "case_id": case_id, "seq": event.seq,
                         "amount_fen": to_fen(event.amount), "received_on": event.received_on})
    with store.engine.begin() as conn:
        conn.execute(insert(events), rows)
        conn.execute(insert(payments), paid)
        fill_from_events(conn)  # the reports' totals, as migration 0014 fills them for such a store
    store.rebuild_projections([case_id])
    return made


def save_v3(store, case_id: str, n: int) -> None:
    """The same case through the store as this release writes it."""
    _case, opening, _made = history(case_id, n)
    store.add_cases([(loan(n), CollectionCase.open(case_id, loan(n), DEFAULT_LPR_TABLE)[0], opening)])
    for offset, amount in STEPS:
        case = store.load_one(case_id)
        version, day = case.version, START + timedelta(days=offset)
        made = case.advance(day, POLICY) if amount is None else case.record_payment(payment(case, amount, day, f"{case_id}-{offset}"), POLICY)
        store.save([(case, made)], expected_versions={case_id: version})


def stored_versions(store, case_id: str) -> set[int]:
    with store.engine.connect() as conn:
        query = select(events.c.schema_version).where(events.c.case_id == case_id, events.c.type == "ChargesAccrued")
        return set(conn.execute(query).scalars())


def same(text: str) -> str:
    return text.replace(OLD, NEW).replace("MF-000001", "MF-000002")


def rows_text(rows) -> list[dict]:
    return [{k: v for k, v in row.as_dict().items()} for row in rows]


def test_v2_and_v3_charges_verify_load_and_explain_alike(store):
    made = append_v2(store, OLD, 1)
    save_v3(store, NEW, 2)  # the same loan under another contract number
    assert stored_versions(store, OLD) == {2} and stored_versions(store, NEW) == {ChargesAccrued.schema_version}
    report = verify(store.engine)
    assert report.ok, [str(f) for f in report.findings]

    old, new = store.events(OLD), store.events(NEW)
    assert old[1:] == made
    # the same case but for its id and contract number (the opening, payment ids, credit-report records)
    assert same(repr(old[1:])) == repr(new[1:])
    # every line of the explanation, in the same words
    assert same(json.dumps(rows_text(timeline(store, OLD))[1:])) == json.dumps(rows_text(timeline(store, NEW))[1:])

    # the charges report: both forms summed, each as the domain posted it
    as_of = START + timedelta(days=200)
    charged: dict[str, list[Decimal]] = {}
    for e in made:
        if isinstance(e, ChargesAccrued):
            for p in e.postings:
                a, b = charged.setdefault(p.component, [ZERO, ZERO])
                charged[p.component] = [a + p.enforceable, b + p.unenforceable]
            for lot in e.released:
                a, b = charged[lot.component]
                charged[lot.component] = [a + lot.amount, b - lot.amount]
    assert any(e.released for e in made if isinstance(e, ChargesAccrued))
    reported: dict[str, list[Decimal]] = {}
    for posted in store.posted_charges(as_of):
        a, b = reported.setdefault(posted.component, [ZERO, ZERO])
        reported[posted.component] = [a + posted.enforceable, b + posted.unenforceable]
    assert reported == {c: [2 * a, 2 * b] for c, (a, b) in charged.items()}


def test_a_case_with_v2_charges_goes_on_in_v3_and_still_verifies(store):
    append_v2(store, OLD, 1)
    case = store.load_one(OLD)
    version = case.version
    store.save([(case, case.advance(START + timedelta(days=240), POLICY))], expected_versions={OLD: version})
    assert stored_versions(store, OLD) == {2, ChargesAccrued.schema_version}
    assert verify(store.engine).ok
    assert store.load_one(OLD).version > version


def test_v3_charges_as_the_release_before_stored_them_verify_explain_and_go_on_in_v4(store):
    """v3 kept ``through`` and every unrounded ``exact``; v4 leaves out what recomputes. Both are hashed
    as stored, read back as the same events and explain in the same words."""
    made = append_v2(store, OLD, 1, form=v3_form)
    save_v3(store, NEW, 2)
    assert stored_versions(store, OLD) == {3} and stored_versions(store, NEW) == {4}
    assert verify(store.engine).ok
    assert store.events(OLD)[1:] == made and same(repr(store.events(OLD)[1:])) == repr(store.events(NEW)[1:])
    assert same(json.dumps(rows_text(timeline(store, OLD))[1:])) == json.dumps(rows_text(timeline(store, NEW))[1:])
    with store.engine.connect() as conn:
        sizes = {case_id: sum(len(p) for p in conn.execute(select(events.c.payload).where(
            events.c.case_id == case_id, events.c.type == "ChargesAccrued")).scalars()) for case_id in (OLD, NEW)}
    assert sizes[NEW] < 0.85 * sizes[OLD], sizes  # this case posts a lot: its postings are most of it
    case = store.load_one(OLD)
    version = case.version
    store.save([(case, case.advance(START + timedelta(days=240), POLICY))], expected_versions={OLD: version})
    assert stored_versions(store, OLD) == {3, 4} and verify(store.engine).ok


def imported(n: int):
    """A loan whose plan is the core lending system's (its interest a little off the computed one)."""
    plain = terms(n)
    plan = tuple(replace(i, interest=i.interest + Decimal("1.00")) for i in plain.schedule)
    return plain.with_plan(plan)


def test_case_opened_v3_and_v2_verify_load_and_go_on(store):
    """CaseOpened v3 (the schedule in integer fen) and one rewritten as v2 stored it (named rows) both verify against their loans rows, load, and advance alike."""
    from sqlalchemy import update

    from models.tables import GENESIS_HASH, cases
    from tests.integration.builders import disable_event_triggers

    for n in (1, 2):
        loan_terms = imported(n)
        case, opening = CollectionCase.open(f"CASE-P{n}", loan_terms, DEFAULT_LPR_TABLE)
        store.add_cases([(loan_terms, case, opening)])
    record = json.loads(opening[0].canonical_json())
    assert record["schema_version"] == 3 and isinstance(record["payload"]["schedule"][0], list)
    old = {**record, "schema_version": 2, "business_date": date.fromisoformat(record["business_date"]),
           "payload": canonical_json(field_payload_encoder(type(opening[0]), compact=False)(opening[0]))}
    assert '"number":1' in old["payload"]
    text = stored_canonical_json(**old)
    with store.engine.begin() as conn:
        disable_event_triggers(conn)
        conn.execute(update(events).where(events.c.case_id == "CASE-P2", events.c.seq == 1).values(
            schema_version=2, payload=old["payload"], hash=chain_hash(GENESIS_HASH, text), mac=None))
        snapshot = record_of(json.loads(conn.execute(select(cases.c.snapshot).where(cases.c.case_id == "CASE-P2")).scalar_one()), "CASE-P2")
        assert "opened" not in snapshot  # a snapshot (v10 on) holds no opening: the load reads the event row
        conn.execute(update(cases).where(cases.c.case_id == "CASE-P2").values(last_hash=chain_hash(GENESIS_HASH, text)))
    report = verify(store.engine)
    assert report.ok, [str(f) for f in report.findings]
    new, rewritten = store.load_one("CASE-P1"), store.load_one("CASE-P2")
    def rows(schedule):
        return [(i.number, i.due_on, str(i.principal), str(i.interest)) for i in schedule]

    assert rows(new.terms.schedule) == rows(imported(1).schedule) and rows(rewritten.terms.schedule) == rows(imported(2).schedule)
    for case in (new, rewritten):
        version = case.version
        store.save([(case, case.advance(date(2024, 4, 16), POLICY))], expected_versions={case.case_id: version})
    assert verify(store.engine).ok
    for n in (1, 2):  # the imported plan's interest is what falls due
        assert [i.interest_due for i in store.load_one(f"CASE-P{n}").installments[:2]] == [i.interest for i in imported(n).schedule[:2]]
