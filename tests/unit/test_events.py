"""Events: canonical JSON (money as strings, stable), the stored round trip of every event type,
upcasting old shapes on read, and the refusal of floats."""

from __future__ import annotations

import dataclasses
import functools

from states.agency import AgencyBoard
from states.commands import EnterJudgment, RecallFromAgency, RecordExecution, ReportVisit
import json
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import ClassVar

import pytest

from states.case import CollectionCase, DomainError
from states.events import (
    EVENT_TYPES,
    AllocatedLine,
    DetailChange,
    Event,
    EventError,
    PaymentReceived,
    PromiseMade,
    canonical_json,
    event_from_record,
)
from states.upcasting import upcast_payment_received_v1_v2
from tests.unit.conftest import (
    DUE,
    POLICY,
    D,
    contact_cmd,
    open_case,
    pause_cmd,
    payment_cmd,
    promise_cmd,
    resume_cmd,
    stored,
    write_off_cmd,
)


@functools.cache
def every_kind_of_event():
    """One case history that holds every event type there is."""
    case = open_case()
    d = lambda n: DUE + timedelta(days=n)  # noqa: E731
    case.advance(d(10), POLICY)
    case.record_contact(contact_cmd(case, "call", "borrower", "no_answer", datetime(2024, 3, 11, 9, 30), operator="op-1"))
    case.record_contact(contact_cmd(case, "call", "borrower", "connected", datetime(2024, 3, 11, 22, 30), operator="op-1"))
    case.make_promise(promise_cmd(case, "100.00", d(12), d(10), operator="op-1"), POLICY)
    case.advance(d(13), POLICY)  # broken
    case.make_promise(promise_cmd(case, "100.00", d(15), d(13), operator="op-1"), POLICY)
    case.record_payment(payment_cmd(case, "100.00", d(14), "pay-1", operator="op-1", channel="wechat_pay"), POLICY)  # kept
    case.pause(pause_cmd(case, "complaint", d(20), d(14), operator="op-2"), POLICY)
    case.resume(resume_cmd(case, d(16), operator="op-2"))
    case.amend_borrower_details((DetailChange("phone", "138****1234", "139****5432"),), d(16), actor="op-2", source="loans.csv row 2")
    case.record_personal_data_read(("phone",), d(16), actor="op-2", purpose="collection call")
    case.advance(d(40), POLICY)  # in the visit stage: a visit is scheduled
    case.record_payment(payment_cmd(case, "50.00", d(20), "pay-2", operator="op-1"), POLICY)  # value-dated: reversed
    case.report_visit(
        ReportVisit(case=case.case_id, operator="op-2", collectors="op-2,op-3", outcome="met", visited_at=datetime(2024, 4, 11, 10, 0)),
        POLICY,
    )
    case.advance(d(95), POLICY)  # outsourced and placed
    case.record_payment(payment_cmd(case, "50.00", d(95), "pay-2", operator="op-1"), POLICY)  # commission accrues
    no_room = AgencyBoard(d(96), ())
    case.recall(RecallFromAgency(case=case.case_id, operator="op-3", reason="complaint", made_on=d(96)), POLICY, no_room)  # deferred
    case.advance(d(200), POLICY)  # placed again, recalled, sued
    case.enter_judgment(EnterJudgment(case=case.case_id, operator="op-3", amount="10000", deadline=d(200), entered_on=d(200)), POLICY)
    case.advance(d(204), POLICY)  # delayed-performance interest from d(201)
    case.record_execution(RecordExecution(case=case.case_id, operator="op-3", outcome="no_assets", recorded_on=d(205)), POLICY)
    case.write_off(write_off_cmd(case, "execution ended without recovery", d(210), operator="op-3"), POLICY)
    case.record_rebuild(d(211), actor="op-audit", reason="case row restored from its events")
    return case


def test_a_rich_history_covers_every_event_type():
    case = every_kind_of_event()
    assert {e.type for e in case.log} == set(EVENT_TYPES)


def test_canonical_json_of_an_event_is_pinned():
    event = PromiseMade(
        case_id="case-1", seq=7, business_date=date(2024, 3, 20), actor="op-1",
        amount=D("500.00"), promised_on=date(2024, 4, 3), holds_escalation=True,
    )
    assert event.canonical_json() == (
        '{"actor":"op-1","business_date":"2024-03-20","case_id":"case-1",'
        '"payload":{"amount":"500.00","holds_escalation":true,"promised_on":"2024-04-03"},'
        '"schema_version":1,"seq":7,"type":"PromiseMade"}'
    )


def test_canonical_json_is_sorted_compact_and_keeps_money_as_strings():
    case = every_kind_of_event()
    for event in case.log:
        text = event.canonical_json()
        data = json.loads(text)
        assert text == json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert set(data) == {"case_id", "seq", "type", "business_date", "actor", "schema_version", "payload"}
        assert not _numbers_other_than_ints(data["payload"])
    payment = next(e for e in case.log if e.type == "PaymentReceived")
    payload = json.loads(payment.canonical_json())["payload"]
    assert payload["amount"] == "100.00" and all(isinstance(l["amount"], str) for l in payload["lines"])


def _numbers_other_than_ints(value) -> list:
    if isinstance(value, float):
        return [value]
    if isinstance(value, dict):
        return [x for v in value.values() for x in _numbers_other_than_ints(v)]
    if isinstance(value, list):
        return [x for v in value for x in _numbers_other_than_ints(v)]
    return []


def test_canonical_json_is_the_same_after_a_stored_round_trip():
    case = every_kind_of_event()
    again = stored(case.log)
    assert [e.canonical_json() for e in again] == [e.canonical_json() for e in case.log]


@pytest.mark.parametrize("kind", sorted(EVENT_TYPES))
def test_every_event_type_round_trips_through_its_record(kind):
    case = every_kind_of_event()
    events = [e for e in case.log if e.type == kind]
    assert events, kind
    for event in events:
        record = json.loads(event.canonical_json())
        assert event_from_record(**record) == event
        # the payload may also come as the JSON text a store column holds
        assert event_from_record(**{**record, "payload": json.dumps(record["payload"])}) == event


def test_a_replay_of_the_stored_history_equals_the_live_case():
    case = every_kind_of_event()
    replayed = CollectionCase.replay(stored(case.log))
    assert replayed.projection() == case.projection()
    assert replayed.snapshot() == case.snapshot()


def test_non_ascii_text_is_kept_as_is():
    case = open_case()
    case.advance(DUE + timedelta(days=5), POLICY)
    (event,) = case.record_contact(contact_cmd(case, "call", "borrower", "connected", datetime(2024, 3, 6, 10), operator="op-1", note="承诺还款"))
    assert "承诺还款" in event.canonical_json()


# --- upcasting ------------------------------------------------------------------------------


def _v1_payment_record() -> dict:
    case = every_kind_of_event()
    payment = next(e for e in case.log if isinstance(e, PaymentReceived))
    record = json.loads(payment.canonical_json())
    del record["payload"]["channel"]
    record["schema_version"] = 1
    return record


def test_payment_received_v1_is_upcast_to_the_current_version_on_read():
    record = _v1_payment_record()
    event = event_from_record(**record)
    assert isinstance(event, PaymentReceived)
    assert event.channel == "bank_transfer"
    assert event.schema_version == 3 and event.value_date is None and event.paid_on is None  # v2 -> v3: on its day
    assert json.loads(event.canonical_json())["schema_version"] == 3
    assert upcast_payment_received_v1_v2({"amount": "1.00"}) == {"amount": "1.00", "channel": "bank_transfer"}


def test_upcasting_does_not_touch_the_stored_record():
    record = _v1_payment_record()
    before = json.dumps(record, sort_keys=True)
    event_from_record(**record)
    assert json.dumps(record, sort_keys=True) == before


def test_a_schema_newer_than_the_code_is_refused():
    record = _v1_payment_record()
    record["schema_version"] = 4
    with pytest.raises(EventError, match="newer than this code"):
        event_from_record(**record)


def test_unknown_event_type_and_missing_fields_are_refused_with_the_event_named():
    last_stage_change = next(e for e in reversed(every_kind_of_event().log) if e.type == "StageChanged")
    record = json.loads(last_stage_change.canonical_json())
    with pytest.raises(EventError, match="unknown event type 'CaseExploded'"):
        event_from_record(**{**record, "type": "CaseExploded"})
    broken = {**record, "payload": {k: v for k, v in record["payload"].items() if k != "reason"}}
    with pytest.raises(EventError, match=r"case-1 seq \d+: bad StageChanged payload"):
        event_from_record(**broken)


# --- no floats, ever ------------------------------------------------------------------------


def test_a_float_in_a_payload_is_refused_when_written():
    event = PromiseMade(
        case_id="c", seq=1, business_date=date(2024, 1, 1), amount=500.0, promised_on=date(2024, 1, 2), holds_escalation=True
    )
    with pytest.raises(TypeError, match="float"):
        event.canonical_json()
    nested = PaymentReceived(
        case_id="c", seq=1, business_date=date(2024, 1, 1), payment_id="p", amount=D("1.00"), channel="x",
        allocation_order="civil_code_561", lines=(AllocatedLine("principal", 1.0, 1),), overpayment=D("0.00"),
    )
    with pytest.raises(TypeError, match="float"):
        nested.canonical_json()


@pytest.mark.parametrize("amount", [500.0, 500])
def test_money_that_is_not_a_decimal_string_is_refused_when_read(amount):
    record = json.loads(
        PromiseMade(
            case_id="c", seq=1, business_date=date(2024, 1, 1), amount=D("500.00"), promised_on=date(2024, 1, 2),
            holds_escalation=True,
        ).canonical_json()
    )
    record["payload"]["amount"] = amount
    with pytest.raises(EventError, match="money must be a decimal string"):
        event_from_record(**record)


def test_canonical_json_takes_only_plain_json_values():
    with pytest.raises(TypeError):
        canonical_json({"amount": Decimal("1.00")})  # an event is encoded through its envelope


def test_money_in_the_opening_event_is_written_with_two_places():
    from tests.unit.conftest import loan

    case = open_case(terms=loan(principal="100", late_fee="5"))
    payload = json.loads(case.log[0].canonical_json())["payload"]
    assert (payload["principal"], payload["late_fee"]) == ("100.00", "5.00")
    # v3: the schedule's amounts are integer fen (two places by construction), read back with two places
    assert all(isinstance(row[1], int) and isinstance(row[2], int) for row in payload["schedule"])
    opened = event_from_record(**json.loads(case.log[0].canonical_json()))
    assert all(str(i.principal).endswith(".00") and i.principal.as_tuple().exponent == -2 for i in opened.schedule)


# --- registration and apply ------------------------------------------------------------------


def test_an_event_type_registers_itself_under_its_class_name():
    assert EVENT_TYPES["PromiseMade"] is PromiseMade and PromiseMade.type == "PromiseMade"


def test_apply_refuses_an_event_it_has_no_handler_for():
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class CaseTeleported(Event):
        destination: str

    try:
        assert EVENT_TYPES["CaseTeleported"] is CaseTeleported  # registered as soon as it is defined
        case = open_case()
        before = case.snapshot()
        with pytest.raises(DomainError, match="no handler for event type 'CaseTeleported'"):
            case.apply(CaseTeleported(case_id=case.case_id, seq=case.version + 1, business_date=DUE, destination="moon"))
        assert case.snapshot() == before
    finally:
        del EVENT_TYPES["CaseTeleported"]  # keep the registry to the real event types for the other tests


def test_a_second_class_under_a_stored_name_is_refused():
    with pytest.raises(TypeError, match="'PromiseMade' is already"):
        @dataclasses.dataclass(frozen=True, kw_only=True)
        class Impostor(Event):
            type: ClassVar[str] = "PromiseMade"


def test_events_stay_pending_until_collected_and_each_command_returns_its_own():
    case = open_case()
    opened = case.collect_events()
    assert [e.type for e in opened] == ["CaseOpened"]
    advanced = case.advance(DUE + timedelta(days=5), POLICY)
    promised = case.make_promise(promise_cmd(case, "100.00", DUE + timedelta(days=8), DUE + timedelta(days=5)), POLICY)
    assert [e.type for e in promised] == ["PromiseMade"]
    assert case.collect_events() == advanced + promised
    assert case.collect_events() == []
