"""The tables of the case store, and how a case's projection maps onto its row.

Money is integer fen in BIGINT columns (``*_fen``): exact on SQLite and
PostgreSQL alike, from 0.01 to far beyond 99,999,999,999.99 yuan. Rates are
decimal text, exact as the contract states them. Dates are business dates.

``events`` is the source of truth and append-only: the initial migration
adds triggers so the database itself refuses UPDATE and DELETE on it.
``cases`` is the projection a batch reads (with the snapshot that lets it
load a case without replaying its history); ``payments`` and
``credit_reports`` are projections of single events (``PaymentReceived``,
``MonthEndReported``), written with them; ``daily_charges``,
``daily_event_counts`` and ``stage_moves`` are the reports' totals over the
events (``models.report_totals``), written in the same transaction too;
``verify`` proves they all agree with the events.
"""

from __future__ import annotations

import dataclasses
import typing
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Mapping

from sqlalchemy import JSON, BigInteger, CheckConstraint, DateTime, ForeignKeyConstraint, LargeBinary, String, Text
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from states.case import CaseProjection
from states.credit import CreditRecord, ReportStatus
from states.events import CommissionAccrued, MonthEndReported, PlacedWithAgency
from states.money import from_fen, to_fen

SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

HASH = String(64)
GENESIS_HASH = "0" * 64
BUSINESS_DAY_STATUSES = ("running", "closed", "failed")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


def hash_bytes(digest: str) -> bytes:
    """The 32 bytes of a sha256 digest written as 64 lowercase hex digits; any other text is refused
    (read back it would not give the same text: an uppercase or malformed hash must stay visible)."""
    try:
        raw = bytes.fromhex(digest) if len(digest) == 64 else b""
    except ValueError:
        raw = b""
    if raw.hex() != digest:
        raise ValueError(f"not a sha256 digest in lowercase hex: {digest[:70]!r}")
    return raw


def _hash_bind(value: str | None) -> bytes | None:
    return None if value is None else hash_bytes(value)


def _hex(value: bytes | None) -> str | None:
    return None if value is None else value.hex()


def _instant(value: int | None) -> datetime | None:
    return None if value is None else _EPOCH + timedelta(microseconds=value)


class HashBytes(TypeDecorator):
    """A sha256 digest: 32 bytes on disk (BLOB on SQLite, bytea on PostgreSQL), its 64 lowercase hex
    digits in Python, the text every hash is computed, compared, sealed and exported as."""

    impl = LargeBinary(32)
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Any) -> bytes | None:
        return None if value is None else hash_bytes(value)

    def bind_processor(self, dialect: Any) -> Any:
        return _hash_bind  # both drivers take bytes: no wrapper around the impl's processor (the close binds two a row)

    def process_result_value(self, value: bytes | None, dialect: Any) -> str | None:
        return _hex(value)

    def result_processor(self, dialect: Any, coltype: Any) -> Any:
        return _hex  # both drivers give bytes: no wrapper around the impl's processor (verify reads every row)


class EpochMicroseconds(TypeDecorator):
    """A UTC instant as integer microseconds since 1970 (8 bytes on SQLite, not 26 of text); an
    instant without a zone is taken as UTC, as SQLite's text form took it. Read back: aware, UTC."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> int | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return (value - _EPOCH) // _MICROSECOND

    def process_result_value(self, value: int | None, dialect: Any) -> datetime | None:
        return _instant(value)

    def result_processor(self, dialect: Any, coltype: Any) -> Any:
        return _instant  # the driver gives an int: no wrapper around the impl's processor


# an event's ``recorded_at``: integer microseconds on SQLite; timestamptz (8 bytes already) on PostgreSQL
RECORDED_AT = DateTime(timezone=True).with_variant(EpochMicroseconds(), "sqlite")


def _fen(**kwargs: Any) -> Any:
    return Field(sa_type=BigInteger, **kwargs)


def _timestamp(**kwargs: Any) -> Any:
    return Field(sa_type=DateTime(timezone=True), **kwargs)


class Loan(SQLModel, table=True):
    """A booked loan's contract terms, as imported (personal data comes in a table of its own)."""

    __tablename__ = "loans"

    contract_no: str = Field(primary_key=True)
    case_id: str = Field(unique=True)
    borrower_id: str = Field(index=True)
    principal_fen: int = _fen()
    annual_rate: str
    term_months: int
    repayment_method: str
    disbursed_on: date
    first_due_on: date
    day_count: str
    schedule_interest: str = Field(sa_column_kwargs={"server_default": "actual_days"})  # loans booked before 0012: actual_days
    penalty_uplift: str
    compound_interest: bool
    late_fee_fen: int = _fen()
    late_fee_rate: str
    cap_regime: str
    contract_date: date
    terms_hash: str = Field(sa_type=HASH)  # sha256 of the terms: re-importing the same loan is a no-op
    booked_at: datetime = _timestamp()


class Borrower(SQLModel, table=True):
    """A loan's borrower: personal values only encrypted (``*_enc``) and masked (``*_masked``).

    One row per loan (a person with two loans has two rows, matched by
    ``borrower_id`` and ``national_id_hash``, the keyed hash of the national
    id). ``details_hash`` is a keyed digest of all the details, so a re-import
    tells an unchanged row from a changed one without decrypting. The clear
    values are read only through ``collectflow borrower reveal``, which
    records a ``PersonalDataRead`` event. See ``models.crypto``.
    """

    __tablename__ = "borrowers"

    contract_no: str = Field(primary_key=True, foreign_key="loans.contract_no")
    borrower_id: str = Field(index=True)
    national_id_hash: str = Field(sa_type=HASH, index=True)
    key_id: str = Field(sa_type=String(16))  # which secret encrypted the row
    borrower_name_enc: str = Field(sa_type=Text)
    borrower_name_masked: str
    national_id_enc: str = Field(sa_type=Text)
    national_id_masked: str
    phone_enc: str = Field(sa_type=Text)
    phone_masked: str
    address_enc: str | None = Field(default=None, sa_type=Text)
    address_masked: str | None = None
    guarantor_name_enc: str | None = Field(default=None, sa_type=Text)
    guarantor_name_masked: str | None = None
    guarantor_phone_enc: str | None = Field(default=None, sa_type=Text)
    guarantor_phone_masked: str | None = None
    timezone: str
    details_hash: str = Field(sa_type=HASH)
    booked_at: datetime = _timestamp()
    amended_at: datetime | None = _timestamp(default=None)


class Case(SQLModel, table=True):
    """The projection of a case's events (``states.case.CaseProjection``) plus its snapshot."""

    __tablename__ = "cases"

    case_id: str = Field(primary_key=True)
    contract_no: str = Field(foreign_key="loans.contract_no", unique=True)
    stage: str
    oldest_unpaid_due_on: date | None = Field(default=None, index=True)  # DPD as of any date derives from it
    principal_outstanding_fen: int = _fen()
    overdue_principal_fen: int = _fen()
    contract_interest_due_fen: int = _fen()
    penalty_interest_fen: int = _fen()
    compound_interest_fen: int = _fen()
    late_fees_fen: int = _fen()
    costs_fen: int = _fen()
    delayed_interest_fen: int = _fen()
    total_due_fen: int = _fen()
    unenforceable_fen: int = _fen()
    total_paid_fen: int = _fen()
    overpayment_fen: int = _fen()
    accrued_through: date
    reviewed_through: date
    next_review_on: date | None = Field(default=None, index=True)
    promise_until: date | None = None
    paused_until: date | None = None
    agency_id: str | None = None
    version: int
    last_hash: str = Field(sa_type=HASH)  # hash of the event at seq = version
    snapshot: str = Field(sa_type=Text)  # CollectionCase.snapshot() as JSON
    call_facts: str | None = Field(default=None, sa_type=Text)  # states.worklist.facts_record as JSON (NULL: before 0013)
    stuck: bool = False
    stuck_error: str | None = Field(default=None, sa_type=Text)
    stuck_on: date | None = None


class StoredEvent(SQLModel, table=True):
    """One event as stored: envelope columns, canonical JSON payload, and its link in the hash chain."""

    __tablename__ = "events"

    case_id: str = Field(primary_key=True, foreign_key="cases.case_id")
    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    business_date: date
    type: str
    schema_version: int
    actor: str
    payload: str = Field(sa_type=Text)
    # sha256(hash of the event before in seq order, or GENESIS_HASH, + canonical JSON): the previous
    # hash is not stored again (migration 0015); ``models.audit.check_case`` reads it off the row before
    hash: str = Field(sa_type=HashBytes)
    mac: str | None = Field(default=None, sa_type=HashBytes)  # HMAC of ``hash`` under the chain key (None: written unkeyed)
    recorded_at: datetime = Field(sa_type=RECORDED_AT)


class Payment(SQLModel, table=True):
    """A payment by its external id (unique: the same bank transaction is never recorded twice)."""

    __tablename__ = "payments"
    __table_args__ = (ForeignKeyConstraint(["case_id", "seq"], ["events.case_id", "events.seq"]),)

    payment_id: str = Field(primary_key=True)
    case_id: str = Field(index=True)
    seq: int  # the PaymentReceived event
    amount_fen: int = _fen()
    received_on: date


class CreditReportRow(SQLModel, table=True):
    """A month-end credit-report record (``states.credit.CreditRecord``): the projection of one
    ``MonthEndReported`` event, one per account and month, what ``credit-report`` exports."""

    __tablename__ = "credit_reports"
    __table_args__ = (
        ForeignKeyConstraint(["case_id", "seq"], ["events.case_id", "events.seq"]),
        CheckConstraint(f"status IN ({', '.join(repr(s.value) for s in ReportStatus)})", name="status"),
    )

    month: str = Field(primary_key=True, sa_type=String(7))  # YYYY-MM
    account: str = Field(primary_key=True)  # the contract number
    case_id: str = Field(index=True)
    seq: int  # the MonthEndReported event
    month_end: date
    dpd: int
    bucket: str
    overdue_principal_fen: int = _fen()
    overdue_total_fen: int = _fen()
    classification: str
    status: str
    default_ended_on: date | None = None  # when the default ended, if it had by the month end: starts the 5 years


class DailyCharges(SQLModel, table=True):
    """Charges posted on one business date, by component, summed (``models.report_totals``): the
    postings of the day's ``ChargesAccrued``, ``LawsuitFiled``, ``ExecutionRecorded`` and
    ``DelayedPerformanceInterestAccrued`` events, a release moving its amount from unenforceable to
    enforceable (so a day's unenforceable sum may be negative)."""

    __tablename__ = "daily_charges"

    business_date: date = Field(primary_key=True)
    component: str = Field(primary_key=True)
    enforceable_fen: int = _fen()
    unenforceable_fen: int = _fen()


class DailyEventCount(SQLModel, table=True):
    """How many events of one type are dated on one business date (``models.report_totals``)."""

    __tablename__ = "daily_event_counts"

    business_date: date = Field(primary_key=True)
    type: str = Field(primary_key=True)
    events: int = Field(sa_type=BigInteger)


class StageMove(SQLModel, table=True):
    """The first business date a case made one stage move (a ``StageChanged`` from one stage to
    another), whatever it did after (``models.report_totals``)."""

    __tablename__ = "stage_moves"

    case_id: str = Field(primary_key=True)
    from_stage: str = Field(primary_key=True)
    to_stage: str = Field(primary_key=True)
    first_on: date


class DailyRecovery(SQLModel, table=True):
    """What was received on one date while cases were in one stage, placed with one agency (``""``:
    none), in fen (``models.report_totals``)."""

    __tablename__ = "daily_recoveries"

    received_on: date = Field(primary_key=True)
    stage: str = Field(primary_key=True)
    agency_id: str = Field(primary_key=True)
    amount_fen: int = Field(sa_type=BigInteger)


class VerifiedCase(SQLModel, table=True):
    """A case as the last clean ``verify --incremental`` checked it (``models.checkpoints``): the
    seq of its newest event, and a MAC of it and of a digest of every event and row the check read.
    While the MAC holds for them as they are, the next incremental verify does not check the case
    again; otherwise it is checked in full (migration 0017)."""

    __tablename__ = "verified_cases"

    case_id: str = Field(primary_key=True)
    version: int  # the seq of the case's newest event, verified
    mac: str = Field(sa_type=HashBytes)  # HMAC-SHA256 under the chain key of case_id, version and the rows' digest


class StoreIdentity(SQLModel, table=True):
    """The store's id, which every seal it writes names (``models.seals``): stores that share a seals
    folder each check only their own. One row, made with the schema (migration 0018) and never
    changed. ``owns_unnamed_seals``: the store held events when it got its id, so seals written before
    seals named their store may be its own; a store made since owns none of them."""

    __tablename__ = "store_identity"

    store_id: str = Field(primary_key=True)
    owns_unnamed_seals: bool


class RollRateMemo(SQLModel, table=True):
    """The roll-rate counts of one pair of month ends, as the events dated by the later one gave
    them (``models.roll_rates``): reused while that many events are dated on or before it."""

    __tablename__ = "roll_rate_memos"

    from_month_end: date = Field(primary_key=True)
    to_month_end: date = Field(primary_key=True)
    version: int  # of the rules that counted them (``models.roll_rates.MEMO_VERSION``)
    events_through: int = Field(sa_type=BigInteger)  # events dated on or before to_month_end
    counts: str  # JSON: {"rows": [...], "columns": [...], "counts": [[...], ...]}


class LprFixingRow(SQLModel, table=True):
    """One-year LPR fixings, in percent as published (``"3.85"``)."""

    __tablename__ = "lpr_fixings"

    effective_from: date = Field(primary_key=True)
    rate_percent: str


class PolicyVersion(SQLModel, table=True):
    """Every collection policy ever used, numbered, with its fingerprint."""

    __tablename__ = "policies"

    version: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    fingerprint: str = Field(sa_type=HASH, unique=True)
    body: dict = Field(sa_type=JSON)
    created_at: datetime = _timestamp()


class Agency(SQLModel, table=True):
    """An agency on the registry (``states.agency.Agency``): never edited; ``active`` changes only
    with a row in ``agency_changes`` (the migration's triggers refuse any other UPDATE, and DELETE)."""

    __tablename__ = "agencies"

    agency_id: str = Field(primary_key=True)  # the agency's name
    name: str
    licence_no: str
    capacity: int
    commission_rates: dict = Field(sa_type=JSON)  # group -> rate as decimal text
    active: bool = True
    registered_by: str
    registered_at: datetime = _timestamp()


class AgencyChange(SQLModel, table=True):
    """Every change to the registry, who made it and when: append-only (no UPDATE or DELETE)."""

    __tablename__ = "agency_changes"

    change_id: int | None = Field(default=None, primary_key=True)
    agency_id: str = Field(foreign_key="agencies.agency_id", index=True)
    action: str  # registered, deactivated
    detail: dict = Field(sa_type=JSON)
    actor: str
    recorded_at: datetime = _timestamp()


class Placement(SQLModel, table=True):
    """The projection of one ``PlacedWithAgency`` event, with its recall when it comes (the reports and
    the capacity count read it). Agencies of the policy's rotation list are not on the registry."""

    __tablename__ = "placements"
    __table_args__ = (ForeignKeyConstraint(["case_id", "seq"], ["events.case_id", "events.seq"]),)

    case_id: str = Field(primary_key=True)
    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})  # the PlacedWithAgency event
    agency_id: str = Field(index=True)
    strategy: str
    bucket: str
    rate_group: str
    commission_rate: str
    balance_placed_fen: int = _fen()
    placed_on: date = Field(index=True)
    until: date
    recalled_on: date | None = None
    recall_reason: str | None = None


class AgencyCommission(SQLModel, table=True):
    """The projection of one ``CommissionAccrued`` event: the lender's cost of a recovery while placed."""

    __tablename__ = "agency_commissions"
    __table_args__ = (ForeignKeyConstraint(["case_id", "seq"], ["events.case_id", "events.seq"]),)

    case_id: str = Field(primary_key=True)
    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})  # the CommissionAccrued event
    placed_seq: int
    agency_id: str = Field(index=True)
    payment_id: str
    recovered_fen: int = _fen()
    commission_rate: str
    commission_fen: int = _fen()
    business_date: date


class KeyRotation(SQLModel, table=True):
    """One rotation of the personal-data key (``models.keys``): every borrower row re-keyed from
    ``from_key_id`` to ``to_key_id`` in one transaction, by whom and when. Inserted running, set
    done at the end of the same transaction; never deleted (migration 0011)."""

    __tablename__ = "key_rotations"
    __table_args__ = (CheckConstraint("status IN ('running', 'done')", name="status"),)

    rotation_id: int | None = Field(default=None, primary_key=True)
    from_key_id: str = Field(sa_type=String(16))
    to_key_id: str = Field(sa_type=String(16))
    operator: str
    business_date: date
    started_at: datetime = _timestamp()
    finished_at: datetime | None = _timestamp(default=None)
    status: str
    borrowers_rekeyed: int = 0


class OperatorRow(SQLModel, table=True):
    """The operator roster: who may act, in which role (``states.operators``). Empty: no roster in use."""

    __tablename__ = "operators"
    __table_args__ = (CheckConstraint("role IN ('collector', 'supervisor', 'auditor')", name="role"),)

    operator_id: str = Field(primary_key=True)
    role: str
    active: bool = True
    added_at: datetime = _timestamp()


class OperatorChangeRow(SQLModel, table=True):
    """Every change of the roster (``states.operators.OperatorChange``), written in the transaction
    that makes it: who, what, the role before and after. Append-only (migration 0019's triggers refuse
    UPDATE and DELETE); folded in ``change_id`` order it gives the roster."""

    __tablename__ = "operator_changes"
    __table_args__ = (
        CheckConstraint(
            "change IN ('added', 'role_changed', 'deactivated', 'reactivated', 'already_on_roster')", name="change"
        ),
        CheckConstraint("role_before IN ('collector', 'supervisor', 'auditor')", name="role_before"),
        CheckConstraint("role_after IN ('collector', 'supervisor', 'auditor')", name="role_after"),
    )

    change_id: int | None = Field(default=None, primary_key=True)
    operator_id: str = Field(foreign_key="operators.operator_id", index=True)
    change: str
    role_before: str | None = None  # None: not on the roster before (or, already_on_roster, not known)
    role_after: str
    active: bool  # after the change
    actor: str  # the acting operator; system: no one was active on the roster (bootstrapping, the upgrade)
    recorded_at: datetime = _timestamp()


class BusinessDay(SQLModel, table=True):
    """One run of the daily close for a business date."""

    __tablename__ = "business_days"
    __table_args__ = (
        CheckConstraint("status IN ('running', 'closed', 'failed')", name="status"),
    )

    business_date: date = Field(primary_key=True)
    status: str
    started_at: datetime = _timestamp()
    finished_at: datetime | None = _timestamp(default=None)
    cases_advanced: int = 0
    stuck: int = 0
    previous_business_date: date | None = None  # the date closed before, when this one was first recorded


class CloseBatch(SQLModel, table=True):
    """One batch of a business date's close, claimed by one worker at a time under a lease.

    A close plans its due cases into batches of a case-id range (``run_no``
    numbers the plans of one date: a rerun after a failed close plans anew);
    a worker claims a batch (``SELECT ... FOR UPDATE SKIP LOCKED`` on
    PostgreSQL), holds it while ``lease_expires_at`` is ahead (renewed while
    it works) and marks it done with its figures (``result``, a
    ``BatchResult.as_dict()``). A worker that dies loses its lease; another
    takes the batch and finds the cases it committed already advanced. When
    every batch is done the coordinator closes the day with the plan's
    figures, once (``finished_at``).
    """

    __tablename__ = "close_batches"

    business_date: date = Field(primary_key=True)
    batch_no: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    run_no: int
    first_case_id: str
    last_case_id: str
    cases: int  # due in the range when it was planned
    owner: str | None = None
    lease_expires_at: datetime | None = _timestamp(default=None)
    attempts: int = 0
    done_at: datetime | None = _timestamp(default=None)
    result: dict | None = Field(default=None, sa_type=JSON)
    finished_at: datetime | None = _timestamp(default=None)  # the day was closed with this plan's figures


# --------------------------------------------------------------------------
# projection <-> row


def _projection_fields() -> tuple[tuple[str, str, bool], ...]:
    """(projection field, column, is money) for every field of CaseProjection."""
    hints = typing.get_type_hints(CaseProjection)
    return tuple(
        (f.name, f"{f.name}_fen" if hints[f.name] is Decimal else f.name, hints[f.name] is Decimal)
        for f in dataclasses.fields(CaseProjection)
    )


PROJECTION_FIELDS = _projection_fields()
PROJECTION_COLUMNS = tuple(column for _, column, _ in PROJECTION_FIELDS)


def projection_values(projection: CaseProjection) -> dict[str, Any]:
    """The case row's projection columns (money in integer fen)."""
    return {
        column: to_fen(getattr(projection, name)) if money else getattr(projection, name)
        for name, column, money in PROJECTION_FIELDS
    }


def projection_from_row(row: Mapping[str, Any]) -> CaseProjection:
    """Rebuild the projection from a row mapping holding the projection columns."""
    return CaseProjection(
        **{name: from_fen(row[column]) if money else row[column] for name, column, money in PROJECTION_FIELDS}
    )


_RECORD_FIELDS = tuple(
    (f.name, f"{f.name}_fen" if typing.get_type_hints(CreditRecord)[f.name] is Decimal else f.name)
    for f in dataclasses.fields(CreditRecord)
)


def credit_report_values(event: MonthEndReported) -> dict[str, Any]:
    """The ``credit_reports`` row of a ``MonthEndReported`` event (money in integer fen)."""
    record = {
        column: to_fen(value) if isinstance(value := getattr(event.record, name), Decimal) else value
        for name, column in _RECORD_FIELDS
    }
    return {
        **record,
        "case_id": event.case_id,
        "seq": event.seq,
        "month_end": event.month_end,
        "default_ended_on": event.default_ended_on,
    }


def credit_record_from_row(row: Mapping[str, Any]) -> CreditRecord:
    return CreditRecord(
        **{name: from_fen(row[column]) if column != name else row[column] for name, column in _RECORD_FIELDS}
    )


loans = Loan.__table__
cases = Case.__table__
events = StoredEvent.__table__
payments = Payment.__table__
lpr_fixings = LprFixingRow.__table__
policies = PolicyVersion.__table__
agencies = Agency.__table__
placements = Placement.__table__
agency_changes = AgencyChange.__table__
agency_commissions = AgencyCommission.__table__
borrowers = Borrower.__table__
business_days = BusinessDay.__table__
operators = OperatorRow.__table__
operator_changes = OperatorChangeRow.__table__
credit_reports = CreditReportRow.__table__
daily_charges = DailyCharges.__table__
daily_event_counts = DailyEventCount.__table__
stage_moves = StageMove.__table__
roll_rate_memos = RollRateMemo.__table__
verified_cases = VerifiedCase.__table__
store_identity = StoreIdentity.__table__
daily_recoveries = DailyRecovery.__table__


close_batches = CloseBatch.__table__
key_rotations = KeyRotation.__table__


def placement_values(event: PlacedWithAgency) -> dict[str, Any]:
    """The ``placements`` row of a ``PlacedWithAgency`` event (not recalled yet)."""
    return {
        "case_id": event.case_id,
        "seq": event.seq,
        "agency_id": event.agency_id,
        "strategy": event.strategy,
        "bucket": event.bucket,
        "rate_group": event.rate_group,
        "commission_rate": str(event.commission_rate),
        "balance_placed_fen": to_fen(event.balance_placed),
        "placed_on": event.business_date,
        "until": event.until,
        "recalled_on": None,
        "recall_reason": None,
    }


def commission_values(event: CommissionAccrued) -> dict[str, Any]:
    """The ``agency_commissions`` row of a ``CommissionAccrued`` event."""
    return {
        "case_id": event.case_id,
        "seq": event.seq,
        "placed_seq": event.placed_seq,
        "agency_id": event.agency_id,
        "payment_id": event.payment_id,
        "recovered_fen": to_fen(event.recovered),
        "commission_rate": str(event.commission_rate),
        "commission_fen": to_fen(event.commission),
        "business_date": event.business_date,
    }


@dataclasses.dataclass
class PlacementRows:
    """The placement and commission rows a run of one case's events makes, in order.

    ``placements`` are new rows (a recall among the same events already filled in);
    ``recalls`` end the placement a case held before these events (case id, date, reason).
    """

    placements: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    recalls: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    commissions: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def add(self, case_events: Any) -> None:
        from states.events import RecalledFromAgency

        open_row: dict[str, Any] | None = None
        for event in case_events:
            if isinstance(event, PlacedWithAgency):
                open_row = placement_values(event)
                self.placements.append(open_row)
            elif isinstance(event, RecalledFromAgency):
                if open_row is None:
                    self.recalls.append({"b_case_id": event.case_id, "recalled_on": event.business_date, "recall_reason": event.reason})
                else:
                    open_row["recalled_on"], open_row["recall_reason"] = event.business_date, event.reason
                open_row = None
            elif isinstance(event, CommissionAccrued):
                self.commissions.append(commission_values(event))
