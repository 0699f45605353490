"""Use cases on cases: one handler per operator command, the close of one batch, the retry of one case.

Every handler has one shape (cosmicpython's)::

    with app.uow() as uow:
        case = uow.cases.get(cmd.case)
        case.<command>(cmd, policy)
        uow.commit()

The CLI and the Prefect deployments build the command (``states.commands``,
validated there) and call ``handle``; neither holds a rule of its own. A
date on which something happened may not be after today in the lender's
time zone (``check_not_in_future``); the domain refuses what its own rules
refuse. No Prefect here: the flows call these functions inside their tasks.
"""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from flows.bootstrap import App
from models.errors import DuplicatePayment
from models.store import CaseStore
from states.caps import LprTable
from states.case import CollectionCase
from states.commands import (
    CaseCommand,
    EnterJudgment,
    FileLawsuit,
    MakePromise,
    PauseCase,
    RecallFromAgency,
    RecordContact,
    RecordedPayment,
    RecordExecution,
    RecordPayment,
    ReportVisit,
    ResumeCase,
    WriteOff,
)
from states.accrual import ONE_DAY
from states.agency import AgencyBoard, check_contact_maker
from states.errors import DomainError
from states.events import (
    ChargesAccrued,
    DelayedPerformanceInterestAccrued,
    Event,
    ExecutionRecorded,
    JudgmentEntered,
    LawsuitFiled,
    PaymentReceived,
    StageChanged,
)
from states.loan import LoanTerms
from states.money import ZERO
from states.operators import authorise
from states.parse import InputError, parse_operator, parse_text
from states.vocabulary import LENDER


# --------------------------------------------------------------------------
# operator commands


def check_not_in_future(dates: dict[str, date], today: date) -> None:
    """Nothing is dated after today in the lender's time zone (DOMAIN.md §9)."""
    for name, day in dates.items():
        if day > today:
            raise InputError(f"{name}: {day} is after today ({today} in the lender's time zone); nothing is dated in the future")


def check_operator(store: CaseStore, operator_id: str, action: str) -> None:
    """The roster's word on this operator taking this action (no roster: any well-formed id)."""
    entry, in_use = store.roster_entry(operator_id)
    authorise(operator_id, action, entry, roster_in_use=in_use)


def check_command(cmd: CaseCommand, app: App) -> None:
    """What every command is checked for before its case is loaded: who, and when."""
    check_operator(app.store, cmd.operator, cmd.action)
    check_not_in_future(cmd.happened_on(app.settings.timezone), app.today())


def agency_board(app: App, cmd: CaseCommand) -> AgencyBoard | None:
    """The agencies a placement the command may cause chooses from, as of the command's date
    (None: no agency registered, the policy's rotation list is used)."""
    days = cmd.happened_on().values()
    return app.store.agency_board(max(days) if days else app.today(), app.policy)


def _on_case(app: App, cmd: CaseCommand, act: Callable[[CollectionCase], list[Event]]) -> list[Event]:
    check_command(cmd, app)
    with app.uow() as uow:
        case = uow.cases.get(cmd.case)
        events = act(case)
        uow.commit()
    return events


def record_payment(cmd: RecordPayment, app: App) -> list[Event]:
    """Record a payment once: the same payment id, case, amount and date again records nothing.

    The same id with anything else is refused, naming what was recorded: a
    bank transaction is credited once, never twice and never silently dropped.
    """
    check_command(cmd, app)
    with app.uow() as uow:
        case = uow.cases.get(cmd.case)
        known = uow.payments.get(cmd.payment_id)
        if known is not None:
            this = RecordedPayment(cmd.payment_id, case.case_id, cmd.amount, cmd.received_on)
            if known.repeated_by(this):
                return []
            raise DuplicatePayment(f"payment_id: {cmd.payment_id!r} {known.conflict(this)}; a payment id is recorded once")
        events = case.record_payment(cmd, app.policy, agency_board(app, cmd), recorded=uow.cases.accruals_for_payment(case, cmd.received_on))
        uow.commit()
    return events


def make_promise(cmd: MakePromise, app: App) -> list[Event]:
    return _on_case(app, cmd, lambda case: case.make_promise(cmd, app.policy, agency_board(app, cmd)))


def record_contact(cmd: RecordContact, app: App) -> list[Event]:
    """Record a contact, or its refusal under the conduct rules (a refusal is recorded too).

    A time given with a UTC offset is read in the borrower's time zone (from the borrower's row).
    The borrower's other loans' calls that day count against the same caps (read, not changed:
    a contact recorded on one of them meanwhile refuses this one, to be tried again). A contact
    made by an agency names one the lender has (``check_contact_maker``).
    """
    timezone = app.store.borrower_timezone(cmd.case)
    check_command(cmd, app)
    if cmd.by != LENDER:
        check_contact_maker(cmd.by, [a.name for a in app.store.agencies()], app.policy.agencies)
    with app.uow() as uow:
        case = uow.cases.get(cmd.case)
        others = uow.cases.read_only(app.store.borrower_case_ids(case.case_id))
        events = case.record_contact(cmd, timezone, elsewhere=[other.contact for other in others])
        uow.commit()
    return events


def pause_case(cmd: PauseCase, app: App) -> list[Event]:
    return _on_case(app, cmd, lambda case: case.pause(cmd, app.policy, agency_board(app, cmd)))


def resume_case(cmd: ResumeCase, app: App) -> list[Event]:
    return _on_case(app, cmd, lambda case: case.resume(cmd))


def write_off(cmd: WriteOff, app: App) -> list[Event]:
    return _on_case(app, cmd, lambda case: case.write_off(cmd, app.policy, agency_board(app, cmd)))


def report_visit(cmd: ReportVisit, app: App) -> list[Event]:
    """Report a field visit; a time given with a UTC offset is read in the borrower's time zone."""
    timezone = app.store.borrower_timezone(cmd.case)
    return _on_case(app, cmd, lambda case: case.report_visit(cmd, app.policy, agency_board(app, cmd), timezone))


def recall_from_agency(cmd: RecallFromAgency, app: App) -> list[Event]:
    """Recall a case from its agency; it goes to another agency at once (or is tried again later)."""
    return _on_case(app, cmd, lambda case: case.recall(cmd, app.policy, agency_board(app, cmd)))


def file_lawsuit(cmd: FileLawsuit, app: App) -> list[Event]:
    return _on_case(app, cmd, lambda case: case.file_lawsuit(cmd, app.policy))


def enter_judgment(cmd: EnterJudgment, app: App) -> list[Event]:
    return _on_case(app, cmd, lambda case: case.enter_judgment(cmd, app.policy))


def record_execution(cmd: RecordExecution, app: App) -> list[Event]:
    return _on_case(app, cmd, lambda case: case.record_execution(cmd, app.policy))


HANDLERS: dict[type[CaseCommand], Callable[[CaseCommand, App], list[Event]]] = {
    RecordPayment: record_payment,
    MakePromise: make_promise,
    RecordContact: record_contact,
    PauseCase: pause_case,
    ResumeCase: resume_case,
    WriteOff: write_off,
    ReportVisit: report_visit,
    FileLawsuit: file_lawsuit,
    EnterJudgment: enter_judgment,
    RecordExecution: record_execution,
    RecallFromAgency: recall_from_agency,
}


def handle(cmd: CaseCommand, app: App) -> list[Event]:
    """Run one operator command; the events it recorded (none: it was already recorded)."""
    return HANDLERS[type(cmd)](cmd, app)


def payoff_quote(app: App, case_ref: str, on: date) -> dict[str, str]:
    """What it takes to settle a case on ``on`` (the reviews due before it run on a copy); nothing is stored."""
    case = app.store.load_one(case_ref)
    if on < case.accrued_through:
        raise InputError(f"--on: {on} is before the case's last closed date {case.accrued_through}; quote {case.accrued_through} or later")
    return case.view(on, app.policy).payoff_quote()


# --------------------------------------------------------------------------
# the daily close


@dataclass
class BatchResult:
    """What one batch of a daily close did: the figures the run summary adds up."""

    business_date: date
    advanced: int = 0
    skipped: int = 0
    events: int = 0
    stuck: dict[str, str] = field(default_factory=dict)
    transitions: Counter = field(default_factory=Counter)  # "phone->visit" -> n
    penalties_posted: Decimal = ZERO
    charges_posted: Decimal = ZERO
    unenforceable: Decimal = ZERO
    recovered: Decimal = ZERO
    litigation: Counter = field(default_factory=Counter)  # "LawsuitFiled", "JudgmentEntered", "execution no_assets" -> n
    delayed_interest_posted: Decimal = ZERO

    def add_events(self, events: Iterable[Event]) -> None:
        for e in events:
            self.events += 1
            if isinstance(e, StageChanged):
                self.transitions[f"{e.from_stage}->{e.to_stage}"] += 1
            elif isinstance(e, ChargesAccrued):
                for p in e.postings:
                    self.charges_posted += p.enforceable
                    self.unenforceable += p.unenforceable
                    if p.component in ("penalty_interest", "compound_interest"):
                        self.penalties_posted += p.enforceable
            elif isinstance(e, PaymentReceived):
                self.recovered += e.amount - e.overpayment
            elif isinstance(e, (LawsuitFiled, JudgmentEntered)):
                self.litigation[e.type] += 1
            elif isinstance(e, ExecutionRecorded):
                self.litigation[f"execution {e.outcome}"] += 1
            elif isinstance(e, DelayedPerformanceInterestAccrued):
                self.delayed_interest_posted += sum((p.enforceable for p in e.postings), ZERO)

    def merge(self, other: BatchResult) -> None:
        self.advanced += other.advanced
        self.skipped += other.skipped
        self.events += other.events
        self.stuck.update(other.stuck)
        self.transitions.update(other.transitions)
        self.penalties_posted += other.penalties_posted
        self.charges_posted += other.charges_posted
        self.unenforceable += other.unenforceable
        self.recovered += other.recovered
        self.litigation.update(other.litigation)
        self.delayed_interest_posted += other.delayed_interest_posted

    def as_dict(self) -> dict:
        return {
            "business_date": self.business_date.isoformat(),
            "advanced": self.advanced,
            "skipped": self.skipped,
            "events": self.events,
            "stuck": dict(self.stuck),
            "transitions": dict(self.transitions),
            "penalties_posted": str(self.penalties_posted),
            "charges_posted": str(self.charges_posted),
            "unenforceable": str(self.unenforceable),
            "recovered": str(self.recovered),
            "litigation": dict(self.litigation),
            "delayed_interest_posted": str(self.delayed_interest_posted),
        }

    @classmethod
    def from_dict(cls, data: dict) -> BatchResult:
        return cls(
            business_date=date.fromisoformat(data["business_date"]),
            advanced=data["advanced"],
            skipped=data["skipped"],
            events=data["events"],
            stuck=dict(data["stuck"]),
            transitions=Counter(data["transitions"]),
            penalties_posted=Decimal(data["penalties_posted"]),
            charges_posted=Decimal(data["charges_posted"]),
            unenforceable=Decimal(data["unenforceable"]),
            recovered=Decimal(data["recovered"]),
            litigation=Counter(data.get("litigation", {})),
            delayed_interest_posted=Decimal(data.get("delayed_interest_posted", "0")),
        )




def advance_batch(app: App, case_ids: Sequence[str], business_date: date) -> BatchResult:
    """Advance every case of the batch to ``business_date`` in one transaction.

    A case that raises is quarantined (marked stuck with its error); the rest
    of the batch commits. A case already advanced for the date is skipped, so
    running a batch twice writes nothing the second time. ``app.fault`` (a
    test seam) is called before each case is advanced.
    """
    result = BatchResult(business_date)
    board = app.store.agency_board(business_date, app.policy)  # the batch's placements take from it in turn
    with app.uow() as uow, _no_cyclic_gc():
        cases, unreadable = uow.cases.get_many(case_ids)
        for case_id, error in unreadable.items():
            result.stuck[case_id] = error
            uow.quarantine(case_id, error, business_date)
        for case_id in case_ids:
            case = cases.get(case_id)
            if case is None:
                continue
            if case.next_review_on is None or case.next_review_on > business_date:
                result.skipped += 1
                continue
            try:
                if app.fault is not None:
                    app.fault(case)
                events = case.advance(business_date, app.policy, board)
            except Exception as exc:  # noqa: BLE001 - any failure of one case quarantines that case only
                case.collect_events()  # what it did before failing is not written
                result.stuck[case_id] = f"{type(exc).__name__}: {exc}"
                uow.quarantine(case_id, result.stuck[case_id], business_date)
                continue
            uow.release(case_id)
            result.advanced += 1
            result.add_events(events)
            if board is not None:
                board = board.after(events)
        uow.commit()
    return result


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Cyclic garbage collection paused for one batch.

    A batch allocates millions of short-lived objects (Decimals, events, rows) and
    frees them by reference counting; the cyclic collector scanning them again and
    again mid-batch cost about a third of the close's CPU (profiled, issue 13).
    After it, what the batch still holds (its loaded cases, events and rows, all
    alive until the batch returns) goes to the oldest generation unscanned
    (``gc.freeze`` then ``gc.unfreeze``): scanning it once more found ~100 objects
    of cyclic garbage for 4,000 cases and cost ~3 % of the close; the next full
    collection finds those.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
        gc.freeze()
        gc.unfreeze()


def retry_case(app: App, case_ref: str, business_date: date | None) -> tuple[str, date | None, BatchResult]:
    """Advance one (stuck) case: to ``business_date``, else the date it got stuck on, else the
    last closed date. Clears its stuck flag when it goes through. Returns (case id, date, result)."""
    row = app.store.case_row(case_ref)
    day = business_date or row.stuck_on or app.store.last_closed_business_date()
    if day is None:
        return row.case_id, None, BatchResult(date.min)
    check_not_in_future({"business_date": day}, app.today())
    closed = app.store.last_run_business_date()
    if business_date is not None and closed is not None and business_date > closed:
        raise InputError(
            f"business_date: {business_date} is after the last business date closed, {closed}: a case is retried up to a "
            f"date the close ran for, not ahead of the book; close {business_date} first (collectflow advance), or give {closed} or earlier"
        )
    reviewed = row.projection.reviewed_through
    if business_date is not None and business_date < reviewed:
        raise InputError(
            f"business_date: {business_date} is before case {row.case_id}'s last review, {reviewed}: it is advanced past it "
            "already; give a later date, or none (the date it got stuck on)"
        )
    return row.case_id, day, advance_batch(app, [row.case_id], day)


def rebuild_case(app: App, case_ref: str, *, operator: str, reason: str) -> str:
    """Rebuild a case's snapshot and projection from its events (``models.audit.rebuild_case``,
    recorded as ``CaseRebuilt``), by a supervisor on the roster (without one, any operator id)."""
    from models.audit import rebuild_case as rebuild_from_events

    operator = parse_operator(operator)
    check_operator(app.store, operator, "rebuild-case")
    reason = parse_text(reason, "reason")
    case_id = app.store.resolve_case_id(case_ref)
    rebuild_from_events(app.store, case_id, on=app.today(), actor=operator, reason=reason, seals=app.settings.seals_dir)
    return case_id


def run_commands(
    app: App, day: date, commands: Sequence[tuple[str, Callable[[CollectionCase], list[Event]]]]
) -> BatchResult:
    """Run many commands of one day in one transaction (the demo's day of operator work).

    A command the rules refuse is skipped and its message returned in
    ``stuck`` (case id -> message), without marking the case stuck. Each
    case first closes the reviews due before ``day`` with the day's agency
    board (what the command would catch up on), so placements take capacity in turn.
    """
    result = BatchResult(day)
    board = app.store.agency_board(day, app.policy)
    with app.uow() as uow:
        cases, _ = uow.cases.get_many(dict.fromkeys(case_id for case_id, _ in commands))
        touched: set[str] = set()
        for case_id, command in commands:
            case = cases[case_id]
            caught_up = case.advance(day - ONE_DAY, app.policy, board) if board is not None else []
            try:
                events = caught_up + command(case)
            except DomainError as exc:
                result.stuck[case_id] = str(exc)
                if board is not None:
                    board = board.after(caught_up)
                continue
            if board is not None:
                board = board.after(events)
            if events:
                touched.add(case_id)
                result.add_events(events)
        uow.commit()
    result.advanced = len(touched)
    return result


# --------------------------------------------------------------------------
# booking in code (tests, the demo)


def book_loans(store: CaseStore, loans: Sequence[tuple[str, LoanTerms]], lpr: LprTable | None = None) -> int:
    """Open a case for each (case_id, terms) and store them with their opening events."""
    lpr = lpr or store.lpr_table()
    items = []
    for case_id, terms in loans:
        case, events = CollectionCase.open(case_id, terms, lpr)
        case.collect_events()
        items.append((terms, case, events))
    store.add_cases(items)
    return len(items)
