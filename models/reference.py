"""Reference data: the LPR fixings, the saved versions of the collection policy, the operator roster.

The roster changes only through ``change_roster``: one change at a time (SQLite's write lock, an
advisory lock on PostgreSQL), judged by ``states.operators.roster_change`` against the whole roster
read in the same transaction, and written with its row in ``operator_changes`` (append-only,
migration 0019), so no change is made without its record of who made it.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import Engine, func, insert, select, text, update

from models.db import write_transaction
from models.errors import StoreError
from models.sql import now as utc_now
from models.tables import (
    lpr_fixings,
    operator_changes,
    operators,
    policies,
)
from states.caps import LprTable
from states.operators import ChangeKind, Operator, OperatorChange, RosterCommand, roster_change
from states.vocabulary import OperatorRole
from states.policy import CollectionPolicy


_ROSTER_LOCK_KEY = 0x6F707273  # "oprs": one roster change at a time on PostgreSQL


def _roster(conn) -> list[Operator]:
    query = select(operators.c.operator_id, operators.c.role, operators.c.active).order_by(operators.c.operator_id)
    return [Operator(op_id, OperatorRole(role), active) for op_id, role, active in conn.execute(query)]


def _utc(moment: datetime) -> datetime:
    """A stored instant in UTC (SQLite gives it back without its zone)."""
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


class ReferenceData:
    """LPR fixings, policy versions and the operator roster (a part of ``CaseStore``)."""

    engine: Engine

    def lpr_table(self) -> LprTable:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(lpr_fixings.c.effective_from, lpr_fixings.c.rate_percent).order_by(lpr_fixings.c.effective_from)
            )
            return LprTable.from_rows(rows.tuples())

    def save_policy(self, policy: CollectionPolicy) -> int:
        """The version number of ``policy``: the stored one if an equal policy was saved before."""
        fingerprint = policy.fingerprint()
        with write_transaction(self.engine) as conn:
            version = conn.execute(select(policies.c.version).where(policies.c.fingerprint == fingerprint)).scalar()
            if version is not None:
                return version
            version = (conn.execute(select(func.max(policies.c.version))).scalar() or 0) + 1
            conn.execute(
                insert(policies).values(version=version, fingerprint=fingerprint, body=policy.as_dict(), created_at=utc_now())
            )
            return version

    def stored_policy(self, version: int | None = None) -> CollectionPolicy:
        """A saved policy by version (default: the newest)."""
        query = select(policies.c.body)
        query = query.where(policies.c.version == version) if version is not None else query.order_by(policies.c.version.desc())
        with self.engine.connect() as conn:
            body = conn.execute(query.limit(1)).scalar()
        if body is None:
            raise StoreError(f"no stored policy{' version ' + str(version) if version is not None else ''}")
        return CollectionPolicy.from_mapping(body)

    # ------------------------------------------------------------------
    # the operator roster

    def change_roster(self, cmd: RosterCommand) -> OperatorChange:
        """Make the roster change ``cmd`` asks for, if ``roster_change`` allows it, with its record."""
        now = utc_now()
        with write_transaction(self.engine) as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ROSTER_LOCK_KEY})
            change = roster_change(cmd, _roster(conn))
            if change.change is ChangeKind.ADDED:
                conn.execute(insert(operators).values(operator_id=change.operator_id, role=change.role_after.value, active=True, added_at=now))
            else:
                conn.execute(
                    update(operators).where(operators.c.operator_id == change.operator_id)
                    .values(role=change.role_after.value, active=change.active)
                )
            conn.execute(insert(operator_changes).values(
                operator_id=change.operator_id, change=change.change.value,
                role_before=None if change.role_before is None else change.role_before.value,
                role_after=change.role_after.value, active=change.active, actor=change.actor, recorded_at=now,
            ))
        return change

    def operator_changes(self, operator_id: str | None = None) -> list[dict]:
        """The roster's history, oldest first (one operator's, given its id): what, whose role, who, when."""
        query = select(operator_changes).order_by(operator_changes.c.change_id)
        if operator_id is not None:
            query = query.where(operator_changes.c.operator_id == operator_id)
        with self.engine.connect() as conn:
            if operator_id is not None and conn.execute(select(operators.c.operator_id).where(operators.c.operator_id == operator_id)).first() is None:
                raise StoreError(f"operator_id: {operator_id!r} is not on the operator roster (collectflow operators list)")
            return [
                {"change_id": r["change_id"], "recorded_at": _utc(r["recorded_at"]).isoformat(timespec="seconds"), "operator": r["operator_id"],
                 "change": r["change"], "role_before": r["role_before"], "role_after": r["role_after"],
                 "active": r["active"], "actor": r["actor"]}
                for r in conn.execute(query).mappings()
            ]

    def operators(self) -> list[Operator]:
        with self.engine.connect() as conn:
            return _roster(conn)

    def roster_entry(self, operator_id: str) -> tuple[Operator | None, bool]:
        """(the operator's roster entry or None, whether a roster is in use at all)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(operators.c.operator_id, operators.c.role, operators.c.active).where(operators.c.operator_id == operator_id)
            ).first()
            in_use = row is not None or conn.execute(select(operators.c.operator_id).limit(1)).first() is not None
        return (None if row is None else Operator(row[0], OperatorRole(row[1]), row[2])), in_use
