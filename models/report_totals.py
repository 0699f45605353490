"""The reports' totals beside the events: what the portfolio report sums, kept small enough that
a report reads a few rows per business date (and one per stage move of a case), never every event.

- ``daily_charges``: per business date and component, the enforceable and unenforceable fen the
  day's postings made (``ChargesAccrued`` and its releases, ``LawsuitFiled`` and
  ``ExecutionRecorded`` costs, ``DelayedPerformanceInterestAccrued``);
- ``daily_event_counts``: per business date and event type, how many events;
- ``stage_moves``: per case and (from stage, to stage), the first business date it moved so;
- ``daily_recoveries``: per date received, stage and agency (``""``: in house) the payment was
  received in, the fen received (the stage and agency of the events before the payment's).

A report as of a date sums the daily rows dated on or before it and counts the cases whose first
move is on or before it: the same figures the events give as of any past date.

They are written from the domain events in the transaction that appends them
(``EventRows.insert_totals``), as its last statements: the daily rows are shared by every
writer of a date, so on PostgreSQL a writer holds them (in key order, no deadlock) only from
its upsert to its commit. Nothing here decides anything: it sums what the events say.

``StoredTotals`` works the same totals out from the events as stored (their payloads, not the
domain's objects): ``verify`` sums them case by case as it checks the cases and holds the tables to
them, and the migrations that made the tables (and ``db rebuild-totals``) fill them with them.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import orjson
from sqlalchemy import JSON, Connection, Table, cast, func, select, type_coerce
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import ColumnElement

from models.sql import chunks
from models.tables import daily_charges, daily_event_counts, daily_recoveries, events, payments, stage_moves
from states.events import (
    ChargesAccrued,
    DelayedPerformanceInterestAccrued,
    Event,
    ExecutionRecorded,
    LawsuitFiled,
    PaymentReceived,
    PlacedWithAgency,
    RecalledFromAgency,
    StageChanged,
)
from states.lifecycle import Stage
from states.money import to_fen
from states.payload_codecs import COMPONENT_NAMES

IN_HOUSE = ""  # daily_recoveries' agency of a payment received while placed with none


@dataclass
class ReportTotals:
    """The totals a run of new events adds: daily sums, daily counts, first stage moves."""

    charges: dict[tuple[date, str], list[int]] = field(default_factory=dict)  # -> [enforceable, unenforceable] fen
    counts: Counter[tuple[date, str]] = field(default_factory=Counter)
    moves: dict[tuple[str, str, str], date] = field(default_factory=dict)  # (case, from, to) -> first date
    recoveries: Counter[tuple[date, str, str]] = field(default_factory=Counter)  # (received, stage, agency) -> fen

    def add(self, new_events: Iterable[Event], at_start: tuple[str, str | None] | None = None) -> None:
        """Add one case's new events; ``at_start`` is its stage and agency (or None) before the first
        of them (``case_at_start``), which a payment among them needs."""
        stage, agency = at_start if at_start is not None else (None, None)
        for event in new_events:
            day = event.business_date
            self.counts[(day, event.type)] += 1
            if isinstance(event, PaymentReceived):
                if stage is None:
                    raise ValueError(f"case {event.case_id}: a payment's totals need the case's stage before it")
                self.recoveries[(event.received_on, stage, agency or IN_HOUSE)] += to_fen(event.amount)
            elif isinstance(event, PlacedWithAgency):
                agency = event.agency_id
            elif isinstance(event, RecalledFromAgency):
                agency = None
            elif isinstance(event, (ChargesAccrued, DelayedPerformanceInterestAccrued)):
                self._post(day, event.postings)
                if isinstance(event, ChargesAccrued):
                    for lot in event.released:  # held above the cap before, charged now
                        self._charge(day, lot.component, to_fen(lot.amount), -to_fen(lot.amount))
            elif isinstance(event, (LawsuitFiled, ExecutionRecorded)):
                self._post(day, event.costs)
            elif isinstance(event, StageChanged):
                stage = event.to_stage
                key = (event.case_id, event.from_stage, event.to_stage)
                if key not in self.moves or day < self.moves[key]:
                    self.moves[key] = day

    def _post(self, day: date, postings: Iterable[Any]) -> None:
        for p in postings:
            self._charge(day, p.component, to_fen(p.enforceable), to_fen(p.unenforceable))

    def _charge(self, day: date, component: str, enforceable: int, unenforceable: int) -> None:
        sums = self.charges.setdefault((day, component), [0, 0])
        sums[0] += enforceable
        sums[1] += unenforceable

    def insert(self, conn: Connection) -> None:
        """Add them to the tables (inside the caller's transaction), each table's keys in order."""
        if self.charges:
            rows = [
                {"business_date": d, "component": c, "enforceable_fen": e, "unenforceable_fen": u}
                for (d, c), (e, u) in sorted(self.charges.items())
            ]
            _upsert(conn, daily_charges, rows, lambda t, new: {
                "enforceable_fen": t.c.enforceable_fen + new.enforceable_fen,
                "unenforceable_fen": t.c.unenforceable_fen + new.unenforceable_fen,
            })
        if self.counts:
            rows = [{"business_date": d, "type": t, "events": n} for (d, t), n in sorted(self.counts.items())]
            _upsert(conn, daily_event_counts, rows, lambda t, new: {"events": t.c.events + new.events})
        if self.moves:
            earlier = func.least if conn.dialect.name == "postgresql" else func.min  # SQLite's min(a, b) is scalar
            rows = [
                {"case_id": case_id, "from_stage": f, "to_stage": t, "first_on": d}
                for (case_id, f, t), d in sorted(self.moves.items())
            ]
            _upsert(conn, stage_moves, rows, lambda t, new: {"first_on": earlier(t.c.first_on, new.first_on)})
        if self.recoveries:
            rows = [
                {"received_on": d, "stage": stage, "agency_id": agency, "amount_fen": fen}
                for (d, stage, agency), fen in sorted(self.recoveries.items())
            ]
            _upsert(conn, daily_recoveries, rows, lambda t, new: {"amount_fen": t.c.amount_fen + new.amount_fen})


def case_at_start(stage: str, agency_id: str | None, new_events: Sequence[Event]) -> tuple[str, str | None]:
    """A case's stage and agency before ``new_events``, from what they are after them: the first
    stage move's from-stage, the first placement event's agency before it (a case is placed only
    when it is not placed; a recall names the agency it left)."""
    moved = next((e for e in new_events if isinstance(e, StageChanged)), None)
    placed = next((e for e in new_events if isinstance(e, (PlacedWithAgency, RecalledFromAgency))), None)
    if placed is not None:
        agency_id = placed.agency_id if isinstance(placed, RecalledFromAgency) else None
    return (moved.from_stage if moved is not None else stage), agency_id


def _upsert(conn: Connection, table: Table, rows: list[dict[str, Any]], merged: Any) -> None:
    """INSERT the rows; where a row's key is there already, SET what ``merged(table, excluded)`` says."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table)
    statement = statement.on_conflict_do_update(
        index_elements=list(table.primary_key.columns), set_=merged(table, statement.excluded)
    )
    conn.execute(statement, rows)


# ---------------------------------------------------------------------------
# the same totals, read from the events as stored


def json_text(column: ColumnElement, key: str, dialect: str) -> ColumnElement:
    """One key of a JSON text column, as text (NULL when absent)."""
    if dialect == "postgresql":
        return cast(column, JSON)[key].as_string()
    return type_coerce(column, JSON)[key].as_string()


# ``StoredTotals.add_case`` reads the payloads as stored, not through the event codecs: it needs a
# few numbers of a few event types, and ``verify`` sums them for every event of the store (the
# writer's sums, ``ReportTotals.add``, come from the domain's events: the two are independent).
# ChargesAccrued v1 and v2 keep postings and releases as objects (``postings``: component,
# enforceable, unenforceable; ``released``: component, amount), v3 and later as lists (``p``:
# [component code, installment, computed, enforceable, unenforceable, rule]; ``r``: [component code,
# amount, installment]), where an amount is integer fen, or a decimal string where it is not a
# plain fen amount. Court costs and delayed-performance interest are objects in every version.
_POSTED_AS_OBJECTS = {"LawsuitFiled": "costs", "ExecutionRecorded": "costs", "DelayedPerformanceInterestAccrued": "postings"}
_READ_PAYLOAD = frozenset({ChargesAccrued.type, StageChanged.type, PlacedWithAgency.type, *_POSTED_AS_OBJECTS})
_CURRENT = Stage.CURRENT.value


def _yuan(text: Any) -> int:
    """Fen of a decimal amount in yuan (half away from zero, as the database's ROUND was)."""
    return int((Decimal(str(text)) * 100).to_integral_value(ROUND_HALF_UP))


def _fen(value: Any) -> int:
    """Fen of a compact amount: integer fen, or decimal text in yuan."""
    return value if type(value) is int else _yuan(value)


@dataclass
class StoredTotals:
    """The totals the stored events make, summed case by case (``add_case``) in any order and
    merged across processes (``merge``): the daily sums whole, the stage moves compared with the
    table a chunk of cases at a time (``compare_moves``, memory bounded), their differences kept."""

    made: ReportTotals = field(default_factory=ReportTotals)
    moves_read: int = 0  # stage_moves rows compared so far (the rest belong to no case read)
    moves_differing: dict[str, list[tuple]] = field(default_factory=dict)  # what -> (case, from, to, date), SHOWN at most
    moves_more: Counter[str] = field(default_factory=Counter)  # what -> how many more
    problem: str | None = None  # why a case's events could not be summed

    def add_case(self, history: Sequence[Mapping[str, Any]], paid: Iterable[tuple[int, date, int]] = ()) -> None:
        """Add one case's ``events`` rows (in seq order) and its ``payments`` rows ((seq, received on,
        fen)): a payment counts with the stage and agency of the case's events before it."""
        made = self.made
        by_seq: dict[int, list[tuple[date, int]]] = {}
        for seq, received_on, fen in paid:
            by_seq.setdefault(seq, []).append((received_on, fen))
        stage, agency = None, IN_HOUSE
        for row in history:
            day, kind = row["business_date"], row["type"]
            made.counts[(day, kind)] += 1
            if by_seq and row["seq"] in by_seq:
                for received_on, fen in by_seq[row["seq"]]:
                    made.recoveries[(received_on, stage or _CURRENT, agency)] += fen
            if kind == RecalledFromAgency.type:
                agency = IN_HOUSE
            if kind not in _READ_PAYLOAD:
                continue
            payload = orjson.loads(row["payload"])
            if kind == ChargesAccrued.type:
                if row["schema_version"] >= 3:
                    for posting in payload.get("p", ()):
                        made._charge(day, COMPONENT_NAMES.get(posting[0], posting[0]), _fen(posting[3]), _fen(posting[4]))
                    for lot in payload.get("r", ()):
                        made._charge(day, COMPONENT_NAMES.get(lot[0], lot[0]), _fen(lot[1]), -_fen(lot[1]))
                else:
                    for posting in payload.get("postings", ()):
                        made._charge(day, posting["component"], _yuan(posting["enforceable"]), _yuan(posting["unenforceable"]))
                    for lot in payload.get("released", ()):
                        made._charge(day, lot["component"], _yuan(lot["amount"]), -_yuan(lot["amount"]))
            elif kind == StageChanged.type:
                stage = payload.get("to_stage")
                key = (row["case_id"], payload.get("from_stage"), stage)
                if key not in made.moves or day < made.moves[key]:
                    made.moves[key] = day
            elif kind == PlacedWithAgency.type:
                agency = payload.get("agency_id") or IN_HOUSE
            else:
                for posting in payload.get(_POSTED_AS_OBJECTS[kind], ()):
                    made._charge(day, posting["component"], _yuan(posting["enforceable"]), _yuan(posting["unenforceable"]))

    def compare_moves(self, conn: Connection, case_ids: Sequence[str]) -> None:
        """Hold the ``stage_moves`` rows of ``case_ids`` to the moves their events made (then forgotten)."""
        stored: set[tuple] = set()
        for chunk in chunks(case_ids):
            stored.update(tuple(row) for row in conn.execute(select(*stage_moves.c).where(stage_moves.c.case_id.in_(chunk))))
        self.moves_read += len(stored)
        made = {(*key, day) for key, day in self.made.moves.items()}
        self.made.moves.clear()
        self._differ("not what the events make", sorted(stored - made))
        self._differ("missing", sorted(made - stored))

    def _differ(self, what: str, rows: list[tuple]) -> None:
        shown = self.moves_differing.setdefault(what, [])
        room = max(0, SHOWN - len(shown))
        shown.extend(rows[:room])
        self.moves_more[what] += len(rows) - len(rows[:room])

    def merge(self, other: StoredTotals) -> None:
        """Add another process's (or chunk's) sums: the daily ones, and what its moves compared gave."""
        for key, (enforceable, unenforceable) in other.made.charges.items():
            self.made._charge(key[0], key[1], enforceable, unenforceable)
        self.made.counts.update(other.made.counts)
        for key, fen in other.made.recoveries.items():
            self.made.recoveries[key] += fen
        self.moves_read += other.moves_read
        for what, rows in other.moves_differing.items():
            self._differ(what, rows)
        self.moves_more.update(other.moves_more)
        self.problem = self.problem or other.problem

    def differences(self, conn: Connection) -> list[tuple[str, str, str]]:
        """Where the totals tables differ from these sums, once every case is added and its moves
        compared: (table, key, what differs), at most ``SHOWN`` a table and kind, then a count."""
        if self.problem is not None:
            return [("events", "", f"cannot be summed for the reports' totals: {self.problem}")]
        found: list[tuple[str, str, str]] = []
        made = self.made
        wanted = (
            (daily_charges, {key: tuple(sums) for key, sums in made.charges.items()}),
            (daily_event_counts, {key: (n,) for key, n in made.counts.items()}),
            (daily_recoveries, {key: (fen,) for key, fen in made.recoveries.items()}),
        )
        for table, want_rows in wanted:  # a few rows a day: both sides side by side
            k = len(table.primary_key.columns)
            stored = {tuple(r[:k]): tuple(int(v) for v in r[k:]) for r in conn.execute(select(*table.c))}
            problems = []
            for key in sorted(stored.keys() | want_rows.keys()):
                have, want = stored.get(key), want_rows.get(key)
                if have == want:
                    continue
                if want is None:
                    problems.append((key, f"not what the events make: {_text(have)}"))
                elif have is None:
                    problems.append((key, f"missing: {_text(want)}"))
                else:
                    problems.append((key, f"stored {_text(have)}; the events make {_text(want)}"))
            found += [(table.name, _text(key, " "), problem) for key, problem in problems[:SHOWN]]
            if len(problems) > SHOWN:
                found.append((table.name, "", f"and {len(problems) - SHOWN} more rows differ"))
        if conn.execute(select(func.count()).select_from(stage_moves)).scalar_one() != self.moves_read:
            orphans = select(*stage_moves.c).where(~select(events.c.case_id).where(events.c.case_id == stage_moves.c.case_id).exists())
            self._differ("not what the events make", [tuple(row) for row in conn.execute(orphans.order_by(*stage_moves.primary_key.columns))])
        for what in ("not what the events make", "missing"):
            for row in self.moves_differing.get(what, ()):
                found.append((stage_moves.name, _text(row[:3], " "), f"{what}: {row[3]}"))
            if self.moves_more[what]:
                found.append((stage_moves.name, "", f"and {self.moves_more[what]} more rows {what}"))
        return found


SHOWN = 20  # differences named per table; the rest counted
STORED_CHUNK = 500  # cases read together when the totals are worked out from the events alone


def stored_totals(conn: Connection, moves: Callable[[StoredTotals, list[str]], None]) -> StoredTotals:
    """The totals the events of the whole store make, read a chunk of cases at a time (``events``
    and ``payments`` rows, as ``verify`` reads them); after each chunk ``moves(totals, chunk)``
    takes its moves (``compare_moves``, or write them)."""
    totals = StoredTotals()
    ids = conn.execute(select(events.c.case_id).distinct().order_by(events.c.case_id)).scalars().all()
    columns = [events.c[name] for name in ("case_id", "seq", "business_date", "type", "schema_version", "payload")]
    query = select(payments.c.case_id, payments.c.seq, payments.c.received_on, payments.c.amount_fen)
    for chunk in chunks(ids, STORED_CHUNK):
        paid: dict[str, list[tuple[int, date, int]]] = {}
        for case_id, seq, received_on, fen in conn.execute(query.where(payments.c.case_id.in_(chunk))):
            paid.setdefault(case_id, []).append((seq, received_on, fen))
        rows = conn.execute(select(*columns).where(events.c.case_id.in_(chunk)).order_by(events.c.case_id, events.c.seq))
        for case_id, history in itertools.groupby(rows.mappings(), key=lambda r: r["case_id"]):
            totals.add_case(list(history), paid.get(case_id, ()))
        moves(totals, chunk)
    return totals


def differences(conn: Connection) -> list[tuple[str, str, str]]:
    """Where the totals tables differ from the events: (table, key, what differs), at most ``SHOWN``
    a table and then a count (``verify`` sums the same as it checks each chunk of cases)."""
    return stored_totals(conn, lambda totals, chunk: totals.compare_moves(conn, chunk)).differences(conn)


def _text(values: tuple, sep: str = ", ") -> str:
    return sep.join(str(v) for v in values)


def rebuild_stage_moves(conn: Connection, case_id: str, case_events: Iterable[Event]) -> None:
    """Rewrite one case's ``stage_moves`` rows from its events (``CaseRows.rebuild_projections``)."""
    conn.execute(stage_moves.delete().where(stage_moves.c.case_id == case_id))
    made = ReportTotals()
    made.add(case_events, (Stage.CURRENT.value, None))  # the whole history: from the opening
    ReportTotals(moves=made.moves).insert(conn)


TABLES = ("daily_charges", "daily_event_counts", "stage_moves", "daily_recoveries")
_TABLES = {t.name: t for t in (daily_charges, daily_event_counts, stage_moves, daily_recoveries)}


def fill_from_events(conn: Connection, tables: tuple[str, ...] = TABLES) -> None:
    """Empty the named totals tables and fill them from the events (the migrations that made them;
    a repair after ``verify`` found them differing from the events)."""
    for name in tables:
        conn.execute(_TABLES[name].delete())

    def write_moves(totals: StoredTotals, _chunk: list[str]) -> None:
        moves, totals.made.moves = totals.made.moves, {}
        if "stage_moves" in tables:
            ReportTotals(moves=moves).insert(conn)

    made = stored_totals(conn, write_moves).made
    ReportTotals(
        charges=made.charges if "daily_charges" in tables else {},
        counts=made.counts if "daily_event_counts" in tables else Counter(),
        recoveries=made.recoveries if "daily_recoveries" in tables else Counter(),
    ).insert(conn)
