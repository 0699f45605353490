"""The portfolio report as a use case: every figure computed once, into one frozen ``PortfolioReport``.

The CLI (``collectflow report``), the ``daily-report`` flow and the demo all
call ``build_report``; the Rich tables, the Markdown, the Prefect artifacts
and the charts are drawn from its ``as_dict()``, so they always agree. The
sums come from the store's reads (``models.reporting``), the rules (rates, a
past DPD, the roll-rate matrix, DPD bands) from ``states.reporting``. No
Prefect and no SQL here.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from models.queries import StuckCase
from models.store import CaseStore
from states.allocation import Component
from states.delinquency import Bucket, bucket_for, days_past_due
from states.lifecycle import COLLECTION_STAGES, Stage
from states.money import ZERO
from states.parse import InputError
from states.reporting import (
    DPD_BANDS,
    RollRates,
    Segment,
    band_label,
    dpd_band,
    rate,
    rate_text,
    roll_month_ends,
    total_of,
)

IN_HOUSE = "in house"  # recovery on a case placed with no agency at the time
FUNNEL_STAGES = (*COLLECTION_STAGES, Stage.LITIGATION)
CHARGE_COMPONENTS = tuple(c.value for c in Component if c is not Component.PRINCIPAL)
COMMISSION_NOTE = (
    "accrued on each payment received while placed, at the rate of the bucket group at placement "
    "(CommissionAccrued): the lender's cost, never the borrower's; per agency: collectflow agency report"
)


@dataclass(frozen=True)
class Amount:
    """One labelled amount (recovery by stage, by agency, by month)."""

    name: str
    amount: Decimal

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "amount": str(self.amount)}


@dataclass(frozen=True)
class Charges:
    """Charges of one component posted by the date: enforceable (charged) and above the cap (unenforceable)."""

    component: str
    charged: Decimal
    unenforceable: Decimal

    def as_dict(self) -> dict[str, str]:
        return {"component": self.component, "charged": str(self.charged), "unenforceable": str(self.unenforceable)}


@dataclass(frozen=True)
class PortfolioReport:
    """The portfolio as of a business date: what the tables, artifacts and charts show."""

    as_of: date
    by_stage: tuple[Segment, ...]  # lifecycle order; every stage, empty ones included
    by_bucket: tuple[Segment, ...]  # open cases only, DPD as of ``as_of``
    total: Segment
    dpd_zero: int  # open cases at DPD 0
    dpd_bands: tuple[tuple[str, int], ...]  # open cases at DPD 1 or more, by band
    funnel: tuple[tuple[str, int], ...]  # booked, then cases that ever entered each stage
    roll_rates: RollRates
    in_collection: int  # cases that entered a collection stage
    cured: int  # ... and came back to current from one
    promises_made: int
    promises_kept: int
    promises_broken: int
    recovery_by_stage: tuple[Amount, ...]
    recovery_by_agency: tuple[Amount, ...]
    recovery_by_month: tuple[tuple[str, tuple[Amount, ...]], ...]  # month (YYYY-MM) -> by agency
    overpayment: Decimal  # held on the case rows, to be refunded: part of what was received
    charges: tuple[Charges, ...]
    agency_commission: Decimal
    stuck: tuple[StuckCase, ...]

    @property
    def cure_rate(self) -> Decimal | None:
        return rate(self.cured, self.in_collection)

    @property
    def promise_kept_rate(self) -> Decimal | None:
        return rate(self.promises_kept, self.promises_kept + self.promises_broken)

    @property
    def recovered(self) -> Decimal:
        return sum((a.amount for a in self.recovery_by_stage), ZERO)

    @property
    def litigation_costs(self) -> Decimal:
        return sum((c.charged for c in self.charges if c.component == Component.COSTS.value), ZERO)

    def as_dict(self) -> dict[str, object]:
        return {
            "as_of": self.as_of.isoformat(),
            "by_stage": [s.as_dict() for s in self.by_stage],
            "by_bucket": [s.as_dict() for s in self.by_bucket],
            "total": self.total.as_dict(),
            "dpd_distribution": {
                "dpd_zero": self.dpd_zero,
                "bands": [{"band": band, "cases": n} for band, n in self.dpd_bands],
            },
            "funnel": [{"stage": stage, "cases": n} for stage, n in self.funnel],
            "roll_rates": self.roll_rates.as_dict(),
            "cure": {"in_collection": self.in_collection, "cured": self.cured, "rate": rate_text(self.cure_rate)},
            "promises": {
                "made": self.promises_made,
                "kept": self.promises_kept,
                "broken": self.promises_broken,
                "kept_rate": rate_text(self.promise_kept_rate),
            },
            "recovery": {
                "total": str(self.recovered),
                "overpayment": str(self.overpayment),
                "by_stage": [a.as_dict() for a in self.recovery_by_stage],
                "by_agency": [a.as_dict() for a in self.recovery_by_agency],
                "by_month": [{"month": m, "by_agency": [a.as_dict() for a in row]} for m, row in self.recovery_by_month],
            },
            "charges": [c.as_dict() for c in self.charges],
            "costs": {
                "litigation": str(self.litigation_costs),
                "agency_commission": str(self.agency_commission),
                "agency_commission_note": COMMISSION_NOTE,
            },
            "stuck": [
                {"case_id": s.case_id, "stage": s.stage, "stuck_on": s.stuck_on.isoformat() if s.stuck_on else None, "error": s.error}
                for s in self.stuck
            ],
        }


def report_date(store: CaseStore, requested: date | None, today: date, field: str = "--as-of") -> date:
    """The business date to report as of: ``requested``, else the last date the close ran for.

    A report reads closed days only (a past month end's DPD is read from its
    reviews), so a date after the last close or before the first is refused, naming both.
    """
    last = store.last_run_business_date()
    if requested is None:
        if last is None:
            raise InputError(f"{field}: no business date has been closed yet; run collectflow advance first, or give {field} YYYY-MM-DD")
        return last
    if requested > today:
        raise InputError(f"{field}: {requested} is after today ({today} in the lender's time zone)")
    if last is None:
        raise InputError(f"{field}: {requested} has not been closed: no business date has been closed yet; run collectflow advance first")
    if requested > last:
        raise InputError(f"{field}: {requested} is after the last closed business date {last}; a report reads closed days only")
    first = store.first_run_business_date()
    if first is not None and requested < first:
        raise InputError(f"{field}: {requested} is before the first closed business date {first}; a report reads closed days only")
    return requested


def build_report(store: CaseStore, as_of: date) -> PortfolioReport:
    """Every figure of the report as of ``as_of``, read once from the store."""
    by_stage, by_bucket, dpd_zero, bands, overpayment = _balances(store, as_of)
    recovery_by_stage, recovery_by_agency, recovery_by_month = _recoveries(store, as_of)
    reached = store.cases_reaching(as_of)
    counts = store.event_counts(("PromiseMade", "PromiseKept", "PromiseBroken"), as_of)
    return PortfolioReport(
        as_of=as_of,
        by_stage=by_stage,
        by_bucket=by_bucket,
        total=total_of(by_stage),
        dpd_zero=dpd_zero,
        dpd_bands=bands,
        funnel=(("booked", store.cases_opened(as_of)), *((s.value, reached.get(s.value, 0)) for s in FUNNEL_STAGES)),
        roll_rates=_roll_rates(store, as_of),
        in_collection=store.cases_entering(tuple(s.value for s in COLLECTION_STAGES), as_of),
        cured=store.cases_cured(as_of),
        promises_made=counts["PromiseMade"],
        promises_kept=counts["PromiseKept"],
        promises_broken=counts["PromiseBroken"],
        recovery_by_stage=recovery_by_stage,
        recovery_by_agency=recovery_by_agency,
        recovery_by_month=recovery_by_month,
        overpayment=overpayment,
        charges=_charges(store, as_of),
        agency_commission=store.commission_total(as_of),
        stuck=tuple(store.stuck_cases()),
    )


def _balances(store: CaseStore, as_of: date):
    """Cases and balances by stage and, for open cases, by bucket and DPD band (DPD as of ``as_of``);
    and the overpayments the case rows hold."""
    overpayment = ZERO
    stages = {s.value: Segment(s.value) for s in Stage}
    buckets = {b.value: Segment(b.value) for b in Bucket}
    bands = [0] * len(DPD_BANDS)
    dpd_zero = 0
    for group in store.case_balances():
        segment = Segment(group.stage, group.cases, group.principal_outstanding, group.total_due, group.unenforceable)
        stages[group.stage] = stages.get(group.stage, Segment(group.stage)).plus(segment)
        overpayment += group.overpayment
        if Stage(group.stage).is_closed:
            continue
        dpd = days_past_due(group.oldest_unpaid_due_on, as_of)
        bucket = bucket_for(dpd).value
        buckets[bucket] = buckets[bucket].plus(segment)
        if dpd == 0:
            dpd_zero += group.cases
        else:
            bands[dpd_band(dpd)] += group.cases
    labelled = tuple((band_label(*band), n) for band, n in zip(DPD_BANDS, bands))
    return tuple(stages.values()), tuple(buckets.values()), dpd_zero, labelled, overpayment


def _roll_rates(store: CaseStore, as_of: date) -> RollRates:
    """Open cases by bucket at the end of month M-1 against their place at the end of month M."""
    return store.roll_rates(*roll_month_ends(as_of))


def _recoveries(store: CaseStore, as_of: date):
    """Payments received by the stage the case was in, by agency, and by agency month by month."""
    by_stage: dict[str, Decimal] = {s.value: ZERO for s in Stage if not s.is_closed}
    by_agency: dict[str, Decimal] = defaultdict(lambda: ZERO)
    by_month: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(lambda: ZERO))
    for r in store.recoveries(as_of):
        agency = r.agency_id or IN_HOUSE
        by_stage[r.stage] = by_stage.get(r.stage, ZERO) + r.amount
        by_agency[agency] += r.amount
        by_month[f"{r.received_on:%Y-%m}"][agency] += r.amount
    agencies = sorted(by_agency, key=lambda a: (a == IN_HOUSE, a))  # agencies first, in-house last
    months = tuple(
        (month, tuple(Amount(a, by_month[month].get(a, ZERO)) for a in agencies)) for month in sorted(by_month)
    )
    return (
        tuple(Amount(s, v) for s, v in by_stage.items()),
        tuple(Amount(a, by_agency[a]) for a in agencies),
        months,
    )


def _charges(store: CaseStore, as_of: date) -> tuple[Charges, ...]:
    totals = {c: (ZERO, ZERO) for c in CHARGE_COMPONENTS}
    for posted in store.posted_charges(as_of):
        charged, unenforceable = totals.get(posted.component, (ZERO, ZERO))
        totals[posted.component] = (charged + posted.enforceable, unenforceable + posted.unenforceable)
    return tuple(Charges(c, *amounts) for c, amounts in totals.items())
