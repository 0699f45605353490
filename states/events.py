"""Events: the history auditors replay.

Every change to a case is one of these frozen, past-tense dataclasses. Each
carries the case id, its position ``seq`` (1, 2, 3 ... per case), the
business date it happened on and the actor (``system`` or an operator id),
plus a payload of plain JSON values: money and rates as decimal strings,
dates as ISO strings, never floats. The two events that make most of a
store's bytes are stored compactly: ``ChargesAccrued`` (v3: short keys,
positional rows, money in integer fen, rules as codes filled into the
templates of ``states.rule_texts``) and ``CaseOpened`` (v3: its schedule as
rows in integer fen); each reads back as exactly the event written.

``canonical_json`` covers the whole event (case, seq, type, business date,
actor, schema version, payload) and is what the store hashes into the chain.
An event stored under an older schema version is upgraded on read by the
``UPCASTERS`` table (never rewritten in place).
"""

from __future__ import annotations

from states.errors import UserError

import dataclasses
import functools
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Callable, ClassVar

from states.cap_ledger import Unenforced
from states.credit import CreditRecord
from states.json_codec import builder, canonical_json, compose_canonical_json, decoder, encoder, hints, parse_json

SYSTEM = "system"
_ONE_DAY = timedelta(days=1)


class EventError(UserError):
    """A stored event that cannot be read (unknown type, bad payload, unknown version)."""


class UnreadablePayload(EventError):
    """A stored payload that is not a JSON object: edited (this code writes only objects)."""


def payload_object(text: str) -> dict[str, Any]:
    """A stored event's payload text read back; ``UnreadablePayload`` says why it cannot be."""
    try:
        payload = parse_json(text)
    except (ValueError, TypeError) as exc:
        raise UnreadablePayload(f"payload is not JSON ({exc})") from None
    if not isinstance(payload, dict):
        raise UnreadablePayload(f"payload is a JSON {type(payload).__name__}, not an object")
    return payload


# --------------------------------------------------------------------------
# Value objects carried inside events


@dataclass(frozen=True)
class ScheduledInstallment:
    number: int
    due_on: date
    principal: Decimal
    interest: Decimal


@dataclass(frozen=True)
class AccrualSegment:
    """One stretch of days over which a balance stayed constant: the audit trail of a charge.

    ``exact`` is base x rate x days / day-count basis, unrounded (to 12 places).
    """

    component: str
    base: Decimal
    annual_rate: Decimal
    start: date  # first day accrued
    end: date  # last day accrued (inclusive)
    days: int
    exact: Decimal
    rule: str


@dataclass(frozen=True)
class ChargePosting:
    """A charge posted in fen: what the rule computed, what may be collected, what the cap removed."""

    component: str
    computed: Decimal
    enforceable: Decimal
    unenforceable: Decimal
    rule: str
    installment: int | None = None


@dataclass(frozen=True)
class AccrualTotal:
    """A component's running accrual as restored by a reversal: exact principal-days, computed postings."""

    component: str
    principal_days: Decimal
    computed: Decimal


@dataclass(frozen=True)
class AllocatedLine:
    component: str
    amount: Decimal
    installment: int | None = None


@dataclass(frozen=True)
class DetailChange:
    """One field of a borrower-details amendment, masked before and after (``None``: not given).

    Never a clear personal value: an event payload is readable by anyone who
    can read the event table, and it is kept for ever.
    """

    field: str
    before: str | None
    after: str | None


# --------------------------------------------------------------------------
# Events


EVENT_TYPES: dict[str, type[Event]] = {}  # stored type name -> class; every subclass registers itself


@dataclass(frozen=True, kw_only=True)
class Event:
    case_id: str
    seq: int
    business_date: date
    actor: str = SYSTEM

    type: ClassVar[str] = ""  # the name stored with the event: the class name unless a subclass sets it
    schema_version: ClassVar[int] = 1

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "type" not in cls.__dict__:
            cls.type = cls.__name__
        known = EVENT_TYPES.get(cls.type)
        if known is not None and known.__qualname__ != cls.__qualname__:
            # two classes under one stored name would make the history ambiguous to read back
            raise TypeError(f"event type {cls.type!r} is already {known.__module__}.{known.__qualname__}")
        EVENT_TYPES[cls.type] = cls

    def payload(self) -> dict[str, Any]:
        return _payload_encoder(type(self))(self)

    def envelope(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "seq": self.seq,
            "type": self.type,
            "business_date": self.business_date.isoformat(),
            "actor": self.actor,
            "schema_version": self.schema_version,
            "payload": self.payload(),
        }

    def canonical_json(self) -> str:
        return self.canonical_json_with(self.payload_json())

    def payload_json(self) -> str:
        return canonical_json(self.payload())

    def canonical_json_with(self, payload_json: str) -> str:
        """The canonical JSON, given the payload's own canonical JSON (encoded once for both)."""
        return compose_canonical_json(
            case_id=self.case_id,
            seq=self.seq,
            type=self.type,
            business_date=self.business_date.isoformat(),
            actor=self.actor,
            schema_version=self.schema_version,
            payload_json=payload_json,
        )


_ENVELOPE = frozenset({"case_id", "seq", "business_date", "actor"})


@dataclass(frozen=True, kw_only=True)
class CaseOpened(Event):
    """A booked loan enters the system with its contract terms and schedule.

    Schema 2 added ``schedule_interest`` (the convention the plan was computed
    by, ``states.schedule.ScheduleInterest``) and ``plan_imported`` (the plan is
    the core lending system's, as imported). Schema 3 stores the schedule as
    positional rows in integer fen (``encode_schedule``); the terms keep their names.
    """

    schema_version: ClassVar[int] = 3
    contract_no: str
    borrower_id: str
    principal: Decimal
    annual_rate: Decimal
    day_count: str
    repayment_method: str
    penalty_uplift: Decimal
    compound_interest: bool
    late_fee: Decimal
    late_fee_rate: Decimal
    cap_regime: str
    cap_rate: Decimal
    contract_date: date
    disbursed_on: date
    schedule: tuple[ScheduledInstallment, ...]
    schedule_interest: str
    plan_imported: bool


@dataclass(frozen=True, kw_only=True)
class ChargesAccrued(Event):
    """Interest and fees accrued over (from_exclusive, through], posted in fen, capped.

    Schema 2 added ``released``: charges held above the cap by earlier postings that the
    grown limit lets through now, oldest first (``states.cap_ledger``); they are charged
    before this posting's own charges.

    Schema 3 stores the same values compactly (``encode_charges_accrued``): short keys,
    positional rows, money in integer fen, each rule as its code and numbers
    (``states.rule_texts``), never its prose; the event read back is the one written.

    Schema 4 leaves out what the rest of the event gives: ``through`` when it is the business
    date, and each segment's unrounded ``exact`` when it recomputes from the segment's numbers.
    """

    schema_version: ClassVar[int] = 4

    accrued_from: date  # exclusive: the last day accrued before
    through: date  # inclusive
    segments: tuple[AccrualSegment, ...]
    postings: tuple[ChargePosting, ...]
    cap_rate: Decimal
    cap_limit: Decimal  # the most all charges may total as of `through`
    charged_before: Decimal  # enforceable charges before this posting
    released: tuple[Unenforced, ...] = ()


@dataclass(frozen=True, kw_only=True)
class PaymentReceived(Event):
    """A payment and its line-by-line allocation (schema 2 added ``channel``).

    Schema 3 added the value date. A payment dated before the case's last accrual is
    recorded on that date (``business_date``: history stays in date order) and allocated
    as of ``value_date``; ``paid_on`` is the date it carried (``value_date`` is later only
    when a payment with a later value date was recorded before it). ``backdate_reason``
    is the operator's reason for a date beyond the policy's back-dating window.
    """

    schema_version: ClassVar[int] = 3
    payment_id: str
    amount: Decimal
    channel: str
    allocation_order: str
    lines: tuple[AllocatedLine, ...]
    overpayment: Decimal
    value_date: date | None = None
    paid_on: date | None = None
    backdate_reason: str | None = None

    @property
    def received_on(self) -> date:
        """The date the payment carried (the bank's date)."""
        return self.paid_on or self.business_date

    @property
    def valued_on(self) -> date:
        """The date it was allocated as of."""
        return self.value_date or self.business_date


@dataclass(frozen=True, kw_only=True)
class ChargesReversed(Event):
    """The charges posted after a payment's value date, taken back so that it is applied as of that date.

    Never an edit: the ``ChargesAccrued`` events ``reversed_seqs`` stay in the history;
    this one takes back what they charged (``lines``, by component and installment) and
    restores the running totals as they stood at the last accrual on or before the
    value date (``accrued_through``), so the accruals that follow re-post those days on
    the balances the payment leaves (``states.value_dating``).
    """

    value_date: date
    reversed_seqs: tuple[int, ...]
    accrued_through: date
    lines: tuple[AllocatedLine, ...]
    totals: tuple[AccrualTotal, ...]
    charged: Decimal
    unenforced: tuple[Unenforced, ...]
    payment_id: str


@dataclass(frozen=True, kw_only=True)
class StageChanged(Event):
    from_stage: str
    to_stage: str
    trigger: str
    reason: str
    dpd: int


@dataclass(frozen=True, kw_only=True)
class CaseReviewed(Event):
    """The daily close looked at the case for this date; nothing else is due before ``next_review_on``."""

    dpd: int
    next_review_on: date | None


@dataclass(frozen=True, kw_only=True)
class PromiseMade(Event):
    amount: Decimal
    promised_on: date
    holds_escalation: bool


@dataclass(frozen=True, kw_only=True)
class PromiseKept(Event):
    promised_on: date
    paid: Decimal


@dataclass(frozen=True, kw_only=True)
class PromiseBroken(Event):
    promised_on: date
    paid: Decimal
    broken_in_a_row: int


@dataclass(frozen=True, kw_only=True)
class ContactRecorded(Event):
    """A contact that took place (schema 2 added ``by``, ``disclosed_debt`` and ``asked_to_pay``)."""

    schema_version: ClassVar[int] = 2
    channel: str  # call, sms, visit, letter
    party: str  # who was contacted: borrower, guarantor, co_borrower, other
    by: str  # who made it: lender or agency:NAME
    outcome: str  # connected, no_answer, invalid_number, refused_to_talk
    contacted_at: str  # local wall time, ISO
    collectors: int
    disclosed_debt: bool
    asked_to_pay: bool
    note: str


@dataclass(frozen=True, kw_only=True)
class ContactRefused(Event):
    """A contact the conduct rules forbid; recorded with the rule named (schema 2 as ``ContactRecorded``'s)."""

    schema_version: ClassVar[int] = 2
    channel: str
    party: str
    by: str
    contacted_at: str
    disclosed_debt: bool
    asked_to_pay: bool
    rule: str


@dataclass(frozen=True, kw_only=True)
class CasePaused(Event):
    reason: str
    until: date


@dataclass(frozen=True, kw_only=True)
class CaseResumed(Event):
    reason: str


@dataclass(frozen=True, kw_only=True)
class PlacedWithAgency(Event):
    """Placed with an agency until a date (DOMAIN.md §7): how it was chosen and on what terms.

    v2 adds the strategy that chose it, the DPD bucket and commission group at
    placement and the balance placed (everything owing that day).
    """

    schema_version: ClassVar[int] = 2

    agency_id: str
    until: date
    commission_rate: Decimal
    strategy: str  # states.agency: the champion's or the challenger's, or "rotation" (no registry)
    bucket: str  # the DPD bucket at placement (M4 ...), "" before v2
    rate_group: str  # the commission group the rate is of: M4-M6, M7+, written_off
    balance_placed: Decimal


@dataclass(frozen=True, kw_only=True)
class PlacementDeferred(Event):
    """No active agency had room: the case stays unplaced and is tried again on ``retry_on``."""

    reason: str
    retry_on: date


@dataclass(frozen=True, kw_only=True)
class CommissionAccrued(Event):
    """The agency's commission on a payment received while placed: the lender's cost, never the borrower's."""

    agency_id: str
    payment_id: str
    placed_seq: int  # the PlacedWithAgency event of the placement
    recovered: Decimal
    commission_rate: Decimal
    commission: Decimal


@dataclass(frozen=True, kw_only=True)
class RecalledFromAgency(Event):
    agency_id: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class LawsuitFiled(Event):
    """A lawsuit for ``claim``, its filing costs posted (schema 2 added the operator's override).

    ``overridden`` is the decision rule's refusal an operator filed against (``""``: the rule
    agreed, or the close filed), ``override_reason`` the operator's recorded reason.
    """

    schema_version: ClassVar[int] = 2
    claim: Decimal
    costs: tuple[ChargePosting, ...]
    overridden: str
    override_reason: str


@dataclass(frozen=True, kw_only=True)
class JudgmentEntered(Event):
    """The court's judgment: the judgment debt (ordinary interest excluded) and the performance deadline."""

    amount: Decimal
    deadline: date
    court: str
    case_number: str


@dataclass(frozen=True, kw_only=True)
class DelayedPerformanceInterestAccrued(Event):
    """Delayed-performance interest over (accrued_from, through]: base x daily rate x days, outside the cap.

    ``start`` is the first day accrued (the day after the performance deadline at the
    earliest); ``exact`` is unrounded; the one posting is in fen, the residue carried.
    """

    accrued_from: date
    through: date
    base: Decimal  # the unpaid judgment debt
    daily_rate: Decimal
    start: date
    days: int
    exact: Decimal
    postings: tuple[ChargePosting, ...]


@dataclass(frozen=True, kw_only=True)
class ExecutionRecorded(Event):
    """How execution of the judgment ended, and the execution fee posted as a cost."""

    outcome: str  # states.litigation.ExecutionOutcome
    judgment_debt: Decimal  # unpaid when execution was recorded: the fee's base
    costs: tuple[ChargePosting, ...]


@dataclass(frozen=True, kw_only=True)
class CaseWrittenOff(Event):
    reason: str
    amount: Decimal  # everything still owing when recovery ended


@dataclass(frozen=True, kw_only=True)
class BorrowerDetailsAmended(Event):
    """An import with ``--amend`` changed the borrower's contact details (masked before and after).

    Financial terms and the borrower's identity are never amended; see
    ``models.loanbook``. A new phone number clears the "invalid number" and
    failed-attempt count of the contact rules: the borrower may be reachable again.
    """

    changes: tuple[DetailChange, ...]
    source: str  # where the change came from: file name and row


@dataclass(frozen=True, kw_only=True)
class PersonalDataRead(Event):
    """An operator read a personal value in the clear (which fields, never the values, and why)."""

    fields: tuple[str, ...]
    purpose: str


@dataclass(frozen=True, kw_only=True)
class CaseRebuilt(Event):
    """An operator rewrote the case's projection and snapshot from its events (who, and why)."""

    reason: str


@dataclass(frozen=True, kw_only=True)
class CreditReportNoticeSent(Event):
    """The borrower is told that the default will be reported to the credit bureau (DOMAIN.md §8).

    Sent once per case, ``notice_days`` (the policy's notice period) or more
    before ``first_report_on``, the first month end that may carry a negative record.
    """

    notice_days: int
    first_report_on: date


@dataclass(frozen=True, kw_only=True)
class MonthEndReported(Event):
    """The case's credit-report record of a month (``states.credit``), as of the month end.

    Recorded by the month end's review, or when the case closes during the
    month (a closed case does not change again). ``default_ended_on``: the day
    the default ended (cure or settlement) if it had by the month end, which
    starts the five years the default's records are kept.
    """

    month_end: date
    record: CreditRecord
    default_ended_on: date | None


@dataclass(frozen=True, kw_only=True)
class VisitScheduled(Event):
    """A field visit is due by ``due_on`` (on entering the visit stage, or after a failed visit)."""

    due_on: date


@dataclass(frozen=True, kw_only=True)
class VisitReported(Event):
    """Collectors (two at least, DOMAIN.md §6) report a field visit and its outcome."""

    collectors: tuple[str, ...]
    outcome: str  # states.vocabulary.VisitOutcome
    visited_at: str  # borrower's local wall time, ISO
    note: str


# Upcasting (``states.upcasting``): old payload shapes are upgraded on read, never rewritten.


def event_from_record(
    *,
    case_id: str,
    seq: int,
    type: str,
    business_date: date | str,
    actor: str,
    schema_version: int,
    payload: dict[str, Any] | str,
) -> Event:
    """Rebuild an event from its stored form, upcasting older schema versions."""
    cls = EVENT_TYPES.get(type)
    if cls is None:
        raise EventError(f"case {case_id} seq {seq}: unknown event type {type!r}")
    try:
        data = payload_object(payload) if isinstance(payload, str) else dict(payload)
    except UnreadablePayload as exc:
        raise UnreadablePayload(f"case {case_id} seq {seq}: {type} {exc}") from None
    version = schema_version
    while version < cls.schema_version:
        upcast = UPCASTERS.get((type, version))
        if upcast is None:
            raise EventError(f"case {case_id} seq {seq}: no upcaster for {type} v{version}")
        try:
            data = upcast(data)
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:  # ArithmeticError: decimal text that is not a number
            raise EventError(f"case {case_id} seq {seq}: bad {type} v{version} payload: {exc}") from None
        version += 1
    if version != cls.schema_version:
        raise EventError(f"case {case_id} seq {seq}: {type} schema v{schema_version} is newer than this code")
    if isinstance(business_date, str):
        business_date = date.fromisoformat(business_date)
    try:
        values = _payload_decoder(cls)(data, business_date)
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:  # ArithmeticError: decimal text that is not a number
        raise EventError(f"case {case_id} seq {seq}: bad {type} payload: {exc}") from None
    return builder(cls)({"case_id": case_id, "seq": seq, "business_date": business_date, "actor": actor, **values})


# --------------------------------------------------------------------------
# Payload codecs: each event class's fields to plain values and back (``states.json_codec``'s
# codecs per declared type; the compact forms of ``states.payload_codecs`` where a class has one)


@functools.lru_cache(maxsize=None)
def _payload_encoder(cls: type) -> Callable[[Any], dict[str, Any]]:
    if cls is ChargesAccrued:
        return payload_codecs.encode_charges_accrued
    return field_payload_encoder(cls)


@functools.lru_cache(maxsize=None)
def field_payload_encoder(cls: type, compact: bool = True) -> Callable[[Any], dict[str, Any]]:
    """The payload as its field names and plain values (``ChargesAccrued``'s form up to v2).

    ``compact``: the fields with a compact form of their own (``_FIELD_CODECS``) are written in it;
    without, every field as named values (the form before: what the old-format tests write).
    """
    overrides = payload_codecs.FIELD_CODECS.get(cls, {}) if compact else {}
    pairs = [
        (f.name, overrides[f.name][0] if f.name in overrides else encoder(hints(cls)[f.name]))
        for f in dataclasses.fields(cls)
        if f.name not in _ENVELOPE
    ]
    return lambda event: {n: e(getattr(event, n)) for n, e in pairs}


@functools.lru_cache(maxsize=None)
def _payload_decoder(cls: type) -> Callable[[dict[str, Any], date], dict[str, Any]]:
    """The fields of a ``cls`` from its payload and business date (a compact form may leave out
    what the business date gives)."""
    if cls is ChargesAccrued:
        return payload_codecs.decode_charges_accrued
    fields = _field_payload_decoder(cls)
    return lambda data, _business_date: fields(data)


@functools.lru_cache(maxsize=None)
def _field_payload_decoder(cls: type) -> Callable[[dict[str, Any]], dict[str, Any]]:
    overrides = payload_codecs.FIELD_CODECS.get(cls, {})
    pairs = [
        (f.name, overrides[f.name][1] if f.name in overrides else decoder(hints(cls)[f.name]))
        for f in dataclasses.fields(cls)
        if f.name not in _ENVELOPE
    ]
    return lambda data: {n: d(data[n]) for n, d in pairs}


# the compact forms (they read the event classes above, so they load after them)
from states import payload_codecs  # noqa: E402
from states.upcasting import UPCASTERS  # noqa: E402
