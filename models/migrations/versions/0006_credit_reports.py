"""Credit reports: the month-end records of DOMAIN.md §8, one per account and month.

Each row is the projection of one ``MonthEndReported`` event (its key
``(case_id, seq)`` points at it) and is written in the same transaction;
``verify`` checks the rows against the events. Histories older than credit
reporting hold no such event, so there is nothing to fill.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02

"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: Union[str, Sequence[str], None] = "0005"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "credit_reports",
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("account", sa.String(), nullable=False),
        sa.Column("case_id", sa.String(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("month_end", sa.Date(), nullable=False),
        sa.Column("dpd", sa.Integer(), nullable=False),
        sa.Column("bucket", sa.String(), nullable=False),
        sa.Column("overdue_principal_fen", sa.BigInteger(), nullable=False),
        sa.Column("overdue_total_fen", sa.BigInteger(), nullable=False),
        sa.Column("classification", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("default_ended_on", sa.Date(), nullable=True),
        sa.CheckConstraint(
            "status IN ('current', 'overdue', 'settled', 'written_off')", name="ck_credit_reports_status"
        ),
        sa.ForeignKeyConstraint(
            ["case_id", "seq"], ["events.case_id", "events.seq"], name="fk_credit_reports_case_id_events"
        ),
        sa.PrimaryKeyConstraint("month", "account", name="pk_credit_reports"),
    )
    op.create_index("ix_credit_reports_case_id", "credit_reports", ["case_id"])


def downgrade() -> None:
    op.drop_index("ix_credit_reports_case_id", "credit_reports")
    op.drop_table("credit_reports")
