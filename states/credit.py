"""Credit reporting (DOMAIN.md §8): the pre-notice, the month-end record, and how long a record is kept.

The rules, each written once:

- **In default** means in a collection stage, in litigation, or written off;
  the record's ``status`` maps the stage (``report_status``).
- **The pre-notice** goes out at the first review that finds the case in
  default and no notice sent yet (for a new case: the day it falls overdue).
  It names the first month end that may carry a negative record:
  the first month end at least ``notice_days`` after the notice
  (``first_report_on``). One notice per case.
- **Which cases** (``record_owed``): at a month end on or after the case's
  ``first_report_on``, a case that is in default at the month end, or whose
  default ended during that month (cured or settled), makes one record of that
  month. A case that closes (settled, written off) makes its month's record
  when it closes: a closed case never changes again and is never reviewed
  again, so its month-end figures are known then.
- **Which fields** (``CreditRecord``, built by ``month_end_record``): the
  account (contract number), the month, the DPD at the month end, its bucket
  and five-category class, the overdue principal and the overdue total (what
  is past due at the month end: due before it), and the status.
- **How long** (``retained``): a record belongs to the default it was made
  in; once that default has ended, the record is exported until five years
  after the day it ended, and aged out after that. The aging is a rule of the
  export, by date; nothing is deleted.

Pure: every function takes the dates it reasons about; ``CreditState`` is
the part of a case's state these rules read, changed only through the
functions below (called from the case's apply handlers).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum

from states.delinquency import bucket_for, classification_for
from states.lifecycle import COLLECTION_STAGES, Stage
from states.money import (
    FEN,
    month_end,  # the one month-end rule
)

RETENTION_YEARS = 5  # negative records age out five years after the default ends (DOMAIN.md §8)
_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")


class ReportStatus(StrEnum):
    CURRENT = "current"
    OVERDUE = "overdue"
    SETTLED = "settled"
    WRITTEN_OFF = "written_off"


_STATUS_OF_STAGE = {
    Stage.CURRENT: ReportStatus.CURRENT,
    **{stage: ReportStatus.OVERDUE for stage in (*COLLECTION_STAGES, Stage.LITIGATION)},
    Stage.SETTLED: ReportStatus.SETTLED,
    Stage.WRITTEN_OFF: ReportStatus.WRITTEN_OFF,
}
_IN_DEFAULT = (ReportStatus.OVERDUE, ReportStatus.WRITTEN_OFF)


def report_status(stage: Stage) -> ReportStatus:
    """The status a month-end record gives for a case in this stage."""
    return _STATUS_OF_STAGE[stage]


def in_default(stage: Stage) -> bool:
    return report_status(stage) in _IN_DEFAULT


# --------------------------------------------------------------------------
# months


def month_of(day: date) -> str:
    """``YYYY-MM``: how a record names its month."""
    return f"{day.year:04d}-{day.month:02d}"


def month_end_of(month: str) -> date | None:
    """The last day of a ``YYYY-MM`` month, or None when the text is not one."""
    found = _MONTH.fullmatch(month)
    if found is None or not 1 <= int(found[2]) <= 12 or int(found[1]) < 1:
        return None
    return month_end(date(int(found[1]), int(found[2]), 1))


def first_report_on(notice_on: date, notice_days: int) -> date:
    """The first month end at least ``notice_days`` after a notice sent on ``notice_on``."""
    return month_end(notice_on + timedelta(days=notice_days))


# --------------------------------------------------------------------------
# a case's credit-reporting state


@dataclass(frozen=True)
class CreditState:
    """What the reporting rules read of a case (besides its stage).

    ``first_report_on``: the first month end a record may be made (None: no
    notice sent yet, nothing is ever reported); ``default_ended_on``: the day
    the case's last default ended (cured or settled), None while in default or
    never in default since the notice; ``reported_through``: the month end of
    the last record made.
    """

    first_report_on: date | None = None
    default_ended_on: date | None = None
    reported_through: date | None = None


def after_notice(state: CreditState, first_report: date) -> CreditState:
    return dataclasses.replace(state, first_report_on=first_report)


def after_stage_change(state: CreditState, source: Stage, dest: Stage, on: date) -> CreditState:
    """A default starts when the case falls overdue and ends when it is cured or settled.

    Only tracked once a notice is sent: before that nothing is reported, and a
    history older than credit reporting replays to the empty state.
    """
    if state.first_report_on is None:
        return state
    if in_default(dest) and not in_default(source):
        return dataclasses.replace(state, default_ended_on=None)
    if in_default(source) and not in_default(dest):
        return dataclasses.replace(state, default_ended_on=on)
    return state


def after_report(state: CreditState, reported_month_end: date) -> CreditState:
    return dataclasses.replace(state, reported_through=reported_month_end)


def notice_due(state: CreditState, stage: Stage) -> bool:
    """A case in default (and still open) that has not been told yet is sent the notice at its review."""
    return state.first_report_on is None and in_default(stage) and not stage.is_closed


def record_owed(at_month_end: date, stage: Stage, state: CreditState) -> bool:
    """Whether the case makes a record for the month ending ``at_month_end`` (see the module docstring)."""
    if state.first_report_on is None or at_month_end < state.first_report_on:
        return False
    if state.reported_through is not None and at_month_end <= state.reported_through:
        return False  # one record per month
    ended_this_month = state.default_ended_on is not None and month_end(state.default_ended_on) == at_month_end
    return in_default(stage) or ended_this_month


def next_record_on(after: date, stage: Stage, state: CreditState) -> date | None:
    """The first month end after ``after`` on which the case owes a record, if it owes one (wakes it)."""
    if state.first_report_on is None or stage.is_closed:
        return None
    if in_default(stage):
        candidate = max(month_end(after + timedelta(days=1)), state.first_report_on)
    elif state.default_ended_on is not None:
        candidate = month_end(state.default_ended_on)
    else:
        return None
    return candidate if candidate > after and record_owed(candidate, stage, state) else None


# --------------------------------------------------------------------------
# the record


@dataclass(frozen=True)
class CreditRecord:
    """One month-end credit-report record; its fields, in this order, are the export's columns."""

    account: str  # the contract number
    month: str  # YYYY-MM
    dpd: int  # days past due at the month end
    bucket: str
    overdue_principal: Decimal  # principal due before the month end and unpaid
    overdue_total: Decimal  # every amount past due at the month end (penalties, fees and costs included)
    classification: str  # the five-category class
    status: str  # current, overdue, settled, written_off

    def as_row(self) -> dict[str, str | int]:
        """The record as exported: money as decimal strings with two places."""
        values: dict[str, str | int] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            values[f.name] = money_text(value) if isinstance(value, Decimal) else value
        return values


EXPORT_COLUMNS = tuple(f.name for f in dataclasses.fields(CreditRecord))


def money_text(amount: Decimal) -> str:
    return format(amount.quantize(FEN), "f")


def month_end_record(
    account: str, at_month_end: date, stage: Stage, dpd: int, overdue_principal: Decimal, overdue_total: Decimal
) -> CreditRecord:
    """The record of the month ending ``at_month_end``, from the case's figures as of that day."""
    return CreditRecord(
        account=account,
        month=month_of(at_month_end),
        dpd=dpd,
        bucket=bucket_for(dpd).value,
        overdue_principal=overdue_principal.quantize(FEN),
        overdue_total=overdue_total.quantize(FEN),
        classification=classification_for(dpd).value,
        status=report_status(stage).value,
    )


# --------------------------------------------------------------------------
# retention: a rule of the export


def retention_ends(default_ended_on: date, years: int = RETENTION_YEARS) -> date:
    """The last day a record of a default that ended on ``default_ended_on`` is exported."""
    try:
        return default_ended_on.replace(year=default_ended_on.year + years)
    except ValueError:  # 29 February: the anniversary is 28 February
        return default_ended_on.replace(year=default_ended_on.year + years, day=28)


def retained(default_ended_on: date | None, as_of: date) -> bool:
    """Whether a record of a default ending on ``default_ended_on`` (None: not ended) is exported on ``as_of``."""
    return default_ended_on is None or as_of <= retention_ends(default_ended_on)


def default_end(record_month: str, endings: Iterable[tuple[str, date]]) -> date | None:
    """The day the default a record of ``record_month`` belongs to ended: the first ending recorded
    in that month or later (``endings``: (month, day the default ended) of the account's records)."""
    later = sorted((month, ended) for month, ended in endings if month >= record_month)
    return later[0][1] if later else None


def exported(
    records: Iterable[CreditRecord], endings: Mapping[str, Iterable[tuple[str, date]]], as_of: date
) -> tuple[list[CreditRecord], int]:
    """The records exported on ``as_of``, by account, and how many aged out."""
    kept: list[CreditRecord] = []
    aged = 0
    for record in sorted(records, key=lambda r: r.account):
        if retained(default_end(record.month, endings.get(record.account, ())), as_of):
            kept.append(record)
        else:
            aged += 1
    return kept, aged
