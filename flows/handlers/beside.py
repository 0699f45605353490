"""What a loan import may bring beside the loan file: the core system's repayment plans and its payment
history. Used by ``flows.handlers.loans.import_file``; no Prefect here.

    Beside(kind, path, ...)     the file read whole before the loan file (a plan or a history is
                                checked with its loan, so its rows are grouped by contract first);
                                each bad row goes to its own rejects file (beside it) with its problems
    plans.take(terms)           the contract's plan as imported (``states.planfile.check_plan``), or
                                None when the schedule file has no row for it
    history.take(contract_no)   the contract's past payments, in ``paid_on`` then file order

**A contract is whole or refused.** A plan is every installment or none, and
a history every payment: a contract with any refused row in either file is
not booked (its loan row is rejected naming the file and the rows), so no
loan is booked on a partial plan or with half its payments. A row whose
contract cannot be read stops the import before anything is booked. A row
whose contract is not in the loan file is rejected at the end.

A payment of the history whose ``payment_id`` is recorded already with the
same case, amount and date is unchanged (the same files imported again);
with anything else it is refused. A contract booked before takes no history
(record its later payments with ``collectflow payments import``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from flows.files import PaymentFile, PlanFile, RowFile, SourceRow
from flows.handlers.imports import FileReport, RowImport
from models.store import CaseStore
from states import paymentfile, planfile
from states.errors import UserError
from states.loan import LoanTerms
from states.loanfile import case_id_for
from states.paymentfile import PaymentRow
from states.planfile import PlanRow
from states.rows import RowRejected
from states.schedule import Installment


class BesideError(UserError):
    """A schedule or payment-history file that cannot be used."""


@dataclass
class BesideReport(FileReport):
    """What became of a schedule or history file's rows."""

    used: int = 0  # rows booked with their loan
    contracts: int = 0  # contracts booked with them

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "used": self.used, "contracts": self.contracts}


@dataclass
class _Rows:
    rows: list[tuple[Any, SourceRow]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # the messages of its rejected rows


class Beside:
    """One file beside the loan file, read whole and grouped by contract (see the module docstring)."""

    def __init__(
        self,
        kind: type[RowFile],
        path: str | Path,
        business_date: date,
        parse: Callable[[SourceRow], Any],
        option: str,
        *,
        encoding: str = "utf-8",
        rejects: str | Path | None = None,
    ):
        self.file = kind(Path(path), encoding)
        self.option = option
        self.report = BesideReport(self.file.path.name, business_date)
        self.reading = RowImport(self.file, rejects, self.report, BesideError)
        self.by_contract: dict[str, _Rows] = {}
        self._refused = 0
        for source in self.reading.rows():
            contract = str((source.values or {}).get("contract_no") or "").strip()
            try:
                parsed = parse(source)
            except RowRejected as rejected:
                if not contract:
                    self._stop(source.row, "; ".join(map(str, rejected.errors)))
                self.refuse(contract, source, "; ".join(map(str, rejected.errors)))
                continue
            self.by_contract.setdefault(contract, _Rows()).rows.append((parsed, source))
        if self.report.rejected > self._refused:  # an unreadable row: whose contract is unknown
            self._stop(None, self.report.rejections[0])

    def _stop(self, row: int | None, reason: str) -> None:
        self.reading.close()
        where = f"row {row}: " if row is not None and not reason.startswith("row ") else ""
        raise BesideError(
            f"{self.option} {self.file.path.name}: {where}{reason}; a row whose contract cannot be read "
            f"stops the import (a plan or a history is booked whole or not at all): fix it and import again"
        )

    def refuse(self, contract: str, source: SourceRow | None, message: str) -> None:
        self._refused += 1
        self.by_contract.setdefault(contract, _Rows()).refused.append(message)
        self.reading.reject(source, message if message.startswith("row ") else f"row {source.row if source else '?'}: {message}")

    def refusal(self, contract_no: str) -> str | None:
        """Why the contract cannot be booked from this file, or None."""
        rows = self.by_contract.get(contract_no)
        if rows is None or not rows.refused:
            return None
        shown = "; ".join(rows.refused[:3]) + (f"; and {len(rows.refused) - 3} more" if len(rows.refused) > 3 else "")
        return f"its rows in {self.option} {self.file.path.name} are refused: {shown}"

    def rows_of(self, contract_no: str) -> list[tuple[Any, SourceRow]]:
        rows = self.by_contract.get(contract_no)
        return rows.rows if rows is not None else []

    def used(self, contract_no: str) -> None:
        """The contract was booked with its rows."""
        rows = self.by_contract.pop(contract_no, None)
        if rows is not None and rows.rows:
            self.report.used += len(rows.rows)
            self.report.contracts += 1

    def unchanged(self, contract_no: str, new_rows_refused: str | None = None) -> None:
        """The contract was booked before with the same terms: its rows are not read again, or, with
        ``new_rows_refused``, those not recorded before are rejected for that reason."""
        rows = self.by_contract.pop(contract_no, None)
        for _, source in rows.rows if rows is not None else ():
            if new_rows_refused is None:
                self.report.unchanged += 1
            else:
                self.reading.reject(source, f"row {source.row}: {new_rows_refused}")

    def dropped(self, contract_no: str, reason: str) -> None:
        """The contract's loan row was refused: its rows go to the rejects file too."""
        rows = self.by_contract.pop(contract_no, None)
        for _, source in rows.rows if rows is not None else ():
            self.reading.reject(source, f"row {source.row}: its contract {contract_no} is not booked: {reason}")

    def finish(self, seen: set[str]) -> None:
        """Reject the rows of contracts that were not in the loan file, and close the rejects file."""
        for contract_no in sorted(c for c in self.by_contract if c not in seen):
            for _, source in self.by_contract[contract_no].rows:
                self.reading.reject(
                    source, f"row {source.row}: contract_no {contract_no!r} is not in the loan file; "
                    f"accepted: a contract of the loan file imported with it",
                )
        self.by_contract.clear()
        self.reading.close()


# --------------------------------------------------------------------------
# the two files


def plans(path: str | Path, business_date: date, encoding: str = "utf-8", rejects: str | Path | None = None) -> Beside:
    return Beside(PlanFile, path, business_date, lambda s: planfile.parse_row(s.values, s.row), "--schedules",
                  encoding=encoding, rejects=rejects)


def plan_for(beside: Beside, terms: LoanTerms) -> tuple[Installment, ...] | None:
    """The contract's plan as imported, checked against its terms; None when it has no rows.
    ``RowRejected`` when the rows break a rule (they are rejected in the schedule's rejects file)."""
    rows: list[tuple[PlanRow, SourceRow]] = beside.rows_of(terms.contract_no)
    if not rows:
        return None
    try:
        return planfile.check_plan(terms, [r for r, _ in rows])
    except RowRejected as rejected:
        by_row = {s.row: s for _, s in rows}
        for error in rejected.errors:
            beside.refuse(terms.contract_no, by_row.get(error.row), str(error))
        raise


def history(
    path: str | Path, store: CaseStore, business_date: date, operator: str, encoding: str = "utf-8",
    rejects: str | Path | None = None,
) -> Beside:
    """The payment history, each row as ``payments import`` reads it; ids recorded before looked up."""
    beside = Beside(PaymentFile, path, business_date, lambda s: paymentfile.parse_row(s.values, s.row, business_date, operator),
                    "--payments", encoding=encoding, rejects=rejects)
    _repeats(beside, store)
    return beside


def _repeats(beside: Beside, store: CaseStore) -> None:
    """Payment ids given twice in the file, or recorded before: the same payment again is unchanged,
    anything else refuses the row (and so its contract)."""
    recorded = store.recorded_payments(p.command.payment_id for rows in beside.by_contract.values() for p, _ in rows.rows)
    earlier: dict[str, tuple[int, Any]] = {}
    for contract_no, rows in list(beside.by_contract.items()):
        kept = []
        for payment, source in rows.rows:
            this = payment.recorded(case_id_for(contract_no))
            if this.payment_id in recorded:
                known, where = recorded[this.payment_id], "is already recorded"
            elif this.payment_id in earlier:
                row, known = earlier[this.payment_id]
                where = f"is already in this file at row {row}"
            else:
                earlier[this.payment_id] = (payment.row, this)
                kept.append((payment, source))
                continue
            if known.repeated_by(this):
                beside.report.unchanged += 1
            else:
                beside.refuse(contract_no, source, str(paymentfile.repeat_refused(payment.row, known, this, where)))
        rows.rows = kept


def payments_of(beside: Beside, contract_no: str) -> list[PaymentRow]:
    """The contract's past payments in the order they are booked: ``paid_on``, then file order."""
    rows: Iterable[tuple[PaymentRow, SourceRow]] = beside.rows_of(contract_no)
    return sorted((p for p, _ in rows), key=lambda p: (p.command.received_on, p.row))
