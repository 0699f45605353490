"""The roll rates' month-end positions, read from the events once per pair of month ends and kept.

A roll-rate matrix as of a date compares every open case's bucket at the end of month M-1 with its
place at the end of month M (``states.reporting.roll_month_ends``). Each month end's positions come
from the events: each case's last DPD-stating event on or before it (``dpd_readings``: one grouped
scan of the events, the whole history), a replay where a payment came after that reading. Two
scans a report, every day of the month, for figures that cannot change once both month ends are
closed.

So the counts are kept (``roll_rate_memos``, a row per pair of month ends) with the number of
events dated on or before the later month end when they were counted (``daily_event_counts``
sums it in a few rows a day). Events are only appended, so that number grows with any event that
could change a position; a report reuses the row only while it is the same, and counts again
otherwise (a day closed late, a back-dated event). It is counted before the events are read, so
a row never claims fewer events than it was counted from. ``MEMO_VERSION`` names the rules that
counted a row (the buckets' edges, what states a DPD): a release that changes them raises it, and
rows of another version are counted again.

``verify`` counts every row that a report would reuse again from the events (``differences``).
Writing a row is a convenience: where the reader may not write (a read-only role or file), the
report is counted from the events as before.
"""

from __future__ import annotations

import logging
from datetime import date

import orjson
from sqlalchemy import Connection, Engine, and_, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import InternalError, OperationalError, ProgrammingError

from models.db import write_transaction
from models.recorder import select_events
from models.report_totals import json_text
from models.tables import daily_event_counts, events, roll_rate_memos
from states.case import CollectionCase
from states.lifecycle import Stage
from states.reporting import ROLL_COLUMNS, ROLL_ROWS, DpdReading, RollRates, dpd_from_reading, roll_matrix, roll_position, roll_rates_of

MEMO_VERSION = 1
DPD_EVENTS = ("CaseReviewed", "StageChanged")  # the events whose payload states the case's DPD that day
CLOSED = tuple(stage.value for stage in Stage if stage.is_closed)

log = logging.getLogger(__name__)


def dpd_readings(conn: Connection, as_of: date) -> dict[str, DpdReading]:
    """Each case booked by ``as_of``: its last DPD-stating event on or before that date, and
    whether a payment came after it (``states.reporting`` reads the DPD from it)."""
    dialect = conn.dialect.name
    last = (
        select(
            events.c.case_id,
            func.max(events.c.seq).filter(events.c.type.in_(DPD_EVENTS)).label("dpd_seq"),
            func.max(events.c.seq).filter(events.c.type == "PaymentReceived").label("paid_seq"),
        )
        .where(events.c.business_date <= as_of)
        .group_by(events.c.case_id)
        .subquery()
    )
    stated = events.alias("stated")
    query = select(
        last.c.case_id,
        last.c.paid_seq,
        last.c.dpd_seq,
        stated.c.business_date,
        json_text(stated.c.payload, "dpd", dialect),
        json_text(stated.c.payload, "to_stage", dialect),
    ).select_from(last.outerjoin(stated, and_(stated.c.case_id == last.c.case_id, stated.c.seq == last.c.dpd_seq)))
    return {
        case_id: DpdReading(
            stated_on=stated_on,
            dpd=int(dpd or 0),
            closed_stage=to_stage if to_stage in CLOSED else None,
            paid_after=paid_seq is not None and (dpd_seq is None or paid_seq > dpd_seq),
        )
        for case_id, paid_seq, dpd_seq, stated_on, dpd, to_stage in conn.execute(query)
    }


def positions_at(conn: Connection, day: date) -> dict[str, tuple[int, str | None]]:
    """Each case booked by ``day`` (a closed business date): its DPD and closed stage (or None) at the end of it."""
    positions: dict[str, tuple[int, str | None]] = {}
    for case_id, reading in dpd_readings(conn, day).items():
        if reading.needs_replay:  # a late case paid after its last reading: its events up to the date decide
            case = CollectionCase.replay(select_events(conn, case_id, day))
            positions[case_id] = (case.dpd(day), case.stage.value if case.stage.is_closed else None)
        else:
            positions[case_id] = (dpd_from_reading(reading, day), reading.closed_stage)
    return positions


def counted_from_events(conn: Connection, from_end: date, to_end: date) -> RollRates:
    """The matrix read from the events: open cases at ``from_end`` against their place at ``to_end``."""
    before, after = positions_at(conn, from_end), positions_at(conn, to_end)
    moves = [
        (roll_position(dpd, None), roll_position(*after[case_id]))
        for case_id, (dpd, closed) in before.items()
        if closed is None
    ]
    return roll_matrix(moves, from_end, to_end)


def events_through(conn: Connection, day: date) -> int:
    """How many events are dated on or before ``day`` (the daily counts' sum)."""
    query = select(func.coalesce(func.sum(daily_event_counts.c.events), 0)).where(daily_event_counts.c.business_date <= day)
    return int(conn.execute(query).scalar_one())


def roll_rates(engine: Engine, from_end: date, to_end: date) -> RollRates:
    """The matrix for the two month ends: the kept counts while the events they were counted from
    are all there are, else counted from the events (and kept)."""
    with engine.connect() as conn:
        through = events_through(conn, to_end)  # before the events are read: see the module docstring
        kept = _kept(conn, from_end, to_end, through)
        if kept is not None:
            return kept
        counted = counted_from_events(conn, from_end, to_end)
    _keep(engine, counted, through)
    return counted


def _kept(conn: Connection, from_end: date, to_end: date, through: int) -> RollRates | None:
    row = conn.execute(
        select(roll_rate_memos.c.version, roll_rate_memos.c.events_through, roll_rate_memos.c.counts).where(
            roll_rate_memos.c.from_month_end == from_end, roll_rate_memos.c.to_month_end == to_end
        )
    ).first()
    if row is None or row.version != MEMO_VERSION or row.events_through != through:
        return None
    return _decoded(row.counts, from_end, to_end)


def _decoded(text: str, from_end: date, to_end: date) -> RollRates | None:
    """The kept counts as a matrix, or None when they are not this release's rows and columns."""
    try:
        data = orjson.loads(text)
        if data["rows"] != list(ROLL_ROWS) or data["columns"] != list(ROLL_COLUMNS):
            return None
        grid = tuple(tuple(int(n) for n in line) for line in data["counts"])
        return roll_rates_of(grid, from_end, to_end)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


def _encoded(rates: RollRates) -> str:
    return orjson.dumps({"rows": list(rates.rows), "columns": list(rates.columns), "counts": rates.counts}).decode()


def _keep(engine: Engine, rates: RollRates, through: int) -> None:
    row = {
        "from_month_end": rates.from_month_end,
        "to_month_end": rates.to_month_end,
        "version": MEMO_VERSION,
        "events_through": through,
        "counts": _encoded(rates),
    }
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(roll_rate_memos).values(row)
    statement = statement.on_conflict_do_update(
        index_elements=list(roll_rate_memos.primary_key.columns),
        set_={k: statement.excluded[k] for k in ("version", "events_through", "counts")},
    )
    try:
        with write_transaction(engine) as conn:
            conn.execute(statement)
    except (OperationalError, ProgrammingError, InternalError) as exc:  # read-only file, role or standby
        log.info("roll-rate counts %s..%s not kept (%s); counted from the events", rates.from_month_end, rates.to_month_end, exc.orig)


def forget(conn: Connection) -> None:
    """Drop every kept matrix (they are counted again when next reported)."""
    conn.execute(roll_rate_memos.delete())


def differences(conn: Connection) -> list[tuple[str, str]]:
    """(month ends, problem) for each kept matrix a report would reuse that the events do not give."""
    found = []
    rows = conn.execute(select(roll_rate_memos).order_by(roll_rate_memos.c.from_month_end, roll_rate_memos.c.to_month_end)).all()
    for row in rows:
        key = f"{row.from_month_end}..{row.to_month_end}"
        if row.version != MEMO_VERSION or row.events_through != events_through(conn, row.to_month_end):
            continue  # stale: never reused, counted again when next reported
        kept = _decoded(row.counts, row.from_month_end, row.to_month_end)
        if kept is None:
            found.append((key, "its counts are not a matrix of this release's rows and columns"))
        elif kept.counts != counted_from_events(conn, row.from_month_end, row.to_month_end).counts:
            found.append((key, "its counts differ from what the events give"))
    return found
