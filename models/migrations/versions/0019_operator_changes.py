"""``operator_changes``: every change of the operator roster, who made it, the role before and after.

Append-only as the other rows the audit depends on: UPDATE and DELETE are refused (and TRUNCATE on
PostgreSQL), and ``operators`` rows are never deleted either (the history names them). A change is
written in the transaction that makes it (``models.reference``); folded in ``change_id`` order the
history gives the roster.

A store upgraded with operators already on its roster gets one ``already_on_roster`` row for each,
by ``system`` at the upgrade: its role and whether it was active then, nothing of how it got there
(that was never recorded, and a made-up ``added`` row would say more than is known).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-05

"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: Union[str, Sequence[str], None] = "0018"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

PROTECTED = "collectflow: history is append-only"
ROLES = "('collector', 'supervisor', 'auditor')"
RULES = (("operator_changes", "UPDATE"), ("operator_changes", "DELETE"), ("operators", "DELETE"))


def upgrade() -> None:
    table = op.create_table(
        "operator_changes",
        sa.Column("change_id", sa.Integer(), nullable=False),
        sa.Column("operator_id", sa.String(), nullable=False),
        sa.Column("change", sa.String(), nullable=False),
        sa.Column("role_before", sa.String(), nullable=True),
        sa.Column("role_after", sa.String(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "change IN ('added', 'role_changed', 'deactivated', 'reactivated', 'already_on_roster')",
            name="ck_operator_changes_change",
        ),
        sa.CheckConstraint(f"role_before IN {ROLES}", name="ck_operator_changes_role_before"),
        sa.CheckConstraint(f"role_after IN {ROLES}", name="ck_operator_changes_role_after"),
        sa.PrimaryKeyConstraint("change_id", name="pk_operator_changes"),
        sa.ForeignKeyConstraint(["operator_id"], ["operators.operator_id"], name="fk_operator_changes_operator_id_operators"),
    )
    op.create_index("ix_operator_changes_operator_id", "operator_changes", ["operator_id"])
    bind = op.get_bind()
    now = datetime.now(timezone.utc)
    known = bind.execute(sa.text("SELECT operator_id, role, active FROM operators ORDER BY operator_id")).all()
    op.bulk_insert(table, [
        {"operator_id": operator_id, "change": "already_on_roster", "role_before": None, "role_after": role,
         "active": bool(active), "actor": "system", "recorded_at": now}
        for operator_id, role, active in known
    ])
    sqlite = bind.dialect.name == "sqlite"
    for name, action in RULES:
        trigger = f"{name}_refuse_{action.lower()}"
        if sqlite:
            op.execute(f"CREATE TRIGGER {trigger} BEFORE {action} ON {name} BEGIN SELECT RAISE(ABORT, '{PROTECTED}: {action} on {name} refused'); END")
        else:  # history_protected() is migration 0005's
            op.execute(f"CREATE TRIGGER {trigger} BEFORE {action} ON {name} FOR EACH ROW EXECUTE FUNCTION history_protected()")
    if not sqlite:
        op.execute("CREATE TRIGGER operator_changes_refuse_truncate BEFORE TRUNCATE ON operator_changes FOR EACH STATEMENT EXECUTE FUNCTION history_protected()")


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.execute("DROP TRIGGER IF EXISTS operators_refuse_delete" if sqlite else "DROP TRIGGER IF EXISTS operators_refuse_delete ON operators")
    op.drop_table("operator_changes")  # its triggers go with it
