"""Explanations: what each event means, in words and in figures, and a case's history as a timeline.

``describe(event)`` is the one line saying what happened; ``explain(event)``
gives each charge's lines (an accrual stretch: base x rate x days; a
posting: computed, enforceable, above the cap); ``timeline_of(history)``
folds the events through the case and keeps the balances after each one.
A rule's words come from ``states.rule_texts``: a ``ChargesAccrued`` stores
the rule's code and numbers, and its decoder fills the template in.
Pure: the store-reading ``models.audit.timeline`` feeds it the events.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from states.case import CollectionCase
from states.events import (
    SYSTEM,
    AccrualSegment,
    BorrowerDetailsAmended,
    CaseOpened,
    CasePaused,
    CaseResumed,
    CaseReviewed,
    CaseWrittenOff,
    ChargePosting,
    ChargesAccrued,
    ChargesReversed,
    ContactRecorded,
    ContactRefused,
    CreditReportNoticeSent,
    DelayedPerformanceInterestAccrued,
    Event,
    ExecutionRecorded,
    JudgmentEntered,
    LawsuitFiled,
    MonthEndReported,
    PaymentReceived,
    PersonalDataRead,
    CaseRebuilt,
    VisitReported,
    VisitScheduled,
    PlacedWithAgency,
    PlacementDeferred,
    CommissionAccrued,
    PromiseBroken,
    PromiseKept,
    PromiseMade,
    RecalledFromAgency,
    StageChanged,
    canonical_json,
)
from states.money import ZERO
from states.policy import CollectionPolicy
from states.rule_texts import RELEASE_RULE
from states.views import BALANCE_FIELDS, CaseProjection
from states.vocabulary import LENDER

NOT_YET_POSTED = "NotYetPosted"  # the type of a timeline's closing valuation row (it is no event)


@dataclass(frozen=True)
class ChargeLine:
    """One line of a charge's explanation: an accrual stretch, or a posting and what the cap removed."""

    kind: str  # "accrual" (exact, unrounded), "posting" (in fen) or "release" (held back before, charged now)
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
    daily_rate: Decimal | None = None  # a rate a day (delayed-performance interest), not a year

    def text(self) -> str:
        if self.kind == "accrual" and self.daily_rate is not None:
            return (
                f"{self.component}: {self.base} x {_percent(self.daily_rate)} a day x {_days(self.days)} "
                f"({_span(self.start, self.end)}) = {self.amount}  [{self.rule}]"
            )
        if self.kind == "accrual":
            return (
                f"{self.component}: {self.base} x {_percent(self.annual_rate)} x {_days(self.days)} "
                f"({_span(self.start, self.end)}) = {self.amount}  [{self.rule}]"
            )
        name = self.component + (f" #{self.installment}" if self.installment is not None else "")
        if self.kind == "release":
            return f"{name}: {self.amount} released under the cap: room grew to {self.cap_limit}  [{self.rule}]"
        capped = f", {self.unenforceable} above the cap (limit {self.cap_limit})" if self.unenforceable else ""
        return f"{name}: posted {self.enforceable} of {self.amount}{capped}  [{self.rule}]"

    def as_dict(self) -> dict[str, Any]:
        values = {k: _json_value(v) for k, v in dataclasses.asdict(self).items() if v is not None}
        return {**values, "text": self.text()}


@dataclass(frozen=True)
class TimelineRow:
    """One line of a case's history: an event, what it charged, and the balances after it."""

    seq: int
    business_date: date
    type: str
    actor: str
    description: str
    charges: tuple[ChargeLine, ...]
    after: CaseProjection  # the case's projection right after this event

    @property
    def balances(self) -> dict[str, Any]:
        return _balances(self.after)

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


def timeline_of(
    history: Iterable[Event], as_of: date | None = None, policy: CollectionPolicy | None = None
) -> list[TimelineRow]:
    """One explained row per event, with the balances after it.

    Given ``as_of``, the case is also valued as of that date (``CollectionCase.view``,
    with ``policy``'s reviews when given): where charges accrued after the last event
    are not yet posted, one more row, "accrued, not yet posted, through D", carries
    exactly the balances ``case show --as-of D`` gives.
    """
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
    if case is not None and as_of is not None:
        view, events = case.valuation(max(as_of, case.accrued_through), policy)
        if rows[-1].balances != _balances(view.projection):
            rows.append(
                TimelineRow(
                    seq=rows[-1].seq,  # no event of its own: the valuation after the last one
                    business_date=view.as_of,
                    type=NOT_YET_POSTED,
                    actor=SYSTEM,
                    description=f"accrued, not yet posted, through {view.as_of}",
                    charges=tuple(line for e in events for line in explain(e)),
                    after=view.projection,
                )
            )
    return rows


def explain(event: Event) -> tuple[ChargeLine, ...]:
    """The explanation lines of a charge-bearing event (empty for the others)."""
    if isinstance(event, ChargesAccrued):
        released = tuple(
            ChargeLine(
                "release", lot.component, lot.amount, RELEASE_RULE,
                enforceable=lot.amount, cap_limit=event.cap_limit, installment=lot.installment,
            )
            for lot in event.released
        )
        return tuple(_accrual_line(s) for s in event.segments) + released + tuple(
            _posting_line(p, event.cap_limit) for p in event.postings
        )
    if isinstance(event, (LawsuitFiled, ExecutionRecorded)):
        return tuple(_posting_line(p, None) for p in event.costs)
    if isinstance(event, DelayedPerformanceInterestAccrued):
        accrued = ChargeLine(
            "accrual", event.postings[0].component, event.exact, event.postings[0].rule, base=event.base,
            start=event.start, end=event.through, days=event.days, daily_rate=event.daily_rate,
        )
        return (accrued, *(_posting_line(p, None) for p in event.postings))
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
    """One line saying what happened, in words a collector or an auditor reads (masked values only).

    The one description of an event: the timeline, the CLI's event lines and
    the operator flows' reports all show this.
    """
    describe_one = _DESCRIBE.get(type(event))
    if describe_one is None:
        return f"{event.type}: {canonical_json(event.payload())}"
    return describe_one(event)


def _opened(e: CaseOpened) -> str:
    return (
        f"case opened for contract {e.contract_no}: {e.principal} at {_percent(e.annual_rate)} a year "
        f"({e.day_count}), {len(e.schedule)} {e.repayment_method} installments from {e.schedule[0].due_on} "
        f"({'plan as imported' if e.plan_imported else f'plan computed, {e.schedule_interest} interest'}); "
        f"charges capped at {_percent(e.cap_rate)} ({e.cap_regime})"
    )


def _charges(e: ChargesAccrued) -> str:
    period = _span(e.accrued_from + timedelta(days=1), e.through) if e.through > e.accrued_from else str(e.through)
    posted = [
        f"{p.component}{'#' + str(p.installment) if p.installment is not None else ''} {p.enforceable}"
        for p in e.postings
    ]
    capped = sum((p.unenforceable for p in e.postings), ZERO)
    text = f"charges {period}: " + (", ".join(posted) if posted else "accrued, nothing falls due")
    released = sum((lot.amount for lot in e.released), ZERO)
    if released:
        text += f"; {released} released under the cap: room grew to {e.cap_limit}"
    return text + (f"; {capped} above the legal cap, not collectable for now" if capped else "")


def _payment(e: PaymentReceived) -> str:
    lines = ", ".join(
        f"{l.component}{'#' + str(l.installment) if l.installment is not None else ''} {l.amount}" for l in e.lines
    )
    over = f"; overpaid {e.overpayment}" if e.overpayment else ""
    text = f"payment {e.payment_id} of {e.amount} by {e.channel} ({e.allocation_order}): {lines or 'nothing due'}{over}"
    if e.valued_on > e.received_on:
        text += (
            f"; dated {e.received_on}, applied as of {e.valued_on}: no earlier than a payment with a later "
            f"value date already recorded (payments are never allocated again)"
        )
    elif e.value_date is not None:
        text += f"; value-dated: applied as of {e.value_date}, recorded on {e.business_date}"
    if e.backdate_reason:
        text += f"; the reason given for back-dating it: {e.backdate_reason}"
    return text


def _charges_reversed(e: ChargesReversed) -> str:
    taken = ", ".join(
        f"{l.component}{'#' + str(l.installment) if l.installment is not None else ''} {l.amount}" for l in e.lines
    )
    seqs = ", ".join(str(seq) for seq in e.reversed_seqs)
    return (
        f"charges after {e.value_date} reversed for payment {e.payment_id} (value-dated): seq {seqs} taken back"
        f" ({taken or 'nothing charged'}); accrual restored to {e.accrued_through}, charged {e.charged}; "
        f"the days after are posted again on the balances the payment leaves"
    )


def payment_notes(payment: PaymentReceived, opened: CaseOpened) -> list[str]:
    """What an operator should know of a payment beyond its allocation: money that went to
    installments not yet due (a prepayment), and money above everything owed (an overpayment)."""
    due_on = {s.number: s.due_on for s in opened.schedule}
    on = payment.valued_on
    ahead = sorted({l.installment for l in payment.lines if l.installment is not None and due_on[l.installment] > on})
    prepaid = sum((l.amount for l in payment.lines if l.installment in ahead), ZERO)
    notes = []
    if payment.value_date is not None:
        moved = f" (dated {payment.received_on}: a payment with a later value date was already recorded)" if on > payment.received_on else ""
        notes.append(
            f"value-dated: applied as of {on}{moved}; the charges posted after it were reversed and the days "
            f"to {payment.business_date} posted again on the balances it leaves"
        )
    if payment.backdate_reason:
        notes.append(f"the reason given for back-dating it: {payment.backdate_reason}")
    if prepaid:
        notes.append(f"{prepaid} prepays installment(s) {', '.join(map(str, ahead))}, not yet due on {on}")
    if payment.overpayment:
        notes.append(f"{payment.overpayment} is above everything owed: kept on the case as an overpayment, to refund or apply")
    return notes


def _lawsuit(e: LawsuitFiled) -> str:
    costs = sum((c.enforceable for c in e.costs), ZERO)
    override = f"; filed against the rule ({e.overridden}): {e.override_reason}" if e.overridden else ""
    return f"lawsuit filed: claim {e.claim}, court and legal costs {costs}{override}"


def _judgment(e: JudgmentEntered) -> str:
    court = ", ".join(part for part in (e.court, e.case_number) if part)
    return (
        f"judgment entered{' (' + court + ')' if court else ''}: judgment debt {e.amount}, performance deadline "
        f"{e.deadline}; delayed-performance interest from {e.deadline + timedelta(days=1)} if unpaid"
    )


def _delayed_interest(e: DelayedPerformanceInterestAccrued) -> str:
    posted = sum((p.enforceable for p in e.postings), ZERO)
    return (
        f"delayed-performance interest {_span(e.start, e.through)}: {posted} on the unpaid judgment debt {e.base} "
        f"({_percent(e.daily_rate)} a day, outside the contract cap)"
    )


def _execution(e: ExecutionRecorded) -> str:
    fee = sum((c.enforceable for c in e.costs), ZERO)
    ended = " (ended without recovery: the case may be written off)" if e.outcome == "no_assets" else ""
    return f"execution ended {e.outcome}{ended}; execution fee {fee} on the unpaid judgment debt {e.judgment_debt}"


def _notice(e: CreditReportNoticeSent) -> str:
    return (
        f"credit-report pre-notice sent: the default may be reported from the month end {e.first_report_on} "
        f"(at least {_days(e.notice_days)} ahead)"
    )


def _month_end_reported(e: MonthEndReported) -> str:
    r = e.record
    when = "" if e.business_date == e.month_end else f", recorded when the case closed (it does not change again by {e.month_end})"
    ended = f"; default ended {e.default_ended_on}" if e.default_ended_on else ""
    return (
        f"credit report {r.month} for account {r.account}: {r.status}, DPD {r.dpd} ({r.bucket}, {r.classification}), "
        f"overdue principal {r.overdue_principal}, overdue total {r.overdue_total}{ended}{when}"
    )


def _by(e: Any) -> str:
    """Who made a contact when it was not the lender, and what was said of the debt."""
    said = [what for what, flag in (("debt disclosed", e.disclosed_debt), ("asked to pay", e.asked_to_pay)) if flag]
    return (f" by {e.by}" if e.by != LENDER else "") + (f" ({', '.join(said)})" if said else "")


_DESCRIBE: dict[type, Callable[[Any], str]] = {
    CaseOpened: _opened,
    ChargesAccrued: _charges,
    PaymentReceived: _payment,
    ChargesReversed: _charges_reversed,
    StageChanged: lambda e: f"{e.from_stage} -> {e.to_stage} ({e.trigger}: {e.reason}; DPD {e.dpd})",
    CaseReviewed: lambda e: f"reviewed at DPD {e.dpd}; next review {e.next_review_on or 'none (closed)'}",
    PromiseMade: lambda e: f"promise to pay {e.amount} by {e.promised_on}"
    + ("" if e.holds_escalation else " (does not hold escalation: broken promises before)"),
    PromiseKept: lambda e: f"promise of {e.promised_on} kept: {e.paid} paid",
    PromiseBroken: lambda e: f"promise of {e.promised_on} broken: {e.paid} paid ({e.broken_in_a_row} broken in a row)",
    ContactRecorded: lambda e: f"{e.channel} to {e.party}{_by(e)} at {e.contacted_at}: {e.outcome}"
    + (f" ({e.collectors} collectors)" if e.collectors > 1 else "")
    + (f" - {e.note}" if e.note else ""),
    ContactRefused: lambda e: f"{e.channel} to {e.party}{_by(e)} at {e.contacted_at} refused: {e.rule}",
    CasePaused: lambda e: f"paused until {e.until}: {e.reason}",
    CaseResumed: lambda e: f"resumed: {e.reason}",
    PlacedWithAgency: lambda e: f"placed with agency {e.agency_id} until {e.until} at {_percent(e.commission_rate)} commission"
    + f" ({e.rate_group}{' at ' + e.bucket if e.bucket else ''}; {e.balance_placed} placed; strategy {e.strategy})",
    PlacementDeferred: lambda e: f"not placed: {e.reason}; tried again on {e.retry_on}",
    CommissionAccrued: lambda e: f"agency {e.agency_id} commission {e.commission} ({_percent(e.commission_rate)} of {e.recovered} recovered; "
    "the lender's cost, not the borrower's)",
    RecalledFromAgency: lambda e: f"recalled from agency {e.agency_id}: {e.reason}",
    LawsuitFiled: _lawsuit,
    JudgmentEntered: _judgment,
    DelayedPerformanceInterestAccrued: _delayed_interest,
    ExecutionRecorded: _execution,
    CaseWrittenOff: lambda e: f"written off with {e.amount} unrecovered: {e.reason}",
    BorrowerDetailsAmended: lambda e: "borrower details amended: "
    + ", ".join(f"{c.field} {c.before or '-'} -> {c.after or '-'}" for c in e.changes)
    + (f" ({e.source})" if e.source else ""),
    PersonalDataRead: lambda e: f"personal data read in the clear: {', '.join(e.fields)} ({e.purpose})",
    VisitScheduled: lambda e: f"field visit due by {e.due_on}",
    VisitReported: lambda e: f"field visit by {', '.join(e.collectors)} at {e.visited_at}: {e.outcome}" + (f" ({e.note})" if e.note else ""),
    CaseRebuilt: lambda e: f"projection and snapshot rebuilt from the events ({e.reason})",
    CreditReportNoticeSent: _notice,
    MonthEndReported: _month_end_reported,
}


def _balances(projection: CaseProjection) -> dict[str, Any]:
    """The balances after an event; DPD as of the day the case was accrued through."""
    dpd = projection.dpd(projection.accrued_through)
    return {name: dpd if name == "dpd" else getattr(projection, name) for name in BALANCE_FIELDS}


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
