"""Read-only queries over the portfolio: due cases, stuck cases, summaries, credit reports, the digest."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import Engine, Select, func, or_, select
from sqlalchemy import case as sql_case

from models.sql import binary_order, chunks, plain
from models.tables import (
    cases,
    credit_record_from_row,
    credit_reports,
    events,
    payments,
    projection_from_row,
)
from states.commands import RecordedPayment
from states.credit import CreditRecord
from states.events import canonical_json
from states.lifecycle import Stage
from states.money import ZERO, from_fen
from states.snapshot import record_of
from states.views import CaseProjection


@dataclass(frozen=True)
class StuckCase:
    case_id: str
    contract_no: str
    stage: str
    stuck_on: date | None
    error: str


@dataclass(frozen=True)
class Booking:
    """What ``add_cases`` did: cases booked now, and contracts already booked with the same terms."""

    booked: tuple[str, ...]
    already_booked: tuple[str, ...]


@dataclass(frozen=True)
class StageTotals:
    stage: str
    cases: int
    stuck: int
    principal_outstanding: Decimal
    total_due: Decimal
    unenforceable: Decimal
    total_paid: Decimal


@dataclass(frozen=True)
class PortfolioSummary:
    stages: tuple[StageTotals, ...]  # in lifecycle order, stages with no case left out
    total: StageTotals



CLOSED_STAGES = tuple(stage.value for stage in Stage if stage.is_closed)


def due_cases(business_date: date) -> Select:
    """The ids of the cases due by ``business_date``: the one definition the close and its batches read."""
    return select(cases.c.case_id).where(
        cases.c.next_review_on <= business_date,
        # a closed case has no next review, except a written-off one placed for recovery
        cases.c.stage != "settled",
    )


@dataclass(frozen=True)
class ListedCase:
    """A case row as the work lists show it: the projection and when it was last contacted."""

    projection: CaseProjection
    last_contact_at: datetime | None
    stuck: bool


class Queries:
    """Portfolio-wide reads (a part of ``CaseStore``)."""

    engine: Engine

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def due_case_ids(self, business_date: date, limit: int | None = None) -> list[str]:
        """Cases with something due by ``business_date``, not settled, ordered by case id.

        Stuck cases are included: every close (and every retry of a failed
        one) tries them again, so a stuck case keeps its run Failed, visibly,
        until the fix lands; then it goes through exactly once.
        """
        query = due_cases(business_date).order_by(cases.c.case_id)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def stuck_cases(self) -> list[StuckCase]:
        query = (
            select(cases.c.case_id, cases.c.contract_no, cases.c.stage, cases.c.stuck_on, cases.c.stuck_error)
            .where(cases.c.stuck.is_(True))
            .order_by(cases.c.stuck_on, cases.c.case_id)
        )
        with self.engine.connect() as conn:
            return [StuckCase(*row) for row in conn.execute(query)]

    def case_ids_in_stages(self, stages: Sequence[str]) -> list[str]:
        """The ids of every case in one of ``stages``, in case-id order."""
        query = select(cases.c.case_id).where(cases.c.stage.in_(list(stages))).order_by(cases.c.case_id)
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def list_cases(
        self,
        as_of: date,
        *,
        stages: Sequence[str] = (),
        dpd_min: int | None = None,
        dpd_max: int | None = None,
        agency: str | None = None,
        limit: int | None = None,
    ) -> list[ListedCase]:
        """Cases by stage, DPD as of ``as_of`` (from the oldest unpaid due date) and agency, in case-id order."""
        due = cases.c.oldest_unpaid_due_on
        query = select(cases).order_by(cases.c.case_id)
        if stages:
            query = query.where(cases.c.stage.in_(list(stages)))
        if dpd_min is not None and dpd_min > 0:
            query = query.where(due <= as_of - timedelta(days=dpd_min))
        if dpd_max is not None:
            query = query.where(or_(due.is_(None), due >= as_of - timedelta(days=dpd_max)))
        if agency is not None:
            query = query.where(cases.c.agency_id == agency)
        if limit is not None:
            query = query.limit(limit)
        listed = []
        with self.engine.connect() as conn:
            for row in conn.execution_options(yield_per=2_000).execute(query).mappings():
                try:
                    last = record_of(json.loads(row["snapshot"]), row["case_id"]).get("last_contact")
                except Exception:  # noqa: BLE001 - a snapshot is a cache: an unreadable one shows no last contact (verify names it)
                    last = None
                at = datetime.fromisoformat(last[0]) if last else None
                listed.append(ListedCase(projection_from_row(row), at, row["stuck"]))
        return listed

    def recorded_payment(self, payment_id: str) -> RecordedPayment | None:
        """The payment recorded under this id, if any (a bank transaction is credited once)."""
        return self.recorded_payments([payment_id]).get(payment_id)

    def recorded_payments(self, payment_ids: Iterable[str]) -> dict[str, RecordedPayment]:
        """The payments recorded under these ids (those recorded), one query per chunk of ids."""
        found: dict[str, RecordedPayment] = {}
        columns = (payments.c.payment_id, payments.c.case_id, payments.c.amount_fen, payments.c.received_on)
        with self.engine.connect() as conn:
            for chunk in chunks(list(dict.fromkeys(payment_ids))):
                for payment_id, case_id, amount_fen, received_on in conn.execute(select(*columns).where(payments.c.payment_id.in_(chunk))):
                    found[payment_id] = RecordedPayment(payment_id, case_id, from_fen(amount_fen), received_on)
        return found

    def payment_exists(self, payment_id: str) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(select(payments.c.payment_id).where(payments.c.payment_id == payment_id)).first() is not None

    def portfolio_summary(self) -> PortfolioSummary:
        """Case counts and balances by stage."""
        sums = [
            func.sum(cases.c.principal_outstanding_fen),
            func.sum(cases.c.total_due_fen),
            func.sum(cases.c.unenforceable_fen),
            func.sum(cases.c.total_paid_fen),
        ]
        query = select(
            cases.c.stage, func.count(), func.sum(sql_case((cases.c.stuck.is_(True), 1), else_=0)), *sums
        ).group_by(cases.c.stage)
        with self.engine.connect() as conn:
            rows = {row[0]: row for row in conn.execute(query)}
        order = [stage.value for stage in Stage] + sorted(set(rows) - {stage.value for stage in Stage})
        stages = tuple(
            StageTotals(stage, int(r[1]), int(r[2]), *(from_fen(int(v or 0)) for v in r[3:]))
            for stage in order
            if (r := rows.get(stage)) is not None
        )
        total = StageTotals(
            "all",
            sum(s.cases for s in stages),
            sum(s.stuck for s in stages),
            sum((s.principal_outstanding for s in stages), ZERO),
            sum((s.total_due for s in stages), ZERO),
            sum((s.unenforceable for s in stages), ZERO),
            sum((s.total_paid for s in stages), ZERO),
        )
        return PortfolioSummary(stages, total)

    def credit_records(self, month: str) -> list[CreditRecord]:
        """The month's credit-report records (``YYYY-MM``), in no particular order."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(credit_reports).where(credit_reports.c.month == month)).mappings()
            return [credit_record_from_row(row) for row in rows]

    def credit_default_endings(self, month: str) -> dict[str, list[tuple[str, date]]]:
        """For each account with a record in ``month``: (month, day the default ended) of its records
        from that month on that carry an end (what ``states.credit.default_end`` reads)."""
        accounts = select(credit_reports.c.account).where(credit_reports.c.month == month)
        query = select(credit_reports.c.account, credit_reports.c.month, credit_reports.c.default_ended_on).where(
            credit_reports.c.month >= month,
            credit_reports.c.default_ended_on.is_not(None),
            credit_reports.c.account.in_(accounts),
        )
        endings: dict[str, list[tuple[str, date]]] = {}
        with self.engine.connect() as conn:
            for account, record_month, ended_on in conn.execute(query):
                endings.setdefault(account, []).append((record_month, ended_on))
        return endings

    def example_case_ids(self) -> dict[str, str]:
        """One case per stage (the one with the longest history), for people to try `case replay` on."""
        examples: dict[str, str] = {}
        with self.engine.connect() as conn:
            for stage in Stage:
                row = conn.execute(
                    select(cases.c.case_id)
                    .where(cases.c.stage == stage.value)
                    .order_by(cases.c.version.desc(), cases.c.case_id)
                    .limit(1)
                ).first()
                if row is not None:
                    examples[stage.value] = row[0]
        return examples

    def digest(self) -> str:
        """sha256 over every event hash in (case_id, seq) order, then every case row in case_id order.

        Equal digests mean equal histories and projections; a daily close run
        twice must leave it unchanged.
        """
        digest = hashlib.sha256()
        case_order = binary_order(cases.c.case_id, self.dialect)
        with self.engine.connect() as conn:
            event_hashes = conn.execution_options(yield_per=10_000).execute(
                select(events.c.hash).order_by(binary_order(events.c.case_id, self.dialect), events.c.seq)
            )
            for (event_hash,) in event_hashes:
                digest.update(event_hash.encode())
            rows = conn.execution_options(yield_per=2_000).execute(select(cases).order_by(case_order)).mappings()
            for row in rows:
                digest.update(canonical_json({k: plain(v) for k, v in row.items()}).encode())
        return digest.hexdigest()
