"""Agencies at a cost: the registry with its changes, placements and commissions as projections.

- ``agencies`` gains ``active``, ``registered_by`` and ``registered_at``; a
  registered agency is never edited: triggers refuse DELETE, and any UPDATE
  but of ``active`` (a deactivation, recorded in ``agency_changes``);
- ``agency_changes``: every registry change, who and when; append-only;
- ``placements`` is rebuilt (it was never written) as the projection of
  ``PlacedWithAgency`` events, keyed by the event, with its recall; it names
  agencies of the policy's rotation list too, so it has no key to ``agencies``;
- ``agency_commissions``: the projection of ``CommissionAccrued`` events.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01

"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: Union[str, Sequence[str], None] = "0007"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

PROTECTED = "collectflow: history is append-only"
FIXED = ("agency_id", "name", "licence_no", "capacity", "commission_rates", "registered_by", "registered_at")


def _fixed_changed(sqlite: bool) -> str:
    if sqlite:
        return " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in FIXED)
    # json has no equality operator on PostgreSQL: compare its text
    return " OR ".join(
        f"OLD.{c}::text IS DISTINCT FROM NEW.{c}::text" if c == "commission_rates" else f"OLD.{c} IS DISTINCT FROM NEW.{c}"
        for c in FIXED
    )


RULES = (
    ("agencies", "DELETE", None),
    ("agencies", "UPDATE", "fixed"),
    ("agency_changes", "UPDATE", None),
    ("agency_changes", "DELETE", None),
)


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.drop_index("ix_placements_case_id", table_name="placements")
    op.drop_index("ix_placements_agency_id", table_name="placements")
    op.drop_table("placements")
    with op.batch_alter_table("agencies") as batch:
        batch.add_column(sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()))
        batch.add_column(sa.Column("registered_by", sa.String(), nullable=False, server_default="system"))
        batch.add_column(sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()))
    with op.batch_alter_table("agencies") as batch:
        batch.alter_column("active", server_default=None)
        batch.alter_column("registered_by", server_default=None)
        batch.alter_column("registered_at", server_default=None)
    op.create_table(
        "agency_changes",
        sa.Column("change_id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("change_id", name="pk_agency_changes"),
        sa.ForeignKeyConstraint(["agency_id"], ["agencies.agency_id"], name="fk_agency_changes_agency_id_agencies"),
    )
    op.create_index("ix_agency_changes_agency_id", "agency_changes", ["agency_id"])
    op.create_table(
        "placements",
        sa.Column("case_id", sa.String(), nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("agency_id", sa.String(), nullable=False),
        sa.Column("strategy", sa.String(), nullable=False),
        sa.Column("bucket", sa.String(), nullable=False),
        sa.Column("rate_group", sa.String(), nullable=False),
        sa.Column("commission_rate", sa.String(), nullable=False),
        sa.Column("balance_placed_fen", sa.BigInteger(), nullable=False),
        sa.Column("placed_on", sa.Date(), nullable=False),
        sa.Column("until", sa.Date(), nullable=False),
        sa.Column("recalled_on", sa.Date(), nullable=True),
        sa.Column("recall_reason", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("case_id", "seq", name="pk_placements"),
        sa.ForeignKeyConstraint(["case_id", "seq"], ["events.case_id", "events.seq"], name="fk_placements_case_id_events"),
    )
    op.create_index("ix_placements_agency_id", "placements", ["agency_id"])
    op.create_index("ix_placements_placed_on", "placements", ["placed_on"])
    op.create_table(
        "agency_commissions",
        sa.Column("case_id", sa.String(), nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("placed_seq", sa.Integer(), nullable=False),
        sa.Column("agency_id", sa.String(), nullable=False),
        sa.Column("payment_id", sa.String(), nullable=False),
        sa.Column("recovered_fen", sa.BigInteger(), nullable=False),
        sa.Column("commission_rate", sa.String(), nullable=False),
        sa.Column("commission_fen", sa.BigInteger(), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("case_id", "seq", name="pk_agency_commissions"),
        sa.ForeignKeyConstraint(["case_id", "seq"], ["events.case_id", "events.seq"], name="fk_agency_commissions_case_id_events"),
    )
    op.create_index("ix_agency_commissions_agency_id", "agency_commissions", ["agency_id"])
    for table, action, condition in RULES:
        name = f"{table}_refuse_{action.lower()}"
        when_sql = None if condition is None else _fixed_changed(sqlite)
        if sqlite:
            when = "" if when_sql is None else f" WHEN {when_sql}"
            op.execute(
                f"CREATE TRIGGER {name} BEFORE {action} ON {table}{when} "
                f"BEGIN SELECT RAISE(ABORT, '{PROTECTED}: {action} on {table} refused'); END"
            )
        else:
            when = "" if when_sql is None else f" WHEN ({when_sql})"
            op.execute(f"CREATE TRIGGER {name} BEFORE {action} ON {table} FOR EACH ROW{when} EXECUTE FUNCTION history_protected()")


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table, action, _ in RULES:
        name = f"{table}_refuse_{action.lower()}"
        op.execute(f"DROP TRIGGER IF EXISTS {name}" if sqlite else f"DROP TRIGGER IF EXISTS {name} ON {table}")
    op.drop_table("agency_commissions")
    op.drop_table("placements")
    op.drop_table("agency_changes")
    with op.batch_alter_table("agencies") as batch:
        batch.drop_column("registered_at")
        batch.drop_column("registered_by")
        batch.drop_column("active")
    op.create_table(
        "placements",
        sa.Column("placement_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.String(), nullable=False),
        sa.Column("agency_id", sa.String(), nullable=False),
        sa.Column("placed_on", sa.Date(), nullable=False),
        sa.Column("until", sa.Date(), nullable=False),
        sa.Column("recalled_on", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("placement_id", name="pk_placements"),
        sa.ForeignKeyConstraint(["case_id"], ["cases.case_id"], name="fk_placements_case_id_cases"),
        sa.ForeignKeyConstraint(["agency_id"], ["agencies.agency_id"], name="fk_placements_agency_id_agencies"),
    )
    op.create_index("ix_placements_case_id", "placements", ["case_id"])
    op.create_index("ix_placements_agency_id", "placements", ["agency_id"])
