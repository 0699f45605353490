"""Operator actions as Prefect flows: typed parameters, so the UI shows a form.

Each flow translates its parameters and calls one use case in
``models.service``; every event it writes carries the operator's id as actor.
The CLI calls the same use cases directly.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from prefect import flow, get_run_logger
from pydantic import BaseModel, Field

from flows import runtime
from models import service
from states.events import Event


class OperatorAction(BaseModel):
    case: str = Field(description="Case id or contract number")
    operator: str = Field(min_length=1, description="Your operator id; recorded as the actor of every event")


class Payment(OperatorAction):
    amount: Decimal = Field(gt=0, decimal_places=2, description="Amount received, yuan")
    received_on: date
    payment_id: str = Field(min_length=1, description="The bank's or channel's transaction id (idempotency key)")
    channel: Literal["bank_transfer", "alipay", "wechat_pay", "cash", "agency"] = "bank_transfer"


class ContactAttempt(OperatorAction):
    channel: Literal["call", "sms", "visit", "letter"]
    party: Literal["borrower", "guarantor", "co_borrower", "other"] = "borrower"
    outcome: Literal["connected", "no_answer", "invalid_number", "refused_to_talk"]
    contacted_at: datetime = Field(description="Borrower's local time")
    collectors: int = Field(1, ge=1)
    note: str = ""


class PromiseToPay(OperatorAction):
    amount: Decimal = Field(gt=0, decimal_places=2)
    promised_on: date
    made_on: date


class Pause(OperatorAction):
    reason: Literal["hardship", "dispute", "complaint"]
    until: date
    made_on: date


class Resume(OperatorAction):
    made_on: date


class WriteOff(OperatorAction):
    reason: str = Field(min_length=3)
    made_on: date


def _report(events: list[Event]) -> list[str]:
    lines = [f"{e.case_id} #{e.seq} {e.business_date} {e.type}" for e in events]
    logger = get_run_logger()
    for line in lines or ["nothing recorded (already recorded)"]:
        logger.info(line)
    return lines


@flow(name="record-payment")
def record_payment(payment: Payment) -> list[str]:
    return _report(
        service.record_payment(
            runtime.store(),
            payment.case,
            payment.amount,
            payment.received_on,
            payment.payment_id,
            runtime.policy(),
            actor=payment.operator,
            channel=payment.channel,
        )
    )


@flow(name="record-contact")
def record_contact(contact: ContactAttempt) -> list[str]:
    return _report(
        service.record_contact(
            runtime.store(),
            contact.case,
            contact.channel,
            contact.party,
            contact.outcome,
            contact.contacted_at,
            actor=contact.operator,
            collectors=contact.collectors,
            note=contact.note,
        )
    )


@flow(name="record-promise")
def record_promise(promise: PromiseToPay) -> list[str]:
    return _report(
        service.make_promise(
            runtime.store(),
            promise.case,
            promise.amount,
            promise.promised_on,
            promise.made_on,
            runtime.policy(),
            actor=promise.operator,
        )
    )


@flow(name="pause-case")
def pause_case(pause: Pause) -> list[str]:
    return _report(
        service.pause_case(
            runtime.store(), pause.case, pause.reason, pause.until, pause.made_on, runtime.policy(), actor=pause.operator
        )
    )


@flow(name="resume-case")
def resume_case(resume: Resume) -> list[str]:
    return _report(service.resume_case(runtime.store(), resume.case, resume.made_on, actor=resume.operator))


@flow(name="write-off-case")
def write_off_case(write_off: WriteOff) -> list[str]:
    return _report(
        service.write_off_case(
            runtime.store(), write_off.case, write_off.reason, write_off.made_on, runtime.policy(), actor=write_off.operator
        )
    )
