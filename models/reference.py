"""Reference data: the LPR fixings, the saved versions of the collection policy, the operator roster."""

from __future__ import annotations

from sqlalchemy import Engine, func, insert, select, update

from models.db import write_transaction
from models.errors import StoreError
from models.sql import now as utc_now
from models.tables import (
    lpr_fixings,
    operators,
    policies,
)
from states.caps import LprTable
from states.operators import Operator
from states.vocabulary import OperatorRole
from states.policy import CollectionPolicy


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

    def add_operator(self, operator_id: str, role: OperatorRole) -> Operator:
        """Put an operator on the roster, or change its role (and reactivate it)."""
        with write_transaction(self.engine) as conn:
            changed = conn.execute(
                update(operators).where(operators.c.operator_id == operator_id).values(role=role.value, active=True)
            ).rowcount
            if not changed:
                conn.execute(insert(operators).values(operator_id=operator_id, role=role.value, active=True, added_at=utc_now()))
        return Operator(operator_id, role, True)

    def deactivate_operator(self, operator_id: str) -> None:
        with write_transaction(self.engine) as conn:
            entry = operators.c.operator_id == operator_id
            if conn.execute(update(operators).where(entry, operators.c.active.is_(True)).values(active=False)).rowcount:
                return
            if conn.execute(select(operators.c.operator_id).where(entry)).first() is not None:
                raise StoreError(f"operator {operator_id!r} is already inactive; nothing to change (collectflow operators list)")
            raise StoreError(f"operator: {operator_id!r} is not on the operator roster")

    def operators(self) -> list[Operator]:
        query = select(operators.c.operator_id, operators.c.role, operators.c.active).order_by(operators.c.operator_id)
        with self.engine.connect() as conn:
            return [Operator(op_id, OperatorRole(role), active) for op_id, role, active in conn.execute(query)]

    def roster_entry(self, operator_id: str) -> tuple[Operator | None, bool]:
        """(the operator's roster entry or None, whether a roster is in use at all)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(operators.c.operator_id, operators.c.role, operators.c.active).where(operators.c.operator_id == operator_id)
            ).first()
            in_use = row is not None or conn.execute(select(operators.c.operator_id).limit(1)).first() is not None
        return (None if row is None else Operator(row[0], OperatorRole(row[1]), row[2])), in_use
