"""The words operators choose from: payment channels, contact channels, parties, outcomes, pause reasons.

Each vocabulary is one Enum, used by the commands, the events (as its
value), the CLI's help, the Prefect forms and the loan file alike, so no
entry point can accept a word another refuses. ``CHANNEL_OUTCOMES`` says
which contact outcomes each contact channel can have.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType


class PaymentChannel(StrEnum):
    BANK_TRANSFER = "bank_transfer"
    ALIPAY = "alipay"
    WECHAT_PAY = "wechat_pay"
    CASH = "cash"
    AGENCY = "agency"


class ContactChannel(StrEnum):
    CALL = "call"
    SMS = "sms"
    VISIT = "visit"
    LETTER = "letter"


class ContactParty(StrEnum):
    BORROWER = "borrower"
    GUARANTOR = "guarantor"
    CO_BORROWER = "co_borrower"
    OTHER = "other"

    @property
    def liable(self) -> bool:
        """A debt-related party: the only third parties that may be asked to pay (DOMAIN.md §6)."""
        return self in (ContactParty.GUARANTOR, ContactParty.CO_BORROWER)


# Who made a contact: the lender's own collectors, or an agency's (``agency:NAME``). Every one of
# them counts against the same daily limits of the case (DOMAIN.md §6).
LENDER = "lender"
AGENCY_PREFIX = "agency:"


class ContactOutcome(StrEnum):
    CONNECTED = "connected"
    PROMISE_TO_PAY = "promise_to_pay"  # connected, and the party promised (the promise itself: `promise`)
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    INVALID_NUMBER = "invalid_number"  # a wrong number
    REFUSED_TO_TALK = "refused_to_talk"
    THIRD_PARTY_REACHED = "third_party_reached"  # someone else answered the number called

    @property
    def reached(self) -> bool:
        """The party called was reached and spoke: a connected call (the others are attempts)."""
        return self in (ContactOutcome.CONNECTED, ContactOutcome.PROMISE_TO_PAY)


#: The outcomes each contact channel can have (a contact whose outcome its channel cannot have is
#: refused as a mistyped command). A telephone number's outcomes belong to the channels that use
#: one: ``busy`` is a line's (a call), ``invalid_number`` a number called or texted. A letter is
#: read later, by its addressee: no answer yet, or a reply (connected, or a promise to pay).
CHANNEL_OUTCOMES: Mapping[ContactChannel, tuple[ContactOutcome, ...]] = MappingProxyType({
    ContactChannel.CALL: tuple(ContactOutcome),
    ContactChannel.SMS: tuple(o for o in ContactOutcome if o is not ContactOutcome.BUSY),
    ContactChannel.VISIT: tuple(o for o in ContactOutcome if o not in (ContactOutcome.BUSY, ContactOutcome.INVALID_NUMBER)),
    ContactChannel.LETTER: (ContactOutcome.CONNECTED, ContactOutcome.PROMISE_TO_PAY, ContactOutcome.NO_ANSWER),
})


def outcome_misfit(channel: ContactChannel, outcome: ContactOutcome) -> str | None:
    """Why a contact by ``channel`` cannot have ``outcome`` (naming both and what the channel can have), or None."""
    fits = CHANNEL_OUTCOMES[channel]
    if outcome in fits:
        return None
    return f"{outcome.value!r} is not an outcome of channel {channel.value!r}, which takes {', '.join(o.value for o in fits)}"


class VisitOutcome(StrEnum):
    MET = "met"
    NOT_HOME = "not_home"
    MOVED = "moved"
    REFUSED = "refused"
    PROMISE = "promise"

    @property
    def failed(self) -> bool:
        """The borrower was not reached in person, or would not talk: it counts toward outsourcing."""
        return self in (VisitOutcome.NOT_HOME, VisitOutcome.MOVED, VisitOutcome.REFUSED)


class PauseReason(StrEnum):
    HARDSHIP = "hardship"
    DISPUTE = "dispute"
    COMPLAINT = "complaint"


def accepted(vocabulary: type[StrEnum]) -> str:
    """The accepted values of a vocabulary, for help texts: 'call, sms, visit or letter'."""
    values = [member.value for member in vocabulary]
    return ", ".join(values[:-1]) + " or " + values[-1] if len(values) > 1 else values[0]


class OperatorRole(StrEnum):
    """What an operator on the roster may do (``states.operators``)."""

    COLLECTOR = "collector"
    SUPERVISOR = "supervisor"
    AUDITOR = "auditor"
