"""Key rotations: the audit row of each personal-data key rotation, and the one exception to the
borrowers' immutable identity that a rotation needs.

A rotation re-keys every ``borrowers`` row in one transaction: each personal
value re-encrypted, ``details_hash`` and the national id's match hash
(``national_id_hash``) recomputed under the new key, ``key_id`` set to it.
``national_id_hash`` is an identity column (0005 refuses its UPDATE), so:

- ``key_rotations`` records each rotation (from and to key id, operator,
  business date, when, how many rows); it is inserted ``running`` at the
  start of the rotation's transaction and set ``done`` at its end, never
  deleted, and a row may only go from running to done;
- ``borrowers``' UPDATE trigger still refuses any change of ``contract_no``
  or ``borrower_id``, and refuses a change of ``national_id_hash`` unless a
  rotation *to the row's new key id* is running (so only inside the
  rotation's own transaction, and only together with the re-key);
- a ``borrowers`` row may not be written (INSERT or UPDATE) under a key id
  that a done rotation retired: a worker still holding the old key is
  refused rather than writing match hashes nobody can look up.

Also: ``business_days.previous_business_date``, the date closed before this
one when this one was first recorded (NULL for the first, and for rows older
than this migration), so that ``verify`` tells a date skipped by an explicit
close (``advance --date``) from a row deleted since.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01

"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: Union[str, Sequence[str], None] = "0010"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

PROTECTED = "collectflow: history is append-only"
RETIRED = "collectflow: a borrowers row under a retired key is refused"
# 0005's trigger, restored by the downgrade
OLD_IDENTITY = ("contract_no", "borrower_id", "national_id_hash")
RUNNING_TO_NEW_KEY = "EXISTS (SELECT 1 FROM key_rotations r WHERE r.status = 'running' AND r.to_key_id = NEW.key_id)"
RETIRED_KEY = "EXISTS (SELECT 1 FROM key_rotations r WHERE r.status = 'done' AND r.from_key_id = NEW.key_id)"


def upgrade() -> None:
    op.create_table(
        "key_rotations",
        sa.Column("rotation_id", sa.Integer(), nullable=False),
        sa.Column("from_key_id", sa.String(16), nullable=False),
        sa.Column("to_key_id", sa.String(16), nullable=False),
        sa.Column("operator", sa.String(), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("borrowers_rekeyed", sa.Integer(), nullable=False),
        sa.CheckConstraint("status IN ('running', 'done')", name="ck_key_rotations_status"),
        sa.PrimaryKeyConstraint("rotation_id", name="pk_key_rotations"),
    )
    op.add_column("business_days", sa.Column("previous_business_date", sa.Date(), nullable=True))
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        op.execute("DROP TRIGGER borrowers_refuse_update")
        op.execute(
            "CREATE TRIGGER borrowers_refuse_update BEFORE UPDATE ON borrowers WHEN "
            "OLD.contract_no IS NOT NEW.contract_no OR OLD.borrower_id IS NOT NEW.borrower_id "
            f"OR (OLD.national_id_hash IS NOT NEW.national_id_hash AND NOT {RUNNING_TO_NEW_KEY}) "
            f"BEGIN SELECT RAISE(ABORT, '{PROTECTED}: UPDATE on borrowers refused'); END"
        )
        for action in ("INSERT", "UPDATE"):
            op.execute(
                f"CREATE TRIGGER borrowers_refuse_{action.lower()}_retired_key BEFORE {action} ON borrowers WHEN {RETIRED_KEY} "
                f"BEGIN SELECT RAISE(ABORT, '{RETIRED}: reload the active key (collectflow keys status)'); END"
            )
        op.execute(
            "CREATE TRIGGER key_rotations_refuse_delete BEFORE DELETE ON key_rotations "
            f"BEGIN SELECT RAISE(ABORT, '{PROTECTED}: DELETE on key_rotations refused'); END"
        )
        op.execute(
            "CREATE TRIGGER key_rotations_refuse_update BEFORE UPDATE ON key_rotations WHEN NOT "
            "(OLD.status = 'running' AND NEW.status = 'done' AND OLD.rotation_id = NEW.rotation_id "
            "AND OLD.from_key_id = NEW.from_key_id AND OLD.to_key_id = NEW.to_key_id AND OLD.operator = NEW.operator) "
            f"BEGIN SELECT RAISE(ABORT, '{PROTECTED}: UPDATE on key_rotations refused'); END"
        )
        return
    op.execute("DROP TRIGGER borrowers_refuse_update ON borrowers")
    op.execute(
        f"""
        CREATE FUNCTION borrowers_guarded() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF {RETIRED_KEY} THEN
                RAISE EXCEPTION '{RETIRED}: contract %, key id %; reload the active key (collectflow keys status)',
                    NEW.contract_no, NEW.key_id USING ERRCODE = 'restrict_violation';
            END IF;
            IF TG_OP = 'UPDATE' AND (
                OLD.contract_no IS DISTINCT FROM NEW.contract_no OR OLD.borrower_id IS DISTINCT FROM NEW.borrower_id
                OR (OLD.national_id_hash IS DISTINCT FROM NEW.national_id_hash AND NOT {RUNNING_TO_NEW_KEY})
            ) THEN
                RAISE EXCEPTION '{PROTECTED}: UPDATE on borrowers refused' USING ERRCODE = 'restrict_violation';
            END IF;
            RETURN NEW;
        END
        $$
        """
    )
    op.execute(
        f"""
        CREATE FUNCTION key_rotations_guarded() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'UPDATE' AND OLD.status = 'running' AND NEW.status = 'done' AND OLD.rotation_id = NEW.rotation_id
               AND OLD.from_key_id = NEW.from_key_id AND OLD.to_key_id = NEW.to_key_id AND OLD.operator = NEW.operator THEN
                RETURN NEW;
            END IF;
            RAISE EXCEPTION '{PROTECTED}: % on key_rotations refused', TG_OP USING ERRCODE = 'restrict_violation';
        END
        $$
        """
    )
    op.execute("CREATE TRIGGER borrowers_refuse_update BEFORE UPDATE ON borrowers FOR EACH ROW EXECUTE FUNCTION borrowers_guarded()")
    op.execute("CREATE TRIGGER borrowers_refuse_insert_retired_key BEFORE INSERT ON borrowers FOR EACH ROW EXECUTE FUNCTION borrowers_guarded()")
    for action in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER key_rotations_refuse_{action.lower()} BEFORE {action} ON key_rotations "
            "FOR EACH ROW EXECUTE FUNCTION key_rotations_guarded()"
        )
    op.execute("CREATE TRIGGER key_rotations_refuse_truncate BEFORE TRUNCATE ON key_rotations FOR EACH STATEMENT EXECUTE FUNCTION history_protected()")


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    identity = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in OLD_IDENTITY)
    if sqlite:
        for name in ("borrowers_refuse_update", "borrowers_refuse_insert_retired_key", "borrowers_refuse_update_retired_key"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute(
            f"CREATE TRIGGER borrowers_refuse_update BEFORE UPDATE ON borrowers WHEN {identity.replace('IS DISTINCT FROM', 'IS NOT')} "
            f"BEGIN SELECT RAISE(ABORT, '{PROTECTED}: UPDATE on borrowers refused'); END"
        )
    else:
        op.execute("DROP TRIGGER IF EXISTS borrowers_refuse_update ON borrowers")
        op.execute("DROP TRIGGER IF EXISTS borrowers_refuse_insert_retired_key ON borrowers")
        op.execute("DROP FUNCTION IF EXISTS borrowers_guarded()")
        op.execute(
            f"CREATE TRIGGER borrowers_refuse_update BEFORE UPDATE ON borrowers FOR EACH ROW WHEN ({identity}) "
            "EXECUTE FUNCTION history_protected()"
        )
    op.drop_table("key_rotations")
    if not sqlite:
        op.execute("DROP FUNCTION IF EXISTS key_rotations_guarded()")
        op.drop_column("business_days", "previous_business_date")
    else:
        op.execute("ALTER TABLE business_days DROP COLUMN previous_business_date")
