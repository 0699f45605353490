"""Accrual: the charges of one stretch of days, and the interest a payoff brings forward, under the cap.

Accrual through business date D *includes* day D. Days are accrued over
intervals (a, b]: the start day is excluded, the end day included. An
installment due on day d accrues contract interest through d and, if unpaid,
is overdue from d + 1, so as of D it carries DPD(D) = D - d days of penalty
interest. Balances only change at due dates and payments, so accrual between
two dates is closed-form: base x rate x days / basis per constant stretch,
summed exactly as principal-days, and posted in fen as
round(exact cumulative total) - posted so far (the residue is carried).

These are pure functions of the case's terms, balances and running totals;
the case turns what they return into a ``ChargesAccrued`` event and applies
it (``states.case``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from decimal import Decimal
from typing import NamedTuple, Protocol

from states import cap_ledger
from states.allocation import Component
from states.cap_ledger import Unenforced
from states.caps import cap_limit
from states.events import AccrualSegment, CaseOpened, ChargePosting
from states.money import ZERO, DayCount, round_fen
from states.rule_texts import POSTING_RULES, SEGMENT_RULES

ONE_DAY = timedelta(days=1)
EXACT = Decimal("0.000000000001")  # how finely an explanation shows an unrounded amount

CONTRACT = Component.CONTRACT_INTEREST.value
PENALTY = Component.PENALTY_INTEREST.value
COMPOUND = Component.COMPOUND_INTEREST.value
LATE_FEE = Component.LATE_FEE.value
CAP = "cap"  # not a charge: the principal-days the legal cap is measured on
# not a charge: the contract principal-days accrued up to the last due date (kept for a case that follows its plan)
PERIOD_START = "contract_at_period_start"


class ChargeKey(NamedTuple):
    """What a new charge is for: its component and, when it belongs to one, the installment.

    Two charges of one stretch never share a key: the late fee and the
    contract interest of installment 3 are ``(late_fee, 3)`` and
    ``(contract_interest, 3)``; penalty interest belongs to no installment.
    """

    component: Component
    installment: int | None = None


def penalty_rate(annual_rate: Decimal, penalty_uplift: Decimal) -> Decimal:
    """The annual penalty rate on overdue principal: the contract rate with its uplift (DOMAIN.md §3)."""
    return annual_rate * (1 + penalty_uplift)


class Installment(Protocol):
    """What accrual reads of an installment (``states.case.InstallmentState``)."""

    number: int
    due_on: date
    principal: Decimal
    scheduled_interest: Decimal

    @property
    def unpaid(self) -> Decimal: ...


class Balances(NamedTuple):
    """The balances a stretch accrues on; constant over it, since no due date lies inside."""

    not_yet_due: Decimal  # principal still earning contract interest
    overdue_principal: Decimal
    overdue_interest: Decimal
    outstanding: Decimal  # all principal unpaid, overdue included: what the cap is measured on


class Totals(NamedTuple):
    """What the case has accrued since it opened (the running sums the cap and the residue need)."""

    principal_days: Mapping[str, Decimal]  # exact principal-days per component, and CAP
    computed: Mapping[str, Decimal]  # pre-cap postings per daily component, for the carried residue
    charged: Decimal  # enforceable charges so far, all components
    unenforced: Sequence[Unenforced] = ()  # what the cap holds back, oldest first (``states.cap_ledger``)


class Charges(NamedTuple):
    """What one accrual adds: its stretches (the audit trail), its postings in fen, the cap limit,
    and what earlier held-back charges the grown limit now lets through (immutable; built per stretch)."""

    segments: tuple[AccrualSegment, ...]
    postings: tuple[ChargePosting, ...]
    cap_limit: Decimal
    released: tuple[Unenforced, ...] = ()


def stretch_charges(
    terms: CaseOpened,
    day_count: DayCount,
    balances: Balances,
    installments: Sequence[Installment],
    totals: Totals,
    start: date,
    through: date,
) -> Charges:
    """The charges of the stretch (start, through], which has no due date strictly inside it.

    Contract interest of an installment falls due on its due date (``through``);
    a late fee falls due once for an installment that fell due in the stretch
    and is still unpaid. Everything is capped together, cut in the cap's order.
    """
    days = (through - start).days
    first_day = start + ONE_DAY
    penalty = penalty_rate(terms.annual_rate, terms.penalty_uplift)
    basis = day_count.basis
    principal_days = dict(totals.principal_days)
    segments: list[AccrualSegment] = []
    for component, base, rate, rule in (
        (CONTRACT, balances.not_yet_due, terms.annual_rate, SEGMENT_RULES["c"]),
        (PENALTY, balances.overdue_principal, penalty, SEGMENT_RULES["p"].format(terms.penalty_uplift)),
        (COMPOUND, balances.overdue_interest if terms.compound_interest else ZERO, penalty,
         SEGMENT_RULES["k"]),
        (CAP, balances.outstanding, terms.cap_rate, SEGMENT_RULES["cap"].format(terms.cap_regime)),
    ):
        if base > 0:
            principal_days[component] += base * days
            exact = rate * base * days / basis
            segments.append(AccrualSegment(component, base, rate, first_day, through, days, exact.quantize(EXACT), rule))

    # The charges in the order they fell due (``states.cap_ledger``): late fees on the stretch's
    # first day, penalty then compound interest through it, contract interest on its last day.
    new: dict[ChargeKey, Decimal] = {}
    rules: dict[ChargeKey, str] = {}
    for inst in installments:
        if start <= inst.due_on < through and inst.unpaid > 0:
            fee = terms.late_fee + round_fen(terms.late_fee_rate * (inst.principal + inst.scheduled_interest))
            if fee > 0:
                key = ChargeKey(Component.LATE_FEE, inst.number)
                new[key], rules[key] = fee, POSTING_RULES["f"].format(inst.number)
    for component, rule in (
        (Component.PENALTY_INTEREST, POSTING_RULES["p"]),
        (Component.COMPOUND_INTEREST, POSTING_RULES["k"]),
    ):
        amount = round_fen(penalty * principal_days[component] / basis) - totals.computed[component]
        if amount:
            key = ChargeKey(component)
            new[key], rules[key] = amount, rule
    for inst in installments:
        if inst.due_on == through:
            key = ChargeKey(Component.CONTRACT_INTEREST, inst.number)
            new[key] = contract_interest_due(terms, day_count, principal_days, totals.computed, inst.number)
            rules[key] = POSTING_RULES["c"].format(inst.number)

    limit = cap_limit(terms.cap_rate, principal_days[CAP], day_count)
    return _capped(tuple(segments), new, rules, totals, limit)


def follows_plan(terms: CaseOpened) -> bool:
    """Whether the case's contract interest is its plan's (``monthly``, or a plan as imported), not the day count's."""
    return terms.plan_imported or terms.schedule_interest != "actual_days"


def contract_interest_due(
    terms: CaseOpened, day_count: DayCount, principal_days: Mapping[str, Decimal], computed: Mapping[str, Decimal], number: int
) -> Decimal:
    """The contract interest of installment ``number``'s period, falling due on its due date (before the cap).

    ``actual_days``: the day count on the principal-days accrued since opening, the residue carried
    (round(rate x principal-days / basis) - what was computed before). A case that follows its plan
    (``follows_plan``): the plan's interest for the period, in proportion to the principal-days the
    period really had against those the plan counts on (the same unless principal was prepaid), so a
    loan paid as planned is charged exactly its plan.
    """
    if not follows_plan(terms):
        return round_fen(terms.annual_rate * principal_days[CONTRACT] / day_count.basis) - computed[CONTRACT]
    return plan_interest(terms, number, principal_days[CONTRACT] - principal_days.get(PERIOD_START, ZERO))


def plan_interest(terms: CaseOpened, number: int, period_principal_days: Decimal) -> Decimal:
    """Installment ``number``'s planned interest for ``period_principal_days`` of its period, in fen."""
    planned = terms.schedule[number - 1]
    start = terms.disbursed_on if number == 1 else terms.schedule[number - 2].due_on
    balance = terms.principal - sum((i.principal for i in terms.schedule[: number - 1]), ZERO)
    planned_days = balance * (planned.due_on - start).days
    if planned_days <= 0 or period_principal_days == planned_days:
        return planned.interest
    return round_fen(planned.interest * period_principal_days / planned_days)


def payoff_interest(
    terms: CaseOpened, day_count: DayCount, totals: Totals, amount: Decimal, installment: int | None
) -> Charges:
    """The contract interest accrued in the current period, brought forward by a payoff, under the cap now."""
    limit = cap_limit(terms.cap_rate, totals.principal_days[CAP], day_count)
    key = ChargeKey(Component.CONTRACT_INTEREST, installment)
    rule = POSTING_RULES["y"].format(installment)
    return _capped((), {key: amount}, {key: rule}, totals, limit)


def _capped(
    segments: tuple[AccrualSegment, ...],
    new: Mapping[ChargeKey, Decimal],
    rules: Mapping[ChargeKey, str],
    totals: Totals,
    limit: Decimal,
) -> Charges:
    """Charge what fits under ``limit``: held-back charges first, oldest first, then ``new`` in order."""
    for key, amount in new.items():
        if amount < 0:
            raise ValueError(f"charge {key} is negative: {amount}")
    charges = [(_NAMES[key.component], amount, key.installment) for key, amount in new.items()]
    settled = cap_ledger.settle(totals.unenforced, charges, limit - totals.charged)
    postings = tuple(
        ChargePosting(component, amount, enforceable, amount - enforceable, rules[key], installment)
        for key, (component, amount, installment), enforceable in zip(new, charges, settled.enforceable)
    )
    return Charges(segments, postings, limit, settled.released)


_NAMES = {component: component.value for component in Component}  # a member's .value costs a call
