"""Protect the rows the history depends on, as the events are: payments, loans, borrowers, business days.

- ``payments``: no UPDATE or DELETE (a deleted row would free a bank
  transaction id to be credited twice);
- ``loans``: no UPDATE or DELETE (the terms every charge derives from);
- ``borrowers``: no DELETE, and no UPDATE of who the borrower is
  (``contract_no``, ``borrower_id``, ``national_id_hash``); contact details
  change only by a recorded amendment;
- ``business_days``: no DELETE (which dates were closed, and when).

Triggers stop accidents and anyone using the application's own role; the
production recipe runs the application under a role that owns none of these
tables, so it cannot disable them either (README: "Production").

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

"""

from __future__ import annotations

from typing import Sequence, Union

from alembic import op

revision: str = "0005"
down_revision: Union[str, Sequence[str], None] = "0004"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

PROTECTED = "collectflow: history is append-only"
IDENTITY = ("contract_no", "borrower_id", "national_id_hash")
# (table, action, the condition under which it is refused: None for always)
RULES = (
    ("payments", "UPDATE", None),
    ("payments", "DELETE", None),
    ("loans", "UPDATE", None),
    ("loans", "DELETE", None),
    ("borrowers", "DELETE", None),
    ("borrowers", "UPDATE", " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in IDENTITY)),
    ("business_days", "DELETE", None),
)


def _name(table: str, action: str) -> str:
    return f"{table}_refuse_{action.lower()}"


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if not sqlite:
        op.execute(
            f"""
            CREATE FUNCTION history_protected() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '{PROTECTED}: % on % refused', TG_OP, TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
            END
            $$
            """
        )
    for table, action, condition in RULES:
        name = _name(table, action)
        if sqlite:
            when = "" if condition is None else f" WHEN {condition.replace('IS DISTINCT FROM', 'IS NOT')}"
            op.execute(
                f"CREATE TRIGGER {name} BEFORE {action} ON {table}{when} "
                f"BEGIN SELECT RAISE(ABORT, '{PROTECTED}: {action} on {table} refused'); END"
            )
        else:
            when = "" if condition is None else f" WHEN ({condition})"
            op.execute(f"CREATE TRIGGER {name} BEFORE {action} ON {table} FOR EACH ROW{when} EXECUTE FUNCTION history_protected()")
    if not sqlite:
        for table in ("payments", "loans", "business_days"):
            op.execute(f"CREATE TRIGGER {table}_refuse_truncate BEFORE TRUNCATE ON {table} FOR EACH STATEMENT EXECUTE FUNCTION history_protected()")


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table, action, _ in RULES:
        name = _name(table, action)
        op.execute(f"DROP TRIGGER IF EXISTS {name}" if sqlite else f"DROP TRIGGER IF EXISTS {name} ON {table}")
    if not sqlite:
        for table in ("payments", "loans", "business_days"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_refuse_truncate ON {table}")
        op.execute("DROP FUNCTION IF EXISTS history_protected()")
