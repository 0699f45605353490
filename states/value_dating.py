"""Value-dated payments: the charges posted after a payment's value date, taken back.

A bank file arrives the morning after: the close at 02:00 has already
accrued the case through today when yesterday's receipts are loaded. Such a
payment is applied at its value date v: the charges posted after v are
reversed by one compensating ``ChargesReversed`` event (an event is never
edited), the payment is allocated as of v, and the case is accrued again
through the last accrual date, so interest is charged only on what was
really owed each day (``CollectionCase.record_payment``). Stage changes made
meanwhile stand as history; the next review decides on the corrected
balances. Litigation costs posted after v (a lawsuit filed, an execution
recorded) stand as history too, and are not what the payment is allocated
against: it pays what was owed on v (``costs_posted_after``).

Only the accruals still in effect matter: those after the case's last
reversal (an earlier value-dated payment already reversed and re-posted
what came before it) that run past v. ``reversal`` takes those events, no
I/O, and works out the running totals as they stood at the last accrual on
or before v; the event carries them, so replaying it restores them exactly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from states import cap_ledger
from states.accrual import CONTRACT, PERIOD_START, Totals
from states.cap_ledger import Unenforced
from states.errors import DomainError
from states.events import AccrualTotal, AllocatedLine, ChargesAccrued, Event, ExecutionRecorded, LawsuitFiled, PaymentReceived
from states.money import ZERO


@dataclass(frozen=True)
class Reversal:
    """What a ``ChargesReversed`` event records: what it takes back, and the totals it restores."""

    reversed_seqs: tuple[int, ...]
    accrued_through: date  # the last accrual on or before the value date
    lines: tuple[AllocatedLine, ...]  # the enforceable charges taken back, by component and installment
    totals: tuple[AccrualTotal, ...]  # principal-days and computed postings as they were then
    charged: Decimal
    unenforced: tuple[Unenforced, ...]


def check_backdating(case_id: str, paid_on: date, last_closed: date, window_days: int, reason: str) -> None:
    """DOMAIN.md §9: a payment dated more than ``window_days`` before the case's last closed date
    needs an operator's reason (recorded on it); within the window it is value-dated."""
    if reason or paid_on >= last_closed - timedelta(days=window_days):
        return
    days = (last_closed - paid_on).days
    raise DomainError(
        f"case {case_id}: payment dated {paid_on} is {days} days before the case's last closed date {last_closed}, "
        f"beyond the back-dating window of {window_days} days (policy backdating_days); nothing recorded. "
        f"A reason for back-dating it (backdate_reason) records it"
    )


def value_date(paid_on: date, recorded: Iterable[Event], after_seq: int) -> date:
    """The date a payment dated ``paid_on`` is applied as of: its own, or the latest value date of
    a payment already recorded if that is later (no payment is ever allocated again).

    The payments after seq ``after_seq`` (the last reversal) are enough: every one before it was
    valued no later than the payment that made the reversal, which comes after it.
    """
    valued = [e.valued_on for e in recorded if isinstance(e, PaymentReceived) and e.seq > after_seq]
    return max([paid_on, *valued])


COST_EVENTS = (LawsuitFiled, ExecutionRecorded)  # the events that post litigation costs (what the store hands a value-dated payment)


def costs_posted_after(value_date: date, recorded: Iterable[Event]) -> Decimal:
    """The litigation costs the case was charged after ``value_date`` (``recorded``: at least its
    lawsuit and execution events dated after it): owed now, not on the value date, so a payment
    valued then is not allocated against them (they stay due, as if it had been recorded on its day)."""
    posted = {e.seq: e for e in recorded if isinstance(e, COST_EVENTS) and e.business_date > value_date}  # each once
    return sum((c.enforceable for e in posted.values() for c in e.costs), ZERO)


def in_effect_after(value_date: date, accruals: Iterable[ChargesAccrued], after_seq: int) -> list[ChargesAccrued]:
    """The accruals still in effect (after seq ``after_seq``, the last reversal) that run past ``value_date``."""
    unique = {e.seq: e for e in accruals if e.seq > after_seq and e.through > value_date}
    return [unique[seq] for seq in sorted(unique)]


def reversal(case_id: str, totals: Totals, accrued_through: date, accruals: Sequence[ChargesAccrued]) -> Reversal:
    """Take back ``accruals`` (in seq order, ending at ``accrued_through``): the totals before the first."""
    if not accruals:
        raise DomainError(f"case {case_id}: no accrual after the value date to reverse")
    for earlier, later in zip(accruals, accruals[1:]):
        if later.accrued_from != earlier.through:
            raise DomainError(
                f"case {case_id}: accruals seq {earlier.seq} (through {earlier.through}) and seq {later.seq} "
                f"(from {later.accrued_from}) do not follow each other; cannot reverse them"
            )
    if accruals[-1].through != accrued_through:
        raise DomainError(
            f"case {case_id}: the accruals to reverse end on {accruals[-1].through}, not on the last accrual "
            f"{accrued_through}; load every accrual in effect after the value date"
        )
    principal_days = dict(totals.principal_days)
    computed = dict(totals.computed)
    charged = totals.charged
    queue = tuple(totals.unenforced)
    taken: dict[tuple[str, int | None], Decimal] = {}
    for event in reversed(accruals):
        for seg in event.segments:
            principal_days[seg.component] -= seg.base * seg.days
        cut = []
        for p in event.postings:
            if p.component in computed:
                computed[p.component] -= p.computed
            _take(taken, p.component, p.installment, p.enforceable)
            charged -= p.enforceable
            cut.append(Unenforced(p.component, p.unenforceable, p.installment))
        for lot in event.released:
            _take(taken, lot.component, lot.installment, lot.amount)
            charged -= lot.amount
        queue = cap_ledger.before_posting(queue, event.released, cut)
    lines = tuple(AllocatedLine(component, amount, installment) for (component, installment), amount in taken.items() if amount)
    restored = tuple(
        AccrualTotal(component, principal_days[component], computed.get(component, ZERO)) for component in principal_days
    )
    return Reversal(tuple(e.seq for e in accruals), accruals[0].accrued_from, lines, restored, charged, queue)


def _take(taken: dict[tuple[str, int | None], Decimal], component: str, installment: int | None, amount: Decimal) -> None:
    key = (component, installment)
    taken[key] = taken.get(key, ZERO) + amount


# --------------------------------------------------------------------------
# a plan's period start, across a reversal
#
# A case that follows its plan charges each installment's interest in proportion to the contract
# principal-days its period had: those accrued since the period started (``accrual.PERIOD_START``,
# the running total at the due date before). A reversal back across a due date puts the running
# total back before that due date, so the period start must go back with it: to the start of the
# period the value date falls in, which the case keeps for its last few periods.

PERIOD_STARTS_KEPT = 4  # periods of about a month: a value date up to ~3 months back, beyond the 31-day window


def after_period_start(starts: dict[int, Decimal], installment: int, principal_days: Decimal) -> dict[int, Decimal]:
    """The period starts kept once installment ``installment``'s period starts at ``principal_days``."""
    kept = {**starts, installment: principal_days}
    return {n: kept[n] for n in sorted(kept)[-PERIOD_STARTS_KEPT:]}


def before_due_dates_after(starts: dict[int, Decimal], due_on: dict[int, date], accrued_through: date) -> dict[int, Decimal]:
    """The period starts still in effect once accruals after ``accrued_through`` are reversed: a period
    starts at the due date of the installment before it."""
    return {n: pd for n, pd in starts.items() if n < 2 or due_on[n - 1] <= accrued_through}


def with_period_start(
    case_id: str, back: Reversal, reversed_accruals: Sequence[ChargesAccrued], due_on: dict[int, date], starts: dict[int, Decimal]
) -> tuple[AccrualTotal, ...]:
    """``back``'s restored totals with the period start the reversal restores (in its place among them)."""
    start = restored_period_start(case_id, reversed_accruals, due_on, starts)
    if start is None:
        return back.totals
    restored = AccrualTotal(PERIOD_START, start, ZERO)
    totals = back.totals if any(t.component == PERIOD_START for t in back.totals) else (*back.totals, restored)
    return tuple(restored if t.component == PERIOD_START else t for t in totals)


def restored_period_start(
    case_id: str, reversed_accruals: Sequence[ChargesAccrued], due_on: dict[int, date], starts: dict[int, Decimal]
) -> Decimal | None:
    """The period start a reversal of ``reversed_accruals`` restores (None: they cross no due date)."""
    crossed = [
        p.installment
        for e in reversed_accruals
        for p in e.postings
        if p.component == CONTRACT and p.installment is not None and due_on[p.installment] == e.through
    ]
    if not crossed:
        return None
    first = min(crossed)
    if first == 1:
        return ZERO
    if first not in starts:
        raise DomainError(
            f"case {case_id}: the payment goes back across the due date of installment {first}, further than the "
            f"case keeps its periods' starts; rebuild the case from its events (collectflow case rebuild) and pay again"
        )
    return starts[first]
