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

``*_FROM_EVENTS`` read the same totals straight from the events (the report's reads before these
tables, per date): the migration that made the tables filled them with these queries, and
``differences`` (run by ``verify`` over the whole store) proves the tables still equal them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import JSON, BigInteger, Connection, Date, String, Table, and_, cast, column, func, literal, select, text, type_coerce
from sqlalchemy import case as sql_case
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import ColumnElement

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
# the same totals, read from the events


def json_text(column: ColumnElement, key: str, dialect: str) -> ColumnElement:
    """One key of a JSON text column, as text (NULL when absent)."""
    if dialect == "postgresql":
        return cast(column, JSON)[key].as_string()
    return type_coerce(column, JSON)[key].as_string()


# One row per charge posting of an event type: its date, component and amounts in integer fen
# (schemas before ``ChargesAccrued`` v3: amounts are decimal strings, ROUND(x 100) exact below 10^13 yuan).
_POSTINGS = {
    "sqlite": """
        SELECT e.business_date AS business_date, json_extract(p.value, '$.component') AS component,
               CAST(ROUND(CAST(json_extract(p.value, '$.enforceable') AS NUMERIC) * 100) AS INTEGER) AS enforceable,
               CAST(ROUND(CAST(json_extract(p.value, '$.unenforceable') AS NUMERIC) * 100) AS INTEGER) AS unenforceable
        FROM events AS e, json_each(e.payload, '$.{key}') AS p
        WHERE e.type = '{type}'""",
    "postgresql": """
        SELECT e.business_date AS business_date, p.value ->> 'component' AS component,
               CAST(ROUND(CAST(p.value ->> 'enforceable' AS NUMERIC) * 100) AS BIGINT) AS enforceable,
               CAST(ROUND(CAST(p.value ->> 'unenforceable' AS NUMERIC) * 100) AS BIGINT) AS unenforceable
        FROM events AS e CROSS JOIN LATERAL json_array_elements(CAST(e.payload AS JSON) -> '{key}') AS p(value)
        WHERE e.type = '{type}'""",
}

# Charges held above the cap by earlier postings and released by a later one (``ChargesAccrued.released``):
# the amount moves from unenforceable to enforceable.
_RELEASES = {
    "sqlite": """
        SELECT e.business_date, json_extract(p.value, '$.component'),
               CAST(ROUND(CAST(json_extract(p.value, '$.amount') AS NUMERIC) * 100) AS INTEGER),
               -CAST(ROUND(CAST(json_extract(p.value, '$.amount') AS NUMERIC) * 100) AS INTEGER)
        FROM events AS e, json_each(e.payload, '$.released') AS p
        WHERE e.type = 'ChargesAccrued'""",
    "postgresql": """
        SELECT e.business_date, p.value ->> 'component',
               CAST(ROUND(CAST(p.value ->> 'amount' AS NUMERIC) * 100) AS BIGINT),
               -CAST(ROUND(CAST(p.value ->> 'amount' AS NUMERIC) * 100) AS BIGINT)
        FROM events AS e CROSS JOIN LATERAL json_array_elements(
            COALESCE(CAST(e.payload AS JSON) -> 'released', CAST('[]' AS JSON))) AS p(value)
        WHERE e.type = 'ChargesAccrued'""",
}


# The same two over ``ChargesAccrued`` v3 (``states.events.encode_charges_accrued``): a posting is
# [component code, installment, computed, enforceable, unenforceable, rule], a release [component code,
# amount, installment]; an amount is integer fen, or a decimal string where it is not a plain fen amount.
def _compact_sql(dialect: str, key: str, amounts: tuple[str, ...]) -> str:
    if dialect == "postgresql":
        item = "p.value ->> {}".format
        fen = "CASE json_typeof(p.value -> {0}) WHEN 'number' THEN CAST(p.value ->> {0} AS BIGINT) " \
              "ELSE CAST(ROUND(CAST(p.value ->> {0} AS NUMERIC) * 100) AS BIGINT) END"
        source = f"events AS e CROSS JOIN LATERAL json_array_elements(COALESCE(CAST(e.payload AS JSON) -> '{key}', CAST('[]' AS JSON))) AS p(value)"
    else:
        item = "json_extract(p.value, '$[{}]')".format
        fen = "CASE json_type(p.value, '$[{0}]') WHEN 'integer' THEN json_extract(p.value, '$[{0}]') " \
              "ELSE CAST(ROUND(CAST(json_extract(p.value, '$[{0}]') AS NUMERIC) * 100) AS INTEGER) END"
        source = f"events AS e, json_each(e.payload, '$.{key}') AS p"
    names = " ".join(f"WHEN '{code}' THEN '{name}'" for code, name in sorted(COMPONENT_NAMES.items()))
    columns = ", ".join(("-" if a.startswith("-") else "") + f"({fen.format(a.lstrip('-'))})" for a in amounts)
    return (
        f"SELECT e.business_date, CASE {item(0)} {names} ELSE {item(0)} END, {columns} FROM {source} "
        "WHERE e.type = 'ChargesAccrued' AND e.schema_version >= 3"
    )


_POSTED = (("ChargesAccrued", "postings"), ("LawsuitFiled", "costs"), ("ExecutionRecorded", "costs"),
           ("DelayedPerformanceInterestAccrued", "postings"))


def charges_from_events(dialect: str) -> str:
    """SQL: ``daily_charges`` as the events make it (business_date, component, enforceable, unenforceable)."""
    parts = [_POSTINGS[dialect].format(type=t, key=k) for t, k in _POSTED]
    parts += [_RELEASES[dialect], _compact_sql(dialect, "p", ("3", "4")), _compact_sql(dialect, "r", ("1", "-1"))]
    union = "\nUNION ALL ".join(parts)
    return (
        "SELECT business_date, component, SUM(enforceable) AS enforceable_fen, SUM(unenforceable) AS unenforceable_fen "
        f"FROM ({union}) AS posted GROUP BY business_date, component"
    )


def _charges_query(dialect: str):
    return text(charges_from_events(dialect)).columns(
        column("business_date", Date), column("component", String),
        column("enforceable_fen", BigInteger), column("unenforceable_fen", BigInteger),
    )


COUNTS_FROM_EVENTS = select(events.c.business_date, events.c.type, func.count().label("events")).group_by(
    events.c.business_date, events.c.type
)


def moves_from_events(dialect: str):
    """``stage_moves`` as the events make it (case_id, from_stage, to_stage, first_on)."""
    moved = (json_text(events.c.payload, "from_stage", dialect), json_text(events.c.payload, "to_stage", dialect))
    return (
        select(events.c.case_id, moved[0].label("from_stage"), moved[1].label("to_stage"), func.min(events.c.business_date).label("first_on"))
        .where(events.c.type == StageChanged.type)
        .group_by(events.c.case_id, *moved)
    )


def recoveries_from_events(dialect: str):
    """``daily_recoveries`` as the events make it (received_on, stage, agency_id, amount_fen): each
    payments row with the stage and agency of its case's events before the payment's."""
    paid, moved, placed = events.alias("paid"), events.alias("moved"), events.alias("placed")
    stage = (
        select(json_text(moved.c.payload, "to_stage", dialect))
        .where(moved.c.case_id == paid.c.case_id, moved.c.seq < paid.c.seq, moved.c.type == StageChanged.type)
        .order_by(moved.c.seq.desc())
        .limit(1)
        .scalar_subquery()
    )
    agency = (
        select(
            sql_case(
                (placed.c.type == PlacedWithAgency.type, json_text(placed.c.payload, "agency_id", dialect)),
                else_=cast(None, String),
            )
        )
        .where(
            placed.c.case_id == paid.c.case_id,
            placed.c.seq < paid.c.seq,
            placed.c.type.in_((PlacedWithAgency.type, RecalledFromAgency.type)),
        )
        .order_by(placed.c.seq.desc())
        .limit(1)
        .scalar_subquery()
    )
    each = (
        select(
            payments.c.received_on,
            func.coalesce(stage, Stage.CURRENT.value).label("stage"),
            func.coalesce(agency, literal(IN_HOUSE)).label("agency_id"),
            payments.c.amount_fen,
        )
        .select_from(payments.join(paid, and_(paid.c.case_id == payments.c.case_id, paid.c.seq == payments.c.seq)))
        .subquery()
    )
    key = (each.c.received_on, each.c.stage, each.c.agency_id)
    return select(*key, func.sum(each.c.amount_fen).label("amount_fen")).group_by(*key)


SHOWN = 20  # differences named per table; the rest counted


def differences(conn: Connection) -> list[tuple[str, str, str]]:
    """Where the totals tables differ from the events: (table, key, what differs), at most ``SHOWN``
    a table and then a count. Reads the events once per table: part of ``verify``'s pass."""
    dialect = conn.dialect.name
    found: list[tuple[str, str, str]] = []
    daily = (
        (daily_charges, _charges_query(dialect)),
        (daily_event_counts, COUNTS_FROM_EVENTS),
        (daily_recoveries, recoveries_from_events(dialect)),
    )
    for table, made in daily:
        # a few rows a day: both sides side by side
        k = len(table.primary_key.columns)
        stored = {tuple(r[:k]): tuple(int(v) for v in r[k:]) for r in conn.execute(select(*table.c))}
        wanted = {tuple(r[:k]): tuple(int(v) for v in r[k:]) for r in conn.execute(made)}
        problems = []
        for key in sorted(stored.keys() | wanted.keys()):
            have, want = stored.get(key), wanted.get(key)
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
    # one row per stage move of a case: compared in the database
    stored_moves, made_moves = select(*stage_moves.c), select(*moves_from_events(dialect).subquery().c)
    for what, rows in (("not what the events make", stored_moves.except_(made_moves)), ("missing", made_moves.except_(stored_moves))):
        n = 0
        for row in conn.execute(rows):
            n += 1
            if n <= SHOWN:
                found.append((stage_moves.name, _text(row[:3], " "), f"{what}: {row[3]}"))
        if n > SHOWN:
            found.append((stage_moves.name, "", f"and {n - SHOWN} more rows {what}"))
    return found


def _text(values: tuple, sep: str = ", ") -> str:
    return sep.join(str(v) for v in values)


def rebuild_stage_moves(conn: Connection, case_id: str, case_events: Iterable[Event]) -> None:
    """Rewrite one case's ``stage_moves`` rows from its events (``CaseRows.rebuild_projections``)."""
    conn.execute(stage_moves.delete().where(stage_moves.c.case_id == case_id))
    made = ReportTotals()
    made.add(case_events, (Stage.CURRENT.value, None))  # the whole history: from the opening
    ReportTotals(moves=made.moves).insert(conn)


TABLES = ("daily_charges", "daily_event_counts", "stage_moves", "daily_recoveries")


def fill_from_events(conn: Connection, tables: tuple[str, ...] = TABLES) -> None:
    """Empty the named totals tables and fill them from the events (the migration that made them;
    a repair after ``verify`` found them differing from the events)."""
    dialect = conn.dialect.name
    made = {
        "daily_charges": (daily_charges, _charges_query(dialect)),
        "daily_event_counts": (daily_event_counts, COUNTS_FROM_EVENTS),
        "stage_moves": (stage_moves, moves_from_events(dialect)),
        "daily_recoveries": (daily_recoveries, recoveries_from_events(dialect)),
    }
    for name in tables:
        table, query = made[name]
        conn.execute(table.delete())
        conn.execute(table.insert().from_select([c.name for c in table.c], query))
