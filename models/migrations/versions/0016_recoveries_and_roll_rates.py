"""The report's last reads over every event: ``daily_recoveries`` and ``roll_rate_memos``.

- ``daily_recoveries``: what was received per date, stage and agency (``""``:
  in house), kept beside the events in the appending transaction like the
  other report totals (``models.report_totals``); filled here from the
  payments and their cases' events with the sums ``verify`` checks it
  against, so an existing store reports the same recoveries as before.
- ``roll_rate_memos``: the roll-rate counts of a pair of month ends, kept by
  the first report that counts them from the events and reused while the
  events dated by the later month end are the same in number
  (``models.roll_rates``). It starts empty: the first report after the
  upgrade counts as before.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02

"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

from models.report_totals import fill_from_events

revision: str = "0016"
down_revision: Union[str, Sequence[str], None] = "0015"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "daily_recoveries",
        sa.Column("received_on", sa.Date(), nullable=False),
        sa.Column("stage", sa.String(), nullable=False),
        sa.Column("agency_id", sa.String(), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("received_on", "stage", "agency_id", name="pk_daily_recoveries"),
    )
    op.create_table(
        "roll_rate_memos",
        sa.Column("from_month_end", sa.Date(), nullable=False),
        sa.Column("to_month_end", sa.Date(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("events_through", sa.BigInteger(), nullable=False),
        sa.Column("counts", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("from_month_end", "to_month_end", name="pk_roll_rate_memos"),
    )
    fill_from_events(op.get_bind(), ("daily_recoveries",))


def downgrade() -> None:
    op.drop_table("roll_rate_memos")
    op.drop_table("daily_recoveries")
