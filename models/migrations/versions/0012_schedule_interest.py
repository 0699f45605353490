"""Loans carry ``schedule_interest``: the convention their plan's interest is computed by.

``monthly`` (the new default: a full month's interest is the balance x rate /
12) or ``actual_days`` (each period by the day count on its actual days).
Every loan booked before this was computed on actual days, so the existing
rows take ``actual_days``.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01

"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: Union[str, Sequence[str], None] = "0011"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column("loans", sa.Column("schedule_interest", sa.String(), nullable=False, server_default="actual_days"))


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE loans DROP COLUMN schedule_interest")
    else:
        op.drop_column("loans", "schedule_interest")
