"""The reports' reads (a part of ``CaseStore``): portfolio figures summed in SQL, over case rows and events.

Every read takes the business date it reports as of and looks only at
events dated on or before it. Sums stay in the database: a read returns a
row per group (a stage, a due date, a day, a component), never one per
event, so a report costs a few scans whatever the size of the book.

Payloads are JSON text: ``_json_text`` reads one key on both databases
(SQLite's ``json_extract``, PostgreSQL's ``->>`` on the text cast to JSON),
and ``_POSTINGS`` expands an event's list of charge postings. A posting's
amount is a decimal string in fen; each is turned into integer fen in SQL
before it is summed, so totals are exact (``ROUND`` of the amount x 100 is
exact for any posting below 10^13 yuan even where SQLite holds it as a
double for the moment of the cast).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import JSON, Date, Engine, String, and_, bindparam, cast, distinct, func, select, text, type_coerce
from sqlalchemy import case as sql_case
from sqlalchemy.sql.elements import ColumnElement

from models.tables import business_days, cases, events, payments
from states.payload_codecs import COMPONENT_NAMES
from states.lifecycle import COLLECTION_STAGES, Stage
from states.money import from_fen
from states.reporting import DpdReading

DPD_EVENTS = ("CaseReviewed", "StageChanged")  # the events whose payload states the case's DPD that day
CLOSED = tuple(stage.value for stage in Stage if stage.is_closed)
COLLECTION = tuple(stage.value for stage in COLLECTION_STAGES)


@dataclass(frozen=True)
class CaseBalances:
    """Case rows summed by stage and oldest unpaid due date (DPD as of any date follows from the latter)."""

    stage: str
    oldest_unpaid_due_on: date | None
    cases: int
    principal_outstanding: Decimal
    total_due: Decimal
    unenforceable: Decimal
    overpayment: Decimal


@dataclass(frozen=True)
class Recovery:
    """Payments received on one day while their cases were in one stage, with one agency (or none)."""

    received_on: date
    stage: str
    agency_id: str | None
    amount: Decimal


@dataclass(frozen=True)
class PostedCharges:
    """Charges of one component posted up to a date: what may be collected, and what the cap removed."""

    component: str
    enforceable: Decimal
    unenforceable: Decimal


def _json_text(column: ColumnElement, key: str, dialect: str) -> ColumnElement:
    """One key of a JSON text column, as text (NULL when absent)."""
    if dialect == "postgresql":
        return cast(column, JSON)[key].as_string()
    return type_coerce(column, JSON)[key].as_string()


# One row per charge posting of an event type; its amounts in integer fen.
_POSTINGS = {
    "sqlite": """
        SELECT json_extract(p.value, '$.component') AS component,
               SUM(CAST(ROUND(CAST(json_extract(p.value, '$.enforceable') AS NUMERIC) * 100) AS INTEGER)),
               SUM(CAST(ROUND(CAST(json_extract(p.value, '$.unenforceable') AS NUMERIC) * 100) AS INTEGER))
        FROM events AS e, json_each(e.payload, '$.{key}') AS p
        WHERE e.type = :type AND e.business_date <= :as_of
        GROUP BY 1""",
    "postgresql": """
        SELECT p.value ->> 'component' AS component,
               SUM(CAST(ROUND(CAST(p.value ->> 'enforceable' AS NUMERIC) * 100) AS BIGINT)),
               SUM(CAST(ROUND(CAST(p.value ->> 'unenforceable' AS NUMERIC) * 100) AS BIGINT))
        FROM events AS e CROSS JOIN LATERAL json_array_elements(CAST(e.payload AS JSON) -> '{key}') AS p(value)
        WHERE e.type = :type AND e.business_date <= :as_of
        GROUP BY 1""",
}

# Charges held above the cap by earlier postings and released by a later one (``ChargesAccrued.released``).
_RELEASES = {
    "sqlite": """
        SELECT json_extract(p.value, '$.component') AS component,
               SUM(CAST(ROUND(CAST(json_extract(p.value, '$.amount') AS NUMERIC) * 100) AS INTEGER))
        FROM events AS e, json_each(e.payload, '$.released') AS p
        WHERE e.type = 'ChargesAccrued' AND e.business_date <= :as_of
        GROUP BY 1""",
    "postgresql": """
        SELECT p.value ->> 'component' AS component,
               SUM(CAST(ROUND(CAST(p.value ->> 'amount' AS NUMERIC) * 100) AS BIGINT))
        FROM events AS e CROSS JOIN LATERAL json_array_elements(
            COALESCE(CAST(e.payload AS JSON) -> 'released', CAST('[]' AS JSON))) AS p(value)
        WHERE e.type = 'ChargesAccrued' AND e.business_date <= :as_of
        GROUP BY 1""",
}


# The same two reads over ``ChargesAccrued`` v3 (``states.events.encode_charges_accrued``): a posting is
# [component code, installment, computed, enforceable, unenforceable, rule], a release [component code,
# amount, installment]; an amount is integer fen, or a decimal string where it is not a plain fen amount.
def _compact_sql(dialect: str, key: str, positions: tuple[int, ...]) -> str:
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
    sums = ", ".join(f"SUM({fen.format(n)})" for n in positions)
    return (
        f"SELECT CASE {item(0)} {names} ELSE {item(0)} END AS component, {sums} FROM {source} "
        "WHERE e.type = 'ChargesAccrued' AND e.schema_version >= 3 AND e.business_date <= :as_of GROUP BY 1"
    )


_COMPACT_POSTINGS = {dialect: _compact_sql(dialect, "p", (3, 4)) for dialect in ("sqlite", "postgresql")}
_COMPACT_RELEASES = {dialect: _compact_sql(dialect, "r", (1,)) for dialect in ("sqlite", "postgresql")}


class Reporting:
    """Portfolio reads for the reports (a part of ``CaseStore``)."""

    engine: Engine

    def last_run_business_date(self) -> date | None:
        """The latest business date the daily close ran for, closed or failed (stuck cases)."""
        query = select(func.max(business_days.c.business_date)).where(business_days.c.status.in_(("closed", "failed")))
        with self.engine.connect() as conn:
            return conn.execute(query).scalar()

    def case_balances(self) -> list[CaseBalances]:
        """Every case row, summed by stage and oldest unpaid due date."""
        key = (cases.c.stage, cases.c.oldest_unpaid_due_on)
        sums = (cases.c.principal_outstanding_fen, cases.c.total_due_fen, cases.c.unenforceable_fen, cases.c.overpayment_fen)
        query = select(*key, func.count(), *(func.sum(c) for c in sums)).group_by(*key)
        with self.engine.connect() as conn:
            return [
                CaseBalances(stage, due_on, int(n), *(from_fen(int(v or 0)) for v in amounts))
                for stage, due_on, n, *amounts in conn.execute(query)
            ]

    def cases_opened(self, as_of: date) -> int:
        query = select(func.count()).where(events.c.type == "CaseOpened", events.c.business_date <= as_of)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def cases_reaching(self, as_of: date) -> dict[str, int]:
        """Cases that entered each stage on or before ``as_of`` (each case counted once a stage)."""
        to_stage = _json_text(events.c.payload, "to_stage", self.engine.dialect.name)
        query = (
            select(to_stage, func.count(distinct(events.c.case_id)))
            .where(events.c.type == "StageChanged", events.c.business_date <= as_of)
            .group_by(to_stage)
        )
        with self.engine.connect() as conn:
            return {stage: int(n) for stage, n in conn.execute(query)}

    def cases_cured(self, as_of: date) -> int:
        """Cases moved from a collection stage back to current on or before ``as_of`` (once each)."""
        dialect = self.engine.dialect.name
        query = select(func.count(distinct(events.c.case_id))).where(
            events.c.type == "StageChanged",
            events.c.business_date <= as_of,
            _json_text(events.c.payload, "from_stage", dialect).in_(COLLECTION),
            _json_text(events.c.payload, "to_stage", dialect) == Stage.CURRENT.value,
        )
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def cases_entering(self, stages: tuple[str, ...], as_of: date) -> int:
        """Cases that entered any of ``stages`` on or before ``as_of`` (once each)."""
        to_stage = _json_text(events.c.payload, "to_stage", self.engine.dialect.name)
        query = select(func.count(distinct(events.c.case_id))).where(
            events.c.type == "StageChanged", events.c.business_date <= as_of, to_stage.in_(stages)
        )
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def event_counts(self, types: tuple[str, ...], as_of: date) -> dict[str, int]:
        """How many events of each type are dated on or before ``as_of`` (0 for a type with none)."""
        query = (
            select(events.c.type, func.count())
            .where(events.c.type.in_(types), events.c.business_date <= as_of)
            .group_by(events.c.type)
        )
        with self.engine.connect() as conn:
            found = dict(conn.execute(query).all())
        return {t: int(found.get(t, 0)) for t in types}

    def dpd_readings(self, as_of: date) -> dict[str, DpdReading]:
        """Each case booked by ``as_of``: its last DPD-stating event on or before that date, and
        whether a payment came after it (``states.reporting`` reads the DPD from it)."""
        dialect = self.engine.dialect.name
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
            _json_text(stated.c.payload, "dpd", dialect),
            _json_text(stated.c.payload, "to_stage", dialect),
        ).select_from(
            last.outerjoin(stated, and_(stated.c.case_id == last.c.case_id, stated.c.seq == last.c.dpd_seq))
        )
        readings: dict[str, DpdReading] = {}
        with self.engine.connect() as conn:
            for case_id, paid_seq, dpd_seq, stated_on, dpd, to_stage in conn.execute(query):
                readings[case_id] = DpdReading(
                    stated_on=stated_on,
                    dpd=int(dpd or 0),
                    closed_stage=to_stage if to_stage in CLOSED else None,
                    paid_after=paid_seq is not None and (dpd_seq is None or paid_seq > dpd_seq),
                )
        return readings

    def recoveries(self, as_of: date) -> list[Recovery]:
        """Payments received on or before ``as_of``, summed by day, by the stage the case was in and
        by the agency it was placed with when each was received (the events before the payment's)."""
        dialect = self.engine.dialect.name
        paid = events.alias("paid")
        moved = events.alias("moved")
        placed = events.alias("placed")
        stage = (
            select(_json_text(moved.c.payload, "to_stage", dialect))
            .where(moved.c.case_id == paid.c.case_id, moved.c.seq < paid.c.seq, moved.c.type == "StageChanged")
            .order_by(moved.c.seq.desc())
            .limit(1)
            .scalar_subquery()
        )
        agency = (
            select(
                sql_case(
                    (placed.c.type == "PlacedWithAgency", _json_text(placed.c.payload, "agency_id", dialect)),
                    else_=cast(None, String),
                )
            )
            .where(
                placed.c.case_id == paid.c.case_id,
                placed.c.seq < paid.c.seq,
                placed.c.type.in_(("PlacedWithAgency", "RecalledFromAgency")),
            )
            .order_by(placed.c.seq.desc())
            .limit(1)
            .scalar_subquery()
        )
        each = (
            select(
                payments.c.received_on,
                func.coalesce(stage, Stage.CURRENT.value).label("stage"),
                agency.label("agency_id"),
                payments.c.amount_fen,
            )
            .select_from(payments.join(paid, and_(paid.c.case_id == payments.c.case_id, paid.c.seq == payments.c.seq)))
            .where(payments.c.received_on <= as_of)
            .subquery()
        )
        key = (each.c.received_on, each.c.stage, each.c.agency_id)
        query = select(*key, func.sum(each.c.amount_fen)).group_by(*key).order_by(*key)
        with self.engine.connect() as conn:
            return [Recovery(day, s, a, from_fen(int(fen))) for day, s, a, fen in conn.execute(query)]

    def posted_charges(self, as_of: date) -> list[PostedCharges]:
        """Charges posted on or before ``as_of`` by component: interest and fees (``ChargesAccrued``)
        and litigation costs (``LawsuitFiled``), each split into enforceable and unenforceable
        (a release of a held-back charge is a row moving its amount from the one to the other)."""
        sql = _POSTINGS[self.engine.dialect.name]
        found: list[PostedCharges] = []
        with self.engine.connect() as conn:
            for event_type, key in (
                ("ChargesAccrued", "postings"), ("LawsuitFiled", "costs"), ("ExecutionRecorded", "costs"),
                ("DelayedPerformanceInterestAccrued", "postings"),
            ):
                query = text(sql.format(key=key)).bindparams(
                    bindparam("type", event_type, type_=String), bindparam("as_of", as_of, type_=Date)
                )
                for component, enforceable, unenforceable in conn.execute(query):
                    found.append(PostedCharges(component, from_fen(int(enforceable or 0)), from_fen(int(unenforceable or 0))))
            query = text(_COMPACT_POSTINGS[self.engine.dialect.name]).bindparams(bindparam("as_of", as_of, type_=Date))
            for component, enforceable, unenforceable in conn.execute(query):
                found.append(PostedCharges(component, from_fen(int(enforceable or 0)), from_fen(int(unenforceable or 0))))
            # a release moves an amount from held back to charged
            for sql in (_RELEASES, _COMPACT_RELEASES):
                query = text(sql[self.engine.dialect.name]).bindparams(bindparam("as_of", as_of, type_=Date))
                for component, released in conn.execute(query):
                    amount = from_fen(int(released or 0))
                    found.append(PostedCharges(component, amount, -amount))
        return found
