"""The reports' totals: ``daily_charges``, ``daily_event_counts`` and ``stage_moves``.

Kept beside the events so the portfolio report reads a few rows per business
date (and one per stage move of a case) instead of scanning every event
(``models.report_totals``). Filled here from the existing events with the
sums ``verify`` checks the tables against, so an existing store reports the
same figures as before, as of any date.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02

"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

from models.report_totals import fill_from_events

revision: str = "0014"
down_revision: Union[str, Sequence[str], None] = "0013"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "daily_charges",
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("component", sa.String(), nullable=False),
        sa.Column("enforceable_fen", sa.BigInteger(), nullable=False),
        sa.Column("unenforceable_fen", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("business_date", "component", name="pk_daily_charges"),
    )
    op.create_table(
        "daily_event_counts",
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("type", sa.String(), nullable=False),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("business_date", "type", name="pk_daily_event_counts"),
    )
    op.create_table(
        "stage_moves",
        sa.Column("case_id", sa.String(), nullable=False),
        sa.Column("from_stage", sa.String(), nullable=False),
        sa.Column("to_stage", sa.String(), nullable=False),
        sa.Column("first_on", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("case_id", "from_stage", "to_stage", name="pk_stage_moves"),
    )
    fill_from_events(op.get_bind(), ("daily_charges", "daily_event_counts", "stage_moves"))


def downgrade() -> None:
    op.drop_table("stage_moves")
    op.drop_table("daily_event_counts")
    op.drop_table("daily_charges")
