"""The loan file's row rules (``states.loanfile``): every column's check names the row, the column,
the value (masked when personal) and what is accepted; the defaults are the documented ones."""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from states.borrower import BorrowerDetails, check_character
from states.caps import DEFAULT_LPR_TABLE
from states.loan import TERM_FIELDS
from states.loanfile import (
    COLUMNS,
    FINANCIAL,
    PERSONAL,
    REQUIRED,
    LoanRecord,
    RowRejected,
    check_record,
    financial_differences,
    parse_row,
)
from tests.loan_rows import an_id, row

ROOT = Path(__file__).resolve().parents[2]
TODAY = date(2026, 11, 28)
PERSONAL_COLUMNS = ("borrower_name", "national_id", "phone", "address", "guarantor_name", "guarantor_phone")


RULES = [
    ("contract_no", "HT 0001", "contains spaces; an id is one word"),
    ("contract_no", "HT#0001", "has characters other than letters, digits and - _ . /"),
    ("borrower_id", "B" * 65, "is refused: 65 characters is more than the 64 accepted"),
    ("borrower_id", "", "is missing (required)"),
    ("principal", "0", "must be a positive amount"),
    ("principal", "12000.005", "has more than two decimal places"),
    ("principal", "12,34", "is not a number"),
    ("principal", "１２０００", "is not a number"),
    ("principal", "twelve", "is not a number"),
    ("annual_rate", "1.8", "is 1 or more: it would be 180 %"),
    ("annual_rate", "18%", "is a percentage"),
    ("annual_rate", "-0.1", "is negative"),
    ("term_months", "12.5", "is not a whole number"),
    ("term_months", "12.0", "is not a whole number"),
    ("term_months", "361", "is not between 1 and 360"),
    ("repayment_method", "balloon", "is not one of equal_installment, equal_principal, interest_first"),
    ("disbursed_on", "2026/09/15", "is not a date; use YYYY-MM-DD"),
    ("disbursed_on", "20260915", "is not a date; use YYYY-MM-DD"),
    ("disbursed_on", "2026-11-29", "is after the import's business date 2026-11-28"),
    ("first_due_on", "2026-09-10", "is not after disbursed_on 2026-09-15"),
    ("first_due_on", "2026-11-30", "is 76 days after disbursed_on"),
    ("borrower_name", "张3", "contains a digit"),
    ("national_id", "11010119900307123", "has 17 characters, not 18"),
    ("national_id", "110101199003071230" if check_character("11010119900307123") != "0" else "110101199003071231", "fails its checksum"),
    ("national_id", an_id("11010120100307123"), "under 18 on the contract date"),
    ("phone", "", "is missing (required)"),
    ("phone", "1381234123", "has 10 digits, not 11"),
    ("phone", "02112345678", "does not start 13-19"),
    ("day_count", "30/360", "is not one of ACT/360, ACT/365"),
    ("penalty_uplift", "11", "is above 10"),
    ("compound_interest", "maybe", "is neither true nor false"),
    ("late_fee", "-5", "must not be negative"),
    ("late_fee", "5.001", "has more than two decimal places"),
    ("late_fee_rate", "1", "is 1 or more"),
    ("cap_regime", "usury", "is not one of licensed, private, legacy_2015"),
    ("cap_regime", "legacy_2015", "cannot apply: regime legacy_2015 applies only to contracts signed before 2020-08-20"),
    ("contract_date", "2026-09-20", "is after disbursed_on 2026-09-15"),
    ("guarantor_name", "李", "has 1 characters"),
    ("guarantor_phone", "13998765432", "is given without guarantor_name"),
    ("address", "北京\n东城区长安街", "contains a control character"),
    ("timezone", "Beijing", "is not an IANA time zone name"),
]


@pytest.mark.parametrize("column, value, problem", RULES, ids=[f"{c}:{p[:24]}" for c, _, p in RULES])
def test_every_rule_names_the_row_the_column_the_value_and_what_is_accepted(column, value, problem):
    given = row(**{column: value})
    if column == "disbursed_on" and "business date" in problem:
        given["first_due_on"] = "2026-12-29"
    with pytest.raises(RowRejected) as caught:
        parse_row(given, 42, TODAY, DEFAULT_LPR_TABLE)
    (error,) = caught.value.errors
    assert (error.row, error.column) == (42, column)
    assert problem in error.problem, str(error)
    message = str(error)
    assert message.startswith(f"row 42, column {column}: ") and "; accepted: " in message
    if column in PERSONAL_COLUMNS and value:
        assert value not in message  # personal values are shown masked


def test_a_guarantor_phone_may_not_be_the_borrowers_own():
    with pytest.raises(RowRejected, match="is the borrower's own phone"):
        parse_row(row(guarantor_name="李四", guarantor_phone="13812340001"), 2, TODAY, DEFAULT_LPR_TABLE)


def test_a_row_with_many_problems_lists_them_all():
    with pytest.raises(RowRejected) as caught:
        parse_row(row(annual_rate="1.8", phone="", repayment_method="x"), 9, TODAY, DEFAULT_LPR_TABLE)
    assert [e.column for e in caught.value.errors] == ["annual_rate", "repayment_method", "phone"]


def test_optional_columns_take_their_documented_defaults():
    record = parse_row(row(), 2, TODAY, DEFAULT_LPR_TABLE)
    t = record.terms
    assert (t.day_count.value, t.penalty_uplift, t.compound_interest, t.late_fee, t.cap_regime.value, t.contract_date) == (
        "ACT/360", Decimal("0.5"), False, Decimal("0.00"), "licensed", date(2026, 9, 15)
    )
    assert (record.borrower.guarantor_name, record.borrower.timezone) == (None, "Asia/Shanghai")
    assert {c.name: c.default for c in COLUMNS if not c.required} == {
        "day_count": "ACT/360", "schedule_interest": "monthly", "penalty_uplift": "0.5", "compound_interest": "false",
        "late_fee": "0", "late_fee_rate": "0", "cap_regime": "licensed", "contract_date": "disbursed_on", "guarantor_name": "none",
        "guarantor_phone": "none", "address": "none", "timezone": "Asia/Shanghai",
    }


def test_schedule_interest_is_monthly_by_default_or_actual_days_and_nothing_else():
    monthly = parse_row(row(), 2, TODAY, DEFAULT_LPR_TABLE).terms
    assert monthly.schedule_interest.value == "monthly"
    assert monthly.schedule[1].interest == Decimal("166.20")  # 11,079.84 x 18 % / 12 = 166.1976
    terms = parse_row(row(schedule_interest="actual_days"), 2, TODAY, DEFAULT_LPR_TABLE).terms
    assert terms.schedule_interest.value == "actual_days"
    assert terms.schedule[1].interest == Decimal("171.74")  # Oct 15 -> Nov 15: 11,079.84 x 18 % x 31 / 360 = 171.7375
    with pytest.raises(RowRejected) as rejected:
        parse_row(row(schedule_interest="daily"), 7, TODAY, DEFAULT_LPR_TABLE)
    (error,) = rejected.value.errors
    assert str(error).startswith("row 7, column schedule_interest: 'daily' ")
    assert "monthly" in str(error) and "actual_days" in str(error)


def test_chinese_method_names_other_cases_and_yes_no_are_understood():
    record = parse_row(row(repayment_method="等额本金", compound_interest="是"), 2, TODAY, DEFAULT_LPR_TABLE)
    assert record.terms.repayment_method.value == "equal_principal" and record.terms.compound_interest
    for given, method in (("等额本息", "equal_installment"), ("先息后本", "interest_first"), ("Equal_Principal", "equal_principal")):
        assert parse_row(row(repayment_method=given), 2, TODAY, DEFAULT_LPR_TABLE).terms.repayment_method.value == method
    assert parse_row(row(day_count="act/365"), 2, TODAY, DEFAULT_LPR_TABLE).terms.day_count.value == "ACT/365"


def test_one_value_has_one_spelling():
    """0.180 and 0.18 are one rate, 12000 and 12,000.00 one amount: the record (and so the terms hash) is the same."""
    plain = parse_row(row(), 2, TODAY, DEFAULT_LPR_TABLE)
    respelled = parse_row(row(annual_rate="0.180", principal="12,000", phone="+86 138-1234-0001"), 2, TODAY, DEFAULT_LPR_TABLE)
    assert respelled.terms.record() == plain.terms.record() and respelled.borrower == plain.borrower


def test_a_record_built_in_code_is_checked_by_the_rules_of_a_row():
    record = parse_row(row(), 2, TODAY, DEFAULT_LPR_TABLE)
    assert check_record(replace(record, case_id="CF-1"), TODAY, DEFAULT_LPR_TABLE) == replace(record, case_id="CF-1")
    built = LoanRecord(7, replace(record.terms, disbursed_on=date(2026, 11, 29), first_due_on=date(2026, 12, 29)), record.borrower)
    with pytest.raises(RowRejected) as caught:
        check_record(built, TODAY, DEFAULT_LPR_TABLE)
    assert [str(e) for e in caught.value.errors] == [
        "row 7, column disbursed_on: '2026-11-29' is after the import's business date 2026-11-28; "
        "accepted: a date YYYY-MM-DD, not after the import's business date"
    ]
    minor = replace(record.borrower, national_id=an_id("11010120100307123"))
    with pytest.raises(RowRejected, match="row 3, column national_id: '1101.*under 18 on the contract date"):
        check_record(LoanRecord(3, record.terms, minor), TODAY, DEFAULT_LPR_TABLE)


def test_the_columns_are_the_fields_of_the_terms_and_the_borrower():
    assert {c.name for c in COLUMNS} == set(TERM_FIELDS) | {f.name for f in fields(BorrowerDetails)}
    assert FINANCIAL == TERM_FIELDS[1:] and set(PERSONAL) <= {c.name for c in COLUMNS}
    assert REQUIRED == tuple(c.name for c in COLUMNS if c.required)
    assert [c.name for c in COLUMNS][:3] == ["contract_no", "borrower_id", "principal"]


def test_a_difference_in_the_financial_terms_is_named_booked_and_given():
    terms = parse_row(row(), 2, TODAY, DEFAULT_LPR_TABLE).terms
    booked = {**terms.record(), "annual_rate": "0.180", "compound_interest": 0}
    assert financial_differences(booked, terms) == []
    changed = replace(terms, principal=Decimal("15000.00"), compound_interest=True)
    assert financial_differences(terms.record(), changed) == [
        ("principal", "12000.00", "15000.00"), ("compound_interest", "false", "true"),
    ]


def test_the_readme_documents_every_column_and_its_default():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Loading your loan book"):]
    for column in COLUMNS:
        assert f"`{column.name}`" in section, column.name
    assert "docs/sample-loans.csv" in section and "collectflow loans import" in section and "borrower reveal" in section
