"""Cases keep the delayed-performance interest due after a judgment (``delayed_interest_fen``).

Judgments were not recorded before this revision, so no case owed any: every
existing row is 0.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01

"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: Union[str, Sequence[str], None] = "0008"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column("cases", sa.Column("delayed_interest_fen", sa.BigInteger(), nullable=False, server_default="0"))


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE cases DROP COLUMN delayed_interest_fen")
    else:
        op.drop_column("cases", "delayed_interest_fen")
