"""ChargesAccrued v3: the compact payload reads back as the event written, and explains in the same words.

An explanation is rebuilt from the rule codes and numbers stored (``states.rule_texts``);
a case's history stored in the v2 form (field names, rules as prose) and in the v3 form
gives the same events, the same explanation lines and the same timeline, byte for byte.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.recorder import stored_canonical_json
from states.cap_ledger import Unenforced
from states.caps import CapRegime
from states.events import (
    AccrualSegment,
    CaseOpened,
    ChargePosting,
    ChargesAccrued,
    EventError,
    canonical_json,
    event_from_record,
    field_payload_encoder,
)
from states.explain import describe, explain, timeline_of
from states.rule_texts import POSTING_RULES, SEGMENT_RULES
from states.schedule import RepaymentMethod
from tests.unit.conftest import D, loan, of_type, open_case
from tests.unit.test_cap_path_independence import (
    binding_loans,
    extra_reviews,
    followed,
    payments,
)

V2 = 2


def v2_record(event) -> dict:
    """The event's stored record as the previous release wrote it (ChargesAccrued v2: field names, prose)."""
    record = json.loads(event.canonical_json())
    if isinstance(event, (ChargesAccrued, CaseOpened)):
        record["schema_version"] = V2
        record["payload"] = field_payload_encoder(type(event), compact=False)(event)
    return record


def read(record: dict):
    return event_from_record(**record)


def as_v2(events) -> list:
    return [read(v2_record(e)) for e in events]


def as_v3(events) -> list:
    return [read(json.loads(e.canonical_json())) for e in events]


def rendered(events) -> str:
    """Everything an explanation shows of a history: the timeline (descriptions, charge lines, balances)."""
    return json.dumps([row.as_dict() for row in timeline_of(events)])


def binding_history(seed: int = 0):
    """A case pressing on the cap: late fees, penalty and compound interest, cut and released."""
    terms = loan(principal="20000.00", rate="0.36", term=6, compound_interest=True, late_fee="300.00",
                 late_fee_rate="0.02", cap_regime=CapRegime.PRIVATE)
    return followed(terms, [(40, D("500.00")), (100, D("3000.00"))], [20, 35, 61, 62, 90, 120, 150], end_after=200).log


def test_a_binding_history_covers_every_rule_code():
    events = binding_history()
    accruals = of_type(events, ChargesAccrued)
    stored = [e.payload() for e in accruals]
    codes = {s[0] for p in stored for s in p["s"]} | {q[0] for p in stored for q in p["p"]}
    assert {"c", "p", "k", "cap", "f"} <= codes
    assert any("r" in p for p in stored)  # something held above the cap was released
    assert any(q[4] for p in stored for q in p["p"])  # and something cut


def test_v3_reads_back_as_the_event_written_and_stores_no_prose():
    events = binding_history()
    for event in of_type(events, ChargesAccrued):
        text = event.payload_json()
        assert read(json.loads(event.canonical_json())) == event
        for template in (*SEGMENT_RULES.values(), *POSTING_RULES.values()):
            assert template.split("{}")[0] not in text  # no rule's words stored
        assert '["",' not in text  # no text the templates do not give


def test_the_same_history_in_v2_and_v3_explains_in_the_same_words():
    """The rendered explanation of the old-format and the new-format events of one case, byte for byte."""
    events = binding_history()
    old, new = as_v2(events), as_v3(events)
    assert old == new == events
    assert {e.schema_version for e in of_type(old, ChargesAccrued)} == {ChargesAccrued.schema_version}
    assert [describe(e) for e in old] == [describe(e) for e in new]
    assert [[line.text() for line in explain(e)] for e in old] == [[line.text() for line in explain(e)] for e in new]
    assert rendered(old) == rendered(new)
    assert any(explain(e) for e in new)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(binding_loans(), payments, extra_reviews)
def test_any_binding_case_reads_and_explains_the_same_from_v2_and_v3(terms, paid, extra):
    events = followed(terms, paid, extra).log
    old, new = as_v2(events), as_v3(events)
    assert old == new == events
    assert rendered(old) == rendered(new)
    for event in of_type(events, ChargesAccrued):
        assert '["",' not in event.payload_json()


def test_v3_is_a_fraction_of_v2():
    events = of_type(binding_history(), ChargesAccrued)
    v2 = sum(len(canonical_json(field_payload_encoder(ChargesAccrued)(e))) for e in events)
    v3 = sum(len(e.payload_json()) for e in events)
    assert v3 < 0.4 * v2, (v3, v2)


def test_a_v2_payload_is_hashed_as_stored_never_re_encoded():
    (event, *_) = of_type(binding_history(), ChargesAccrued)
    record = v2_record(event)
    text = canonical_json(record["payload"])
    columns = {**record, "business_date": event.business_date, "payload": text}
    assert f'"payload":{text},' in stored_canonical_json(**columns)
    assert read({**record, "payload": text}) == event


def odd_event(**changes) -> ChargesAccrued:
    """An event with values the compact form has no short spelling for: each must read back as written."""
    through = date(2024, 5, 31)
    base = dict(
        case_id="c-1", seq=5, business_date=through, accrued_from=through - timedelta(days=30), through=through,
        segments=(AccrualSegment("contract_interest", D("5"), D("0.18"), date(2024, 5, 2), through, 30, D("0.075"), "a rule of its own"),
                  AccrualSegment("interest_of_a_new_kind", D("-0.00"), D("0.1800"), through, through, 1, D("1E+3"), SEGMENT_RULES["p"].format("")),
                  AccrualSegment("cap", D("123456789012345678.90"), D("0.24"), date(2024, 5, 1), through, 31,
                                 D("1234567.123456789012"), SEGMENT_RULES["cap"].format("licensed"))),
        postings=(ChargePosting("late_fee", D("300.00"), D("100.0"), D("200.000"), POSTING_RULES["f"].format(9), 2),
                  ChargePosting("contract_interest", D("1.00"), D("1.00"), D("0.00"), POSTING_RULES["y"].format(None)),
                  ChargePosting("penalty_interest", D("-1.50"), D("0.00"), D("-1.50"), "penalty interest {} with braces", None)),
        cap_rate=D("0.24"), cap_limit=D("99999999999999999999.99"), charged_before=D("0"),
        released=(Unenforced("compound_interest", D("2.27")), Unenforced("late_fee", D("3.1"), 4)),
    )
    return ChargesAccrued(**{**base, **changes})


def test_values_without_a_short_spelling_read_back_exactly():
    event = odd_event()
    again = read(json.loads(event.canonical_json()))
    assert again == event
    assert [str(x) for s in again.segments for x in (s.base, s.annual_rate, s.exact)] == [
        str(x) for s in event.segments for x in (s.base, s.annual_rate, s.exact)]
    assert [(str(p.computed), str(p.enforceable), str(p.unenforceable), p.rule) for p in again.postings] == [
        (str(p.computed), str(p.enforceable), str(p.unenforceable), p.rule) for p in event.postings]
    assert [line.text() for line in explain(again)] == [line.text() for line in explain(event)]
    assert describe(again) == describe(event)


def test_a_component_spelt_like_a_code_is_refused():
    event = odd_event(released=(Unenforced("k", D("1.00")),))
    with pytest.raises(ValueError, match="spelt like a component code"):
        event.payload()


@pytest.mark.parametrize("payload", [
    {"t": "2024-05-31", "n": 1, "cr": "0.24", "cl": 1, "cb": 0, "s": [], "p": [["c", 1, 1, 1, 0, "nope"]]},
    {"t": "2024-05-31", "n": "1", "cr": "0.24", "cl": 1, "cb": 0, "s": [], "p": []},
    {"t": "2024-05-31", "n": 1, "cr": "0.24", "cl": 1.5, "cb": 0, "s": [], "p": []},
    {"t": "2024-05-31", "n": 1, "cr": "0.24", "cl": 1, "cb": 0, "s": [["c", 1, "0.1", 1, 1]], "p": []},
    {"t": "2024-05-31", "n": 1, "cr": "0.24", "cl": 1, "cb": 0, "s": [["p", 1, "0.1", 1, 1, "p"]], "p": []},
])
def test_a_bad_v3_payload_is_an_event_error(payload):
    with pytest.raises(EventError, match="bad ChargesAccrued (v3 )?payload"):
        read({"case_id": "c", "seq": 2, "type": "ChargesAccrued", "business_date": "2024-05-31", "actor": "system",
              "schema_version": 3, "payload": payload})


@settings(max_examples=300)
@given(st.integers(-(10**20), 10**20), st.integers(-14, 2))
def test_any_decimal_reads_back_with_its_exponent(digits, exponent):
    amount = Decimal(digits).scaleb(exponent)
    plain = odd_event()
    segment = replace(plain.segments[0], base=amount, exact=amount)
    event = odd_event(cap_limit=amount, charged_before=-amount, segments=(segment, *plain.segments[1:]))
    again = read(json.loads(event.canonical_json()))
    assert (str(again.cap_limit), str(again.charged_before)) == (str(amount), str(-amount))
    assert (str(again.segments[0].base), str(again.segments[0].exact)) == (str(amount), str(amount))


def test_case_opened_v3_reads_back_as_written_and_as_its_v2_form():
    from states.events import ScheduledInstallment
    from states.payload_codecs import decode_schedule, encode_schedule

    case = open_case(terms=loan(principal="12000.00", term=12, method=RepaymentMethod.EQUAL_INSTALLMENT))
    (opened,) = of_type(case.log, CaseOpened)
    assert read(json.loads(opened.canonical_json())) == opened == read(v2_record(opened))
    assert describe(read(v2_record(opened))) == describe(opened)
    assert len(opened.payload_json()) < 0.6 * len(canonical_json(v2_record(opened)["payload"]))
    odd = (ScheduledInstallment(2, date(2024, 1, 1), D("5"), D("-0.00")), ScheduledInstallment(3, date(2024, 2, 1), D("1.50"), D("0.005")))
    again = decode_schedule(json.loads(json.dumps(encode_schedule(odd))))
    assert [(i.number, i.due_on, str(i.principal), str(i.interest)) for i in again] == [
        (i.number, i.due_on, str(i.principal), str(i.interest)) for i in odd]
    with pytest.raises(TypeError):
        decode_schedule([["2024-01-01", 1]])
