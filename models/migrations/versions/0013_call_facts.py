"""Case rows carry ``call_facts``: what the call and visit lists read of a case.

The morning call lists read these (``states.worklist.facts_record``: the
stage, pause, promise, contact counters, unpaid installments, case-level dues)
instead of loading every phone- and visit-stage case from its snapshot and
opening event (issue 13). A row written before this has none (NULL): the lists
load that case as before, and its next save writes them.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02

"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: Union[str, Sequence[str], None] = "0012"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column("cases", sa.Column("call_facts", sa.Text(), nullable=True))


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE cases DROP COLUMN call_facts")
    else:
        op.drop_column("cases", "call_facts")
