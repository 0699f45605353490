"""The payment file's columns and row rules: what a row must hold to be recorded, each problem named.

A payment file lists money received by the lender's channels (bank, Alipay,
WeChat Pay, cash desks, agencies), one payment a row. ``parse_row`` checks a
row column by column and returns a ``PaymentRow`` holding the
``RecordPayment`` command it asks for, or raises ``RowRejected`` listing
every problem: row, column, the value (the payer's name masked) and what is
accepted. A column is read by the same parser the command reads its field
with (``RecordPayment.read_field``), so a row is refused exactly as the CLI's
``pay`` would refuse the same payment; the file adds its own rules: the date
not after the import's business date, the currency yuan, a payer's name.

A payment id is recorded once: ``repeat_refused`` names both sides when an id
comes again (in the store, or earlier in the file) with another case, amount
or date. The payer's name is personal: it is checked, shown masked (``张*``,
``states.borrower.mask_name``) and never kept.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from states.borrower import mask_name
from states.parse import renamed
from states.commands import RecordedPayment, RecordPayment
from states.rows import Bad, Column, RowCheck, RowError, RowRejected, parsed  # noqa: F401  (callers catch RowRejected from here)
from states.vocabulary import PaymentChannel, accepted

CURRENCY = "CNY"  # collectflow books yuan
PAYER_MAX_CHARS = 100


def _field(name: str) -> Callable[[str, str], Any]:
    """A column read as the command reads its field ``name``."""
    return lambda text, column: parsed(lambda: RecordPayment.read_field(name, text), text, name)


def _currency(text: str, column: str) -> str:
    if text.upper() != CURRENCY:
        raise Bad(f"is not {CURRENCY}; collectflow books yuan only")
    return CURRENCY


def _payer(text: str, column: str) -> str:
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in text):
        raise Bad("contains control characters (a line break?)")
    if len(text) > PAYER_MAX_CHARS:
        raise Bad(f"has {len(text)} characters, more than {PAYER_MAX_CHARS}")
    return text


COLUMNS: tuple[Column, ...] = (
    Column("payment_id", True, None, "the channel's transaction id: one word (no spaces), at most 128 characters; "
           "recorded once", _field("payment_id")),
    Column("contract_no", True, None, "the contract number of a booked loan (or its case id), one word", _field("case")),
    Column("amount", True, None, "the amount received in yuan, above 0, at most two decimals (1500 or 1500.00)", _field("amount")),
    Column("paid_on", True, None, "a date YYYY-MM-DD, not after the import's business date", _field("received_on")),
    Column("channel", True, None, f"one of {accepted(PaymentChannel)}", _field("channel")),
    Column("currency", False, CURRENCY, f"{CURRENCY} (yuan) only", _currency, fallback=CURRENCY),
    Column("payer_name", False, "none", f"who paid: text of at most {PAYER_MAX_CHARS} characters, no control "
           "characters; personal: shown masked, never kept", _payer),
    Column("backdate_reason", False, "none", "why a payment dated beyond the policy's back-dating window is recorded "
           "anyway (text, no control characters); recorded on the payment", _field("backdate_reason")),
)
COLUMN = {c.name: c for c in COLUMNS}
REQUIRED = tuple(c.name for c in COLUMNS if c.required)
MASKS: Mapping[str, Callable[[str], str]] = {"payer_name": mask_name}  # the personal columns, always shown masked
REPEAT_ACCEPTED = "a payment id is recorded once: the same id again only with the same case, amount and date"


@dataclass(frozen=True)
class PaymentRow:
    """One good row: its number and the payment it records. Holds no personal value."""

    row: int
    command: RecordPayment

    def recorded(self, case_id: str) -> RecordedPayment:
        """What this row credits, once its contract number is known as ``case_id``."""
        return RecordedPayment(self.command.payment_id, case_id, self.command.amount, self.command.received_on)


def shown(column: str, text: str) -> str:
    """A value as an error message may show it: masked in a personal column."""
    return MASKS[column](text) if column in MASKS else text


def parse_row(raw: Mapping[str, object], row: int, business_date: date, operator: str) -> PaymentRow:
    """One row checked column by column; ``RowRejected`` lists every problem found.

    ``operator`` (already checked) is the actor the payment is recorded with."""
    check = RowCheck(raw, row, COLUMNS, shown)
    if check.ok("paid_on") and check.values["paid_on"] > business_date:
        check.refuse("paid_on", check.texts["paid_on"], f"is after the import's business date {business_date}")
    check.done()
    values = check.values
    command = RecordPayment(
        case=values["contract_no"], amount=values["amount"], received_on=values["paid_on"],
        payment_id=values["payment_id"], channel=values["channel"], operator=operator,
        backdate_reason=values.get("backdate_reason") or "",
    )
    return PaymentRow(row, command)


def repeat_refused(row: int, earlier: RecordedPayment, this: RecordedPayment, where: str = "is already recorded") -> RowError:
    """A row whose payment id was seen (``where``: recorded, or earlier in the file) with other content."""
    return RowError(row, "payment_id", this.payment_id, earlier.conflict(this, where, "this row"), REPEAT_ACCEPTED)


def reference_refused(row: int, reference: str, why: Exception) -> RowError:
    """A row whose contract number names no case (or one case's id and another's contract number)."""
    return RowError(row, "contract_no", reference, f"is refused: {why}", COLUMN["contract_no"].accepted)


FIELD_NAMES = {"backdate_reason": "the row's backdate_reason column"}  # what a file gives, as its rules' messages name it


def refused(row: int, reason: str) -> str:
    """A row the collection rules refuse as a whole (the case settled, a date before its last close)."""
    return f"row {row}: {renamed(reason, FIELD_NAMES)}"

