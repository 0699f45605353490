"""``verified_cases``: what the last clean ``verify --incremental`` replayed, signed (``models.checkpoints``).

A row per case: the seq of its newest event and an HMAC under the chain key
of it and of a digest of the rows its replay was compared with (with the
code's fingerprint). It starts empty: the first incremental verify replays every
case, as a full verify does, and fills it.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03

"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: Union[str, Sequence[str], None] = "0016"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "verified_cases",
        sa.Column("case_id", sa.String(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("mac", sa.LargeBinary(32), nullable=False),  # models.tables.HashBytes: 32 bytes
        sa.PrimaryKeyConstraint("case_id", name="pk_verified_cases"),
    )


def downgrade() -> None:
    op.drop_table("verified_cases")
