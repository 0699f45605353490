"""The litigation deployments' flows under prefect_test_harness: a lawsuit filed, judged and executed
through the typed forms, each event by the operator, and a bad form refused before the run."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from prefect.exceptions import ParameterTypeError

from flows import operator
from flows.operator import Execution, Judgment, LawsuitFiling
from states.errors import DomainError
from states.events import SYSTEM
from states.lifecycle import Stage
from tests.flows.conftest import book, close
from tests.flows.test_operator_flows import ACT_ON, CLOSED_ON, OPERATOR


def test_a_lawsuit_is_filed_judged_and_executed_through_the_operator_flows(store):
    borrowers = book(store, 40)
    assert close(CLOSED_ON).is_completed()
    outsourced = [b.case_id for b in borrowers if store.case_row(b.case_id).projection.stage == Stage.OUTSOURCED]
    assert outsourced
    case_id = outsourced[0]
    before = len(store.events(case_id))

    filed = operator.file_lawsuit(LawsuitFiling(case=case_id, operator=OPERATOR, filed_on=ACT_ON, override="guarantor has assets"))
    assert store.case_row(case_id).projection.stage == Stage.LITIGATION
    judged = operator.enter_judgment(
        Judgment(case=case_id, operator=OPERATOR, amount="5000.00", deadline=ACT_ON, entered_on=ACT_ON, court="Pudong court")
    )
    executed = operator.record_execution(Execution(case=case_id, operator=OPERATOR, outcome="no_assets", recorded_on=ACT_ON + timedelta(days=1)))

    stored = store.events(case_id)[before:]
    assert [line for run in (filed, judged, executed) for line in run] == [operator.event_line(e) for e in stored]
    mine = {e.type for e in stored if e.actor == OPERATOR}
    assert {"LawsuitFiled", "JudgmentEntered", "ExecutionRecorded"} <= mine
    assert {e.actor for e in stored} <= {OPERATOR, SYSTEM}
    delayed = [e for e in stored if e.type == "DelayedPerformanceInterestAccrued"]
    assert [(e.start, e.days, e.postings[0].enforceable) for e in delayed] == [(ACT_ON + timedelta(days=1), 1, Decimal("0.88"))]  # 5,000 x 0.0175 % = 0.875

    with pytest.raises(ParameterTypeError, match="outcome"):
        operator.record_execution({"case": case_id, "operator": OPERATOR, "outcome": "lost", "recorded_on": ACT_ON.isoformat()})
    with pytest.raises(DomainError, match="already recorded"):
        operator.record_execution(Execution(case=case_id, operator=OPERATOR, outcome="partial", recorded_on=ACT_ON + timedelta(days=1)))
