"""The schedule file's columns and rules: a repayment plan as the core lending system states it.

One row per installment: ``contract_no, installment, due_on, principal,
interest``. ``parse_row`` checks a row column by column and returns a
``PlanRow``; ``check_plan`` then checks one contract's rows against its
terms: installments 1 to ``term_months`` once each, due dates increasing
(the first after disbursement), and the principal summing exactly to the
loan. Every problem is a ``RowError`` naming the row, the column, the value
and what is accepted. A plan that passes replaces the computed schedule
(``LoanTerms.with_plan``): the case posts its interest and explains "plan as
imported".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from states.loan import CODE, CODE_RULE, LoanTerms
from states.parse import parse_code, parse_date, parse_int, parse_money
from states.rows import Bad, Column, RowCheck, RowError, RowRejected, parsed  # noqa: F401  (callers catch RowRejected from here)
from states.schedule import MAX_TERM_MONTHS, Installment


def _code(text: str, column: str) -> str:
    code = parsed(lambda: parse_code(text, column, max_chars=64), text, column)
    if not CODE.fullmatch(code):
        raise Bad("has characters other than letters, digits and - _ . /")
    return code


def _number(text: str, column: str) -> int:
    number = parsed(lambda: parse_int(text, column), text, column)
    if not 1 <= number <= MAX_TERM_MONTHS:
        raise Bad(f"is not between 1 and {MAX_TERM_MONTHS}")
    return number


def _amount(text: str, column: str) -> Decimal:
    return parsed(lambda: parse_money(text, column, positive=False), text, column)


def _date(text: str, column: str) -> date:
    return parsed(lambda: parse_date(text, column), text, column)


COLUMNS: tuple[Column, ...] = (
    Column("contract_no", True, None, f"{CODE_RULE}; a contract of the loan file", _code),
    Column("installment", True, None, "the installment's number, 1 to the contract's term_months, each once", _number),
    Column("due_on", True, None, "a date YYYY-MM-DD, after the previous installment's (the first after disbursed_on)", _date),
    Column("principal", True, None, "principal in yuan, 0 or more, at most two decimals; a contract's rows sum to its principal", _amount),
    Column("interest", True, None, "interest in yuan, 0 or more, at most two decimals", _amount),
)
COLUMN = {c.name: c for c in COLUMNS}
REQUIRED = tuple(c.name for c in COLUMNS)


@dataclass(frozen=True)
class PlanRow:
    """One good row: its number in the file and the installment it states."""

    row: int
    contract_no: str
    installment: Installment


def parse_row(raw: Mapping[str, object], row: int) -> PlanRow:
    """One row checked column by column; ``RowRejected`` lists every problem found."""
    check = RowCheck(raw, row, COLUMNS, lambda column, text: text)
    check.done()
    v = check.values
    return PlanRow(row, v["contract_no"], Installment(v["installment"], v["due_on"], v["principal"], v["interest"]))


def check_plan(terms: LoanTerms, rows: Sequence[PlanRow]) -> tuple[Installment, ...]:
    """One contract's rows as its plan, or ``RowRejected`` naming each row that breaks a rule."""
    errors: list[RowError] = []

    def refuse(row: PlanRow, column: str, shown: object, problem: str) -> None:
        errors.append(RowError(row.row, column, str(shown), problem, COLUMN[column].accepted))

    by_number: dict[int, PlanRow] = {}
    for row in rows:
        number = row.installment.number
        if number > terms.term_months:
            refuse(row, "installment", number, f"is above contract {terms.contract_no}'s term_months {terms.term_months}")
        elif number in by_number:
            refuse(row, "installment", number, f"is given twice for contract {terms.contract_no} (also row {by_number[number].row})")
        else:
            by_number[number] = row
    missing = [n for n in range(1, terms.term_months + 1) if n not in by_number]
    if missing:
        last = rows[-1]
        shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
        refuse(last, "installment", shown, f"are missing from contract {terms.contract_no}'s plan (every installment or none)")
    ordered = [by_number[n] for n in sorted(by_number)]
    previous, previous_name = terms.disbursed_on, f"disbursed_on {terms.disbursed_on}"
    for row in ordered:
        if row.installment.due_on <= previous:
            refuse(row, "due_on", row.installment.due_on, f"is not after {previous_name}")
        previous, previous_name = row.installment.due_on, f"installment {row.installment.number}'s {row.installment.due_on}"
    total = sum((r.installment.principal for r in ordered), Decimal(0))
    if not missing and total != terms.principal:
        last = ordered[-1]
        refuse(last, "principal", last.installment.principal,
               f"makes contract {terms.contract_no}'s principal sum to {total}, not the loan's {terms.principal}")
    if errors:
        raise RowRejected(errors)
    return tuple(r.installment for r in ordered)
