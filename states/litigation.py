"""Litigation to execution: whether a lawsuit is worth filing, the judgment, delayed-performance
interest, execution and the write-off it allows (DOMAIN.md §2 and §5).

The rules are pure functions over ``LitigationState``, an immutable value the
case keeps (``CaseState.litigation``) and replaces only when it applies an
event (``after_judgment``, ``after_delayed_interest``, ``after_payment``,
``after_execution``). ``states.case`` asks these functions what may happen
and records it as events; the fees themselves are ``states.court_fees``'.

- **Worth suing** (``not_worth_suing``): a claim of at least the policy's
  minimum (5,000) whose expected recovery (claim x the policy's recovery
  rate, 40 %) exceeds the expected legal cost (acceptance + preservation +
  execution + attorney fees). The automatic rule adds its timing (placement
  ended, DPD 181: ``states.lifecycle``); an operator may file earlier, from
  any collection stage, and against this rule only with a recorded reason.
- **Judgment debt** (``LitigationState.unpaid_debt``): the amount the
  judgment awards (ordinary interest excluded), less every yuan of the
  payments received since the judgment except what paid delayed-performance
  interest itself or was overpaid; never below zero. A payment reduces the
  judgment debt whatever it is allocated to under the contract's order.
- **Delayed-performance interest** (``delayed_interest``): from the day after
  the performance deadline, 0.0175 % a day on the unpaid judgment debt,
  outside the contract cap, closed-form over each stretch the case accrues
  (the debt only changes at payments, where accrual is cut), posted in fen
  with the residue carried. It is paid last: after everything else owing,
  principal not yet due included (the Supreme People's Court's
  interpretation on delayed-performance interest, art. 4: the money debt of
  the judgment first, the doubled interest after).
- **Execution** (``execution_refusal``): recorded once, after the
  performance deadline, while a judgment debt is unpaid; it posts the
  execution fee on that unpaid debt as a cost. Ended without recovery
  (``no_assets``), it allows the operator's write-off from litigation
  (``write_off_refusal``); nothing else does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum

from states.allocation import Component
from states.court_fees import DELAYED_PERFORMANCE_DAILY_RATE, execution_fee, litigation_costs
from states.money import ZERO, round_fen
from states.policy import CollectionPolicy

DELAYED_INTEREST = Component.DELAYED_PERFORMANCE_INTEREST.value
DELAYED_INTEREST_RULE = "0.0175 % a day on the unpaid judgment debt from the day after the performance deadline (outside the contract cap)"
EXACT = Decimal("0.000000000001")  # how finely an explanation shows an unrounded amount
ONE_DAY = timedelta(days=1)


class ExecutionOutcome(StrEnum):
    """How an execution ended."""

    RECOVERED = "recovered"
    PARTIAL = "partial"
    NO_ASSETS = "no_assets"  # ended without recovery: the case may be written off


@dataclass(frozen=True)
class Judgment:
    amount: Decimal  # the judgment debt awarded, ordinary interest excluded
    deadline: date  # the performance deadline; delayed-performance interest runs from the day after
    entered_on: date


@dataclass(frozen=True)
class LitigationState:
    """What a case's judgment and execution events have made of it (empty: no judgment yet)."""

    judgment: Judgment | None = None
    paid_since_judgment: Decimal = ZERO  # what payments have taken off the judgment debt
    debt_days: Decimal = ZERO  # exact unpaid-judgment-debt x days accrued past the deadline
    interest_posted: Decimal = ZERO  # delayed-performance interest posted so far (fen)
    interest_due: Decimal = ZERO  # posted and not yet paid
    execution: ExecutionOutcome | None = None

    @property
    def unpaid_debt(self) -> Decimal:
        if self.judgment is None:
            return ZERO
        return max(ZERO, self.judgment.amount - self.paid_since_judgment)


EMPTY = LitigationState()


# --------------------------------------------------------------------------
# filing


def expected_legal_cost(claim: Decimal) -> Decimal:
    """Acceptance + preservation + execution + attorney fees of suing for ``claim`` (0 for no claim)."""
    return litigation_costs(claim).total if claim > 0 else ZERO


def not_worth_suing(claim: Decimal, legal_cost: Decimal, policy: CollectionPolicy) -> str | None:
    """Why suing for ``claim`` is not worth it under the policy, or None when it is."""
    if claim < policy.litigation_min_claim:
        return f"the claim {claim} is below the policy's minimum claim {policy.litigation_min_claim}"
    recovery = claim * policy.litigation_expected_recovery_rate
    if recovery <= legal_cost:
        return (
            f"the expected recovery {round_fen(recovery)} (claim {claim} x {policy.litigation_expected_recovery_rate}) "
            f"does not exceed the expected legal cost {legal_cost}"
        )
    return None


# --------------------------------------------------------------------------
# the judgment and delayed-performance interest


def deadline_refusal(deadline: date, entered_on: date) -> str | None:
    """Why a judgment entered on ``entered_on`` cannot set this performance deadline, or None.

    The deadline falls on the judgment date or after it, and at most a year after it: DOMAIN.md
    sets no bound, a year is this system's, so that a mistyped year (2099) is refused, not
    taken as a deadline that never comes."""
    if deadline < entered_on:
        return f"{deadline} is before the judgment date {entered_on}; the performance deadline falls on or after it"
    latest = _one_year_after(entered_on)
    if deadline > latest:
        return (
            f"{deadline} is more than one year after the judgment date {entered_on}; "
            f"give the deadline the judgment sets, {latest} at the latest"
        )
    return None


def _one_year_after(day: date) -> date:
    try:
        return day.replace(year=day.year + 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year + 1, day=28)


def judgment_refusal(in_litigation: bool, state: LitigationState, amount: Decimal) -> str | None:
    """Why a judgment cannot be entered now, or None (its deadline is the command's: ``deadline_refusal``)."""
    if not in_litigation:
        return "no lawsuit is pending; file one first (collectflow lawsuit file)"
    if state.judgment is not None:
        j = state.judgment
        return f"a judgment was already entered on {j.entered_on} ({j.amount}, deadline {j.deadline}); a case has one judgment"
    if amount <= 0:
        return f"the judgment amount must be positive, got {amount}"
    return None


def after_judgment(state: LitigationState, amount: Decimal, deadline: date, on: date) -> LitigationState:
    return replace(state, judgment=Judgment(amount, deadline, on))


@dataclass(frozen=True)
class DelayedInterest:
    """One stretch of delayed-performance interest: its audit trail and its posting in fen."""

    base: Decimal  # the unpaid judgment debt over the stretch
    start: date  # first day accrued
    end: date  # last day accrued (inclusive)
    days: int
    exact: Decimal  # base x daily rate x days, unrounded
    amount: Decimal  # posted: round(rate x all debt-days so far) - posted so far


def delayed_interest(state: LitigationState, start: date, through: date) -> DelayedInterest | None:
    """The delayed-performance interest of the stretch (start, through], or None when none runs in it."""
    judgment = state.judgment
    if judgment is None or state.unpaid_debt <= 0:
        return None
    first = max(start, judgment.deadline) + ONE_DAY
    days = (through - first).days + 1
    if days <= 0:
        return None
    base = state.unpaid_debt
    rate = DELAYED_PERFORMANCE_DAILY_RATE
    amount = round_fen(rate * (state.debt_days + base * days)) - state.interest_posted
    return DelayedInterest(base, first, through, days, (base * rate * days).quantize(EXACT), amount)


def value_dating_floor(state: LitigationState, accrued_through: date) -> date:
    """The earliest date a payment can be applied as of: delayed-performance interest is
    posted outside the charges a value-dated payment reverses, so once it has run (the
    deadline is behind the last accrual) a late payment is applied as of that accrual."""
    judgment = state.judgment
    if judgment is not None and judgment.deadline < accrued_through:
        return accrued_through
    return date.min


def after_delayed_interest(state: LitigationState, base: Decimal, days: int, amount: Decimal) -> LitigationState:
    return replace(
        state,
        debt_days=state.debt_days + base * days,
        interest_posted=state.interest_posted + amount,
        interest_due=state.interest_due + amount,
    )


def after_payment(state: LitigationState, lines: Iterable[tuple[str, Decimal]]) -> LitigationState:
    """A payment's allocated lines (component, amount): what paid delayed-performance interest
    reduces that; everything else reduces the judgment debt (once a judgment is entered)."""
    if state.judgment is None:
        return state
    lines = tuple(lines)
    interest = sum((amount for component, amount in lines if component == DELAYED_INTEREST), ZERO)
    rest = sum((amount for component, amount in lines if component != DELAYED_INTEREST), ZERO)
    return replace(state, interest_due=state.interest_due - interest, paid_since_judgment=state.paid_since_judgment + rest)


def next_review_on(state: LitigationState, after: date) -> date | None:
    """The day delayed-performance interest starts, when it is still ahead (it is then posted on the
    case's reviews like every other charge)."""
    judgment = state.judgment
    if judgment is None or state.unpaid_debt <= 0:
        return None
    start = judgment.deadline + ONE_DAY
    return start if start > after else None


# --------------------------------------------------------------------------
# execution and write-off


def execution_refusal(in_litigation: bool, state: LitigationState, on: date) -> str | None:
    """Why an execution cannot be recorded on ``on``, or None."""
    judgment = state.judgment
    if not in_litigation or judgment is None:
        return "no judgment is entered; enter it first (collectflow lawsuit judgment)"
    if state.execution is not None:
        return f"execution is already recorded ({state.execution.value}); a case has one execution"
    if on <= judgment.deadline:
        return f"execution follows the performance deadline {judgment.deadline}; date it {judgment.deadline + ONE_DAY} or later"
    if state.unpaid_debt <= 0:
        return f"the judgment debt {judgment.amount} is paid; there is nothing to execute"
    return None


def execution_costs(state: LitigationState) -> tuple[Decimal, str]:
    """The execution fee (charged to the debtor) on the unpaid judgment debt, and its rule."""
    debt = state.unpaid_debt
    return execution_fee(debt), f"execution fee on the unpaid judgment debt {debt}"


def after_execution(state: LitigationState, outcome: ExecutionOutcome) -> LitigationState:
    return replace(state, execution=outcome)


def execution_failed(state: LitigationState) -> bool:
    """Execution ended without recovery: what lets an operator write a case in litigation off."""
    return state.execution is ExecutionOutcome.NO_ASSETS


def write_off_refusal(state: LitigationState) -> str | None:
    """Why a case in litigation may not be written off yet, or None."""
    if execution_failed(state):
        return None
    if state.execution is not None:
        return f"execution ended {state.execution.value}, not without recovery; a case in litigation is written off only after execution ended with no_assets"
    where = "no judgment is entered yet" if state.judgment is None else "no execution is recorded yet"
    return f"{where}; a case in litigation is written off only after execution ended without recovery (collectflow lawsuit execution --outcome no_assets)"
