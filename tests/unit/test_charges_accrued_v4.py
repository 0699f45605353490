"""ChargesAccrued v4: what the rest of the event gives is left out, and still read back exactly.

``through`` is left out when it is the business date, a segment's unrounded ``exact`` when it
recomputes from the segment's base, rate and days (``states.payload_codecs._exact_of``). The event
read back is the one written, to the last digit and exponent, whatever the values; a v3 payload
(as the previous release stored it: ``through`` and every ``exact`` written out) reads back as the
same event and explains in the same words; a v3 payload with a v4 row is refused.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal, localcontext

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from states.events import ChargesAccrued, EventError, event_from_record
from states.explain import explain
from states.money import DayCount
from states.payload_codecs import _EXACT_EXP
from tests.unit.conftest import D, charges_v3_record, loan, of_type
from tests.unit.test_cap_path_independence import binding_loans, extra_reviews, followed, payments
from tests.unit.test_charges_accrued_v3 import binding_history, odd_event, rendered


def read(record: dict):
    return event_from_record(**record)


def stored(event) -> dict:
    """The event's record as the store keeps it (its payload as JSON text, read back)."""
    return json.loads(event.canonical_json())


def test_a_close_stores_no_exact_and_no_through_and_reads_back_the_event_written():
    accruals = of_type(binding_history(), ChargesAccrued)
    assert accruals and all(e.schema_version == 4 for e in accruals)
    for event in accruals:
        payload = stored(event)["payload"]
        assert "t" not in payload and event.through == event.business_date
        assert all(len(row) in (5, 7) for row in payload["s"]), payload["s"]  # every exact recomputes
        assert payload.get("b") == (360 if event.segments else None)  # the unit loans are ACT/360
        assert read(stored(event)) == event


def test_an_act_365_case_names_no_basis():
    terms = loan(principal="20000.00", rate="0.36", term=6, compound_interest=True, late_fee="300.00",
                 late_fee_rate="0.02", day_count=DayCount.ACT_365)
    accruals = of_type(followed(terms, [(40, D("500.00"))], [61, 90], end_after=120).log, ChargesAccrued)
    assert accruals
    for event in accruals:
        payload = stored(event)["payload"]
        assert "b" not in payload and all(len(row) in (5, 7) for row in payload["s"])
        assert read(stored(event)) == event


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(binding_loans(), payments, extra_reviews, st.sampled_from(list(DayCount)))
def test_any_case_reads_back_and_explains_the_same_from_v4_and_v3(terms, paid, extra, day_count):
    events = followed(replace(terms, day_count=day_count), paid, extra).log
    accruals = of_type(events, ChargesAccrued)
    for event in accruals:
        v4, v3 = stored(event), charges_v3_record(event)
        assert read(v4) == read(v3) == event
        assert [line.text() for line in explain(read(v4))] == [line.text() for line in explain(read(v3))]
        assert all(len(row) in (5, 7) for row in v4["payload"]["s"])
        assert len(json.dumps(v4["payload"])) < len(json.dumps(v3["payload"])) or not event.segments
    assert rendered([read(stored(e)) for e in events]) == rendered(events)


def test_an_exact_that_does_not_recompute_is_stored_as_written():
    event = odd_event()  # its exacts are not base x rate x days / basis
    payload = stored(event)["payload"]
    assert [len(row) for row in payload["s"]] == [6, 8, 8]
    assert read(stored(event)) == event
    (first, *rest) = event.segments
    with localcontext() as ctx:
        ctx.prec = 28
        recomputed = (first.annual_rate * first.base * first.days / 365).quantize(Decimal(10) ** _EXACT_EXP)
    for exact in (recomputed, recomputed.quantize(Decimal("1e-10")), -recomputed, recomputed + Decimal("1e-12")):
        changed = replace(event, segments=(replace(first, exact=exact), *rest))
        kept = len(stored(changed)["payload"]["s"][0]) == 6  # stored unless it is the recomputed one exactly
        assert kept == (exact is not recomputed), exact
        again = read(stored(changed))
        assert again == changed and str(again.segments[0].exact) == str(exact)


def test_a_through_other_than_the_business_date_is_stored():
    event = odd_event()
    moved = replace(event, business_date=event.through + timedelta(days=3))
    assert stored(moved)["payload"]["t"] == event.through.isoformat()
    assert read(stored(moved)) == moved


@settings(max_examples=300)
@given(st.integers(-(10**30), 10**30), st.integers(-14, 4), st.integers(0, 10**6), st.integers(-3, 3650))
def test_any_segment_reads_back_exactly_whether_its_exact_is_stored_or_recomputed(digits, exponent, rate, days):
    plain = odd_event()
    base, annual_rate = Decimal(digits).scaleb(exponent), Decimal(rate).scaleb(-4)
    with localcontext() as ctx:  # the domain's own arithmetic, in the default context
        ctx.prec = 28
        try:
            exact = (annual_rate * base * days / 365).quantize(Decimal(10) ** _EXACT_EXP)
        except ArithmeticError:
            exact = base
    segment = replace(plain.segments[0], base=base, annual_rate=annual_rate, days=days, exact=exact)
    event = replace(plain, segments=(segment, *plain.segments[1:]))
    again = read(stored(event))
    assert again == event
    assert [str(getattr(again.segments[0], f)) for f in ("base", "annual_rate", "exact")] == [
        str(base), str(annual_rate), str(exact)]


V4_BAD = [
    {"n": 1, "cr": "0.24", "cl": 1, "cb": 0, "b": 366, "s": [], "p": []},
    {"n": 1, "cr": "0.24", "cl": 1, "cb": 0, "b": "360", "s": [], "p": []},
    {"n": 1, "cr": "0.24", "cl": 1, "cb": 0, "s": [["c", 1.5, "0.1", 1, "c"]], "p": []},
    {"n": 1, "cr": "0.24", "cl": 1, "cb": 0, "s": [["c", 100, 0.1, 1, "c"]], "p": []},
    {"n": 1, "cr": "0.24", "cl": 1, "cb": 0, "s": [["c", 100, "0.1", "1", "c"]], "p": []},
    {"n": 1, "cr": "0.24", "cl": 1, "cb": 0, "s": [["c", 100, "0.1", 1, "c", "2024-05-31"]], "p": []},
    {"n": 1, "cr": "0.24", "cl": 1, "cb": 0, "s": [["c", "1E+99999", "1E+99999", 1, "c"]], "p": []},
    {"t": "31/05/2024", "n": 1, "cr": "0.24", "cl": 1, "cb": 0, "s": [], "p": []},
    {"n": 1, "cr": "a quarter", "cl": 1, "cb": 0, "s": [], "p": []},  # decimal text that is no number
    {"n": 1, "cr": "0.24", "cl": "1,00", "cb": 0, "s": [], "p": []},
]


@pytest.mark.parametrize("payload", V4_BAD)
def test_a_bad_v4_payload_is_an_event_error(payload):
    with pytest.raises(EventError, match="bad ChargesAccrued payload"):
        read({"case_id": "c", "seq": 2, "type": "ChargesAccrued", "business_date": "2024-05-31", "actor": "system",
              "schema_version": 4, "payload": payload})


@pytest.mark.parametrize("payload", [
    {"n": 1, "cr": "0.24", "cl": 1, "cb": 0, "s": [], "p": []},  # no "t": v3 always stored it
    {"t": "2024-05-31", "n": 1, "cr": "0.24", "cl": 1, "cb": 0, "s": [["c", 100, "0.1", 1, "c"]], "p": []},
])
def test_a_v3_payload_in_a_v4_shape_is_an_event_error(payload):
    with pytest.raises(EventError, match="bad ChargesAccrued v3 payload"):
        read({"case_id": "c", "seq": 2, "type": "ChargesAccrued", "business_date": "2024-05-31", "actor": "system",
              "schema_version": 3, "payload": payload})
