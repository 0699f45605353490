"""LoanTerms is the one list of contract terms: its plain record, read back, and every other
list of terms (the opening event, the loans table) checked against it."""

from __future__ import annotations

import json
from dataclasses import fields
from datetime import date
from decimal import Decimal

from states.borrower import BorrowerDetails, check_character
from states.defaults import DEFAULT_PENALTY_UPLIFT, DEFAULT_TIMEZONE
from states.events import CaseOpened, Event
from states.loan import TERM_FIELDS, LoanTerms, term_value
from states.policy import CollectionPolicy


def a_loan(**overrides) -> LoanTerms:
    values = dict(
        contract_no="HT-000001", borrower_id="B000001", principal=Decimal("12000.00"), annual_rate=Decimal("0.18"),
        term_months=12, repayment_method="equal_installment", disbursed_on=date(2026, 9, 15),
        first_due_on=date(2026, 10, 15),
    )
    return LoanTerms(**{**values, **overrides})


def test_the_terms_are_the_fields_of_loan_terms_less_the_derived_schedule():
    assert TERM_FIELDS == tuple(f.name for f in fields(LoanTerms) if f.name not in ("schedule", "plan_imported"))
    assert TERM_FIELDS[:2] == ("contract_no", "borrower_id") and "schedule" not in TERM_FIELDS


def test_the_record_holds_plain_json_values_and_reads_back_to_the_same_terms():
    terms = a_loan(day_count="ACT/365", compound_interest=True, late_fee="30", cap_regime="private")
    record = terms.record()
    assert list(record) == list(TERM_FIELDS)
    assert record == {
        "contract_no": "HT-000001", "borrower_id": "B000001", "principal": "12000.00", "annual_rate": "0.18",
        "term_months": 12, "repayment_method": "equal_installment", "disbursed_on": "2026-09-15",
        "first_due_on": "2026-10-15", "day_count": "ACT/365", "schedule_interest": "monthly", "penalty_uplift": "0.5", "compound_interest": True,
        "late_fee": "30.00", "late_fee_rate": "0.00", "cap_regime": "private", "contract_date": "2026-09-15",
    }
    assert json.loads(json.dumps(record)) == record
    again = LoanTerms.from_record(record)
    assert again == terms and again.record() == record and again.schedule == terms.schedule


def test_a_term_value_is_read_from_its_plain_or_stored_form():
    assert term_value("annual_rate", "0.180") == Decimal("0.18")
    assert term_value("disbursed_on", "2026-09-15") == date(2026, 9, 15)
    assert term_value("compound_interest", 1) is True
    assert term_value("term_months", 12) == 12 and term_value("contract_date", None) is None


def test_the_opening_event_carries_the_terms_under_the_same_names():
    """CaseOpened's payload is part of the hash chain and keeps its shape; its terms keep the names."""
    own = {f.name for f in fields(Event)} | {"cap_rate", "schedule", "plan_imported"}  # the envelope, and what the case derives
    carried = {f.name for f in fields(CaseOpened)} - own
    assert carried <= set(TERM_FIELDS), carried - set(TERM_FIELDS)
    assert set(TERM_FIELDS) - carried == {"term_months", "first_due_on"}  # both are in the schedule


def test_each_default_is_written_once():
    assert a_loan().penalty_uplift == DEFAULT_PENALTY_UPLIFT == CollectionPolicy().penalty_uplift
    assert BorrowerDetails("张伟", "11010119900307123" + check_character("11010119900307123"), "13812340001").timezone == DEFAULT_TIMEZONE
