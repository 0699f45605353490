"""The legal cap on charges: which annual rate applies, how much may be charged, what lies above.

A contract's regime fixes its annual cap rate (DOMAIN.md §3): 24 % for
licensed lenders and for private-lending contracts signed before 2020-08-20
(``legacy_2015``), four times the one-year LPR in force on the contract date
for other private lending. The cap is time-weighted: charges accrued so far
may total at most ``cap_rate x principal-days / basis``. What lies above that
is *unenforceable* for now: recorded, explained, and charged later only if
the limit grows past it (``states.cap_ledger`` decides which charges those are
and releases them; ``apply_cap`` splits one batch of simultaneous charges by a
fixed cut order, for callers that need that reading).

LPR fixings are data. ``DEFAULT_LPR_ROWS`` seeds the database; later fixings
are added there and an ``LprTable`` is built from whatever rows it holds.
"""

from __future__ import annotations

from states.errors import UserError

from bisect import bisect_right
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from states.money import FEN, ZERO, DayCount, MoneyError, floor_fen, to_decimal


class CapError(UserError):
    """A cap that cannot be worked out from the inputs given."""


class CapRegime(StrEnum):
    """Which legal cap a contract falls under."""

    LICENSED = "licensed"
    PRIVATE = "private"
    LEGACY_2015 = "legacy_2015"


LICENSED_CAP_RATE = Decimal("0.24")
PRIVATE_LPR_MULTIPLE = 4
# The Private Lending Provisions 2020 replaced the 24 % rule for contracts signed from this day.
LEGACY_2015_CUTOFF = date(2020, 8, 20)

DEFAULT_CUT_ORDER = ("late_fee", "compound_interest", "penalty_interest", "contract_interest")

DEFAULT_LPR_ROWS: tuple[tuple[str, str], ...] = (
    ("2019-08-20", "4.25"),
    ("2019-09-20", "4.20"),
    ("2019-11-20", "4.15"),
    ("2020-02-20", "4.05"),
    ("2020-04-20", "3.85"),
    ("2021-12-20", "3.80"),
    ("2022-01-20", "3.70"),
    ("2022-08-22", "3.65"),
    ("2023-06-20", "3.55"),
    ("2023-08-21", "3.45"),
    ("2024-07-22", "3.35"),
    ("2024-10-21", "3.10"),
    ("2025-05-20", "3.00"),
)


@dataclass(frozen=True)
class LprFixing:
    """One one-year LPR fixing: ``rate`` is a fraction (0.0385 for 3.85 %)."""

    effective_from: date
    rate: Decimal


class LprTable:
    """One-year LPR fixings, sorted by effective date; immutable once built."""

    __slots__ = ("_fixings", "_dates")

    def __init__(self, fixings: Iterable[LprFixing]) -> None:
        checked: list[LprFixing] = []
        for fixing in fixings:
            if not isinstance(fixing, LprFixing):
                raise CapError(f"LPR table: {fixing!r} is not an LprFixing")
            day = fixing.effective_from
            if not isinstance(day, date) or isinstance(day, datetime):
                raise CapError(f"LPR fixing: effective_from {day!r} is not a date")
            try:
                rate = to_decimal(fixing.rate, field=f"LPR fixing {day.isoformat()}")
            except MoneyError as exc:
                raise CapError(str(exc)) from None
            if rate <= 0:
                raise CapError(
                    f"LPR fixing {day.isoformat()}: rate must be positive, got {fixing.rate}"
                )
            if rate >= 1:
                # A percentage passed where a fraction belongs would multiply every cap by 100.
                raise CapError(
                    f"LPR fixing {day.isoformat()}: rate {fixing.rate} is not a fraction below 1 "
                    f"(give 0.0385 for 3.85 %)"
                )
            checked.append(LprFixing(day, rate))
        if not checked:
            raise CapError("LPR table: at least one fixing is needed")
        checked.sort(key=lambda f: f.effective_from)
        for earlier, later in zip(checked, checked[1:]):
            if earlier.effective_from == later.effective_from:
                raise CapError(
                    f"LPR table: two fixings effective from {later.effective_from.isoformat()} "
                    f"({earlier.rate} and {later.rate}); keep one"
                )
        object.__setattr__(self, "_fixings", tuple(checked))
        object.__setattr__(self, "_dates", tuple(f.effective_from for f in checked))

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[str, str]]) -> LprTable:
        """Build from ``(effective date, percent)`` rows as stored: ``("2019-08-20", "4.25")``."""
        fixings = []
        for row in rows:
            try:
                raw_day, raw_percent = row
            except (TypeError, ValueError):
                raise CapError(
                    f"LPR row {row!r}: expected (date, percent), e.g. ('2019-08-20', '4.25')"
                ) from None
            if isinstance(raw_day, date) and not isinstance(raw_day, datetime):
                day = raw_day
            else:
                try:
                    day = date.fromisoformat(str(raw_day).strip())
                except ValueError:
                    raise CapError(
                        f"LPR row {row!r}: {raw_day!r} is not a date in YYYY-MM-DD form"
                    ) from None
            try:
                percent = to_decimal(raw_percent, field=f"LPR row {day.isoformat()}")
            except MoneyError as exc:
                raise CapError(str(exc)) from None
            fixings.append(LprFixing(day, percent / 100))
        return cls(fixings)

    def rate_on(self, day: date) -> Decimal:
        """The fixing in force on ``day`` (the latest one effective on or before it)."""
        index = bisect_right(self._dates, day)
        if index == 0:
            raise CapError(
                f"no LPR fixing in force on {day.isoformat()}: "
                f"the first fixing is effective from {self._dates[0].isoformat()}"
            )
        return self._fixings[index - 1].rate

    @property
    def first_effective(self) -> date:
        return self._dates[0]

    def __len__(self) -> int:
        return len(self._fixings)

    def __iter__(self) -> Iterator[LprFixing]:
        return iter(self._fixings)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LprTable):
            return NotImplemented
        return self._fixings == other._fixings

    def __hash__(self) -> int:
        return hash(self._fixings)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("LprTable is immutable; build a new one from the rows")

    def __repr__(self) -> str:
        return (
            f"LprTable({len(self)} fixings, {self._dates[0].isoformat()}"
            f"..{self._dates[-1].isoformat()})"
        )


DEFAULT_LPR_TABLE = LprTable.from_rows(DEFAULT_LPR_ROWS)


def annual_cap_rate(regime: CapRegime, contract_date: date, lpr: LprTable) -> Decimal:
    """The contract's annual cap rate as a fraction (0.24 for 24 %)."""
    try:
        regime = CapRegime(regime)
    except ValueError:
        accepted = ", ".join(r.value for r in CapRegime)
        raise CapError(f"cap regime {regime!r} is not one of: {accepted}") from None
    if regime is CapRegime.LICENSED:
        return LICENSED_CAP_RATE
    if regime is CapRegime.LEGACY_2015:
        if contract_date >= LEGACY_2015_CUTOFF:
            raise CapError(
                f"regime legacy_2015 applies only to contracts signed before "
                f"{LEGACY_2015_CUTOFF.isoformat()}; contract date {contract_date.isoformat()} "
                f"is not (use private)"
            )
        return LICENSED_CAP_RATE
    try:
        lpr_rate = lpr.rate_on(contract_date)
    except CapError as exc:
        raise CapError(
            f"private cap for contract date {contract_date.isoformat()}: {exc} "
            f"(a private-lending contract signed before "
            f"{LEGACY_2015_CUTOFF.isoformat()} may use legacy_2015)"
        ) from None
    return PRIVATE_LPR_MULTIPLE * lpr_rate


def cap_limit(cap_rate: Decimal, outstanding_principal_days: Decimal, day_count: DayCount) -> Decimal:
    """The most that charges accrued so far may total: cap_rate x principal-days / basis, floored to the fen.

    ``outstanding_principal_days`` is the sum over days of the principal
    outstanding that day, overdue principal included.
    """
    # a finite Decimal is taken as it is (what ``to_decimal`` would return): the close asks this at every stretch
    rate = cap_rate if type(cap_rate) is Decimal and cap_rate.is_finite() else _decimal(cap_rate, "cap_rate")
    principal_days = (
        outstanding_principal_days
        if type(outstanding_principal_days) is Decimal and outstanding_principal_days.is_finite()
        else _decimal(outstanding_principal_days, "outstanding_principal_days")
    )
    if rate < 0:
        raise CapError(f"cap_rate: must not be negative, got {cap_rate}")
    if principal_days < 0:
        raise CapError(
            f"outstanding_principal_days: must not be negative, got {outstanding_principal_days}"
        )
    basis = (day_count if type(day_count) is DayCount else DayCount(day_count)).basis
    return floor_fen(rate * principal_days / basis)


@dataclass(frozen=True)
class CapSplit:
    """New charges split by key into what may be charged and what lies above the cap."""

    enforceable: dict[Hashable, Decimal]
    unenforceable: dict[Hashable, Decimal]

    @property
    def total_enforceable(self) -> Decimal:
        return sum(self.enforceable.values(), ZERO)

    @property
    def total_unenforceable(self) -> Decimal:
        return sum(self.unenforceable.values(), ZERO)


def apply_cap(
    new_charges: Mapping[Hashable, Decimal],
    charged_so_far: Decimal,
    limit: Decimal,
    cut_order: Sequence[str] = DEFAULT_CUT_ORDER,
) -> CapSplit:
    """Split ``new_charges`` so that ``charged_so_far`` plus the enforceable part stays within ``limit``.

    A charge's key is its component's name, or a typed key carrying a
    ``component`` (``states.accrual.ChargeKey``: the late fees of two
    installments are two charges of one component). The excess over the
    headroom ``max(0, limit - charged_so_far)`` is cut from components in
    ``cut_order``, the first named cut first, each charge by no more than its
    own amount; charges of one component are cut in the order given. Every
    charged component must appear in ``cut_order`` so that the cut is never
    ambiguous. All amounts are whole fen.
    """
    order = tuple(cut_order)
    if len(set(order)) != len(order):
        raise CapError(f"cut_order {list(order)} names a component twice")
    rank = {name: position for position, name in enumerate(order)}
    charges: dict[Hashable, Decimal] = {}
    for key, amount in new_charges.items():
        name = _component(key)
        if name not in rank:
            raise CapError(
                f"charge component {name!r} is not in the cut order {list(order)}; "
                f"every capped charge needs a place in it"
            )
        value = _fen_amount(amount, f"new charge {_label(key)}")
        if value < 0:
            raise CapError(f"new charge {_label(key)}: must not be negative, got {amount}")
        charges[key] = value
    so_far = _fen_amount(charged_so_far, "charged_so_far")
    if so_far < 0:
        raise CapError(f"charged_so_far: must not be negative, got {charged_so_far}")
    ceiling = _fen_amount(limit, "limit")
    if ceiling < 0:
        raise CapError(f"limit: must not be negative, got {limit}")

    headroom = max(ZERO, ceiling - so_far)
    excess = max(ZERO, sum(charges.values(), ZERO) - headroom)
    unenforceable = {key: ZERO for key in charges}
    for key in sorted(charges, key=lambda k: rank[_component(k)]):  # stable: given order within a component
        if excess == 0:
            break
        cut = min(excess, charges[key])
        unenforceable[key] = cut
        excess -= cut
    enforceable = {key: amount - unenforceable[key] for key, amount in charges.items()}
    return CapSplit(enforceable=enforceable, unenforceable=unenforceable)


def _component(key: Hashable) -> str:
    """The component a charge key names: the key itself, or its ``component``."""
    return str(getattr(key, "component", key))


def _label(key: Hashable) -> str:
    installment = getattr(key, "installment", None)
    return _component(key) + ("" if installment is None else f" of installment {installment}")


def _decimal(value: object, field: str) -> Decimal:
    try:
        return to_decimal(value, field=field)
    except MoneyError as exc:
        raise CapError(str(exc)) from None


def _fen_amount(value: object, field: str) -> Decimal:
    amount = _decimal(value, field)
    if amount != amount.quantize(FEN):
        raise CapError(f"{field}: {value} is not a whole number of fen")
    return amount.quantize(FEN)
