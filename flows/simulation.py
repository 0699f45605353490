"""A reproducible synthetic loan book and its borrowers, for the demo and the tests.

Loans look like a Chinese consumer microfinance book: 3,000-50,000 yuan,
12-24 % a year, 6-24 months, mostly equal installments, some private-lending
contracts under the 4 x LPR cap. Each borrower follows one profile:

- ``on_time``: pays every installment on its due date;
- ``late``: pays each installment 3-45 days late, arrears and penalties included;
- ``promiser``: misses, promises to pay when collectors call, keeps 60 % of promises;
- ``payoff``: pays on time, then pays the whole loan off early;
- ``defaulter``: pays a few installments, then stops for good.

Everything is drawn from one seeded ``random.Random``: the same seed gives the
same book and the same behaviour, so two demo runs give the same figures.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from states.caps import CapRegime
from states.loan import LoanTerms
from states.money import DayCount
from states.schedule import RepaymentMethod, due_dates

PROFILES = (("on_time", 70), ("late", 12), ("promiser", 7), ("payoff", 3), ("defaulter", 8))


@dataclass
class Borrower:
    case_id: str
    profile: str
    terms: LoanTerms
    # day -> what happens: "pay" (everything due), "payoff", ("promise", promised_on)
    plan: dict[date, list[object]] = field(default_factory=dict)

    def on(self, day: date, action: object) -> None:
        self.plan.setdefault(day, []).append(action)


def _pick(rng: random.Random, weighted: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([name for name, _ in weighted], weights=[w for _, w in weighted])[0]


def make_terms(rng: random.Random, n: int, disbursed_on: date) -> LoanTerms:
    principal = Decimal(rng.choice([3, 5, 8, 10, 12, 15, 20, 30, 50])) * 1000 + Decimal(rng.randrange(0, 10)) * 100
    private = rng.random() < 0.10
    rate = Decimal(rng.choice(["0.12", "0.15", "0.18", "0.18", "0.2", "0.22", "0.2399"]))
    method = RepaymentMethod(_pick(rng, (("equal_installment", 65), ("equal_principal", 25), ("interest_first", 10))))
    return LoanTerms(
        contract_no=f"MF{disbursed_on:%Y%m}-{n:06d}",
        borrower_id=f"B{rng.randrange(10**9):09d}",
        principal=principal,
        annual_rate=rate,
        term_months=rng.choice([6, 12, 12, 12, 18, 24]),
        repayment_method=method,
        disbursed_on=disbursed_on,
        first_due_on=_next_month(disbursed_on),
        day_count=DayCount.ACT_365 if rng.random() < 0.2 else DayCount.ACT_360,
        penalty_uplift=Decimal("0.5"),
        compound_interest=rng.random() < 0.2,
        late_fee=Decimal(rng.choice(["0", "0", "0", "30", "50"])),
        cap_regime=CapRegime.PRIVATE if private else CapRegime.LICENSED,
    )


def _next_month(day: date) -> date:
    return due_dates(day, 2)[1]


def make_portfolio(size: int, start: date, seed: int = 7, seasoned_days: int = 60, new_days: int = 60) -> list[Borrower]:
    """``size`` loans: disbursed over the ``seasoned_days`` before ``start`` (a seasoned book the
    lender brings along, with its payment history) and the ``new_days`` after it."""
    rng = random.Random(seed)
    borrowers: list[Borrower] = []
    for n in range(1, size + 1):
        disbursed_on = start + timedelta(days=rng.randrange(-seasoned_days, new_days))
        terms = make_terms(rng, n, disbursed_on)
        borrower = Borrower(f"CF{n:07d}", _pick(rng, PROFILES), terms)
        _plan(rng, borrower)
        borrowers.append(borrower)
    return borrowers


def _plan(rng: random.Random, b: Borrower) -> None:
    dues = [i.due_on for i in b.terms.schedule]
    if b.profile == "on_time":
        for d in dues:
            b.on(d, "pay")
    elif b.profile == "late":
        for d in dues:
            b.on(d + timedelta(days=rng.randint(3, 45)), "pay")
    elif b.profile == "payoff":
        stop = rng.randint(1, max(1, len(dues) - 1))
        for d in dues[:stop]:
            b.on(d, "pay")
        b.on(dues[stop - 1] + timedelta(days=rng.randint(3, 20)), "payoff")
    elif b.profile == "promiser":
        for d in dues:
            asked = d + timedelta(days=rng.randint(5, 12))
            promised_on = asked + timedelta(days=rng.randint(2, 10))
            b.on(asked, ("promise", promised_on))
            if rng.random() < 0.6:
                b.on(promised_on, "pay")
            elif rng.random() < 0.5:
                b.on(promised_on + timedelta(days=rng.randint(20, 60)), "pay")
    elif b.profile == "defaulter":
        for d in dues[: rng.randint(0, 3)]:
            b.on(d, "pay")


def index_by_day(borrowers: list[Borrower]) -> dict[date, list[tuple[str, object]]]:
    by_day: dict[date, list[tuple[str, object]]] = {}
    for b in borrowers:
        for day, actions in b.plan.items():
            by_day.setdefault(day, []).extend((b.case_id, a) for a in actions)
    return by_day
