"""Borrowers: each loan's personal data, encrypted and masked, with the national id's match hash.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28

"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: Union[str, Sequence[str], None] = "0001"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

PERSONAL = ("borrower_name", "national_id", "phone", "address", "guarantor_name", "guarantor_phone")
REQUIRED = ("borrower_name", "national_id", "phone")


def upgrade() -> None:
    personal_columns = []
    for name in PERSONAL:
        nullable = name not in REQUIRED
        personal_columns += [
            sa.Column(f"{name}_enc", sa.Text(), nullable=nullable),
            sa.Column(f"{name}_masked", sa.String(), nullable=nullable),
        ]
    op.create_table(
        "borrowers",
        sa.Column("contract_no", sa.String(), nullable=False),
        sa.Column("borrower_id", sa.String(), nullable=False),
        sa.Column("national_id_hash", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(16), nullable=False),
        *personal_columns,
        sa.Column("timezone", sa.String(), nullable=False),
        sa.Column("details_hash", sa.String(64), nullable=False),
        sa.Column("booked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("amended_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("contract_no", name="pk_borrowers"),
        sa.ForeignKeyConstraint(["contract_no"], ["loans.contract_no"], name="fk_borrowers_contract_no_loans"),
    )
    op.create_index("ix_borrowers_borrower_id", "borrowers", ["borrower_id"])
    op.create_index("ix_borrowers_national_id_hash", "borrowers", ["national_id_hash"])


def downgrade() -> None:
    op.drop_table("borrowers")
