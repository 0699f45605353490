"""The schedule file's rules: each bad value named by row and column, then a contract's rows checked as a plan."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from states.planfile import RowRejected, check_plan, parse_row
from tests.unit.conftest import loan

D = Decimal


def plan_row(n: int, row: int | None = None, **overrides) -> dict[str, str]:
    values = {"contract_no": "HT-0001", "installment": str(n), "due_on": date(2024, 2 + n, 1).isoformat(),
              "principal": "2500.00", "interest": "150.00"}
    return {**values, **overrides}


TERMS = loan(term=4, method="equal_principal")  # 10,000.00 disbursed 2024-02-01, four installments


def rows(*raw):
    return [parse_row(r, i + 2) for i, r in enumerate(raw)]


def test_a_good_plan_is_the_installments_in_order():
    plan = check_plan(TERMS, rows(*(plan_row(n) for n in (2, 1, 4, 3))))
    assert [(i.number, i.due_on, i.principal) for i in plan] == [(n, date(2024, 2 + n, 1), D("2500.00")) for n in (1, 2, 3, 4)]
    assert TERMS.with_plan(plan).plan_imported and TERMS.with_plan(plan).schedule == plan


@pytest.mark.parametrize(("column", "value", "problem"), [
    ("installment", "0", "is not between 1 and 360"),
    ("due_on", "2024-13-01", ""),
    ("principal", "-1", ""),
    ("interest", "1.005", ""),
    ("contract_no", "HT 1", ""),
])
def test_a_bad_value_is_named_by_row_column_and_what_is_accepted(column, value, problem):
    with pytest.raises(RowRejected) as rejected:
        parse_row(plan_row(1, **{column: value}), 9)
    (error,) = rejected.value.errors
    assert str(error).startswith(f"row 9, column {column}: '{value}' {problem}") and "accepted: " in str(error)


def test_every_rule_of_a_plan_is_checked_and_each_problem_named():
    with pytest.raises(RowRejected) as rejected:
        check_plan(TERMS, rows(plan_row(1), plan_row(1), plan_row(3, due_on="2024-01-20"), plan_row(5)))
    problems = [str(e) for e in rejected.value.errors]
    assert problems[0].startswith("row 3, column installment: '1' is given twice for contract HT-0001 (also row 2)")
    assert problems[1].startswith("row 5, column installment: '5' is above contract HT-0001's term_months 4")
    assert problems[2].startswith("row 5, column installment: '2, 4' are missing from contract HT-0001's plan")
    assert problems[3].startswith("row 4, column due_on: '2024-01-20' is not after installment 1's 2024-03-01")


def test_the_principal_sums_exactly_to_the_loan():
    with pytest.raises(RowRejected, match="makes contract HT-0001's principal sum to 9999.99, not the loan's 10000.00"):
        check_plan(TERMS, rows(*(plan_row(n) for n in (1, 2, 3)), plan_row(4, principal="2499.99")))


def test_the_first_installment_falls_due_after_disbursement():
    with pytest.raises(RowRejected, match=r"row 2, column due_on: '2024-02-01' is not after disbursed_on 2024-02-01"):
        check_plan(TERMS, rows(plan_row(1, due_on="2024-02-01"), *(plan_row(n) for n in (2, 3, 4))))
