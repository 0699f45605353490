"""The timeline a person reads agrees with the valuation: replay --as-of D and show --as-of D give one figure."""

from __future__ import annotations

from datetime import timedelta

import pytest

from states.events import EVENT_TYPES
from states.explain import NOT_YET_POSTED, describe, timeline_of
from states.views import BALANCE_FIELDS
from tests.unit.conftest import DUE, POLICY, D, open_case, stored
from tests.unit.test_events import every_kind_of_event


def balances(projection) -> dict:
    """A projection's balances with its DPD as of the day it was accrued through."""
    values = {name: getattr(projection, name) for name in BALANCE_FIELDS if name != "dpd"}
    return {**values, "dpd": projection.dpd(projection.accrued_through)}


@pytest.mark.parametrize("policy", [POLICY, None], ids=["reviewed", "accrued-straight"])
def test_the_timeline_as_of_a_later_date_ends_with_the_view_of_that_date(policy):
    case = open_case()
    case.advance(DUE + timedelta(days=5), POLICY)  # overdue, reviewed: penalty posted through day 5
    as_of = DUE + timedelta(days=25)  # penalty accrued since, not yet posted
    view = case.view(as_of, policy)
    rows = timeline_of(stored(case.log), as_of, policy)
    last = rows[-1]
    assert last.type == NOT_YET_POSTED and last.business_date == as_of
    assert last.description == f"accrued, not yet posted, through {as_of}"
    assert last.balances == balances(view.projection)
    assert last.balances["penalty_interest"] > rows[-2].balances["penalty_interest"] > D("0.00")
    assert any(c.component == "penalty_interest" for c in last.charges)  # the accrual is explained too
    assert len(rows) == len(case.log) + 1


def test_no_valuation_row_when_nothing_accrued_since_the_last_event():
    case = open_case()
    case.advance(DUE + timedelta(days=5), POLICY)
    rows = timeline_of(stored(case.log), case.accrued_through, POLICY)
    assert [r.seq for r in rows] == [e.seq for e in case.log]


def test_without_a_date_the_timeline_is_the_events_only():
    case = open_case()
    case.advance(DUE + timedelta(days=5), POLICY)
    assert [r.type for r in timeline_of(stored(case.log))] == [e.type for e in case.log]


@pytest.mark.parametrize("kind", sorted(EVENT_TYPES))
def test_every_event_type_is_described_in_words(kind):
    event = next(e for e in every_kind_of_event().log if e.type == kind)
    text = describe(event)
    assert text and not text.startswith(f"{kind}:")  # not the raw payload fallback
