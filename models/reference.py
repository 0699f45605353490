"""Reference data: the LPR fixings and the saved versions of the collection policy."""

from __future__ import annotations

from sqlalchemy import Engine, func, insert, select

from models.db import write_transaction
from models.errors import StoreError
from models.sql import now as utc_now
from models.tables import (
    lpr_fixings,
    policies,
)
from states.caps import LprTable
from states.policy import CollectionPolicy


class ReferenceData:
    """LPR fixings and policy versions (a part of ``CaseStore``)."""

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
