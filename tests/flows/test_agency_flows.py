"""The agency deployments: recall-agency (a typed form, the operator as actor) and agency-report (a table artifact)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from prefect.artifacts import Artifact
from prefect.exceptions import ParameterTypeError

from flows import operator, runtime
from flows.agencies import agency_report_flow
from flows.handlers.agencies import register_agency
from flows.operator import AgencyRecall
from states.agency import RegisterAgency
from states.case import DomainError
from states.events import PlacedWithAgency
from tests.flows.conftest import FIRST_DAY, book, close

CLOSED_ON = FIRST_DAY + timedelta(days=59)
ACT_ON = CLOSED_ON + timedelta(days=1)
RATES = "M4-M6=0.15,M7+=0.25,written_off=0.35"


def test_recall_from_the_form_goes_to_another_agency_and_the_report_is_published(store):
    app = runtime.app()
    for name in ("NORTH", "SOUTH"):
        register_agency(RegisterAgency(name=name, licence_no=f"L-{name}", capacity=30, rates=RATES, operator="sup-1"), app)
    borrowers = book(store, 40)
    assert close(CLOSED_ON).is_completed()
    placed = [b.case_id for b in borrowers if store.case_row(b.case_id).projection.agency_id]
    assert placed, "the book has outsourced cases by then"
    case_id = placed[0]
    first = store.case_row(case_id).projection.agency_id

    lines = operator.recall_agency(AgencyRecall(case=case_id, operator="sup-1", reason="borrower complaint", made_on=ACT_ON))
    assert any("recalled from agency" in line for line in lines) and any("placed with agency" in line for line in lines)
    events = store.events(case_id)
    assert events[-2].actor == "sup-1" and events[-2].reason == "by operator: borrower complaint"
    assert isinstance(events[-1], PlacedWithAgency) and events[-1].agency_id != first
    with pytest.raises(ParameterTypeError, match="reason"):
        operator.recall_agency({"case": case_id, "operator": "sup-1", "reason": "", "made_on": str(ACT_ON)})
    unplaced = next(b.case_id for b in borrowers if not store.case_row(b.case_id).projection.agency_id)
    with pytest.raises(DomainError, match="is not placed with an agency"):
        operator.recall_agency(AgencyRecall(case=unplaced, operator="sup-1", reason="x", made_on=ACT_ON))

    result = agency_report_flow(end=ACT_ON)
    artifact = Artifact.get("agency-report")
    assert artifact is not None and "per agency and strategy" in artifact.description
    table = json.loads(artifact.data) if isinstance(artifact.data, str) else artifact.data
    (total,) = [row for row in table if row["agency"] == row["strategy"] == "all"]
    assert total["cases_placed"] == len(placed) + 1 == [r for r in result["rows"] if r["agency"] == r["strategy"] == "all"][0]["cases_placed"]
