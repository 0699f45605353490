"""The import-loans deployment takes the plans and the payment history beside the loan file."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from flows.import_loans import LoanImport, import_loans
from tests.integration.test_loanbook import write_csv
from tests.integration.test_loanbook_beside import BUSINESS_DATE, HISTORY, PLAN_COLUMNS, loans, plan_rows


def test_the_deployment_books_an_imported_plan_and_a_history(store, tmp_path, monkeypatch):
    monkeypatch.setenv("COLLECTFLOW_SECRET_KEY", "flow-tests-secret-key-0123456789-abcdef")
    loan_file = write_csv(tmp_path / "loans.csv", loans(3))
    plans = write_csv(tmp_path / "plans.csv", plan_rows("HT-000003"), PLAN_COLUMNS)
    history = write_csv(tmp_path / "history.csv", HISTORY)
    result = import_loans(LoanImport(file=str(loan_file), operator="op-import", business_date=BUSINESS_DATE,
                                     schedules=str(plans), payments=str(history)))
    assert (result["booked"], result["rejected"]) == (3, 0)
    assert (result["schedules"]["contracts"], result["payments"]["used"]) == (1, 8)
    assert store.load_one("HT-000003").plan_basis() == "plan as imported from the core lending system"
    paid = store.case_row("C-HT-000001").projection
    assert (paid.stage, paid.total_paid, paid.dpd(BUSINESS_DATE)) == ("current", Decimal("5500.80"), 0)
    assert BUSINESS_DATE == date(2026, 7, 10)
