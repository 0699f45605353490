"""The case store: loans, cases, append-only hash-chained events, payments, LPR, policies,
agencies, placements, business days.

Revision ID: 0001
Revises:
Create Date: 2025-11-28

"""

from __future__ import annotations

from datetime import date
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

from states.caps import DEFAULT_LPR_ROWS

revision: str = "0001"
down_revision: Union[str, Sequence[str], None] = None
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

APPEND_ONLY = "events are append-only"


def _fen(name: str) -> sa.Column:
    return sa.Column(name, sa.BigInteger(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "loans",
        sa.Column("contract_no", sa.String(), nullable=False),
        sa.Column("case_id", sa.String(), nullable=False),
        sa.Column("borrower_id", sa.String(), nullable=False),
        _fen("principal_fen"),
        sa.Column("annual_rate", sa.String(), nullable=False),
        sa.Column("term_months", sa.Integer(), nullable=False),
        sa.Column("repayment_method", sa.String(), nullable=False),
        sa.Column("disbursed_on", sa.Date(), nullable=False),
        sa.Column("first_due_on", sa.Date(), nullable=False),
        sa.Column("day_count", sa.String(), nullable=False),
        sa.Column("penalty_uplift", sa.String(), nullable=False),
        sa.Column("compound_interest", sa.Boolean(), nullable=False),
        _fen("late_fee_fen"),
        sa.Column("late_fee_rate", sa.String(), nullable=False),
        sa.Column("cap_regime", sa.String(), nullable=False),
        sa.Column("contract_date", sa.Date(), nullable=False),
        sa.Column("terms_hash", sa.String(64), nullable=False),
        sa.Column("booked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("contract_no", name="pk_loans"),
        sa.UniqueConstraint("case_id", name="uq_loans_case_id"),
    )
    op.create_index("ix_loans_borrower_id", "loans", ["borrower_id"])

    op.create_table(
        "cases",
        sa.Column("case_id", sa.String(), nullable=False),
        sa.Column("contract_no", sa.String(), nullable=False),
        sa.Column("stage", sa.String(), nullable=False),
        sa.Column("dpd", sa.Integer(), nullable=False),
        sa.Column("bucket", sa.String(), nullable=False),
        sa.Column("classification", sa.String(), nullable=False),
        _fen("principal_outstanding_fen"),
        _fen("overdue_principal_fen"),
        _fen("contract_interest_due_fen"),
        _fen("penalty_interest_fen"),
        _fen("compound_interest_fen"),
        _fen("late_fees_fen"),
        _fen("costs_fen"),
        _fen("total_due_fen"),
        _fen("unenforceable_fen"),
        _fen("total_paid_fen"),
        _fen("overpayment_fen"),
        sa.Column("accrued_through", sa.Date(), nullable=False),
        sa.Column("reviewed_through", sa.Date(), nullable=False),
        sa.Column("next_review_on", sa.Date(), nullable=True),
        sa.Column("promise_until", sa.Date(), nullable=True),
        sa.Column("paused_until", sa.Date(), nullable=True),
        sa.Column("agency_id", sa.String(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
        sa.Column("snapshot", sa.Text(), nullable=False),
        sa.Column("stuck", sa.Boolean(), nullable=False),
        sa.Column("stuck_error", sa.Text(), nullable=True),
        sa.Column("stuck_on", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("case_id", name="pk_cases"),
        sa.UniqueConstraint("contract_no", name="uq_cases_contract_no"),
        sa.ForeignKeyConstraint(["contract_no"], ["loans.contract_no"], name="fk_cases_contract_no_loans"),
    )
    op.create_index("ix_cases_next_review_on", "cases", ["next_review_on"])

    op.create_table(
        "events",
        sa.Column("case_id", sa.String(), nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("type", sa.String(), nullable=False),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("case_id", "seq", name="pk_events"),
        sa.ForeignKeyConstraint(["case_id"], ["cases.case_id"], name="fk_events_case_id_cases"),
    )

    op.create_table(
        "payments",
        sa.Column("payment_id", sa.String(), nullable=False),
        sa.Column("case_id", sa.String(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        _fen("amount_fen"),
        sa.Column("received_on", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("payment_id", name="pk_payments"),
        sa.ForeignKeyConstraint(
            ["case_id", "seq"], ["events.case_id", "events.seq"], name="fk_payments_case_id_events"
        ),
    )
    op.create_index("ix_payments_case_id", "payments", ["case_id"])

    lpr_fixings = op.create_table(
        "lpr_fixings",
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("rate_percent", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("effective_from", name="pk_lpr_fixings"),
    )
    op.bulk_insert(
        lpr_fixings,
        [{"effective_from": date.fromisoformat(day), "rate_percent": rate} for day, rate in DEFAULT_LPR_ROWS],
    )

    op.create_table(
        "policies",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("version", name="pk_policies"),
        sa.UniqueConstraint("fingerprint", name="uq_policies_fingerprint"),
    )

    op.create_table(
        "agencies",
        sa.Column("agency_id", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("licence_no", sa.String(), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("commission_rates", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("agency_id", name="pk_agencies"),
    )

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

    op.create_table(
        "business_days",
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cases_advanced", sa.Integer(), nullable=False),
        sa.Column("stuck", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("business_date", name="pk_business_days"),
        sa.CheckConstraint("status IN ('running', 'closed', 'failed')", name="ck_business_days_status"),
    )

    _create_append_only_triggers()


def _create_append_only_triggers() -> None:
    """The database itself refuses to change or remove a stored event, whoever asks."""
    if op.get_bind().dialect.name == "sqlite":
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER events_refuse_{action.lower()} BEFORE {action} ON events "
                f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}: {action} refused'); END"
            )
        return
    # restrict_violation (23001): an integrity error, as on SQLite
    op.execute(
        f"""
        CREATE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '{APPEND_ONLY}: % refused', TG_OP USING ERRCODE = 'restrict_violation';
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER events_refuse_update_delete BEFORE UPDATE OR DELETE ON events "
        "FOR EACH ROW EXECUTE FUNCTION events_append_only()"
    )
    op.execute(
        "CREATE TRIGGER events_refuse_truncate BEFORE TRUNCATE ON events "
        "FOR EACH STATEMENT EXECUTE FUNCTION events_append_only()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS events_refuse_update")
        op.execute("DROP TRIGGER IF EXISTS events_refuse_delete")
    else:
        op.execute("DROP TRIGGER IF EXISTS events_refuse_truncate ON events")
        op.execute("DROP TRIGGER IF EXISTS events_refuse_update_delete ON events")
        op.execute("DROP FUNCTION IF EXISTS events_append_only()")
    for table in (
        "business_days",
        "placements",
        "agencies",
        "policies",
        "lpr_fixings",
        "payments",
        "events",
        "cases",
        "loans",
    ):
        op.drop_table(table)
