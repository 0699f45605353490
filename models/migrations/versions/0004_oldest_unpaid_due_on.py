"""Cases keep the oldest unpaid due date instead of a DPD that goes stale with the calendar.

The ``dpd``, ``bucket`` and ``classification`` columns held the figures of
the case's last review, so on every later date they were wrong (a case
reviewed at DPD 4 still said 4 at DPD 16). ``oldest_unpaid_due_on`` does not
go stale: DPD, bucket and class are computed from it as of the date asked.
Existing rows are filled from their snapshots (the opening event's schedule
and what each installment has had paid), as ``CaseState.projection`` does.
A snapshot from version 10 on holds no opening event (a downgrade to 0003 and
upgrade again meets one): its schedule is read from the case's opening event
row, and an installment row's left-out trailing amounts are zero.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: Union[str, Sequence[str], None] = "0003"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

STALE = ("dpd", "bucket", "classification")


def _oldest_unpaid(snapshot_text: str, opening_payload: str | None) -> str | None:
    """The due date of the first installment not paid in full, from a stored snapshot."""
    snapshot = json.loads(snapshot_text)
    if isinstance(snapshot, list):  # v11 on, packed: [version, case version, stage, installments, ...]
        snapshot = {"installments": snapshot[3]}
    if "opened" in snapshot:
        schedule = json.loads(snapshot["opened"])["payload"]["schedule"]
    else:  # v10 on: the opening event row's
        schedule = json.loads(opening_payload)["schedule"]
    for planned, paid in zip(schedule, snapshot["installments"]):
        due_on, principal = _planned(planned)
        principal_paid, interest_due, interest_paid, late_fee_due, late_fee_paid = map(Decimal, [*paid, *["0"] * (5 - len(paid))])
        unpaid = principal - principal_paid + interest_due - interest_paid + late_fee_due - late_fee_paid
        if unpaid > 0:
            return due_on
    return None


def _planned(row) -> tuple[str, Decimal]:
    """An installment's due date and principal: a row of named fields (CaseOpened v1, v2), or
    [(number,) due_on, principal, interest] with amounts in integer fen (v3, ``states.events.encode_schedule``;
    this migration runs again after a downgrade past it)."""
    if isinstance(row, dict):
        return row["due_on"], Decimal(row["principal"])
    due_on, principal = row[-3], row[-2]
    return due_on, Decimal(principal).scaleb(-2) if isinstance(principal, int) else Decimal(principal)


def upgrade() -> None:
    op.add_column("cases", sa.Column("oldest_unpaid_due_on", sa.Date(), nullable=True))
    op.create_index("ix_cases_oldest_unpaid_due_on", "cases", ["oldest_unpaid_due_on"])
    bind = op.get_bind()
    cases = sa.table("cases", sa.column("case_id"), sa.column("snapshot"), sa.column("oldest_unpaid_due_on", sa.Date()))
    events = sa.table("events", sa.column("case_id"), sa.column("seq"), sa.column("payload"))
    rows = sa.select(cases.c.case_id, cases.c.snapshot, events.c.payload).select_from(
        cases.outerjoin(events, (events.c.case_id == cases.c.case_id) & (events.c.seq == 1))
    )
    fills = [
        {"b_case_id": case_id, "oldest": due_on}
        for case_id, snapshot, opening in bind.execute(rows)
        if (due_on := _oldest_unpaid(snapshot, opening)) is not None
    ]
    if fills:
        bind.execute(
            cases.update().where(cases.c.case_id == sa.bindparam("b_case_id")).values(oldest_unpaid_due_on=sa.bindparam("oldest")),
            [{**row, "oldest": date.fromisoformat(row["oldest"])} for row in fills],
        )
    for column in STALE:
        if bind.dialect.name == "sqlite":
            op.execute(f"ALTER TABLE cases DROP COLUMN {column}")  # SQLite >= 3.35; plain columns only
        else:
            op.drop_column("cases", column)


def downgrade() -> None:
    op.add_column("cases", sa.Column("dpd", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("cases", sa.Column("bucket", sa.String(), nullable=False, server_default="M0"))
    op.add_column("cases", sa.Column("classification", sa.String(), nullable=False, server_default="normal"))
    op.drop_index("ix_cases_oldest_unpaid_due_on", "cases")
    op.drop_column("cases", "oldest_unpaid_due_on")
