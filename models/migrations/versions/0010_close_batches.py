"""Close batches: the lease table through which several workers share one business date's close.

One row per batch of a close (business date, batch number), with the plan it
belongs to (``run_no``), its case-id range, the worker holding it and until
when, how many times it was claimed, when it was done with its figures, and
when the day was closed with them.
Workers claim rows with ``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL;
the day is closed only when every batch of its plan is done.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01

"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: Union[str, Sequence[str], None] = "0009"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "close_batches",
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("batch_no", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("run_no", sa.Integer(), nullable=False),
        sa.Column("first_case_id", sa.String(), nullable=False),
        sa.Column("last_case_id", sa.String(), nullable=False),
        sa.Column("cases", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("business_date", "batch_no", name="pk_close_batches"),
    )


def downgrade() -> None:
    op.drop_table("close_batches")
