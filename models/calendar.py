"""Business days: which dates the daily close has run, closed or failed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine, func, insert, select, update

from models.db import write_transaction
from models.errors import StoreError
from models.sql import now as utc_now
from models.tables import (
    BUSINESS_DAY_STATUSES,
    business_days,
)


@dataclass(frozen=True)
class BusinessDayRecord:
    business_date: date
    status: str
    started_at: datetime
    finished_at: datetime | None
    cases_advanced: int
    stuck: int
    previous_business_date: date | None = None



class BusinessDays:
    """The business-day calendar of closes (a part of ``CaseStore``)."""

    engine: Engine

    def record_business_day(
        self,
        business_date: date,
        status: str,
        *,
        cases_advanced: int | None = None,
        stuck: int | None = None,
    ) -> None:
        """Record that the close of ``business_date`` is running, closed or failed."""
        if status not in BUSINESS_DAY_STATUSES:
            raise StoreError(f"business day status {status!r} is not one of running, closed, failed")
        now = utc_now()
        values: dict[str, Any] = {"status": status}
        if status == "running":
            values.update(started_at=now, finished_at=None)
        else:
            values["finished_at"] = now
        if cases_advanced is not None:  # added up: a rerun or a second worker adds what it advanced
            values["cases_advanced"] = business_days.c.cases_advanced + cases_advanced
        if stuck is not None:
            values["stuck"] = stuck
        with write_transaction(self.engine) as conn:
            changed = conn.execute(
                update(business_days).where(business_days.c.business_date == business_date).values(**values)
            ).rowcount
            if not changed:
                before = conn.execute(
                    select(func.max(business_days.c.business_date)).where(business_days.c.business_date < business_date)
                ).scalar()
                conn.execute(
                    insert(business_days).values(
                        business_date=business_date,
                        previous_business_date=before,  # so verify tells a skipped date from a deleted row
                        started_at=now,
                        cases_advanced=cases_advanced or 0,
                        stuck=stuck or 0,
                        **{k: v for k, v in values.items() if k not in ("started_at", "cases_advanced", "stuck")},
                    )
                )

    def begin_business_day(self, business_date: date) -> None:
        self.record_business_day(business_date, "running")

    def finish_business_day(self, business_date: date, *, advanced: int, stuck: int) -> None:
        """Closed when no case got stuck; failed otherwise (its stuck cases wait for a fix)."""
        status = "failed" if stuck else "closed"
        self.record_business_day(business_date, status, cases_advanced=advanced, stuck=stuck)

    def business_day(self, business_date: date) -> BusinessDayRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(business_days).where(business_days.c.business_date == business_date)).first()
        return None if row is None else BusinessDayRecord(*row)

    def last_run_business_date(self) -> date | None:
        """The newest business date the close ran for, closed or failed (its stuck cases left to retry)."""
        query = select(func.max(business_days.c.business_date)).where(business_days.c.status.in_(("closed", "failed")))
        with self.engine.connect() as conn:
            return conn.execute(query).scalar()

    def last_closed_business_date(self) -> date | None:
        query = select(func.max(business_days.c.business_date)).where(business_days.c.status == "closed")
        with self.engine.connect() as conn:
            return conn.execute(query).scalar()
