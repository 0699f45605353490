"""The what-if use case: rerun recorded histories under a proposed policy and total the differences.

Reads cases from the store and never writes to it: each case's events are
rerun in memory (``states.whatif``). ``--cases N`` takes the first N cases by
id; ``--sample P`` a reproducible P % (a seeded hash of the case id).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from flows.bootstrap import App
from states.lifecycle import Stage
from states.money import ZERO
from states.parse import InputError
from states.policy import CollectionPolicy
from states.whatif import CaseDifference, compare

DEFAULT_WINDOW_DAYS = 30
SAMPLE_SEED = "collectflow-whatif-v1"


@dataclass(frozen=True)
class WhatIfReport:
    start: date
    end: date
    differences: tuple[CaseDifference, ...]  # every case compared

    def totals(self) -> dict[str, object]:
        diffs = self.differences

        def total(side: str, name: str):
            return sum((getattr(getattr(d, side), name) for d in diffs), ZERO if name in ("penalties_charged", "capped") else 0)

        return {
            "window": f"{self.start}..{self.end}",
            "cases_compared": len(diffs),
            "cases_that_differ": sum(d.differs for d in diffs),
            "case_days_in_another_stage": sum(d.days_in_another_stage for d in diffs),
            "escalations": sum(len(d.actual.escalations) for d in diffs),
            "escalations_whatif": sum(len(d.whatif.escalations) for d in diffs),
            "penalties_charged": str(total("actual", "penalties_charged")),
            "penalties_charged_whatif": str(total("whatif", "penalties_charged")),
            "capped": str(total("actual", "capped")),
            "capped_whatif": str(total("whatif", "capped")),
            "placements": total("actual", "placements"),
            "placements_whatif": total("whatif", "placements"),
            "lawsuits": total("actual", "lawsuits"),
            "lawsuits_whatif": total("whatif", "lawsuits"),
            "inputs_refused_whatif": sum(len(d.refused) for d in diffs),
        }


def in_sample(case_id: str, percent: Decimal) -> bool:
    digest = hashlib.sha256(f"{SAMPLE_SEED}:{case_id}".encode()).digest()
    return Decimal(int.from_bytes(digest[:8], "big") % 10_000) < percent * 100


def whatif(
    app: App,
    policy: CollectionPolicy,
    *,
    start: date | None = None,
    end: date | None = None,
    cases: int | None = None,
    sample: Decimal | None = None,
) -> WhatIfReport:
    """Every chosen case's history rerun under ``policy`` and compared over [start, end]."""
    end = end or app.store.last_closed_business_date() or app.today()
    start = start or end - timedelta(days=DEFAULT_WINDOW_DAYS)
    if start > end:
        raise InputError(f"--from: {start} is after --to {end}")
    if cases is not None and sample is not None:
        raise InputError("--cases and --sample: give one of them, not both")
    if sample is not None and not Decimal(0) < sample <= 100:
        raise InputError(f"--sample: {sample} is not a percentage above 0 and at most 100")
    ids = app.store.case_ids_in_stages(tuple(stage.value for stage in Stage))
    if sample is not None:
        ids = [case_id for case_id in ids if in_sample(case_id, sample)]
    if cases is not None:
        ids = ids[:cases]
    differences = tuple(compare(app.store.events(case_id), policy, start, end) for case_id in ids)
    return WhatIfReport(start, end, differences)
