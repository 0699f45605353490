"""The reports' rules: rates, a case's DPD at a past date, DPD bands, the roll-rate matrix.

Pure arithmetic over counts and readings the store hands over; no I/O, no
clock, no float (a rate is a Decimal fraction, 0.1234 for 12.34 %).

**A past DPD from the events.** A case's oldest unpaid due date moves only
when a payment is allocated; between payments its DPD grows by one a day
from the first missed due date. Every event that states a DPD (a review,
``CaseReviewed``, or a stage change, ``StageChanged``) pins it: DPD k > 0 on
day e means the oldest unpaid installment fell due on e - k, so with no
payment since, DPD(X) = k + (X - e). A stated DPD of 0 stays 0 up to X,
payments or not: a payment never makes a case late, and an installment
that falls due unpaid is reviewed the day after (only a paid-up case skips
that review), which would be a later reading. So the last such event on or
before X gives DPD(X) exactly, for a closed business date X and a case not
stuck since before X; the one exception is a reading of k > 0 followed by a
payment (a partial payment that cured nothing, or one dated X after that
day's review): ``DpdReading.needs_replay`` says so, and the caller folds
that case's events up to X instead (``CaseState.dpd``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from states.delinquency import Bucket, bucket_for
from states.lifecycle import Stage
from states.money import ZERO, month_end

RATE_PLACES = Decimal("0.0001")  # a rate as a fraction: 0.1234 is 12.34 %


def rate(numerator: int | Decimal, denominator: int | Decimal) -> Decimal | None:
    """``numerator / denominator`` as a fraction to four places (half up); None when there is nothing to divide by."""
    if not denominator:
        return None
    return (Decimal(numerator) / Decimal(denominator)).quantize(RATE_PLACES, rounding=ROUND_HALF_UP)


def rate_text(value: Decimal | None) -> str | None:
    """A rate as JSON carries it: a decimal string, or None (no denominator)."""
    return None if value is None else str(value)


# --------------------------------------------------------------------------
# segments: cases and balances summed by stage or by bucket


@dataclass(frozen=True)
class Segment:
    """Cases and their balances, summed over one stage or one bucket."""

    name: str
    cases: int = 0
    principal_outstanding: Decimal = ZERO
    total_due: Decimal = ZERO
    unenforceable: Decimal = ZERO

    def plus(self, other: Segment) -> Segment:
        """This segment with ``other``'s cases and balances added (under this one's name)."""
        return Segment(
            self.name,
            self.cases + other.cases,
            self.principal_outstanding + other.principal_outstanding,
            self.total_due + other.total_due,
            self.unenforceable + other.unenforceable,
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "cases": self.cases,
            "principal_outstanding": str(self.principal_outstanding),
            "total_due": str(self.total_due),
            "unenforceable": str(self.unenforceable),
        }


def total_of(segments: Iterable[Segment], name: str = "all") -> Segment:
    total = Segment(name)
    for segment in segments:
        total = total.plus(segment)  # the total keeps its own name
    return total


# --------------------------------------------------------------------------
# a case's DPD at a past date


@dataclass(frozen=True)
class DpdReading:
    """What a case's history says of its DPD at a date X: the last event dated on or before X
    that states a DPD (see the module docstring)."""

    stated_on: date | None  # None: no event states one yet (a loan not reviewed since it was booked)
    dpd: int
    closed_stage: str | None  # that event closed the case: settled or written_off
    paid_after: bool  # a payment dated on or before X came after it

    @property
    def needs_replay(self) -> bool:
        """A late case paid after its reading: the payment may have moved its oldest unpaid due date."""
        return self.paid_after and self.dpd > 0


def dpd_from_reading(reading: DpdReading, as_of: date) -> int:
    """DPD as of ``as_of`` from the last reading on or before it (see the module docstring)."""
    if reading.needs_replay:
        raise ValueError("a payment came after a reading of DPD > 0: the DPD as of the date needs a replay of the case")
    if reading.stated_on is None or reading.dpd == 0:
        return 0
    if as_of < reading.stated_on:
        raise ValueError(f"reading of {reading.stated_on} is after {as_of}")
    return reading.dpd + (as_of - reading.stated_on).days


# --------------------------------------------------------------------------
# the roll-rate matrix


ROLL_ROWS = tuple(bucket.value for bucket in Bucket)
ROLL_CLOSED = (Stage.SETTLED.value, Stage.WRITTEN_OFF.value)
ROLL_COLUMNS = (*ROLL_ROWS, *ROLL_CLOSED)  # where an open case was a month later


def roll_position(dpd: int, closed_stage: str | None) -> str:
    """A case's place in the roll-rate matrix: its closed stage, else its bucket."""
    return closed_stage if closed_stage is not None else bucket_for(dpd).value


def roll_month_ends(as_of: date) -> tuple[date, date]:
    """The month ends a roll-rate matrix as of ``as_of`` compares: the last month end on or before
    it (month M) and the one before (month M-1)."""
    to_end = as_of if month_end(as_of) == as_of else as_of.replace(day=1) - timedelta(days=1)
    return to_end.replace(day=1) - timedelta(days=1), to_end


@dataclass(frozen=True)
class RollRates:
    """Open cases by bucket at the end of month M-1 (rows) against where they were at the end of
    month M (columns: buckets, settled, written off); ``rates`` normalise each row to 1."""

    from_month_end: date
    to_month_end: date
    counts: tuple[tuple[int, ...], ...]
    rates: tuple[tuple[Decimal | None, ...], ...]
    rows: tuple[str, ...] = ROLL_ROWS
    columns: tuple[str, ...] = ROLL_COLUMNS

    def as_dict(self) -> dict[str, object]:
        return {
            "from_month_end": self.from_month_end.isoformat(),
            "to_month_end": self.to_month_end.isoformat(),
            "rows": list(self.rows),
            "columns": list(self.columns),
            "counts": [list(row) for row in self.counts],
            "rates": [[rate_text(r) for r in row] for row in self.rates],
        }


def roll_matrix(moves: Iterable[tuple[str, str]], from_month_end: date, to_month_end: date) -> RollRates:
    """Count (row, column) moves, one per case, and normalise each row by its cases."""
    counts = {row: dict.fromkeys(ROLL_COLUMNS, 0) for row in ROLL_ROWS}
    for row, column in moves:
        if row not in counts or column not in ROLL_COLUMNS:
            raise ValueError(f"roll move {row!r} -> {column!r}: rows are {ROLL_ROWS}, columns {ROLL_COLUMNS}")
        counts[row][column] += 1
    return roll_rates_of(tuple(tuple(counts[row][column] for column in ROLL_COLUMNS) for row in ROLL_ROWS), from_month_end, to_month_end)


def roll_rates_of(grid: tuple[tuple[int, ...], ...], from_month_end: date, to_month_end: date) -> RollRates:
    """The matrix of counted moves (``ROLL_ROWS`` by ``ROLL_COLUMNS``), each row normalised by its cases."""
    if len(grid) != len(ROLL_ROWS) or any(len(line) != len(ROLL_COLUMNS) for line in grid):
        raise ValueError(f"roll counts must be {len(ROLL_ROWS)} rows of {len(ROLL_COLUMNS)} counts")
    rates = tuple(tuple(rate(n, sum(line)) for n in line) for line in grid)
    return RollRates(from_month_end, to_month_end, grid, rates)


# --------------------------------------------------------------------------
# the DPD distribution


# (first DPD, last DPD or None: no upper end): ten-day bands through M6, then the classes' edges
DPD_BANDS: tuple[tuple[int, int | None], ...] = (
    *((first, first + 9) for first in range(1, 181, 10)),
    (181, 270),
    (271, 360),
    (361, None),
)


def band_label(first: int, last: int | None) -> str:
    return f"{first}+" if last is None else f"{first}-{last}"


def dpd_band(dpd: int) -> int:
    """The index in ``DPD_BANDS`` of a DPD of 1 or more."""
    if dpd < 1:
        raise ValueError(f"dpd {dpd}: the bands start at 1 (DPD 0 is counted apart)")
    return next(n for n, (first, last) in enumerate(DPD_BANDS) if last is None or dpd <= last)
