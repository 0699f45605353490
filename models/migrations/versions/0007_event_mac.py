"""Events carry a MAC: HMAC-SHA256 of their chain hash under a chain key kept away from the database.

Events written before this (``mac`` NULL) stay verifiable by their sha256
chain; every event written by a store with a chain key carries its MAC, and
``verify`` with the key refuses a MAC that does not match, or an unkeyed
event after keyed ones in the same case.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01

"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: Union[str, Sequence[str], None] = "0006"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column("events", sa.Column("mac", sa.String(64), nullable=True))


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE events DROP COLUMN mac")
    else:
        op.drop_column("events", "mac")
