"""Operator actions as flows: typed parameters, the operator's id as actor, idempotent payments, clear errors."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal

import pytest
from prefect.exceptions import ParameterTypeError

from flows import operator
from flows.operator import ContactAttempt, Pause, Payment, PromiseToPay, Resume, WriteOff
from models.errors import CaseNotFound
from states.case import DomainError
from states.events import SYSTEM
from states.lifecycle import InvalidTransition, Stage
from tests.flows.conftest import FIRST_DAY, book, close

CLOSED_ON = FIRST_DAY + timedelta(days=59)  # the book has reached every collection stage by then
ACT_ON = CLOSED_ON + timedelta(days=1)
OPERATOR = "op-wang.li"


@pytest.fixture
def book_in_collection(store) -> dict[Stage, list[str]]:
    """40 cases closed through CLOSED_ON; their ids by stage."""
    borrowers = book(store, 40)
    assert close(CLOSED_ON).is_completed()
    by_stage: dict[Stage, list[str]] = {}
    for b in borrowers:
        by_stage.setdefault(Stage(store.case_row(b.case_id).projection.stage), []).append(b.case_id)
    assert by_stage.get(Stage.VISIT) and by_stage.get(Stage.OUTSOURCED), by_stage
    return by_stage


def act(store, case_id: str, run) -> tuple[list[str], list]:
    """Run an operator flow; its report and the events it stored."""
    before = len(store.events(case_id))
    lines = run()
    return lines, store.events(case_id)[before:]


def test_each_operator_action_writes_events_with_the_operators_id(store, book_in_collection):
    visit, outsourced = book_in_collection[Stage.VISIT], book_in_collection[Stage.OUTSOURCED]
    actions = [
        (
            "PaymentReceived",
            visit[0],
            lambda: operator.record_payment(
                Payment(case=visit[0], operator=OPERATOR, amount=Decimal("300.00"), received_on=ACT_ON, payment_id="BANK-20260531-0001")
            ),
        ),
        (
            "ContactRecorded",
            visit[1],
            lambda: operator.record_contact(
                ContactAttempt(
                    case=visit[1], operator=OPERATOR, channel="call", outcome="no_answer", contacted_at=datetime.combine(ACT_ON, time(10, 30))
                )
            ),
        ),
        (
            "PromiseMade",
            visit[2],
            lambda: operator.record_promise(
                PromiseToPay(case=visit[2], operator=OPERATOR, amount=Decimal("500.00"), promised_on=ACT_ON + timedelta(days=5), made_on=ACT_ON)
            ),
        ),
        (
            "CasePaused",
            visit[3],
            lambda: operator.pause_case(
                Pause(case=visit[3], operator=OPERATOR, reason="hardship", until=ACT_ON + timedelta(days=14), made_on=ACT_ON)
            ),
        ),
        (
            "CaseResumed",
            visit[3],
            lambda: operator.resume_case(Resume(case=visit[3], operator=OPERATOR, made_on=ACT_ON + timedelta(days=1))),
        ),
        (
            "StageChanged",
            outsourced[0],
            lambda: operator.write_off_case(
                WriteOff(case=outsourced[0], operator=OPERATOR, reason="execution ended without recovery", made_on=ACT_ON)
            ),
        ),
    ]
    for event_type, case_id, run in actions:
        lines, stored = act(store, case_id, run)
        assert lines == [operator.event_line(e) for e in stored]
        mine = [e for e in stored if e.type == event_type]
        assert mine and all(e.actor == OPERATOR for e in mine), (event_type, stored)
        assert {e.actor for e in stored} <= {OPERATOR, SYSTEM}  # the system only accrues to the date

    assert store.case_row(outsourced[0]).projection.stage == Stage.WRITTEN_OFF
    assert store.case_row(visit[3]).projection.paused_until is None


def test_a_payment_id_recorded_twice_records_nothing_the_second_time(store, book_in_collection):
    case_id = book_in_collection[Stage.VISIT][0]
    payment = dict(case=case_id, operator=OPERATOR, amount="250.00", received_on=ACT_ON, payment_id="ALIPAY-7781")

    first = operator.record_payment(payment)
    digest = store.digest()
    second = operator.record_payment(payment)  # the bank file delivered twice

    assert any(" PaymentReceived: " in line for line in first)
    assert second == []
    assert store.digest() == digest
    assert sum(1 for e in store.events(case_id) if e.type == "PaymentReceived") == 1


def test_a_payment_given_by_contract_number_lands_on_its_case(store, book_in_collection):
    case_id = book_in_collection[Stage.VISIT][0]
    contract_no = store.case_row(case_id).projection.contract_no

    lines = operator.record_payment(
        Payment(case=contract_no, operator=OPERATOR, amount=Decimal("88.00"), received_on=ACT_ON, payment_id="WX-1")
    )

    assert any(line.startswith(f"{case_id} ") and " PaymentReceived: " in line for line in lines)


def test_bad_operator_input_gets_a_clear_error(store, book_in_collection):
    visit = book_in_collection[Stage.VISIT][0]
    good = dict(case=visit, operator=OPERATOR, amount="100.00", received_on=ACT_ON.isoformat(), payment_id="BANK-1")

    with pytest.raises(ParameterTypeError, match="amount") as negative:
        operator.record_payment({**good, "amount": "-5"})
    assert "must be a positive amount" in str(negative.value)
    with pytest.raises(ParameterTypeError, match="operator"):
        operator.record_payment({**good, "operator": ""})
    with pytest.raises(ParameterTypeError, match="channel"):
        operator.record_payment({**good, "channel": "bitcoin"})
    with pytest.raises(CaseNotFound, match="no case with id or contract number 'CF9999999'"):
        operator.record_payment({**good, "case": "CF9999999"})
    with pytest.raises(InvalidTransition, match="write_off"):
        operator.write_off_case(WriteOff(case=visit, operator=OPERATOR, reason="not worth pursuing", made_on=ACT_ON))
    too_long = ACT_ON + timedelta(days=400)
    with pytest.raises(DomainError, match=f"until: {too_long} must be after"):
        operator.pause_case(Pause(case=visit, operator=OPERATOR, reason="dispute", until=too_long, made_on=ACT_ON))
    with pytest.raises(DomainError, match="is not paused"):
        operator.resume_case(Resume(case=visit, operator=OPERATOR, made_on=ACT_ON))
    early = date(2026, 1, 1)
    with pytest.raises(DomainError, match=f"dated {early} is before the case's last closed date"):
        operator.record_promise(
            PromiseToPay(case=visit, operator=OPERATOR, amount=Decimal("10.00"), promised_on=early, made_on=early)
        )


def test_an_operator_run_is_named_after_its_case_and_leaves_the_allocation_as_an_artifact(store, book_in_collection):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    case_id = book_in_collection[Stage.VISIT][0]
    state = operator.record_payment(
        Payment(case=case_id, operator=OPERATOR, amount="120.00", received_on=ACT_ON, payment_id="BANK-NAME-1"), return_state=True
    )
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(state.state_details.flow_run_id)
        (artifact,) = client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id])))
    assert run.name == f"pay-{case_id}-BANK-NAME-1"
    rows = artifact.data if isinstance(artifact.data, list) else __import__("json").loads(artifact.data)
    assert any(r["what"] == "PaymentReceived" and "BANK-NAME-1" in r["detail"] for r in rows)
    assert any(r["what"] == "after: total due" for r in rows)


def test_the_payment_form_value_dates_and_keeps_the_back_dating_window(store, book_in_collection):
    """The form has the back-dating reason field (derived from the command); a date within the
    window is value-dated, one beyond it is refused and stores nothing, unless a reason is given."""
    assert "backdate_reason" in Payment.model_fields
    visit = book_in_collection[Stage.VISIT][0]
    closed_on = store.case_row(visit).projection.accrued_through
    inside, beyond = closed_on - timedelta(days=5), closed_on - timedelta(days=45)
    _, events = act(store, visit, lambda: operator.record_payment(
        Payment(case=visit, operator=OPERATOR, amount=Decimal("10.00"), received_on=inside, payment_id="FORM-VD-1")
    ))
    assert [e.type for e in events][:1] == ["ChargesReversed"]
    (paid,) = [e for e in events if e.type == "PaymentReceived"]
    assert (paid.value_date, paid.business_date) == (inside, closed_on)
    before = store.digest()
    with pytest.raises(DomainError, match=f"dated {beyond} is 45 days before .* window of 31 days"):
        operator.record_payment(Payment(case=visit, operator=OPERATOR, amount=Decimal("10.00"), received_on=beyond, payment_id="FORM-VD-2"))
    assert store.digest() == before
    _, events = act(store, visit, lambda: operator.record_payment(
        Payment(case=visit, operator=OPERATOR, amount=Decimal("10.00"), received_on=beyond, payment_id="FORM-VD-2",
                backdate_reason="branch remittance late")
    ))
    (paid,) = [e for e in events if e.type == "PaymentReceived"]
    # not valued before the payment already recorded with a later value date
    assert (paid.backdate_reason, paid.paid_on, paid.value_date) == ("branch remittance late", beyond, inside)
