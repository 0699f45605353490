"""Close batches: how several workers share one business date's close, each batch claimed under a lease.

    plan_close(date, size)     the date's plan not finished yet (the day not closed with it),
                               or a new one: the due cases in case-id order, cut into
                               ranges of ``size`` (one planner at a time)
    claim_batch(date, owner)   the next batch nobody holds (or whose holder's lease ran out):
                               ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, a plain claim inside
                               SQLite's one write transaction
    renew_lease / release_batch / finish_batch   the holder keeps, gives back or ends it
    close_status(date, run)    how many batches are done, held, free; their figures
    finish_plan(date, run)     the day closed with this plan: once, by one finisher

Leases are compared with the database's clock on PostgreSQL (``now()``), so
workers on machines whose clocks differ agree on who holds what; on SQLite
(one machine) with the process's UTC clock. ``finish_batch`` is idempotent
and merges the figures of a second finisher (a worker whose lease ran out and
one that took the batch over both finished it: the cases each advanced add up,
the events primary key having refused any step written twice).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, insert, literal, or_, select, text, update

from models.db import write_transaction
from models.sql import now as utc_now
from models.queries import due_cases
from models.tables import cases, close_batches

_PLAN_LOCK_KEY = 0x636C6F73  # "clos": one planner of a date at a time on PostgreSQL


@dataclass(frozen=True)
class ClosePlan:
    """A date's plan: its number among the date's plans, and its batches (done or not)."""

    business_date: date
    run_no: int
    batches: int
    cases: int
    adopted: bool  # an unfinished plan found (a crashed close's, or a concurrent planner's), not made now


@dataclass(frozen=True)
class ClaimedBatch:
    """A batch this owner holds: the case-id range to advance."""

    business_date: date
    batch_no: int
    run_no: int
    first_case_id: str
    last_case_id: str
    owner: str
    attempt: int


@dataclass(frozen=True)
class CloseStatus:
    business_date: date
    run_no: int
    batches: int
    done: int
    held: int  # by a worker whose lease has not run out
    results: tuple[dict[str, Any], ...]  # the done batches' figures, by batch number

    @property
    def complete(self) -> bool:
        return self.done == self.batches

    @property
    def free(self) -> int:
        """Batches nobody holds now (never claimed, given back, or their holder's lease ran out)."""
        return self.batches - self.done - self.held


class CloseBatches:
    """The lease table of the close (a part of ``CaseStore``)."""

    engine: Engine

    # ------------------------------------------------------------------
    # planning

    def plan_close(self, business_date: date, batch_size: int) -> ClosePlan:
        """The date's unfinished plan (the day not closed with it yet), else a new plan of the cases due now."""
        with write_transaction(self.engine) as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(
                    text("SELECT pg_advisory_xact_lock(:key, :day)"),
                    {"key": _PLAN_LOCK_KEY, "day": business_date.toordinal()},
                )
            latest = conn.execute(
                select(func.max(close_batches.c.run_no)).where(close_batches.c.business_date == business_date)
            ).scalar()
            if latest is not None and self._unfinished_batches(conn, business_date, latest):
                batches, planned = conn.execute(
                    select(func.count(), func.coalesce(func.sum(close_batches.c.cases), 0)).where(
                        close_batches.c.business_date == business_date, close_batches.c.run_no == latest
                    )
                ).one()
                return ClosePlan(business_date, latest, batches, planned, adopted=True)
            run_no = (latest or 0) + 1
            first_no = (
                conn.execute(
                    select(func.max(close_batches.c.batch_no)).where(close_batches.c.business_date == business_date)
                ).scalar()
                or 0
            ) + 1
            ids = list(conn.execute(due_cases(business_date).order_by(cases.c.case_id)).scalars())
            rows = [
                {
                    "business_date": business_date,
                    "batch_no": first_no + n,
                    "run_no": run_no,
                    "first_case_id": ids[start],
                    "last_case_id": ids[min(len(ids), start + batch_size) - 1],
                    "cases": min(len(ids), start + batch_size) - start,
                    "attempts": 0,
                }
                for n, start in enumerate(range(0, len(ids), batch_size))
            ]
            if rows:
                conn.execute(insert(close_batches), rows)
            return ClosePlan(business_date, run_no, len(rows), len(ids), adopted=False)

    def open_plan(self, business_date: date) -> ClosePlan | None:
        """The date's newest plan if some batch of it is not done yet (what a joining worker helps with)."""
        with self.engine.connect() as conn:
            latest = conn.execute(
                select(func.max(close_batches.c.run_no)).where(close_batches.c.business_date == business_date)
            ).scalar()
            if latest is None or not self._open_batches(conn, business_date, latest):
                return None
            batches, planned = conn.execute(
                select(func.count(), func.coalesce(func.sum(close_batches.c.cases), 0)).where(
                    close_batches.c.business_date == business_date, close_batches.c.run_no == latest
                )
            ).one()
        return ClosePlan(business_date, latest, batches, planned, adopted=True)

    def dates_being_closed(self) -> list[date]:
        """Dates with a plan not done yet, oldest first."""
        query = select(close_batches.c.business_date).where(close_batches.c.done_at.is_(None)).distinct()
        with self.engine.connect() as conn:
            return sorted(conn.execute(query).scalars())

    def finish_plan(self, business_date: date, run_no: int) -> bool:
        """Record that the day was closed with this plan; False when it already was (by another finisher)."""
        with write_transaction(self.engine) as conn:
            marked = conn.execute(
                update(close_batches)
                .where(
                    close_batches.c.business_date == business_date,
                    close_batches.c.run_no == run_no,
                    close_batches.c.finished_at.is_(None),
                )
                .values(finished_at=utc_now())
            ).rowcount
        return bool(marked)

    @staticmethod
    def _unfinished_batches(conn: Connection, business_date: date, run_no: int) -> int:
        return conn.execute(
            select(func.count()).where(
                close_batches.c.business_date == business_date,
                close_batches.c.run_no == run_no,
                close_batches.c.finished_at.is_(None),
            )
        ).scalar_one()

    @staticmethod
    def _open_batches(conn: Connection, business_date: date, run_no: int) -> int:
        return conn.execute(
            select(func.count()).where(
                close_batches.c.business_date == business_date,
                close_batches.c.run_no == run_no,
                close_batches.c.done_at.is_(None),
            )
        ).scalar_one()

    # ------------------------------------------------------------------
    # leases

    def claim_batch(self, business_date: date, run_no: int, owner: str, lease_seconds: float) -> ClaimedBatch | None:
        """Take the lowest-numbered batch of the plan nobody holds; None when there is none to take now."""
        with write_transaction(self.engine) as conn:
            now = self._now(conn)
            query = (
                select(close_batches)
                .where(
                    close_batches.c.business_date == business_date,
                    close_batches.c.run_no == run_no,
                    close_batches.c.done_at.is_(None),
                    or_(close_batches.c.owner.is_(None), close_batches.c.lease_expires_at < now),
                )
                .order_by(close_batches.c.batch_no)
                .limit(1)
                .with_for_update(skip_locked=True)  # nothing on SQLite: its one writer holds the lock
            )
            row = conn.execute(query).mappings().first()
            if row is None:
                return None
            conn.execute(
                update(close_batches)
                .where(_key(business_date, row["batch_no"]))
                .values(owner=owner, lease_expires_at=self._lease_end(conn, lease_seconds), attempts=row["attempts"] + 1)
            )
        return ClaimedBatch(
            business_date, row["batch_no"], run_no, row["first_case_id"], row["last_case_id"], owner, row["attempts"] + 1
        )

    def renew_lease(self, batch: ClaimedBatch, lease_seconds: float) -> bool:
        """Extend the holder's lease; False when it is no longer the holder (its lease ran out and was taken)."""
        with write_transaction(self.engine) as conn:
            changed = conn.execute(
                update(close_batches)
                .where(_key(batch.business_date, batch.batch_no), close_batches.c.owner == batch.owner, close_batches.c.done_at.is_(None))
                .values(lease_expires_at=self._lease_end(conn, lease_seconds))
            ).rowcount
        return bool(changed)

    def release_batch(self, batch: ClaimedBatch) -> None:
        """Give the batch back at once (the holder failed and will not finish it)."""
        with write_transaction(self.engine) as conn:
            conn.execute(
                update(close_batches)
                .where(_key(batch.business_date, batch.batch_no), close_batches.c.owner == batch.owner, close_batches.c.done_at.is_(None))
                .values(owner=None, lease_expires_at=None)
            )

    def finish_batch(self, batch: ClaimedBatch, result: dict[str, Any], merge) -> None:
        """Mark the batch done with ``result``; a batch already done gets ``merge(stored, result)``."""
        with write_transaction(self.engine) as conn:
            row = conn.execute(
                select(close_batches.c.done_at, close_batches.c.result)
                .where(_key(batch.business_date, batch.batch_no))
                .with_for_update()
            ).first()
            stored = row.result if row is not None and row.done_at is not None else None
            conn.execute(
                update(close_batches)
                .where(_key(batch.business_date, batch.batch_no))
                .values(
                    done_at=row.done_at if stored is not None else utc_now(),
                    result=result if stored is None else merge(stored, result),
                    owner=batch.owner,
                    lease_expires_at=None,
                )
            )

    def close_status(self, business_date: date, run_no: int) -> CloseStatus:
        with self.engine.connect() as conn:
            now = self._now(conn)
            rows = conn.execute(
                select(close_batches.c.done_at, close_batches.c.owner, close_batches.c.lease_expires_at, close_batches.c.result)
                .where(close_batches.c.business_date == business_date, close_batches.c.run_no == run_no)
                .order_by(close_batches.c.batch_no)
            ).all()
            live = conn.execute(
                select(func.count()).where(
                    close_batches.c.business_date == business_date,
                    close_batches.c.run_no == run_no,
                    close_batches.c.done_at.is_(None),
                    close_batches.c.owner.is_not(None),
                    close_batches.c.lease_expires_at >= now,
                )
            ).scalar_one()
        done = [r.result for r in rows if r.done_at is not None]
        return CloseStatus(business_date, run_no, len(rows), len(done), live, tuple(done))

    def batch_rows(self, business_date: date) -> list[dict[str, Any]]:
        """Every batch of the date as stored (tests and the operator's view)."""
        with self.engine.connect() as conn:
            query = select(close_batches).where(close_batches.c.business_date == business_date).order_by(close_batches.c.batch_no)
            return [dict(row) for row in conn.execute(query).mappings()]

    def due_case_ids_in(self, business_date: date, first_case_id: str, last_case_id: str) -> list[str]:
        """The cases of a batch's range still due on the date (those advanced already are not)."""
        query = due_cases(business_date).where(cases.c.case_id.between(first_case_id, last_case_id)).order_by(cases.c.case_id)
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    # ------------------------------------------------------------------
    # the clock leases are read by

    @staticmethod
    def _now(conn: Connection) -> Any:
        return func.now() if conn.dialect.name == "postgresql" else utc_now()

    @staticmethod
    def _lease_end(conn: Connection, seconds: float) -> Any:
        if conn.dialect.name == "postgresql":
            return func.now() + literal(timedelta(seconds=seconds))
        return utc_now() + timedelta(seconds=seconds)


def _key(business_date: date, batch_no: int):
    return and_(close_batches.c.business_date == business_date, close_batches.c.batch_no == batch_no)


