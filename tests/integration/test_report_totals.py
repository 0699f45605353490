"""The reports' totals (``models.report_totals``) against the events, on SQLite and PostgreSQL.

The small book of ``test_reports`` (payments, promises kept and broken, a cure, a payoff, a
placement with an agency), recorded through the normal handlers: its charge, event-count and
stage reads equal the figures the events give as of every day from before the first event to
after the last; the migration fills the tables from the events to exactly what the appends
wrote; and ``verify`` names a total that differs from the events until they are filled again.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import delete, func, insert, select, update

from flows.handlers.reports import build_report
from models.audit import verify
from models.db import downgrade, upgrade
from models.report_totals import differences, fill_from_events
from models.store import CaseStore
from models.tables import daily_charges, daily_event_counts, daily_recoveries, stage_moves
from models.tables import events as events_table
from states.events import (
    ChargesAccrued,
    DelayedPerformanceInterestAccrued,
    ExecutionRecorded,
    LawsuitFiled,
    PaymentReceived,
    PlacedWithAgency,
    RecalledFromAgency,
    StageChanged,
)
from states.lifecycle import COLLECTION_STAGES, Stage
from tests.integration import test_reports
from tests.integration.test_reports import AS_OF

book = test_reports.book  # the fixture: the small book of test_reports

COLLECTION = tuple(s.value for s in COLLECTION_STAGES)
ZERO = Decimal("0.00")


def figures_from_events(store: CaseStore, case_ids: list[str], as_of: date) -> dict:
    """What the reports' reads must say as of ``as_of``, worked out from each case's events in Python."""
    charges: dict[str, list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
    counts: Counter[str] = Counter()
    reached: dict[str, set[str]] = defaultdict(set)
    cured: set[str] = set()
    recovered: Counter[tuple[date, str, str | None]] = Counter()
    for case_id in case_ids:
        stage, agency = Stage.CURRENT.value, None
        for event in store.events(case_id):
            if isinstance(event, PaymentReceived) and event.received_on <= as_of:  # by the date it carried
                recovered[(event.received_on, stage, agency)] += event.amount
            stage = event.to_stage if isinstance(event, StageChanged) else stage
            agency = event.agency_id if isinstance(event, PlacedWithAgency) else None if isinstance(event, RecalledFromAgency) else agency
            if event.business_date > as_of:
                continue  # a later event may be dated earlier: every event is looked at
            counts[event.type] += 1
            postings = ()
            if isinstance(event, (ChargesAccrued, DelayedPerformanceInterestAccrued)):
                postings = event.postings
            elif isinstance(event, (LawsuitFiled, ExecutionRecorded)):
                postings = event.costs
            for p in postings:
                charges[p.component][0] += p.enforceable
                charges[p.component][1] += p.unenforceable
            for lot in getattr(event, "released", ()) if isinstance(event, ChargesAccrued) else ():
                charges[lot.component][0] += lot.amount
                charges[lot.component][1] -= lot.amount
            if isinstance(event, StageChanged):
                reached[event.to_stage].add(case_id)
                if event.from_stage in COLLECTION and event.to_stage == Stage.CURRENT.value:
                    cured.add(case_id)
    return {
        "charges": {c: tuple(v) for c, v in charges.items()},
        "opened": counts["CaseOpened"],
        "promises": {t: counts[t] for t in ("PromiseMade", "PromiseKept", "PromiseBroken")},
        "reaching": {s: len(ids) for s, ids in reached.items()},
        "entering": len(set().union(*(reached[s] for s in COLLECTION))),
        "cured": len(cured),
        "recovered": dict(recovered),
    }


def figures_read(store: CaseStore, as_of: date) -> dict:
    charges: dict[str, list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
    for posted in store.posted_charges(as_of):
        charges[posted.component][0] += posted.enforceable
        charges[posted.component][1] += posted.unenforceable
    return {
        "charges": {c: tuple(v) for c, v in charges.items()},
        "opened": store.cases_opened(as_of),
        "promises": store.event_counts(("PromiseMade", "PromiseKept", "PromiseBroken"), as_of),
        "reaching": store.cases_reaching(as_of),
        "entering": store.cases_entering(COLLECTION, as_of),
        "cured": store.cases_cured(as_of),
        "recovered": {(r.received_on, r.stage, r.agency_id): r.amount for r in store.recoveries(as_of)},
    }


def totals_rows(store: CaseStore) -> dict[str, list[tuple]]:
    with store.engine.connect() as conn:
        return {
            t.name: sorted(tuple(row) for row in conn.execute(select(t)))
            for t in (daily_charges, daily_event_counts, stage_moves, daily_recoveries)
        }


def test_the_reads_equal_the_events_as_of_every_day(store, book):
    first = date(2024, 1, 14)  # the day before the first loan is disbursed: nothing yet
    assert figures_read(store, first)["opened"] == 0
    assert figures_read(store, first)["charges"] == {} and figures_read(store, first)["reaching"] == {}
    day = first
    while day <= AS_OF + timedelta(days=1):
        assert figures_read(store, day) == figures_from_events(store, book, day), day
        day += timedelta(days=1)
    final = figures_read(store, AS_OF)
    assert final["cured"] == 2 and final["entering"] == 7 and final["promises"]["PromiseBroken"] == 1
    assert final["charges"]["penalty_interest"][0] > ZERO  # the charges are not all zero
    assert final["recovered"][(date(2024, 6, 10), Stage.OUTSOURCED.value, "AGENCY-POOL")] == Decimal("1000.00")


def test_the_migration_fills_the_totals_exactly_as_the_appends_wrote_them(engine, store, book):
    written = totals_rows(store)
    assert all(written.values())
    report = build_report(store, AS_OF).as_dict()
    downgrade(engine, "0012")
    upgrade(engine)
    assert totals_rows(store) == written
    assert build_report(store, AS_OF).as_dict() == report
    with engine.connect() as conn:
        assert differences(conn) == []


def test_verify_names_a_total_that_differs_from_the_events_until_they_are_filled_again(engine, store, book):
    report = build_report(store, AS_OF).as_dict()
    assert verify(engine).ok
    with engine.begin() as conn:
        conn.execute(
            update(daily_charges)
            .where(daily_charges.c.component == "penalty_interest", daily_charges.c.business_date == date(2024, 6, 30))
            .values(enforceable_fen=daily_charges.c.enforceable_fen + 1)
        )
        conn.execute(delete(stage_moves).where(stage_moves.c.case_id == book[0], stage_moves.c.to_stage == Stage.CURRENT.value))
        conn.execute(insert(daily_event_counts).values(business_date=date(2024, 7, 2), type="PromiseMade", events=3))
        conn.execute(update(daily_recoveries).where(daily_recoveries.c.received_on == date(2024, 6, 10)).values(amount_fen=1))
    found = [str(f) for f in verify(engine).findings]
    assert len(found) == 4, found  # the edited row, the deleted move, the invented count, the edited recovery
    assert "daily_recoveries 2024-06-10 outsourced AGENCY-POOL: stored 1; the events make 100000 (collectflow db rebuild-totals refills the totals from the events)" in found
    (edited,) = [f for f in found if f.startswith("daily_charges 2024-06-30 penalty_interest: stored ")]
    have, want = (part.split(", ")[0] for part in edited.split(": stored ")[1].split("; the events make "))
    assert int(have) == int(want) + 1, edited
    assert any(f.startswith(f"case {book[0]}: stage_moves ") and "current: missing" in f for f in found)
    assert "daily_event_counts 2024-07-02 PromiseMade: not what the events make: 3 (collectflow db rebuild-totals refills the totals from the events)" in found
    assert build_report(store, AS_OF).as_dict() != report
    with engine.begin() as conn:
        fill_from_events(conn)
    assert verify(engine).ok
    assert build_report(store, AS_OF).as_dict() == report


def test_verify_in_processes_names_the_same_differences_as_in_one(engine, store, book, monkeypatch):
    """The totals are summed chunk by chunk, in whichever process checks the chunk: a stage move
    of a case with no events, a move redated, a count edited are named alike by 1 and 2 processes."""
    with engine.begin() as conn:
        conn.execute(insert(stage_moves).values(case_id="NO-SUCH-CASE", from_stage="overdue", to_stage="phone", first_on=date(2024, 6, 1)))
        moved = conn.execute(select(stage_moves).where(stage_moves.c.case_id == book[1]).limit(1)).one()
        conn.execute(
            update(stage_moves)
            .where(stage_moves.c.case_id == moved.case_id, stage_moves.c.from_stage == moved.from_stage, stage_moves.c.to_stage == moved.to_stage)
            .values(first_on=moved.first_on + timedelta(days=1))
        )
        conn.execute(update(daily_event_counts).where(daily_event_counts.c.type == "CaseOpened").values(events=daily_event_counts.c.events + 1))
    one, two = verify(engine, workers=1), verify(engine, workers=2)
    found = [str(f) for f in one.findings]
    assert found == [str(f) for f in two.findings]
    assert any(f.startswith("case NO-SUCH-CASE: stage_moves overdue phone: not what the events make: 2024-06-01") for f in found), found
    move = f"case {book[1]}: stage_moves {moved.from_stage} {moved.to_stage}: "
    assert move + f"not what the events make: {moved.first_on + timedelta(days=1)}" in " ".join(found)
    assert move + f"missing: {moved.first_on}" in " ".join(found)
    assert sum(f.startswith("daily_event_counts ") and " CaseOpened: stored " in f for f in found) >= 1

    monkeypatch.setattr("models.report_totals.SHOWN", 1)  # a table emptied: a few named, the rest counted
    with engine.begin() as conn:
        conn.execute(delete(stage_moves))
        moves = [row for row in differences(conn) if row[0] == "stage_moves"]
    capped = [str(f) for f in verify(engine, workers=1).findings if "stage_moves" in str(f)]
    assert len(moves) == len(capped) == 2, capped  # one move named, then "and N more rows missing"
    assert capped[-1].startswith("stage_moves: and ") and " more rows missing" in capped[-1]


def test_the_cli_refills_totals_edited_behind_the_stores_back(engine, store, book, db_url, monkeypatch):
    from typer.testing import CliRunner

    from flows import runtime
    from flows.cli import app as cli

    report = build_report(store, AS_OF).as_dict()
    with engine.begin() as conn:
        conn.execute(delete(daily_charges))
    assert not verify(engine).ok
    monkeypatch.setenv("COLLECTFLOW_DATABASE_URL", db_url)
    runtime.forget()
    try:
        result = CliRunner().invoke(cli, ["db", "rebuild-totals"])
    finally:
        runtime.forget()
    assert result.exit_code == 0, result.output
    with engine.connect() as conn:
        stored = conn.execute(select(func.count()).select_from(events_table)).scalar_one()
    assert " ".join(result.output.split()) == f"report totals refilled from {stored:,} events"
    assert verify(engine).ok and build_report(store, AS_OF).as_dict() == report


def test_a_second_write_adds_to_the_days_sums_and_keeps_the_earliest_move(engine):
    from models.report_totals import ReportTotals

    def write(day: date, moved_on: date) -> None:
        totals = ReportTotals()
        totals.charges[(day, "late_fee")] = [150, -50]
        totals.counts[(day, "CaseReviewed")] = 2
        totals.moves[("CASE-1", "overdue", "phone")] = moved_on
        with engine.begin() as conn:
            totals.insert(conn)

    write(date(2024, 3, 1), date(2024, 3, 1))
    write(date(2024, 3, 1), date(2024, 2, 20))  # a move dated earlier, appended later
    write(date(2024, 3, 2), date(2024, 3, 5))
    with engine.connect() as conn:
        assert sorted(tuple(r) for r in conn.execute(select(daily_charges))) == [
            (date(2024, 3, 1), "late_fee", 300, -100), (date(2024, 3, 2), "late_fee", 150, -50),
        ]
        assert sorted(tuple(r) for r in conn.execute(select(daily_event_counts))) == [
            (date(2024, 3, 1), "CaseReviewed", 4), (date(2024, 3, 2), "CaseReviewed", 2),
        ]
        assert [tuple(r) for r in conn.execute(select(stage_moves))] == [("CASE-1", "overdue", "phone", date(2024, 2, 20))]
