"""The ``whatif`` deployment: a proposed policy replayed over the recorded history, from a form.

Publishes the totals as a table artifact and the cases that would differ as
a second one (the first 500); the case store is only read.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from prefect import flow
from prefect.artifacts import create_table_artifact
from pydantic import BaseModel, Field

from flows import runtime
from flows.bootstrap import load_policy
from flows.handlers.whatif import whatif

ARTIFACT_ROWS = 500


class WhatIf(BaseModel):
    policy_file: str = Field(description="The proposed collection policy (TOML) as the worker sees it")
    from_date: date | None = Field(None, description="First date compared (default: 30 days before the last)")
    to_date: date | None = Field(None, description="Last date compared (default: the last closed business date)")
    cases: int | None = Field(None, ge=1, description="Only the first N cases (by id)")
    sample_percent: str | None = Field(None, description="Only a reproducible sample of this many percent of the cases, e.g. 10")


@flow(name="whatif")
def whatif_flow(request: WhatIf) -> dict[str, object]:
    """Replay the recorded history under a proposed policy; report what would have differed."""
    result = whatif(
        runtime.app(), load_policy(request.policy_file), start=request.from_date, end=request.to_date,
        cases=request.cases, sample=None if request.sample_percent is None else Decimal(request.sample_percent),
    )
    totals = result.totals()
    create_table_artifact(
        key="whatif-totals",
        table=[{"figure": k.replace("_", " "), "value": str(v)} for k, v in totals.items()],
        description=f"What if {request.policy_file}: {totals['cases_that_differ']} of {totals['cases_compared']} cases differ",
    )
    differing = [d.as_dict() for d in result.differences if d.differs][:ARTIFACT_ROWS]
    create_table_artifact(key="whatif-cases", table=differing or [{"case_id": "(no case differs)"}], description="Cases that would differ")
    return totals
