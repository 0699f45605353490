"""The payment file import: the use case behind ``collectflow payments import`` and the
``ingest-payments`` deployment. No Prefect here.

    import_payments(app, path, business_date=..., operator=..., rejects=..., on_progress=...)
      read      rows streamed from the file (``flows.files.PaymentFile``: CSV or JSON Lines, .gz too);
                each row checked by ``states.paymentfile.parse_row`` into a ``RecordPayment``;
                a bad row goes to the rejects file with each problem named
      resolve   contract numbers to case ids, a chunk of references a query; no such case: rejected
      repeats   a payment id recorded before, or earlier in the file: the same case, amount and
                date is "unchanged"; anything else is rejected naming both
      apply     the good rows sorted by case, then ``paid_on``, then file order, and applied
                ~2,000 rows a unit of work (one transaction), a case never split between two:
                each row through ``CollectionCase.record_payment``, the rule ``collectflow pay``
                runs (a row dated before the case's last closed date is value-dated); a row it
                refuses (the case settled) is rejected with the domain's reason

A chunk whose commit fails (another writer recorded the same payment id or
changed a case meanwhile) is applied again row by row through the
``record_payment`` handler, each row its own transaction, so the good rows
still land and each refused row gets its own reason; nothing is ever half
applied. A payment the rules refuse may have caught its case up on reviews
that were due before its date: those happened all the same and are kept
(see ``CollectionCase._take``), as the next command on the case would.

Idempotent on ``payment_id``: the same file again applies nothing. The
operator is checked against the roster for ``record-payment`` and is the
actor of every payment; the business date is never after today. The payer's
name is only ever shown masked and is not kept. Memory holds the good rows
of the file (to apply each case's payments in date order), not the store.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from flows.bootstrap import App
from flows.files import PaymentFile, SourceRow
from flows.handlers.cases import check_not_in_future, check_operator, record_payment
from flows.handlers.imports import FileReport, RowImport
from models.errors import StoreError
from states.commands import RecordedPayment, RecordPayment
from states.errors import UserError
from states.events import Event, PaymentReceived, StageChanged
from states.lifecycle import Stage
from states.money import ZERO
from states.parse import parse_operator
from states.paymentfile import PaymentRow, RowRejected, parse_row, reference_refused, refused, repeat_refused

CHUNK_ROWS = 2_000

#: ``on_progress(stage, rows, done, total)``: "reading" (rows read, bytes of the file), then
#: "applying" (rows applied so far, of the good rows).
Progress = Callable[[str, int, int, int], None]


class PaymentImportError(UserError):
    """A payment import that cannot start."""


@dataclass
class PaymentImportReport(FileReport):
    """What a payment import did: rows applied, unchanged, rejected; money applied; cases cured and settled."""

    applied: int = 0
    amount_applied: Decimal = ZERO
    overpayment: Decimal = ZERO  # of the amount applied, what was above everything owed
    cases_cured: int = 0  # StageChanged to current
    cases_settled: int = 0  # StageChanged to settled
    events: int = 0
    chunks: int = 0
    chunks_retried: int = 0  # applied again row by row after their commit failed

    def add(self, events: Iterable[Event]) -> None:
        """Count what one applied row recorded."""
        self.applied += 1
        for e in events:
            self.events += 1
            if isinstance(e, PaymentReceived):
                self.amount_applied += e.amount
                self.overpayment += e.overpayment
            elif isinstance(e, StageChanged) and e.to_stage == Stage.CURRENT.value:
                self.cases_cured += 1
            elif isinstance(e, StageChanged) and e.to_stage == Stage.SETTLED.value:
                self.cases_settled += 1

    def as_dict(self) -> dict[str, Any]:
        return {
            **super().as_dict(),
            "applied": self.applied,
            "amount_applied": str(self.amount_applied),
            "overpayment": str(self.overpayment),
            "cases_cured": self.cases_cured,
            "cases_settled": self.cases_settled,
            "events": self.events,
            "chunks": self.chunks,
            "chunks_retried": self.chunks_retried,
        }


@dataclass
class _Pending:
    """A good row on its way: what it records, the row as given (for the rejects file), its case."""

    payment: PaymentRow
    source: SourceRow
    case_id: str = ""

    @property
    def command(self) -> RecordPayment:
        return self.payment.command

    def recorded(self) -> RecordedPayment:
        return self.payment.recorded(self.case_id)


# --------------------------------------------------------------------------
# the use case


def import_payments(
    app: App,
    path: str | Path,
    *,
    business_date: date,
    operator: str,
    rejects: str | Path | None = None,
    on_progress: Progress | None = None,
    encoding: str = "utf-8",
    chunk_rows: int = CHUNK_ROWS,
) -> PaymentImportReport:
    """Import a CSV or JSON Lines payment file; see the module docstring."""
    operator = parse_operator(operator)
    check_operator(app.store, operator, RecordPayment.action)
    check_not_in_future({"business_date": business_date}, app.today())
    began = time.perf_counter()
    payment_file = PaymentFile(Path(path), encoding)
    report = PaymentImportReport(payment_file.path.name, business_date)
    with RowImport(payment_file, rejects, report, PaymentImportError) as reading:
        pending = _read(reading, business_date, operator, on_progress, chunk_rows)
        pending = _resolved(app, reading, pending)
        pending = _new(app, reading, pending)
        _apply(app, reading, pending, chunk_rows, on_progress)
    report.seconds = time.perf_counter() - began
    return report


def _read(reading: RowImport, business_date: date, operator: str, on_progress: Progress | None, every: int) -> list[_Pending]:
    """The good rows of the file, in file order; every bad one rejected with its problems."""
    progress = None if on_progress is None else (lambda rows, done, total: on_progress("reading", rows, done, total))
    good = []
    for source in reading.rows(progress, every):
        try:
            good.append(_Pending(parse_row(source.values, source.row, business_date, operator), source))
        except RowRejected as rejected:
            reading.reject(source, "; ".join(map(str, rejected.errors)))
    return good


def _resolved(app: App, reading: RowImport, pending: list[_Pending]) -> list[_Pending]:
    """Each row with its case id; a row naming no case (or two) rejected."""
    found, unknown = app.store.resolve_case_ids(p.command.case for p in pending)
    kept = []
    for p in pending:
        if p.command.case in unknown:
            reading.reject(p.source, str(reference_refused(p.payment.row, p.command.case, unknown[p.command.case])))
            continue
        p.case_id = found[p.command.case]
        kept.append(p)
    return kept


def _new(app: App, reading: RowImport, pending: list[_Pending]) -> list[_Pending]:
    """The rows whose payment id is new. One recorded before, or earlier in the file, with the same case,
    amount and date is unchanged; with anything else it is rejected naming both."""
    with app.uow() as uow:
        stored = uow.payments.get_many(p.command.payment_id for p in pending)
    earlier: dict[str, tuple[int, RecordedPayment]] = {}
    kept = []
    for p in pending:
        this = p.recorded()
        if this.payment_id in stored:
            known, where = stored[this.payment_id], "is already recorded"
        elif this.payment_id in earlier:
            row, known = earlier[this.payment_id]
            where = f"is already in this file at row {row}"
        else:
            earlier[this.payment_id] = (p.payment.row, this)
            kept.append(p)
            continue
        if known.repeated_by(this):
            reading.report.unchanged += 1
        else:
            reading.reject(p.source, str(repeat_refused(p.payment.row, known, this, where)))
    return kept


# --------------------------------------------------------------------------
# applying


def chunked(pending: Sequence[_Pending], rows: int) -> Iterable[list[_Pending]]:
    """Sorted by case, ``paid_on`` and file order, in chunks of about ``rows`` rows; a case's rows
    are never split between two chunks (a case with more rows makes a chunk of its own)."""
    ordered = sorted(pending, key=lambda p: (p.case_id, p.command.received_on, p.payment.row))
    chunk: list[_Pending] = []
    for _, group in itertools.groupby(ordered, key=lambda p: p.case_id):
        rows_of_case = list(group)
        if chunk and len(chunk) + len(rows_of_case) > rows:
            yield chunk
            chunk = []
        chunk.extend(rows_of_case)
    if chunk:
        yield chunk


def _apply(app: App, reading: RowImport, pending: list[_Pending], rows: int, on_progress: Progress | None) -> None:
    done = 0
    for chunk in chunked(pending, rows):
        for p, outcome in _apply_chunk(app, chunk, reading.report):
            if isinstance(outcome, str):
                reading.reject(p.source, refused(p.payment.row, outcome))
            elif outcome:
                reading.report.add(outcome)
            else:  # recorded meanwhile, by another writer, with the same content
                reading.report.unchanged += 1
        done += len(chunk)
        if on_progress is not None:
            on_progress("applying", done, done, len(pending))


Outcome = list[Event] | str  # the events a row recorded ([]: recorded before), or why it was refused


def _apply_chunk(app: App, chunk: list[_Pending], report: PaymentImportReport) -> list[tuple[_Pending, Outcome]]:
    """One chunk in one unit of work; if its commit fails, row by row through the handler."""
    report.chunks += 1
    outcomes: list[tuple[_Pending, Outcome]] = []
    board = app.store.agency_board(max(p.command.received_on for p in chunk), app.policy) if chunk else None
    try:
        with app.uow() as uow:
            cases, unreadable = uow.cases.get_many(dict.fromkeys(p.case_id for p in chunk))
            for p in chunk:
                case = cases.get(p.case_id)
                if case is None:
                    outcomes.append((p, f"case {p.case_id}: cannot be loaded: {unreadable[p.case_id]}"))
                    continue
                try:
                    accruals = uow.cases.accruals_for_payment(case, p.command.received_on)
                    events = case.record_payment(p.command, app.policy, board, recorded=accruals)
                    outcomes.append((p, events))
                    if board is not None:
                        board = board.after(events)
                except UserError as exc:
                    outcomes.append((p, str(exc)))
            uow.commit()
    except StoreError:
        report.chunks_retried += 1
        return [(p, _one(app, p.command)) for p in chunk]
    return outcomes


def _one(app: App, cmd: RecordPayment) -> Outcome:
    try:
        return record_payment(cmd, app)
    except UserError as exc:
        return str(exc)
