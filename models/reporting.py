"""The reports' reads (a part of ``CaseStore``): portfolio figures summed in SQL, over case rows,
the reports' totals and events.

Every read takes the business date it reports as of and looks only at what
is dated on or before it. Sums stay in the database: a read returns a row
per group (a stage, a due date, a day, a component), never one per event.
Charges, event counts and the stage funnel read the totals kept beside the
events (``models.report_totals``: a few rows a day, one per stage move of a
case), not the events themselves. Recoveries read the same totals
(``daily_recoveries``). The roll rates are counted from the events once per
pair of month ends and kept (``models.roll_rates``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import Engine, distinct, func, select

from models import roll_rates
from models.db import write_transaction
from models.report_totals import fill_from_events
from models.tables import business_days, cases, daily_charges, daily_event_counts, daily_recoveries, events, stage_moves
from states.lifecycle import COLLECTION_STAGES, Stage
from states.money import from_fen
from states.reporting import DpdReading, RollRates

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


class Reporting:
    """Portfolio reads for the reports (a part of ``CaseStore``)."""

    engine: Engine

    def rebuild_report_totals(self) -> int:
        """Empty the reports' totals (daily charges, daily event counts, stage moves) and fill them from
        the events, and drop the kept roll-rate counts, in one transaction: the repair when ``verify`` finds them differing. Returns the
        number of events they were made from."""
        with write_transaction(self.engine) as conn:
            fill_from_events(conn)
            roll_rates.forget(conn)
            return conn.execute(select(func.count()).select_from(events)).scalar_one()

    def last_run_business_date(self) -> date | None:
        """The latest business date the daily close ran for, closed or failed (stuck cases)."""
        query = select(func.max(business_days.c.business_date)).where(business_days.c.status.in_(("closed", "failed")))
        with self.engine.connect() as conn:
            return conn.execute(query).scalar()

    def first_run_business_date(self) -> date | None:
        """The earliest business date the daily close ran for, closed or failed (None: it never ran)."""
        query = select(func.min(business_days.c.business_date)).where(business_days.c.status.in_(("closed", "failed")))
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
        return self.event_counts(("CaseOpened",), as_of)["CaseOpened"]

    def cases_reaching(self, as_of: date) -> dict[str, int]:
        """Cases that entered each stage on or before ``as_of`` (each case counted once a stage)."""
        query = (
            select(stage_moves.c.to_stage, func.count(distinct(stage_moves.c.case_id)))
            .where(stage_moves.c.first_on <= as_of)
            .group_by(stage_moves.c.to_stage)
        )
        with self.engine.connect() as conn:
            return {stage: int(n) for stage, n in conn.execute(query)}

    def cases_cured(self, as_of: date) -> int:
        """Cases moved from a collection stage back to current on or before ``as_of`` (once each)."""
        query = select(func.count(distinct(stage_moves.c.case_id))).where(
            stage_moves.c.first_on <= as_of,
            stage_moves.c.from_stage.in_(COLLECTION),
            stage_moves.c.to_stage == Stage.CURRENT.value,
        )
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def cases_entering(self, stages: tuple[str, ...], as_of: date) -> int:
        """Cases that entered any of ``stages`` on or before ``as_of`` (once each)."""
        query = select(func.count(distinct(stage_moves.c.case_id))).where(
            stage_moves.c.first_on <= as_of, stage_moves.c.to_stage.in_(stages)
        )
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def event_counts(self, types: tuple[str, ...], as_of: date) -> dict[str, int]:
        """How many events of each type are dated on or before ``as_of`` (0 for a type with none)."""
        query = (
            select(daily_event_counts.c.type, func.sum(daily_event_counts.c.events))
            .where(daily_event_counts.c.type.in_(types), daily_event_counts.c.business_date <= as_of)
            .group_by(daily_event_counts.c.type)
        )
        with self.engine.connect() as conn:
            found = dict(conn.execute(query).all())
        return {t: int(found.get(t, 0)) for t in types}

    def dpd_readings(self, as_of: date) -> dict[str, DpdReading]:
        """Each case booked by ``as_of``: its last DPD-stating event on or before that date
        (``models.roll_rates.dpd_readings``)."""
        with self.engine.connect() as conn:
            return roll_rates.dpd_readings(conn, as_of)

    def roll_rates(self, from_end: date, to_end: date) -> RollRates:
        """Open cases by bucket at ``from_end`` against their place at ``to_end`` (month ends), kept
        once counted from the events (``models.roll_rates``)."""
        return roll_rates.roll_rates(self.engine, from_end, to_end)

    def recoveries(self, as_of: date) -> list[Recovery]:
        """Payments received on or before ``as_of``, summed by day, by the stage the case was in and
        by the agency it was placed with when each was received: the rows of ``daily_recoveries``."""
        key = (daily_recoveries.c.received_on, daily_recoveries.c.stage, daily_recoveries.c.agency_id)
        query = select(*key, daily_recoveries.c.amount_fen).where(daily_recoveries.c.received_on <= as_of).order_by(*key)
        with self.engine.connect() as conn:
            return [Recovery(day, s, a or None, from_fen(int(fen))) for day, s, a, fen in conn.execute(query)]

    def posted_charges(self, as_of: date) -> list[PostedCharges]:
        """Charges posted on or before ``as_of`` by component: interest and fees (``ChargesAccrued``)
        and litigation costs (``LawsuitFiled``, ``ExecutionRecorded``), delayed-performance interest,
        each split into enforceable and unenforceable (a release of a held-back charge moved its
        amount from the one to the other): the days' sums of ``daily_charges``."""
        sums = (func.sum(daily_charges.c.enforceable_fen), func.sum(daily_charges.c.unenforceable_fen))
        query = (
            select(daily_charges.c.component, *sums)
            .where(daily_charges.c.business_date <= as_of)
            .group_by(daily_charges.c.component)
            .order_by(daily_charges.c.component)
        )
        with self.engine.connect() as conn:
            return [
                PostedCharges(component, from_fen(int(enforceable or 0)), from_fen(int(unenforceable or 0)))
                for component, enforceable, unenforceable in conn.execute(query)
            ]
