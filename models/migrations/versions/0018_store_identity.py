"""``store_identity``: the id every seal of this store names, so that stores sharing a seals folder
each check only their own seals (``models.seals``).

One row, a random id, made here and never changed (UPDATE and DELETE are refused, as for the
other rows the history depends on). ``owns_unnamed_seals`` is true when the store already held
events at this upgrade: it may own seals written before seals named their store. A store made
at this schema or later owns none of those.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04

"""

from __future__ import annotations

import uuid
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: Union[str, Sequence[str], None] = "0017"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

PROTECTED = "collectflow: history is append-only"


def upgrade() -> None:
    table = op.create_table(
        "store_identity",
        sa.Column("store_id", sa.String(), nullable=False),
        sa.Column("owns_unnamed_seals", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("store_id", name="pk_store_identity"),
    )
    bind = op.get_bind()
    held_events = bind.execute(sa.text("SELECT 1 FROM events LIMIT 1")).first() is not None
    op.bulk_insert(table, [{"store_id": uuid.uuid4().hex, "owns_unnamed_seals": held_events}])
    sqlite = bind.dialect.name == "sqlite"
    for action in ("UPDATE", "DELETE"):
        name = f"store_identity_refuse_{action.lower()}"
        if sqlite:
            op.execute(f"CREATE TRIGGER {name} BEFORE {action} ON store_identity BEGIN SELECT RAISE(ABORT, '{PROTECTED}: {action} on store_identity refused'); END")
        else:  # history_protected() is migration 0005's
            op.execute(f"CREATE TRIGGER {name} BEFORE {action} ON store_identity FOR EACH ROW EXECUTE FUNCTION history_protected()")
    if not sqlite:
        op.execute("CREATE TRIGGER store_identity_refuse_truncate BEFORE TRUNCATE ON store_identity FOR EACH STATEMENT EXECUTE FUNCTION history_protected()")


def downgrade() -> None:
    op.drop_table("store_identity")  # its triggers go with it
