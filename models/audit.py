"""Audit: prove the store matches its events, and show a case's history a person can follow.

``verify`` streams every event in (case_id, seq) order, a chunk of cases at
a time, so memory stays bounded however large the store. For each case it
checks that the seqs run 1..n, that every stored hash is the sha256 of the
previous hash and the event *as stored* (its columns, not an upcast form),
that the case row's ``last_hash`` and ``version`` point at the newest event,
and that replaying the events through the domain gives exactly the stored
projection and snapshot. It reports every failing case, seq and difference.

``timeline`` is what ``collectflow case replay`` prints: one row per event,
each charge explained (component, base, rate, days, amount, cap) and the
balances after the event, found by applying the events one by one.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, func, select

from models.store import CaseStore, chain_hash, event_from_row, stored_canonical_json
from models.tables import GENESIS_HASH, cases, events, projection_from_row
from states.case import CaseProjection, CaseView, CollectionCase
from states.snapshot import as_version as snapshot_as_version
from states.events import (
    AccrualSegment,
    CaseOpened,
    CasePaused,
    CaseResumed,
    CaseReviewed,
    CaseWrittenOff,
    ChargePosting,
    ChargesAccrued,
    ContactRecorded,
    ContactRefused,
    Event,
    LawsuitFiled,
    PaymentReceived,
    PlacedWithAgency,
    PromiseBroken,
    PromiseKept,
    PromiseMade,
    RecalledFromAgency,
    StageChanged,
    canonical_json,
)

VERIFY_CHUNK = 500  # cases whose events are read and checked together
STREAM_ROWS = 5_000  # rows fetched per round trip from the server-side cursor


# --------------------------------------------------------------------------
# verify


@dataclass(frozen=True)
class Finding:
    """One thing wrong with one case (at one event, when it can be pinned to one)."""

    case_id: str
    seq: int | None
    problem: str

    def __str__(self) -> str:
        where = f"case {self.case_id}" + (f" seq {self.seq}" if self.seq is not None else "")
        return f"{where}: {self.problem}"


@dataclass
class VerifyReport:
    cases_checked: int = 0
    events_checked: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def failing_cases(self) -> list[str]:
        return sorted({f.case_id for f in self.findings})

    def for_case(self, case_id: str) -> list[Finding]:
        return [f for f in self.findings if f.case_id == case_id]


def verify(
    engine: Engine,
    case_ids: Iterable[str] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> VerifyReport:
    """Check the hash chains and projections of every case (or of ``case_ids``).

    ``on_progress(cases_done)`` is called after each chunk of cases (the
    total is ``len(case_ids)``, or ``store.portfolio_summary().total.cases``).
    """
    report = VerifyReport()
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execution_options(isolation_level="REPEATABLE READ")  # one consistent view
        with conn.begin():
            if case_ids is None:
                ids: Iterator[str] = conn.execution_options(yield_per=STREAM_ROWS).execute(
                    select(cases.c.case_id).order_by(cases.c.case_id)
                ).scalars()
            else:
                ids = iter(sorted(set(case_ids)))
            while chunk := list(itertools.islice(ids, VERIFY_CHUNK)):
                _verify_chunk(conn, chunk, report)
                if on_progress is not None:
                    on_progress(report.cases_checked)
            if case_ids is None:
                _find_orphan_events(conn, report)
    return report


def _verify_chunk(conn: Connection, chunk: Sequence[str], report: VerifyReport) -> None:
    rows = {row["case_id"]: row for row in conn.execute(select(cases).where(cases.c.case_id.in_(chunk))).mappings()}
    stream = (
        conn.execution_options(yield_per=STREAM_ROWS)
        .execute(select(events).where(events.c.case_id.in_(chunk)).order_by(events.c.case_id, events.c.seq))
        .mappings()
    )
    seen: set[str] = set()
    for case_id, case_events in itertools.groupby(stream, key=lambda r: r["case_id"]):
        history = list(case_events)
        seen.add(case_id)
        report.events_checked += len(history)
        report.findings.extend(check_case(case_id, rows.get(case_id), history))
    for case_id in chunk:
        report.cases_checked += 1
        if case_id not in seen:
            if case_id in rows:
                report.findings.append(Finding(case_id, None, "the case has no events"))
            else:
                report.findings.append(Finding(case_id, None, "no such case"))


def _find_orphan_events(conn: Connection, report: VerifyReport) -> None:
    query = (
        select(events.c.case_id, func.count())
        .where(~select(cases.c.case_id).where(cases.c.case_id == events.c.case_id).exists())
        .group_by(events.c.case_id)
    )
    for case_id, count in conn.execute(query):
        report.findings.append(Finding(case_id, None, f"{count} events but no case row"))


def check_case(case_id: str, row: Mapping[str, Any] | None, history: Sequence[Mapping[str, Any]]) -> list[Finding]:
    """Everything wrong with one case: its stored events (in seq order) against its case row."""
    findings: list[Finding] = []

    def found(seq: int | None, problem: str) -> None:
        findings.append(Finding(case_id, seq, problem))

    expected_seq, prev_hash = 1, GENESIS_HASH
    for event in history:
        seq = event["seq"]
        if seq != expected_seq:
            missing = f"{expected_seq}" if seq == expected_seq + 1 else f"{expected_seq}..{seq - 1}"
            gap = f"seq {missing} missing" if seq > expected_seq else "out of order"
            found(seq, f"expected seq {expected_seq}, found {seq} ({gap})")
        if event["prev_hash"] != prev_hash:
            found(seq, f"prev_hash {event['prev_hash'][:12]}… does not link to the event before it ({prev_hash[:12]}…)")
        recomputed = chain_hash(event["prev_hash"], stored_canonical_json(**_envelope_columns(event)))
        if recomputed != event["hash"]:
            found(seq, f"hash does not match the stored event (stored {event['hash'][:12]}…, recomputed {recomputed[:12]}…): edited")
        expected_seq, prev_hash = seq + 1, event["hash"]

    if row is None:
        found(None, "events but no case row")
        return findings
    newest = history[-1]
    if row["last_hash"] != newest["hash"]:
        found(None, f"case row last_hash {row['last_hash'][:12]}… is not the hash of its newest event seq {newest['seq']}")
    if row["version"] != newest["seq"]:
        found(None, f"case row version {row['version']} but the newest event is seq {newest['seq']}")

    try:
        replayed = CollectionCase.replay((event_from_row(e) for e in history), case_id)
    except Exception as exc:  # noqa: BLE001 - any failure to replay is a finding
        found(getattr(exc, "seq", None), f"replay fails: {type(exc).__name__}: {exc}")
        return findings
    for name, stored, computed in _projection_differences(projection_from_row(row), replayed.projection()):
        found(None, f"projection {name}: stored {stored}, replay gives {computed}")
    try:
        stored_snapshot = json.loads(row["snapshot"])
    except ValueError as exc:
        found(None, f"snapshot is not JSON: {exc}")
        return findings
    # an older snapshot version is compared with what that version would hold
    replayed_snapshot = json.loads(canonical_json(snapshot_as_version(replayed.snapshot(), stored_snapshot.get("v"))))
    differing = sorted(k for k in stored_snapshot.keys() | replayed_snapshot.keys() if stored_snapshot.get(k) != replayed_snapshot.get(k))
    if differing:
        found(None, f"snapshot differs from replay in: {', '.join(differing)}")
    return findings


def _envelope_columns(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in ("case_id", "seq", "type", "business_date", "actor", "schema_version", "payload")}


def _projection_differences(stored: CaseProjection, replayed: CaseProjection) -> list[tuple[str, Any, Any]]:
    return [
        (f.name, getattr(stored, f.name), getattr(replayed, f.name))
        for f in dataclasses.fields(CaseProjection)
        if getattr(stored, f.name) != getattr(replayed, f.name)
    ]


def rebuild_case(store: CaseStore, case_id: str) -> None:
    """Rewrite a case's projection and snapshot from its events (the fix for a corrupt case row).

    The events are not touched; ``verify`` still checks their hash chain.
    """
    store.rebuild_projections([store.resolve_case_id(case_id)])


# --------------------------------------------------------------------------
# timeline


@dataclass(frozen=True)
class ChargeLine:
    """One line of a charge's explanation: an accrual stretch, or a posting and what the cap removed."""

    kind: str  # "accrual" (exact, unrounded) or "posting" (in fen)
    component: str
    amount: Decimal  # accrual: exact amount; posting: as computed by the rule
    rule: str
    base: Decimal | None = None
    annual_rate: Decimal | None = None
    start: date | None = None
    end: date | None = None
    days: int | None = None
    enforceable: Decimal | None = None
    unenforceable: Decimal | None = None
    cap_limit: Decimal | None = None
    installment: int | None = None

    def text(self) -> str:
        if self.kind == "accrual":
            return (
                f"{self.component}: {self.base} x {_percent(self.annual_rate)} x {_days(self.days)} "
                f"({_span(self.start, self.end)}) = {self.amount}  [{self.rule}]"
            )
        name = self.component + (f" #{self.installment}" if self.installment is not None else "")
        capped = f", {self.unenforceable} above the cap (limit {self.cap_limit})" if self.unenforceable else ""
        return f"{name}: posted {self.enforceable} of {self.amount}{capped}  [{self.rule}]"

    def as_dict(self) -> dict[str, Any]:
        return {k: _json_value(v) for k, v in dataclasses.asdict(self).items() if v is not None}


BALANCE_FIELDS = (
    "stage",
    "dpd",
    "principal_outstanding",
    "overdue_principal",
    "contract_interest_due",
    "penalty_interest",
    "compound_interest",
    "late_fees",
    "costs",
    "total_due",
    "unenforceable",
    "total_paid",
    "overpayment",
)


@dataclass(frozen=True)
class TimelineRow:
    seq: int
    business_date: date
    type: str
    actor: str
    description: str
    charges: tuple[ChargeLine, ...]
    after: CaseProjection  # the case's projection right after this event

    @property
    def balances(self) -> dict[str, Any]:
        return {name: getattr(self.after, name) for name in BALANCE_FIELDS}

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "business_date": self.business_date.isoformat(),
            "type": self.type,
            "actor": self.actor,
            "description": self.description,
            "charges": [c.as_dict() for c in self.charges],
            "balances": {k: _json_value(v) for k, v in self.balances.items()},
        }


def timeline(store: CaseStore, case_id: str, as_of: date | None = None) -> list[TimelineRow]:
    """The case's history to ``as_of`` (default: all of it), one explained row per event."""
    case_id = store.resolve_case_id(case_id)
    return timeline_of(store.events(case_id, as_of))


def timeline_of(history: Iterable[Event]) -> list[TimelineRow]:
    rows: list[TimelineRow] = []
    case: CollectionCase | None = None
    for event in history:
        if case is None:
            case = CollectionCase(event.case_id)
        case.apply(event)
        rows.append(
            TimelineRow(
                seq=event.seq,
                business_date=event.business_date,
                type=event.type,
                actor=event.actor,
                description=describe(event),
                charges=explain(event),
                after=case.projection(),
            )
        )
    return rows


def explain(event: Event) -> tuple[ChargeLine, ...]:
    """The explanation lines of a charge-bearing event (empty for the others)."""
    if isinstance(event, ChargesAccrued):
        return tuple(_accrual_line(s) for s in event.segments) + tuple(
            _posting_line(p, event.cap_limit) for p in event.postings
        )
    if isinstance(event, LawsuitFiled):
        return tuple(_posting_line(p, None) for p in event.costs)
    return ()


def _accrual_line(s: AccrualSegment) -> ChargeLine:
    return ChargeLine(
        "accrual", s.component, s.exact, s.rule, base=s.base, annual_rate=s.annual_rate, start=s.start, end=s.end, days=s.days
    )


def _posting_line(p: ChargePosting, cap_limit: Decimal | None) -> ChargeLine:
    return ChargeLine(
        "posting",
        p.component,
        p.computed,
        p.rule,
        enforceable=p.enforceable,
        unenforceable=p.unenforceable,
        cap_limit=cap_limit,
        installment=p.installment,
    )


def describe(event: Event) -> str:
    """One line saying what happened."""
    describe_one = _DESCRIBE.get(type(event))
    if describe_one is None:
        return f"{event.type}: {canonical_json(event.payload())}"
    return describe_one(event)


def _opened(e: CaseOpened) -> str:
    return (
        f"case opened for contract {e.contract_no}: {e.principal} at {_percent(e.annual_rate)} a year "
        f"({e.day_count}), {len(e.schedule)} {e.repayment_method} installments from {e.schedule[0].due_on}; "
        f"charges capped at {_percent(e.cap_rate)} ({e.cap_regime})"
    )


def _charges(e: ChargesAccrued) -> str:
    period = _span(e.accrued_from + timedelta(days=1), e.through) if e.through > e.accrued_from else str(e.through)
    posted = [
        f"{p.component}{'#' + str(p.installment) if p.installment is not None else ''} {p.enforceable}"
        for p in e.postings
    ]
    capped = sum((p.unenforceable for p in e.postings), Decimal(0))
    text = f"charges {period}: " + (", ".join(posted) if posted else "accrued, nothing falls due")
    return text + (f"; {capped} above the legal cap, not collectable" if capped else "")


def _payment(e: PaymentReceived) -> str:
    lines = ", ".join(
        f"{l.component}{'#' + str(l.installment) if l.installment is not None else ''} {l.amount}" for l in e.lines
    )
    over = f"; overpaid {e.overpayment}" if e.overpayment else ""
    return f"payment {e.payment_id} of {e.amount} by {e.channel} ({e.allocation_order}): {lines or 'nothing due'}{over}"


def _lawsuit(e: LawsuitFiled) -> str:
    costs = sum((c.enforceable for c in e.costs), Decimal(0))
    return f"lawsuit filed: claim {e.claim}, court and legal costs {costs}"


_DESCRIBE: dict[type, Callable[[Any], str]] = {
    CaseOpened: _opened,
    ChargesAccrued: _charges,
    PaymentReceived: _payment,
    StageChanged: lambda e: f"{e.from_stage} -> {e.to_stage} ({e.trigger}: {e.reason}; DPD {e.dpd})",
    CaseReviewed: lambda e: f"reviewed at DPD {e.dpd}; next review {e.next_review_on or 'none (closed)'}",
    PromiseMade: lambda e: f"promise to pay {e.amount} by {e.promised_on}"
    + ("" if e.holds_escalation else " (does not hold escalation: broken promises before)"),
    PromiseKept: lambda e: f"promise of {e.promised_on} kept: {e.paid} paid",
    PromiseBroken: lambda e: f"promise of {e.promised_on} broken: {e.paid} paid ({e.broken_in_a_row} broken in a row)",
    ContactRecorded: lambda e: f"{e.channel} to {e.party} at {e.contacted_at}: {e.outcome}"
    + (f" ({e.collectors} collectors)" if e.collectors > 1 else "")
    + (f" - {e.note}" if e.note else ""),
    ContactRefused: lambda e: f"{e.channel} to {e.party} at {e.contacted_at} refused: {e.rule}",
    CasePaused: lambda e: f"paused until {e.until}: {e.reason}",
    CaseResumed: lambda e: f"resumed: {e.reason}",
    PlacedWithAgency: lambda e: f"placed with agency {e.agency_id} until {e.until} at {_percent(e.commission_rate)} commission",
    RecalledFromAgency: lambda e: f"recalled from agency {e.agency_id}: {e.reason}",
    LawsuitFiled: _lawsuit,
    CaseWrittenOff: lambda e: f"written off with {e.amount} unrecovered: {e.reason}",
}


def _span(start: date | None, end: date | None) -> str:
    return str(start) if start == end else f"{start}..{end}"


def _days(days: int | None) -> str:
    return "1 day" if days == 1 else f"{days} days"


def _percent(rate: Decimal | None) -> str:
    if rate is None:
        return "-"
    return f"{(rate * 100).normalize():f}%"


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def case_view(store: CaseStore, case_ref: str, as_of: date | None = None, policy=None) -> CaseView:
    """A case valued as of a date: replayed up to that date if it lies in the past,
    then accrued (and, given the policy, reviewed) through it without storing anything."""
    case_id = store.resolve_case_id(case_ref)
    case = store.load_one(case_id)
    if as_of is None:
        as_of = case.accrued_through
    elif as_of < case.accrued_through:
        case = CollectionCase.replay(store.events(case_id, as_of), case_id)
    return case.view(max(as_of, case.accrued_through), policy)
