"""Use cases: load cases from the store, run one domain command, save the events.

This is the only place the flows and the CLI reach the domain through the
store. Each function is one unit of work: the events a command produces and
the case's new projection are written in one transaction, or not at all.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Callable, Iterable, Sequence

from states.caps import LprTable
from states.case import CollectionCase, DomainError
from states.commands import MakePromise, PauseCase, RecordContact, RecordPayment, ResumeCase, WriteOff
from states.events import ChargesAccrued, Event, PaymentReceived, StageChanged
from states.loan import LoanTerms
from states.money import ZERO
from states.policy import CollectionPolicy

from models.store import CaseStore


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
        )


def load_policy(path: Path | None) -> CollectionPolicy:
    """The policy in force: the operator's TOML file, or DOMAIN.md's defaults."""
    if path is None:
        return CollectionPolicy()
    return CollectionPolicy.from_toml(Path(path).read_text(encoding="utf-8"))


def advance_batch(
    store: CaseStore,
    case_ids: Sequence[str],
    business_date: date,
    policy: CollectionPolicy,
    *,
    fault: Callable[[CollectionCase], None] | None = None,
) -> BatchResult:
    """Advance every case of the batch to ``business_date`` in one transaction.

    A case that raises is quarantined (marked stuck with its error); the rest
    of the batch commits. A case already advanced for the date is skipped, so
    running a batch twice writes nothing the second time. ``fault`` is a test
    hook called before each case is advanced.
    """
    result = BatchResult(business_date)
    cases, unreadable = store.load_tolerant(case_ids)
    result.stuck.update(unreadable)
    changes: list[tuple[CollectionCase, list[Event]]] = []
    versions: dict[str, int] = {}
    cleared: list[str] = []
    for case_id in case_ids:
        case = cases.get(case_id)
        if case is None:
            continue
        if case.next_review_on is None or case.next_review_on > business_date:
            result.skipped += 1
            continue
        versions[case_id] = case.version
        try:
            if fault is not None:
                fault(case)
            events = case.advance(business_date, policy)
        except Exception as exc:  # noqa: BLE001 - any failure of one case quarantines that case only
            result.stuck[case_id] = f"{type(exc).__name__}: {exc}"
            continue
        changes.append((case, events))
        cleared.append(case_id)
        result.advanced += 1
        result.add_events(events)
    store.save_batch(changes, expected_versions=versions, stuck=result.stuck, business_date=business_date, cleared=cleared)
    return result


def book_loans(
    store: CaseStore,
    loans: Sequence[tuple[str, LoanTerms]],
    lpr: LprTable | None = None,
) -> int:
    """Open a case for each (case_id, terms) and store them with their opening events."""
    lpr = lpr or store.lpr_table()
    items = []
    for case_id, terms in loans:
        case, events = CollectionCase.open(case_id, terms, lpr)
        items.append((terms, case, events))
    store.add_cases(items)
    return len(items)


def _command(store: CaseStore, case_ref: str, run: Callable[[CollectionCase], list[Event]]) -> list[Event]:
    case_id = store.resolve_case_id(case_ref)
    case = store.load_one(case_id)
    version = case.version
    events = run(case)
    store.save([(case, events)], expected_versions={case_id: version})
    return events


def record_payment(
    store: CaseStore,
    case_ref: str,
    amount: object,
    received_on: date,
    payment_id: str,
    policy: CollectionPolicy,
    *,
    actor: str,
    channel: str = "bank_transfer",
) -> list[Event]:
    """Record a payment once: the same external payment id a second time records nothing."""
    if not payment_id.strip():
        raise DomainError("payment_id: must not be empty (use the bank's or channel's transaction id)")
    if store.payment_exists(payment_id):
        return []
    cmd = RecordPayment(
        case=case_ref, operator=actor, amount=amount, received_on=received_on, payment_id=payment_id, channel=channel
    )
    return _command(store, case_ref, lambda c: c.record_payment(cmd, policy))


Command = Callable[[CollectionCase], list[Event]]


def run_commands(store: CaseStore, day: date, commands: Sequence[tuple[str, Command]]) -> BatchResult:
    """Run many commands of one day in one transaction; a command the rules refuse is skipped.

    Refusals are returned in ``stuck`` (case id -> message) without marking the case stuck.
    """
    result = BatchResult(day)
    cases = store.load(list(dict.fromkeys(case_id for case_id, _ in commands)))
    versions = {cid: c.version for cid, c in cases.items()}
    pending: dict[str, list[Event]] = {}
    for case_id, command in commands:
        try:
            events = command(cases[case_id])
        except DomainError as exc:
            result.stuck[case_id] = str(exc)
            continue
        if events:
            pending.setdefault(case_id, []).extend(events)
            result.add_events(events)
    store.save(
        [(cases[cid], evs) for cid, evs in pending.items()],
        expected_versions={cid: versions[cid] for cid in pending},
    )
    result.advanced = len(pending)
    return result


def amount_due(case: CollectionCase, on: date) -> Decimal:
    """Everything due on the day, with charges accrued through it."""
    return case.view(max(on, case.accrued_through)).projection.total_due


def payoff_amount(case: CollectionCase, on: date) -> Decimal:
    """What settles the loan on the day: all due, principal not yet due, interest accrued so far."""
    view = case.view(max(on, case.accrued_through))
    p = view.projection
    return p.total_due + p.principal_outstanding - p.overdue_principal + view.contract_interest_accrued


def make_promise(store, case_ref, amount, promised_on, made_on, policy, *, actor) -> list[Event]:
    cmd = MakePromise(case=case_ref, operator=actor, amount=amount, promised_on=promised_on, made_on=made_on)
    return _command(store, case_ref, lambda c: c.make_promise(cmd, policy))


def record_contact(
    store, case_ref, channel, party, outcome, contacted_at: datetime, *, actor, collectors=1, note=""
) -> list[Event]:
    cmd = RecordContact(
        case=case_ref, operator=actor, channel=channel, party=party, outcome=outcome, contacted_at=contacted_at,
        collectors=collectors, note=note,
    )
    return _command(store, case_ref, lambda c: c.record_contact(cmd))


def pause_case(store, case_ref, reason, until, made_on, policy, *, actor) -> list[Event]:
    cmd = PauseCase(case=case_ref, operator=actor, reason=reason, until=until, made_on=made_on)
    return _command(store, case_ref, lambda c: c.pause(cmd, policy))


def resume_case(store, case_ref, made_on, *, actor) -> list[Event]:
    return _command(store, case_ref, lambda c: c.resume(ResumeCase(case=case_ref, operator=actor, made_on=made_on)))


def write_off_case(store, case_ref, reason, made_on, policy, *, actor) -> list[Event]:
    cmd = WriteOff(case=case_ref, operator=actor, reason=reason, made_on=made_on)
    return _command(store, case_ref, lambda c: c.write_off(cmd, policy))


def retry_case(
    store: CaseStore,
    case_ref: str,
    business_date: date | None,
    policy: CollectionPolicy,
    *,
    fault: Callable[[CollectionCase], None] | None = None,
) -> tuple[str, date | None, BatchResult]:
    """Advance one (stuck) case: to ``business_date``, else the date it got stuck on, else the
    last closed date. Clears its stuck flag when it goes through. Returns (case id, date, result)."""
    row = store.case_row(case_ref)
    day = business_date or row.stuck_on or store.last_closed_business_date()
    if day is None:
        return row.case_id, None, BatchResult(date.min)
    return row.case_id, day, advance_batch(store, [row.case_id], day, policy, fault=fault)
