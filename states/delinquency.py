"""Days past due, the collection bucket and the five-category loan class (DOMAIN.md section 1).

DPD counts calendar days since the oldest unpaid installment's due date. The
bands below read like the policy table: each row gives the first DPD of a band.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Any, TypeVar

from states.money import ZERO


class Bucket(StrEnum):
    M0 = "M0"
    M1 = "M1"
    M2 = "M2"
    M3 = "M3"
    M4 = "M4"
    M5 = "M5"
    M6 = "M6"
    M7_PLUS = "M7+"


class Classification(StrEnum):
    NORMAL = "normal"
    SPECIAL_MENTION = "special_mention"
    SUBSTANDARD = "substandard"
    DOUBTFUL = "doubtful"
    LOSS = "loss"


T = TypeVar("T")

NON_PERFORMING_FROM_DPD = 91

_BUCKET_BANDS = (
    (0, Bucket.M0),
    (1, Bucket.M1),
    (31, Bucket.M2),
    (61, Bucket.M3),
    (91, Bucket.M4),
    (121, Bucket.M5),
    (151, Bucket.M6),
    (181, Bucket.M7_PLUS),
)

_CLASSIFICATION_BANDS = (
    (0, Classification.NORMAL),
    (1, Classification.SPECIAL_MENTION),
    (NON_PERFORMING_FROM_DPD, Classification.SUBSTANDARD),
    (271, Classification.DOUBTFUL),
    (361, Classification.LOSS),
)


def days_past_due(oldest_unpaid_due_on: date | None, as_of: date) -> int:
    """Calendar days since the oldest unpaid due date; 0 when nothing is unpaid or not yet late."""
    if oldest_unpaid_due_on is None:
        return 0
    return max(0, (as_of - oldest_unpaid_due_on).days)


# Installment rows, in due order: ``(due_on, unpaid, ...)``, the case's rows or the call list's.
Rows = Iterable[Sequence[Any]]


def oldest_unpaid_before(rows: Rows, as_of: date) -> date | None:
    """The due date of the oldest installment due before ``as_of`` and not paid in full (None: none)."""
    for row in rows:
        if row[0] < as_of and row[1] > 0:
            return row[0]
    return None


def unpaid_before(rows: Rows, as_of: date) -> Decimal:
    """What the installments due before ``as_of`` leave unpaid (past their due date on ``as_of``)."""
    return sum((row[1] for row in rows if row[0] < as_of), ZERO)


def bucket_for(dpd: int) -> Bucket:
    return _band(dpd, _BUCKET_BANDS)


def classification_for(dpd: int) -> Classification:
    return _band(dpd, _CLASSIFICATION_BANDS)


def is_non_performing(dpd: int) -> bool:
    _check_dpd(dpd)
    return dpd >= NON_PERFORMING_FROM_DPD


def _band(dpd: int, bands: tuple[tuple[int, T], ...]) -> T:
    _check_dpd(dpd)
    return next(value for first_dpd, value in reversed(bands) if dpd >= first_dpd)


def _check_dpd(dpd: object) -> None:
    if isinstance(dpd, bool) or not isinstance(dpd, int) or dpd < 0:
        raise ValueError(f"dpd must be a whole number of days, 0 or more, got {dpd!r}")


def dpd_range(bucket: Bucket) -> tuple[int, int | None]:
    """The DPDs a bucket covers, (first, last) inclusive; None: no upper end (M7+)."""
    starts = [start for start, _ in _BUCKET_BANDS]
    index = [b for _, b in _BUCKET_BANDS].index(bucket)
    return starts[index], (starts[index + 1] - 1 if index + 1 < len(starts) else None)
