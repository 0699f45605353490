"""The loan book import and a borrower's details: the use cases behind ``collectflow loans`` and
``collectflow borrower`` (and the ``import-loans`` deployment). No Prefect here.

    import_file(store, path, business_date, ...)
      read     rows streamed from the file (``flows.files``: CSV or JSON Lines, by extension; .gz too)
      check    every column of every row (``states.loanfile.parse_row``); a bad row is written to
               the rejects file with each problem named (row, column, value, what is accepted)
      chunk    ~2,000 good rows at a time, in one transaction each:
               new contract   -> loan, schedule, case, opening event, reviews up to
                                 the business date, and the encrypted borrower row
                                 (``models.borrowers``)
               same row again -> nothing
               changed row    -> refused; with ``amend`` a change of contact details
                                 is recorded as a ``BorrowerDetailsAmended`` event
                                 and the borrower row rewritten; financial terms and
                                 the borrower's identity are never amended
    book_records(store, records, ...)   the same checks and chunks for records built in code (the demo)
    borrower_masked(store, case)        a case's borrower, masked
    reveal(store, keyring, case, field, operator=..., purpose=...)   one clear value, the read recorded first

Idempotent on ``contract_no``: importing the same file twice books nothing
the second time, and a crash half-way is repaired by importing it again.
Memory is bounded by the chunk, whatever the loan file's size (a schedule or
history file beside it is held whole: its rows are checked with their loan).

**What an amendment may change.** Contact details
(``states.borrower.AMENDABLE``): ``borrower_name`` (a corrected spelling),
``phone``, ``address``, ``guarantor_name``, ``guarantor_phone`` and
``timezone``. Refused, with the booked and the file value named: every
financial term (``states.loanfile.FINANCIAL``: the terms of ``LoanTerms``),
since the schedule and every posted charge and payment allocation derive
from them, so a restructured loan is booked under a new contract number.
Also refused: ``borrower_id`` and ``national_id``, which say *who* owes the
loan.

**A loan whose dues lie in the past.** Its case is opened at disbursement
and reviewed, in the same transaction, on every date a review falls due up
to the business date, exactly as the daily close would have done day by day
(accrual through a date includes that date; see ``states.case``). So it
starts with the stage, DPD and balances it would have had, and its history
reads as if collectflow had followed it from the start. Payments made
before the import come beside the loan file (``payments``, the payment
file's format): each is recorded on its date inside that catch-up, so a
seasoned loan starts with the stage, DPD and balances it really has. The
core system's plans may come beside it too (``schedules``), replacing the
computed ones; see ``flows.handlers.beside``.

**Personal data** (names, national id, phones, address) is encrypted at rest
(``models.crypto``) and otherwise only ever shown masked: error messages,
the summary, logs and events carry masked values. The rejects file is the
exception: it repeats the rejected rows as given, so they can be fixed and
imported again, and is written with owner-only permissions.
"""

from __future__ import annotations

import time
from dataclasses import replace
from flows.handlers.cases import check_not_in_future, check_operator
from states.parse import parse_operator, parse_text
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from flows.files import LoanFile, SourceRow
from flows.handlers import beside
from flows.handlers.beside import Beside, payments_of, plan_for
from flows.handlers.imports import FileReport, RowImport
from models import borrowers
from models.booking import terms_hash
from models.crypto import Keyring
from models.store import CaseStore
from states import borrower as personal
from states.case import CollectionCase, DomainError
from states.errors import UserError
from states.events import SYSTEM, DetailChange, Event
from states.loanfile import (
    PERSONAL,
    LoanRecord,
    People,
    RowError,
    RowRejected,
    case_id_for,
    check_record,
    financial_differences,
    parse_row,
)
from states.policy import CollectionPolicy

CHUNK_ROWS = 2_000
# what ``reveal --field`` takes: the personal columns, the borrower's name as plain "name"
REVEALABLE = {("name" if column == "borrower_name" else column): column for column in PERSONAL}


class LoanBookError(UserError):
    """An import that cannot start, or a request about a borrower that cannot be met."""


# --------------------------------------------------------------------------
# the report


@dataclass
class ImportReport(FileReport):
    """What a loan import did. Personal values appear in it only masked."""

    booked: int = 0
    amended: int = 0
    events: int = 0
    schedules: dict[str, Any] | None = None  # the schedule file's figures (``--schedules``)
    payments: dict[str, Any] | None = None  # the payment history's figures (``--payments``)

    @property
    def rejected_anywhere(self) -> int:
        """Rows rejected in the loan file and the files beside it."""
        return self.rejected + sum(side["rejected"] for side in (self.schedules, self.payments) if side)

    def as_dict(self) -> dict[str, Any]:
        return {
            **super().as_dict(), "booked": self.booked, "amended": self.amended, "events": self.events,
            "schedules": self.schedules, "payments": self.payments,
        }


# --------------------------------------------------------------------------
# booking


@dataclass
class _Pending:
    record: LoanRecord
    source: SourceRow | None


class LoanBook:
    """Books records chunk by chunk; ``feed`` then ``finish``. One instance per import."""

    def __init__(
        self,
        store: CaseStore,
        keyring: Keyring,
        policy: CollectionPolicy,
        business_date: date,
        *,
        amend: bool = False,
        actor: str = SYSTEM,
        source: str = "",
        chunk_rows: int = CHUNK_ROWS,
        on_reject: Callable[[SourceRow | None, str], None] | None = None,
        report: ImportReport | None = None,
    ):
        self.store, self.keyring, self.policy = store, keyring, policy
        self.business_date, self.amend, self.actor = business_date, amend, actor
        self.source, self.chunk_rows, self.on_reject = source, chunk_rows, on_reject
        self.lpr = store.lpr_table()
        self.report = report or ImportReport(source, business_date)
        self._chunk: list[_Pending] = []
        self._in_chunk: set[str] = set()
        self.plans: Beside | None = None  # the schedule file beside the loan file
        self.history: Beside | None = None  # the payment history beside it

    @property
    def sides(self) -> list[Beside]:
        return [side for side in (self.plans, self.history) if side is not None]

    def refused(self, contract_no: str, reason: str) -> None:
        """The contract's loan row is not booked: its rows beside go to their rejects files too."""
        for side in self.sides:
            side.dropped(contract_no, reason)

    # ------------------------------------------------------------------

    def reject(self, source: SourceRow | None, errors: Iterable[RowError] | str, row: int, contract_no: str | None = None) -> None:
        reason = errors if isinstance(errors, str) else "; ".join(map(str, errors))
        message = reason if reason.startswith("row ") else f"row {row}: {reason}"
        self.report.reject(message)
        if self.on_reject is not None:
            self.on_reject(source, message)
        if contract_no:
            self.refused(contract_no, f"loan file row {row} is rejected")

    def with_plan(self, record: LoanRecord, source: SourceRow | None = None) -> LoanRecord | None:
        """The record with its plan as imported (or as it is, without one); None when the
        contract's rows beside the loan file are refused (the loan row is then rejected)."""
        contract_no = record.contract_no
        refusals = [why for side in self.sides if (why := side.refusal(contract_no))]
        plan = None
        if self.plans is not None and not refusals:
            try:
                plan = plan_for(self.plans, record.terms)
            except RowRejected:
                refusals.append(self.plans.refusal(contract_no) or "its plan is refused")
        if refusals:
            self.reject(source, f"contract {contract_no}: " + "; ".join(refusals), record.row, contract_no)
            return None
        return record if plan is None else replace(record, terms=record.terms.with_plan(plan))

    def feed(self, record: LoanRecord, source: SourceRow | None = None) -> None:
        if record.contract_no in self._in_chunk:
            self.flush()  # the repeat is then checked against what the first occurrence booked
        self._chunk.append(_Pending(record, source))
        self._in_chunk.add(record.contract_no)
        if len(self._chunk) >= self.chunk_rows:
            self.flush()

    def finish(self) -> ImportReport:
        self.flush()
        return self.report

    # ------------------------------------------------------------------

    def flush(self) -> None:
        chunk, self._chunk, self._in_chunk = self._chunk, [], set()
        if not chunk:
            return
        booked = self.store.booked_loans([p.record.contract_no for p in chunk])
        hashes = {p.record.contract_no: self.keyring.match_hash(p.record.borrower.national_id) for p in chunk}
        known = self.store.borrower_identities([p.record.terms.borrower_id for p in chunk], list(hashes.values()))
        people = People(known)
        fresh: list[_Pending] = []
        amendments: list[tuple[_Pending, Mapping[str, Any], Mapping[str, Any] | None]] = []
        for pending in chunk:
            record = pending.record
            identity = people.conflict(record, hashes[record.contract_no])
            if identity is not None:
                self.reject(pending.source, [identity], record.row, record.contract_no)
                continue
            stored = booked.get(record.contract_no)
            if stored is None:
                fresh.append(pending)
                people.add(record, hashes[record.contract_no])
                continue
            loan_row, borrower_row = stored
            errors = self._compare(record, loan_row, borrower_row)
            if errors:
                self.reject(pending.source, errors, record.row, record.contract_no)
                continue
            if errors is None:
                self.report.unchanged += 1
            else:
                amendments.append((pending, loan_row, borrower_row))
            self._booked_before(record.contract_no)
        if fresh:
            self._book(fresh, hashes)
        if amendments:
            self._amend(amendments, hashes)

    def _compare(
        self, record: LoanRecord, loan_row: Mapping[str, Any], borrower_row: Mapping[str, Any] | None
    ) -> list[RowError] | None:
        """None: the same row again. [] : contact details changed and may be amended. Else why not."""
        errors = [
            RowError(
                record.row, column, file_value, f"differs from the booked {booked_value}",
                "the booked value: a booked contract's financial terms and borrower are never changed by an import "
                "(book a restructured loan under a new contract_no)",
            )
            for column, booked_value, file_value in financial_differences(borrowers.booked_terms(loan_row), record.terms)
        ]
        if errors:
            return errors
        if record.terms.plan_imported and terms_hash(record.terms) != loan_row["terms_hash"]:
            return [RowError(
                record.row, "contract_no", record.contract_no, "is booked with another repayment plan than the schedule file's",
                "the booked plan: a booked contract's plan is never changed by an import (book a restructured loan "
                "under a new contract_no)",
            )]
        if borrower_row is not None and borrower_row["details_hash"] == borrowers.details_hash(self.keyring, record.borrower):
            return None
        changes = self._changes(record, borrower_row)
        if not changes:
            return None
        fixed = [c for c in changes if c.field not in personal.AMENDABLE] if borrower_row is not None else []
        if fixed:  # who the borrower is: never amended
            return [
                RowError(
                    record.row, c.field, c.after or "", f"differs from the booked {c.before}",
                    "the booked value: the borrower of a booked loan never changes",
                )
                for c in fixed
            ]
        if self.amend:
            return []
        return [
            RowError(
                record.row, change.field, change.after or "", f"differs from the booked {change.before or 'nothing'}",
                "the booked value, or --amend to record the change of contact details",
            )
            for change in changes
        ]

    def _booked_before(self, contract_no: str) -> None:
        """A contract booked before: its plan is not read again, and it takes no history."""
        if self.plans is not None:
            self.plans.unchanged(contract_no)
        if self.history is not None:
            self.history.unchanged(
                contract_no, f"contract {contract_no} is booked already: a payment after booking is recorded "
                "with collectflow payments import (or pay), not with the loan's history",
            )

    def _book(self, fresh: list[_Pending], hashes: Mapping[str, str]) -> None:
        items, rows = [], []
        for pending in fresh:
            record = pending.record
            case, events = CollectionCase.open(record.case_id or case_id_for(record.contract_no), record.terms, self.lpr, actor=self.actor)
            try:
                # the history is booked inside the catch-up: each payment reviews the case up to its day first
                for payment in payments_of(self.history, record.contract_no) if self.history is not None else ():
                    events += case.record_payment(payment.command, self.policy)
            except UserError as exc:
                self.reject(pending.source, f"contract {record.contract_no}: its payment history is refused: {exc}",
                            record.row, record.contract_no)
                continue
            events += case.advance(self.business_date, self.policy)
            items.append((record.terms, case, events))
            rows.append(borrowers.borrower_row(self.keyring, record, hashes[record.contract_no]))
        if not items:
            return
        booking = self.store.add_cases(items, borrower_rows=rows)
        self.report.booked += len(booking.booked)
        self.report.unchanged += len(booking.already_booked)  # booked meanwhile by another import
        booked = set(booking.booked)
        self.report.events += sum(len(events) for _, case, events in items if case.case_id in booked)
        for terms, case, _ in items:
            if case.case_id in booked:
                for side in self.sides:
                    side.used(terms.contract_no)
            else:
                self._booked_before(terms.contract_no)

    def _amend(self, amendments: list[tuple[_Pending, Mapping[str, Any], Mapping[str, Any] | None]], hashes: Mapping[str, str]) -> None:
        cases = self.store.load([loan_row["case_id"] for _, loan_row, _ in amendments])
        versions = {case_id: case.version for case_id, case in cases.items()}
        changes: list[tuple[CollectionCase, list[Event]]] = []
        rows = []
        for pending, loan_row, borrower_row in amendments:
            record, case = pending.record, cases[loan_row["case_id"]]
            on = max(self.business_date, case.accrued_through)
            where = f"{self.source} row {record.row}" if self.source else f"row {record.row}"
            events = case.amend_borrower_details(self._changes(record, borrower_row), on, actor=self.actor, source=where)
            changes.append((case, events))
            rows.append({**borrowers.borrower_row(self.keyring, record, hashes[record.contract_no]), "amended_at": datetime.now(timezone.utc)})
        self.report.events += self.store.amend_borrowers(changes, expected_versions=versions, borrower_rows=rows)
        self.report.amended += len(changes)

    # ------------------------------------------------------------------

    def _changes(self, record: LoanRecord, borrower_row: Mapping[str, Any] | None) -> tuple[DetailChange, ...]:
        if borrower_row is None:  # booked without personal data: every given detail is new
            return tuple(
                DetailChange(name, None, value) for name, value in record.borrower.masked().items() if value is not None
            )
        return borrowers.stored_details(self.keyring, record.contract_no, borrower_row).changes_to(record.borrower)


# --------------------------------------------------------------------------
# entry points


def import_file(
    store: CaseStore,
    path: str | Path,
    *,
    business_date: date,
    policy: CollectionPolicy,
    keyring: Keyring,
    amend: bool = False,
    rejects: str | Path | None = None,
    actor: str = SYSTEM,
    encoding: str = "utf-8",
    chunk_rows: int = CHUNK_ROWS,
    on_progress: Callable[[int, int, int], None] | None = None,
    today: date | None = None,
    schedules: str | Path | None = None,
    payments: str | Path | None = None,
) -> ImportReport:
    """Import a CSV or JSON Lines loan file; ``on_progress(rows, bytes read, file bytes)`` after each chunk.

    ``actor`` is ``system`` (only while no roster is in use) or an operator id (checked, and against the roster);
    ``today`` (the lender's) bounds the business date: an import is never dated in the future.
    ``schedules``: the core system's plans (``states.planfile``), used instead of computing one;
    ``payments``: the loans' payment history (the payment file's format), booked on its dates
    in the catch-up (see ``flows.handlers.beside``); it needs an operator as ``actor``.
    """
    if actor != SYSTEM:
        actor = parse_operator(actor)
    elif payments is not None:
        raise LoanBookError("--payments needs --operator: the history's payments are recorded with your operator id")
    check_operator(store, actor, "import-loans")  # the system's actor books only without a roster
    if today is not None:
        check_not_in_future({"business_date": business_date}, today)
    began = time.perf_counter()
    loan_file = LoanFile(Path(path), encoding)
    plans = beside.plans(schedules, business_date, encoding) if schedules is not None else None
    history = beside.history(payments, store, business_date, actor, encoding) if payments is not None else None
    seen: set[str] = set()
    with RowImport(loan_file, rejects, ImportReport(loan_file.path.name, business_date), LoanBookError) as reading:
        book = LoanBook(
            store, keyring, policy, business_date, amend=amend, actor=actor, source=loan_file.path.name,
            chunk_rows=chunk_rows, report=reading.report,
            on_reject=lambda source, message: reading.rejects_file.write(source, message) if source else None,
        )
        book.plans, book.history = plans, history
        for source in reading.rows(on_progress, chunk_rows):
            contract_no = str(source.values.get("contract_no") or "").strip()
            seen.add(contract_no)
            try:
                record = parse_row(source.values, source.row, business_date, book.lpr)
            except RowRejected as rejected:
                book.reject(source, rejected.errors, source.row, contract_no)
            else:
                record = book.with_plan(record, source)
                if record is not None:
                    book.feed(record, source)
        book.finish()
    report = book.report
    for side in book.sides:
        side.finish(seen)
    report.schedules = plans.report.as_dict() if plans is not None else None
    report.payments = history.report.as_dict() if history is not None else None
    report.seconds = time.perf_counter() - began
    return report


def book_records(
    store: CaseStore,
    records: Iterable[LoanRecord],
    *,
    business_date: date,
    policy: CollectionPolicy,
    keyring: Keyring,
    amend: bool = False,
    actor: str = SYSTEM,
    source: str = "",
) -> ImportReport:
    """Book records built in code (the demo's synthetic book) through the same checks and chunks:
    each is checked as a file's row would be, and booked as that row would be spelled."""
    began = time.perf_counter()
    book = LoanBook(store, keyring, policy, business_date, amend=amend, actor=actor, source=source)
    for record in records:
        book.report.rows += 1
        try:
            checked = check_record(record, business_date, book.lpr)
        except RowRejected as rejected:
            book.reject(None, rejected.errors, record.row)
            continue
        book.feed(checked)
    report = book.finish()
    report.seconds = time.perf_counter() - began
    return report


# --------------------------------------------------------------------------
# reading a borrower's details


def borrower_masked(store: CaseStore, case_ref: str) -> dict[str, Any]:
    """A case's borrower, masked: what any report or screen may show."""
    case_id, contract_no, row = store.borrower_row(case_ref)
    if row is None:
        raise LoanBookError(f"case {case_id} (contract {contract_no}): booked without borrower details")
    return {
        "case_id": case_id,
        "contract_no": contract_no,
        "borrower_id": row["borrower_id"],
        **{name: row[f"{name}_masked"] for name in PERSONAL},
        "timezone": row["timezone"],
        "amended_at": row["amended_at"].isoformat() if row["amended_at"] else None,
    }


def reveal(
    store: CaseStore,
    keyring: Keyring,
    case_ref: str,
    field_name: str,
    *,
    operator: str,
    purpose: str,
    on: date,
    today: date | None = None,
) -> str:
    """The clear value of one personal field. The read is recorded first, as a ``PersonalDataRead``
    event by ``operator``: no clear value leaves the store without its record."""
    if field_name not in REVEALABLE:
        raise LoanBookError(f"--field {field_name!r} is not one of {', '.join(REVEALABLE)}")
    operator = parse_operator(operator)  # every read of personal data is recorded with it
    purpose = parse_text(purpose, "purpose")
    check_operator(store, operator, "reveal-personal-data")
    if today is not None:
        check_not_in_future({"date": on}, today)
    column = REVEALABLE[field_name]
    case_id, contract_no, row = store.borrower_row(case_ref)
    if row is None:
        raise LoanBookError(f"case {case_id} (contract {contract_no}): booked without borrower details")
    token = row[f"{column}_enc"]
    if token is None:
        raise LoanBookError(f"case {case_id}: no {field_name} on file")
    value = keyring.decrypt(token, f"{contract_no}/{column}")
    case = store.load_one(case_id)
    version = case.version
    try:
        events = case.record_personal_data_read((field_name,), on, actor=operator, purpose=purpose)  # not dated before the last close
    except DomainError as exc:
        raise LoanBookError(str(exc)) from None
    store.save([(case, events)], expected_versions={case_id: version})
    return value
