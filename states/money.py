"""Money and day counts: Decimal amounts quantized to the fen, ACT/360 and ACT/365.

Amounts are built from strings or integers, never from floats ("never use
floating-point in an accounting system"). Exact intermediate values (rate x
principal-days / basis) stay unrounded; only a *posting* is quantized to the
fen with ROUND_HALF_UP.
"""

from __future__ import annotations

from states.errors import UserError

import calendar
import functools
from datetime import date
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, InvalidOperation
from enum import StrEnum

FEN = Decimal("0.01")
ZERO = Decimal("0.00")
# The largest amount collectflow takes in (about 10^15 yuan): far above any real loan
# or claim, and small enough that every derived figure stays exact in Decimal.
MAX_AMOUNT = Decimal("999999999999999.99")


class MoneyError(UserError):
    """An amount that is not a valid money value."""


def to_decimal(value: object, *, field: str = "amount") -> Decimal:
    """Turn a str/int/Decimal into a Decimal; refuse floats and junk with a named error."""
    if isinstance(value, bool) or isinstance(value, float):
        raise MoneyError(f"{field}: {value!r} is a float; give money as a string or Decimal")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, (int, str)):
        try:
            result = Decimal(str(value).strip().replace(",", "").replace("_", ""))
        except InvalidOperation:
            raise MoneyError(f"{field}: {value!r} is not a number") from None
    else:
        raise MoneyError(f"{field}: {value!r} is not a number")
    if not result.is_finite():
        raise MoneyError(f"{field}: {value!r} is not a finite number")
    return result


def money(value: object, *, field: str = "amount") -> Decimal:
    """A posting amount: the value rounded half-up to the fen."""
    return in_range(to_decimal(value, field=field), field=field).quantize(FEN, rounding=ROUND_HALF_UP)


def in_range(amount: Decimal, *, field: str = "amount") -> Decimal:
    """Refuse an amount too large to be real money (see MAX_AMOUNT)."""
    if abs(amount) > MAX_AMOUNT:
        raise MoneyError(f"{field}: {amount} is larger than any amount collectflow takes (at most {MAX_AMOUNT:,})")
    return amount


def round_fen(value: Decimal) -> Decimal:
    """Round an exact amount half-up to the fen (the posting rule)."""
    return value.quantize(FEN, rounding=ROUND_HALF_UP)


def floor_fen(value: Decimal) -> Decimal:
    """Round an exact amount down to the fen (used for ceilings such as legal caps)."""
    return value.quantize(FEN, rounding=ROUND_DOWN)


def to_fen(value: Decimal) -> int:
    """Integer fen of a posted amount (exact; raises if it is not a whole fen)."""
    fen = value * 100
    if fen != fen.to_integral_value():
        raise MoneyError(f"{value} is not a whole number of fen")
    return int(fen)


def from_fen(fen: int) -> Decimal:
    return (Decimal(fen) / 100).quantize(FEN)


def fmt(value: Decimal) -> str:
    """A money amount as the decimal string with two places used in events and JSON."""
    return str(round_fen(value))


class DayCount(StrEnum):
    """The contract's interest day count: actual days over a 360- or 365-day year."""

    ACT_360 = "ACT/360"
    ACT_365 = "ACT/365"

    @property
    def basis(self) -> int:
        return 360 if self is DayCount.ACT_360 else 365


def days_between(start: date, end: date) -> int:
    """Actual days in the accrual interval (start, end]: start excluded, end included."""
    return (end - start).days


@functools.lru_cache(maxsize=4096)  # asked for the same few dates by every case of a close
def month_end(day: date) -> date:
    """The last calendar day of ``day``'s month (month-end postings, the reports' month ends)."""
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])
