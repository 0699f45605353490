"""The roll rates' kept counts: ``roll_rate_memos``, a row per pair of month ends.

A report counts the roll-rate matrix from the events (two scans of the whole
history) the first time a pair of month ends is reported and keeps the counts
with the number of events dated by the later month end; later reports reuse
them while that number is unchanged (``models.roll_rates``). The table starts
empty: the first report after the upgrade counts as before.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02

"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: Union[str, Sequence[str], None] = "0015"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "roll_rate_memos",
        sa.Column("from_month_end", sa.Date(), nullable=False),
        sa.Column("to_month_end", sa.Date(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("events_through", sa.BigInteger(), nullable=False),
        sa.Column("counts", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("from_month_end", "to_month_end", name="pk_roll_rate_memos"),
    )


def downgrade() -> None:
    op.drop_table("roll_rate_memos")
