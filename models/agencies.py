"""The agency registry and the placements' reads: what the domain's ``AgencyBoard`` is built from.

The registry (``agencies``) changes only here, each change in the same
transaction as its row in ``agency_changes`` (who, when, what); the
database refuses any other edit (migration 0008). ``placements`` and
``agency_commissions`` are projections of events, written by the recorder;
this module only reads them: the capacity each agency uses, the recovery it
measured over a window, and the figures of the agency report.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import Engine, and_, func, insert, or_, select, text, update
from sqlalchemy.exc import IntegrityError

from models.db import write_transaction
from models.errors import StoreError
from models.sql import binary_order
from models.sql import now as utc_now
from models.tables import agencies, agency_changes, agency_commissions, placements
from states.agency import (
    Agency,
    AgencyBoard,
    AgencyStanding,
    PlacementFigures,
    check_deactivation,
    check_registration,
    recovery_rate,
)
from states.money import ZERO, from_fen
from states.policy import CollectionPolicy


_REGISTRY_LOCK_KEY = 0x61676E63  # "agnc": one registration at a time on PostgreSQL


class AgencyNotFound(StoreError, LookupError):
    """No agency of that name on the registry."""


def _agency(row) -> Agency:
    return Agency(
        row["agency_id"], row["licence_no"], row["capacity"],
        {group: Decimal(rate) for group, rate in row["commission_rates"].items()}, row["active"],
    )


class Agencies:
    """The registry and the placement reads (a part of ``CaseStore``)."""

    engine: Engine

    # ------------------------------------------------------------------
    # the registry

    def add_agency(self, agency: Agency, actor: str) -> Agency:
        """Register an agency, with the change that records it; a name is registered once, and the
        registry's other rules (``check_registration``) are checked against every entry, one
        registration at a time (SQLite's write lock; an advisory lock on PostgreSQL)."""
        now = utc_now()
        rates = {group: str(rate) for group, rate in agency.rates.items()}
        try:
            with write_transaction(self.engine) as conn:
                if conn.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _REGISTRY_LOCK_KEY})
                known = conn.execute(select(agencies).where(agencies.c.agency_id == agency.name)).mappings().first()
                if known is not None:
                    raise StoreError(
                        f"agency: {agency.name!r} is already registered (licence {known['licence_no']}, by "
                        f"{known['registered_by']}); a registered agency is never edited: register it under another name"
                    )
                check_registration(agency, [_agency(row) for row in conn.execute(select(agencies)).mappings()])
                conn.execute(insert(agencies).values(
                    agency_id=agency.name, name=agency.name, licence_no=agency.licence_no, capacity=agency.capacity,
                    commission_rates=rates, active=agency.active, registered_by=actor, registered_at=now,
                ))
                conn.execute(insert(agency_changes).values(
                    agency_id=agency.name, action="registered", detail=agency.as_dict(), actor=actor, recorded_at=now,
                ))
        except IntegrityError:  # another writer registered the same name in between
            raise StoreError(f"agency: {agency.name!r} is already registered; register it under another name") from None
        return agency

    def deactivate_agency(self, name: str, actor: str) -> Agency:
        """Take an agency off new placements, recorded with who and when."""
        with write_transaction(self.engine) as conn:
            agency = self._agency(conn, name)
            check_deactivation(agency)
            conn.execute(update(agencies).where(agencies.c.agency_id == name).values(active=False))
            conn.execute(insert(agency_changes).values(
                agency_id=name, action="deactivated", detail={"active": False}, actor=actor, recorded_at=utc_now(),
            ))
        return Agency(agency.name, agency.licence_no, agency.capacity, agency.rates, False)

    def agency(self, name: str) -> Agency:
        with self.engine.connect() as conn:
            return self._agency(conn, name)

    def _agency(self, conn, name: str) -> Agency:
        row = conn.execute(select(agencies).where(agencies.c.agency_id == name)).mappings().first()
        if row is None:
            known = conn.execute(select(agencies.c.agency_id).order_by(agencies.c.agency_id)).scalars().all()
            listed = ", ".join(known) if known else "none yet (collectflow agency add)"
            raise AgencyNotFound(f"agency: {name!r} is not on the registry; registered: {listed}")
        return _agency(row)

    def agencies(self) -> list[Agency]:
        with self.engine.connect() as conn:
            query = select(agencies).order_by(binary_order(agencies.c.agency_id, conn.dialect.name))
            return [_agency(row) for row in conn.execute(query).mappings()]

    def agency_changes(self, name: str) -> list[dict]:
        """The registry changes of one agency, oldest first: what, who, when."""
        with self.engine.connect() as conn:
            self._agency(conn, name)
            query = select(agency_changes).where(agency_changes.c.agency_id == name).order_by(agency_changes.c.change_id)
            return [
                {"action": r["action"], "actor": r["actor"], "recorded_at": r["recorded_at"].isoformat(), "detail": r["detail"]}
                for r in conn.execute(query).mappings()
            ]

    # ------------------------------------------------------------------
    # what a placement chooses from

    def placed_counts(self) -> dict[str, int]:
        """Cases each agency holds now (placements not recalled)."""
        query = select(placements.c.agency_id, func.count()).where(placements.c.recalled_on.is_(None)).group_by(placements.c.agency_id)
        with self.engine.connect() as conn:
            return {agency: count for agency, count in conn.execute(query)}

    def measured(self, start: date, end: date) -> dict[str, tuple[Decimal, Decimal]]:
        """Per agency: (balance placed, recovered so far) of the placements made from ``start`` to
        the day before ``end``, the recoveries counted up to the day before ``end``."""
        recovered = (
            select(
                agency_commissions.c.case_id, agency_commissions.c.placed_seq,
                func.sum(agency_commissions.c.recovered_fen).label("recovered_fen"),
            )
            .where(agency_commissions.c.business_date < end)
            .group_by(agency_commissions.c.case_id, agency_commissions.c.placed_seq)
            .subquery()
        )
        query = (
            select(
                placements.c.agency_id,
                func.sum(placements.c.balance_placed_fen),
                func.coalesce(func.sum(recovered.c.recovered_fen), 0),
            )
            .select_from(placements.outerjoin(
                recovered, and_(recovered.c.case_id == placements.c.case_id, recovered.c.placed_seq == placements.c.seq)
            ))
            .where(placements.c.placed_on >= start, placements.c.placed_on < end)
            .group_by(placements.c.agency_id)
        )
        with self.engine.connect() as conn:
            return {agency: (from_fen(int(placed)), from_fen(int(got))) for agency, placed, got in conn.execute(query)}

    def agency_board(self, business_date: date, policy: CollectionPolicy) -> AgencyBoard | None:
        """The active agencies as a placement on ``business_date`` sees them; None with no registry in use.

        Recovery is measured over the placements of the ``agency_measure_days`` before the date;
        an agency with none gets the portfolio's rate over the same window.
        """
        registry = self.agencies()
        if not registry:
            return None
        placed = self.placed_counts()
        window = self.measured(business_date - timedelta(days=policy.agency_measure_days), business_date)
        total_placed = sum((p for p, _ in window.values()), ZERO)
        total_recovered = sum((r for _, r in window.values()), ZERO)
        portfolio = recovery_rate(total_recovered, total_placed) or ZERO
        standings = [
            AgencyStanding(
                a.name, a.capacity, placed.get(a.name, 0), a.rates,
                recovery_rate(window[a.name][1], window[a.name][0]) if a.name in window else None,
            )
            for a in registry
            if a.active
        ]
        return AgencyBoard.for_policy(business_date, standings, portfolio, policy)

    def placement_figures(self, start: date | None, end: date | None) -> list[PlacementFigures]:
        """Each placement made from ``start`` to ``end`` (inclusive; None: open), with what it recovered
        and the commission on it up to ``end``: the agency report's input."""
        got = select(
            agency_commissions.c.case_id, agency_commissions.c.placed_seq,
            func.sum(agency_commissions.c.recovered_fen).label("recovered_fen"),
            func.sum(agency_commissions.c.commission_fen).label("commission_fen"),
        )
        if end is not None:
            got = got.where(agency_commissions.c.business_date <= end)
        got = got.group_by(agency_commissions.c.case_id, agency_commissions.c.placed_seq).subquery()
        query = select(
            placements.c.agency_id, placements.c.strategy, placements.c.balance_placed_fen,
            func.coalesce(got.c.recovered_fen, 0), func.coalesce(got.c.commission_fen, 0),
        ).select_from(placements.outerjoin(got, and_(got.c.case_id == placements.c.case_id, got.c.placed_seq == placements.c.seq)))
        if start is not None:
            query = query.where(placements.c.placed_on >= start)
        if end is not None:
            query = query.where(placements.c.placed_on <= end)
        with self.engine.connect() as conn:
            return [
                PlacementFigures(agency, strategy, from_fen(balance), from_fen(int(recovered)), from_fen(int(fee)))
                for agency, strategy, balance, recovered, fee in conn.execute(query)
            ]

    def commission_total(self, as_of: date) -> Decimal:
        """Every agency commission accrued up to ``as_of`` (the lender's cost)."""
        query = select(func.coalesce(func.sum(agency_commissions.c.commission_fen), 0)).where(agency_commissions.c.business_date <= as_of)
        with self.engine.connect() as conn:
            return from_fen(int(conn.execute(query).scalar_one()))

    def case_commission(self, case_id: str, as_of: date) -> tuple[Decimal, str | None]:
        """The agency commission a case has cost the lender up to ``as_of``, and the rate of its
        placement now (None: not placed with a registered agency)."""
        total = select(func.coalesce(func.sum(agency_commissions.c.commission_fen), 0)).where(
            agency_commissions.c.case_id == case_id, agency_commissions.c.business_date <= as_of
        )
        rate = select(placements.c.commission_rate).where(
            placements.c.case_id == case_id, placements.c.placed_on <= as_of,
            or_(placements.c.recalled_on.is_(None), placements.c.recalled_on > as_of),
        )
        with self.engine.connect() as conn:
            return from_fen(int(conn.execute(total).scalar_one())), conn.execute(rate).scalar()

    def placed_case_ids(self) -> dict[str, str]:
        """Case id -> the agency holding it now (placements not recalled)."""
        query = select(placements.c.case_id, placements.c.agency_id).where(placements.c.recalled_on.is_(None))
        with self.engine.connect() as conn:
            return {case_id: agency for case_id, agency in conn.execute(query)}
