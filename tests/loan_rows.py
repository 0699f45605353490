"""A valid row of the loan file, for the unit tests of its rules and the integration tests of the import."""

from __future__ import annotations

from states.borrower import check_character


def an_id(first17: str = "11010119900307123") -> str:
    return first17 + check_character(first17)


def row(n: int = 1, **overrides) -> dict[str, str]:
    """A valid row of the loan file: contract HT-000n, disbursed 2026-09-15, 12 equal installments."""
    values = {
        "contract_no": f"HT-{n:06d}",
        "borrower_id": f"B{n:06d}",
        "principal": "12000.00",
        "annual_rate": "0.18",
        "term_months": "12",
        "repayment_method": "equal_installment",
        "disbursed_on": "2026-09-15",
        "first_due_on": "2026-10-15",
        "borrower_name": "张伟",
        "national_id": an_id(f"11010119900307{n % 1000:03d}"),
        "phone": f"1381234{n % 10000:04d}",
        "address": "北京市东城区东长安街1号",
    }
    values.update(overrides)
    return values
