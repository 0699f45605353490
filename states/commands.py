"""Commands: what an operator asks of a case, typed and validated once, here.

Every entry point (the CLI, the Prefect deployments, code) builds one of
these from its input and hands it to the same handler, so a value one entry
point refuses cannot slip in through another. Building a command parses
each field by its declared type (``states.parse``: money to the fen, dates
as YYYY-MM-DD, times with their time of day, vocabularies by value, operator
ids by pattern); a bad value raises ``InputError`` naming the field.

A field's help text lives in its metadata: the CLI's options and the Prefect
forms show it. Adding a parameter to an action means adding it here, plus
one line in each entry point.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, ClassVar

from states.parse import (
    InputError,
    parse_code,
    parse_contact_by,
    parse_date,
    parse_datetime,
    parse_enum,
    parse_flag,
    parse_int,
    parse_money,
    parse_operator,
    parse_text,
)
from states.contact import local_time
from states.litigation import ExecutionOutcome, deadline_refusal
from states.vocabulary import (
    AGENCY_PREFIX,
    LENDER,
    ContactChannel,
    ContactOutcome,
    ContactParty,
    PauseReason,
    PaymentChannel,
    VisitOutcome,
    outcome_misfit,
)


def arg(help: str, *, kind: str = "", default: Any = dataclasses.MISSING, **rules: Any) -> Any:
    """A command field with its help text and how its value is read (``kind``, ``minimum`` ...)."""
    return dataclasses.field(default=default, metadata={"help": help, "kind": kind, **rules})


@dataclass(frozen=True, kw_only=True)
class CaseCommand:
    """An operator's action on one case. ``case`` is a case id or a contract number."""

    action: ClassVar[str] = ""

    case: str = arg("Case id or contract number", kind="code")
    operator: str = arg("Your operator id; recorded as the actor of every event", kind="operator")

    def __post_init__(self) -> None:
        hints = _hints(type(self))
        for f in _fields(type(self)).values():
            object.__setattr__(self, f.name, _read(hints[f.name], getattr(self, f.name), f))

    @classmethod
    def help(cls, name: str) -> str:
        return _fields(cls)[name].metadata["help"]

    @classmethod
    def read_field(cls, name: str, value: Any) -> Any:
        """One field's value read as building the command reads it (a file checks a column so)."""
        return _read(_hints(cls)[name], value, _fields(cls)[name])

    def happened_on(self, timezone: str | None = None) -> dict[str, date]:
        """The dates on which something *happened* (not target dates): none may be after today. A time
        with a UTC offset falls on its date in ``timezone`` (the lender's, as today is)."""
        found = {}
        for f in dataclasses.fields(self):
            if f.metadata.get("happened"):
                value = getattr(self, f.name)
                if isinstance(value, datetime):
                    value = (local_time(value, timezone) if timezone else value).date()
                found[f.name] = value
        return found


@dataclass(frozen=True, kw_only=True)
class RecordPayment(CaseCommand):
    """Record money received; it is allocated line by line (costs, interest, principal)."""

    action: ClassVar[str] = "record-payment"
    amount: Decimal = arg("Amount received, yuan, at most two decimals (e.g. 1500.00)")
    received_on: date = arg("Date the money was received (YYYY-MM-DD)", happened=True)
    payment_id: str = arg("The bank's or channel's transaction id: a payment is recorded once", kind="code")
    channel: PaymentChannel = arg("How the money came in", default=PaymentChannel.BANK_TRANSFER)
    expect_total: Decimal | None = arg(
        "Optional guard against a typo: the total due you expect on that date (case show's); "
        "if the case owes another amount, nothing is recorded",
        default=None,
    )
    backdate_reason: str = arg(
        "Why a payment dated beyond the policy's back-dating window (backdating_days before the case's "
        "last closed date) is recorded anyway; recorded on the payment. Leave empty otherwise",
        kind="text", default="", required=False,
    )


@dataclass(frozen=True)
class RecordedPayment:
    """What a payment id credits: one case, an amount, a date. A payment id is recorded once:
    the same id again with the same case, amount and date is that payment again, with anything
    else it is refused (a bank transaction is credited once, never twice, never silently dropped)."""

    payment_id: str
    case_id: str
    amount: Decimal
    received_on: date

    def repeated_by(self, other: RecordedPayment) -> bool:
        """``other`` is this payment again (nothing to record)."""
        return (self.case_id, self.amount, self.received_on) == (other.case_id, other.amount, other.received_on)

    def conflict(self, other: RecordedPayment, where: str = "is already recorded", this: str = "this one") -> str:
        """Why ``other`` (the same id, other content) is refused, naming both: completes "'<payment id>' ..."."""
        return (
            f"{where} on case {self.case_id} for {self.amount} received {self.received_on}; "
            f"{this} is {other.amount} received {other.received_on} on case {other.case_id}"
        )


@dataclass(frozen=True, kw_only=True)
class MakePromise(CaseCommand):
    """Record a promise to pay; it holds escalation until its date."""

    action: ClassVar[str] = "record-promise"
    amount: Decimal = arg("Amount promised, yuan")
    promised_on: date = arg("Date the borrower promises to pay by (at most the policy's limit ahead)")
    made_on: date = arg("Date the promise was made", happened=True)


@dataclass(frozen=True, kw_only=True)
class RecordContact(CaseCommand):
    """Record a contact attempt; one the conduct rules forbid is refused, and the refusal recorded."""

    action: ClassVar[str] = "record-contact"
    channel: ContactChannel = arg("How the borrower was contacted")
    outcome: ContactOutcome = arg("What came of it")
    contacted_at: datetime = arg("When, in the borrower's local time, with the time of day (YYYY-MM-DDTHH:MM)", happened=True)
    party: ContactParty = arg("Who was contacted", default=ContactParty.BORROWER)
    by: str = arg(
        f"Who made the contact: {LENDER}, or {AGENCY_PREFIX}NAME for an agency's collector "
        "(every one counts against the same daily limits)",
        kind="contact_by", default=LENDER,
    )
    disclosed_debt: bool = arg(
        "The debt was mentioned (never to anyone but the borrower, a guarantor or a co-borrower)", default=False
    )
    asked_to_pay: bool = arg("The person was asked to pay (only the borrower, a guarantor or a co-borrower may be)", default=False)
    collectors: int = arg("Collectors present (a field visit needs two)", default=1, minimum=1, maximum=20)
    note: str = arg("What was said or seen", kind="text", default="", required=False)

    def __post_init__(self) -> None:
        party = self.party
        if isinstance(party, str) and party.strip().lower().startswith(AGENCY_PREFIX):
            # "party agency:NAME" is the shorthand for the borrower contacted by that agency
            agency = party.strip()
            if self.by not in (LENDER, agency):
                raise InputError(
                    f"party: {agency!r} says the contact was made by that agency, but by is {self.by!r}; "
                    f"give one of them (party is who was contacted: {', '.join(p.value for p in ContactParty)})"
                )
            object.__setattr__(self, "party", ContactParty.BORROWER)
            object.__setattr__(self, "by", agency)
        super().__post_init__()
        misfit = outcome_misfit(self.channel, self.outcome)
        if misfit:
            raise InputError(f"outcome: {misfit}")


@dataclass(frozen=True, kw_only=True)
class PauseCase(CaseCommand):
    """Pause escalation (not accrual) until a date."""

    action: ClassVar[str] = "pause-case"
    reason: PauseReason = arg("Why the case is paused")
    until: date = arg("Date the pause ends (at most the policy's limit ahead)")
    made_on: date = arg("Date the pause was decided", happened=True)


@dataclass(frozen=True, kw_only=True)
class ResumeCase(CaseCommand):
    """Lift a pause before it ends."""

    action: ClassVar[str] = "resume-case"
    made_on: date = arg("Date the pause was lifted", happened=True)


@dataclass(frozen=True, kw_only=True)
class WriteOff(CaseCommand):
    """End recovery: write the case off (from outsourced; from litigation once execution ended without recovery)."""

    action: ClassVar[str] = "write-off-case"
    reason: str = arg("Why recovery ended", kind="text")
    made_on: date = arg("Date of the write-off", happened=True)


@dataclass(frozen=True, kw_only=True)
class ReportVisit(CaseCommand):
    """Report a field visit: who went (two collectors at least), when, and what came of it."""

    action: ClassVar[str] = "report-visit"
    collectors: str = arg("The collectors who went, comma-separated operator ids (two at least)", kind="operators")
    outcome: VisitOutcome = arg("What came of the visit")
    visited_at: datetime = arg("When, in the borrower's local time, with the time of day (YYYY-MM-DDTHH:MM)", happened=True)
    note: str = arg("What was seen or said", kind="text", default="", required=False)


@dataclass(frozen=True, kw_only=True)
class RecallFromAgency(CaseCommand):
    """Recall a case from its agency; it goes to another agency (DOMAIN.md §7)."""

    action: ClassVar[str] = "recall-agency"
    reason: str = arg("Why the case is recalled", kind="text")
    made_on: date = arg("Date of the recall", happened=True)


@dataclass(frozen=True, kw_only=True)
class FileLawsuit(CaseCommand):
    """File a lawsuit outside the automatic rule; refused when suing is not worth it, unless overridden."""

    action: ClassVar[str] = "file-lawsuit"
    filed_on: date = arg("Date the lawsuit is filed (YYYY-MM-DD)", happened=True)
    override: str | None = arg(
        "Why file although the decision rule says suing is not worth it (recorded with the lawsuit); "
        "leave out to follow the rule",
        kind="text",
        default=None,
    )


@dataclass(frozen=True, kw_only=True)
class EnterJudgment(CaseCommand):
    """Record the court's judgment: the judgment debt and the performance deadline."""

    action: ClassVar[str] = "enter-judgment"
    amount: Decimal = arg("The judgment debt awarded, yuan, ordinary interest excluded (the base of delayed-performance interest)")
    deadline: date = arg("The performance deadline the judgment sets (YYYY-MM-DD); delayed-performance interest runs from the day after")
    entered_on: date = arg("Date the judgment was entered (YYYY-MM-DD)", happened=True)
    court: str = arg("The court that entered it (optional)", kind="text", default="", required=False)
    case_number: str = arg("The court's case number (optional)", kind="text", default="", required=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        refusal = deadline_refusal(self.deadline, self.entered_on)
        if refusal:
            raise InputError(f"deadline: {refusal}")


@dataclass(frozen=True, kw_only=True)
class RecordExecution(CaseCommand):
    """Record how execution of the judgment ended; the execution fee is posted as a cost."""

    action: ClassVar[str] = "record-execution"
    outcome: ExecutionOutcome = arg("How execution ended (no_assets: without recovery, which allows the write-off)")
    recorded_on: date = arg("Date execution ended (YYYY-MM-DD)", happened=True)


COMMANDS: tuple[type[CaseCommand], ...] = (
    RecordPayment, MakePromise, RecordContact, PauseCase, ResumeCase, WriteOff, ReportVisit, RecallFromAgency,
    FileLawsuit, EnterJudgment, RecordExecution,
)


@functools.cache
def _fields(cls: type) -> dict[str, dataclasses.Field]:
    """A command's fields by name (looked up once per class: a file builds thousands of commands)."""
    return {f.name: f for f in dataclasses.fields(cls)}


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


@functools.cache
def _optional(hint: Any) -> Any:
    """``X`` for an ``X | None`` hint, else None."""
    args = typing.get_args(hint)
    if type(None) not in args:
        return None
    (inner,) = [a for a in args if a is not type(None)]
    return inner


def _read(hint: Any, value: Any, f: dataclasses.Field) -> Any:
    """Parse one field's value by its declared type and rules (an optional field may be left out: None)."""
    name, rules = f.name, f.metadata
    optional = _optional(hint)
    if optional is not None:
        if value is None or value == "":
            return None
        hint = optional
    if hint is Decimal:
        return parse_money(value, name)
    if hint is datetime:
        return parse_datetime(value, name)
    if hint is date:
        return parse_date(value, name)
    if isinstance(hint, type) and issubclass(hint, Enum):
        return parse_enum(hint, value, name)
    if hint is bool:
        return parse_flag(value, name)
    if hint is int:
        return parse_int(value, name, minimum=rules.get("minimum"), maximum=rules.get("maximum"))
    kind = rules.get("kind")
    if kind == "operators":
        if not isinstance(value, str):
            value = ",".join(value)
        return ",".join(dict.fromkeys(parse_operator(part, name) for part in value.split(",")))
    if kind == "operator":
        return parse_operator(value, name)
    if kind == "contact_by":
        return parse_contact_by(value, name)
    if kind == "code":
        return parse_code(value, name)
    return parse_text(value, name, required=rules.get("required", True))
