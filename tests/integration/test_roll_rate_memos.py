"""The roll rates' kept counts (``models.roll_rates``): reused only while they are what the events give.

The small book of ``test_reports`` (a cure, a payoff, a case paid after its month-end review, a
case booked late), on SQLite and PostgreSQL: a matrix reported as of any day equals the one
counted from the events, kept or not; an event dated by the later month end after the counts
were kept (a payment recorded after that day's report) makes the next report count again;
``verify`` names kept counts that were edited; counts of another version, or that do not parse,
are counted again; a store the reader may not write to reports the same figures.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import create_engine, func, select, update

from flows.handlers.reports import build_report
from models.audit import verify
from models.roll_rates import MEMO_VERSION, counted_from_events
from models.store import CaseStore
from models.tables import roll_rate_memos
from states.reporting import roll_month_ends
from tests.integration import test_reports
from tests.integration.test_reports import AS_OF

book = test_reports.book  # the fixture: the small book of test_reports
PAIR = (date(2024, 5, 31), date(2024, 6, 30))


def counted(store: CaseStore, from_end: date, to_end: date):
    with store.engine.connect() as conn:
        return counted_from_events(conn, from_end, to_end)


def memo_rows(store: CaseStore) -> dict[tuple[date, date], tuple[int, int, str]]:
    with store.engine.connect() as conn:
        return {
            (r.from_month_end, r.to_month_end): (r.version, r.events_through, r.counts)
            for r in conn.execute(select(roll_rate_memos))
        }


def test_the_matrix_as_of_any_day_is_the_one_the_events_give_kept_or_not(store, book):
    days = [date(2024, 3, 1) + timedelta(days=d) for d in range(0, 122, 5)] + [AS_OF]
    for day in days:
        pair = roll_month_ends(day)
        first, again = store.roll_rates(*pair), store.roll_rates(*pair)  # counted (or kept), then kept
        assert first == again == counted(store, *pair), day
    kept = memo_rows(store)
    assert set(kept) == {roll_month_ends(day) for day in days}
    assert all(version == MEMO_VERSION for version, _, _ in kept.values())
    moved = store.roll_rates(*PAIR)
    assert sum(map(sum, moved.counts)) == 6  # the cases open at 05-31: all but case 4 (settled in April)


def test_an_event_dated_by_the_month_end_after_the_counts_were_kept_is_counted(store, book):
    before = store.roll_rates(*PAIR)
    (_, through, _), = [v for k, v in memo_rows(store).items() if k == PAIR]
    test_reports.pay_all_due(store, book[2], AS_OF)  # case 3 (never paid) pays on 06-30, after that day's report
    after = store.roll_rates(*PAIR)
    assert after == counted(store, *PAIR)
    (_, recounted_through, _), = [v for k, v in memo_rows(store).items() if k == PAIR]
    assert recounted_through > through  # the payment's events: counted again, kept again
    assert after.counts != before.counts  # case 3 is M0 at 06-30 now, not M4


def test_verify_names_edited_kept_counts_and_ignores_stale_ones(engine, store, book):
    report = build_report(store, AS_OF).as_dict()
    assert verify(engine).ok
    _, through, counts = memo_rows(store)[PAIR]
    edited = counts.replace("[1,", "[2,", 1)
    assert edited != counts
    with engine.begin() as conn:
        conn.execute(update(roll_rate_memos).values(counts=edited))
    found = [str(f) for f in verify(engine).findings]
    assert found == [
        "roll_rate_memos 2024-05-31..2024-06-30: its counts differ from what the events give "
        "(collectflow db rebuild-totals drops it)"
    ]
    assert build_report(store, AS_OF).as_dict() != report  # what verify warns of: the report reuses them
    with engine.begin() as conn:  # a row counted from fewer events than there are is never reused
        conn.execute(update(roll_rate_memos).values(events_through=through - 1))
    assert verify(engine).ok
    assert build_report(store, AS_OF).as_dict() == report
    assert memo_rows(store)[PAIR] == (MEMO_VERSION, through, counts)  # counted again and kept


def test_counts_of_another_version_or_unreadable_are_counted_again(engine, store, book):
    report = build_report(store, AS_OF).as_dict()
    kept = memo_rows(store)[PAIR]
    for values in ({"version": MEMO_VERSION + 1}, {"counts": "not json"}, {"counts": '{"rows": ["M0"], "columns": [], "counts": []}'}):
        with engine.begin() as conn:
            conn.execute(update(roll_rate_memos).values(**values))
        if "counts" in values:
            assert [str(f) for f in verify(engine).findings] == [
                "roll_rate_memos 2024-05-31..2024-06-30: its counts are not a matrix of this release's rows "
                "and columns (collectflow db rebuild-totals drops it)"
            ]
        assert build_report(store, AS_OF).as_dict() == report, values
        assert memo_rows(store)[PAIR] == kept
    assert verify(engine).ok


def test_rebuild_totals_drops_the_kept_counts(store, book):
    store.roll_rates(*PAIR)
    assert memo_rows(store)
    store.rebuild_report_totals()
    assert memo_rows(store) == {}
    assert store.roll_rates(*PAIR) == counted(store, *PAIR)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # PostgreSQL's role: tests/integration/test_app_role.py
def test_a_store_the_reader_may_not_write_to_reports_the_same(book, store, db_url):
    report = build_report(store, AS_OF).as_dict()
    with store.engine.begin() as conn:
        conn.execute(roll_rate_memos.delete())
    path = db_url.removeprefix("sqlite:///")
    read_only = create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
    try:
        assert build_report(CaseStore(read_only), AS_OF).as_dict() == report
    finally:
        read_only.dispose()
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(roll_rate_memos)).scalar_one() == 0
