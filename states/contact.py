"""Contact conduct (DOMAIN.md §6): when, how often and whom a collector may contact.

The rules are pure functions over a case's ``ContactState``: ``rule_broken``
names the rule a proposed contact would break (or gives ``None``), and
``after_contact`` / ``after_new_number`` give the state a recorded contact or
a new phone number leaves. The case keeps the state and changes it only in
its ``apply`` handlers, with what these functions return.

Counters are per borrower-local calendar day, kept for every day a contact
may still be dated on (the case's last closed date and after), whatever
order the contacts are recorded in, and count the lender and all its
agencies together, since every contact is recorded on the case, whoever
made it (``by``: the lender or ``agency:NAME``). A borrower with several
loans is one person with one phone: the connected calls and the unanswered
attempts on the borrower's number count across all their loans (the
handler passes the other loans' counters as ``elsewhere``, summed by
``borrower_day``); a third party's number belongs to one loan's
guarantor or co-borrower and is counted on that loan. A contact
time given with a UTC offset is read in the borrower's time zone first.
Only the borrower and the debt-related parties (guarantor, co-borrower)
may be asked to pay or told of the debt; a contact with anyone else that
says it did either is refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from types import MappingProxyType
from zoneinfo import ZoneInfo

from states.events import ContactRecorded
from states.vocabulary import ContactChannel, ContactOutcome, ContactParty

MAX_CONNECTED_CALLS_A_DAY = 3
MAX_UNANSWERED_A_DAY = 6  # per number, i.e. per party called
FAILED_ATTEMPTS_BEFORE_THIRD_PARTY = 3
QUIET_HOURS = (time(22, 0), time(8, 0))  # no contact from the first to the second, borrower local time
# A letter is read when the borrower chooses to; the others reach the borrower at once.
QUIET_HOURS_CHANNELS = frozenset({ContactChannel.CALL, ContactChannel.VISIT, ContactChannel.SMS})
COLLECTORS_ON_A_VISIT = 2


@dataclass(frozen=True)
class ContactDay:
    """One day's contact counters across the lender and all its agencies."""

    day: date | None = None
    connected: int = 0
    unanswered: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))  # by party


@dataclass(frozen=True)
class LastContact:
    """The most recent contact that took place (a refused one did not)."""

    at: datetime  # borrower's local wall time, as recorded
    channel: ContactChannel
    party: ContactParty
    outcome: ContactOutcome


@dataclass(frozen=True)
class ContactState:
    """What the conduct rules need to remember about a case's contacts."""

    days: Mapping[date, ContactDay] = field(default_factory=lambda: MappingProxyType({}))  # by local day
    failed_in_a_row: int = 0  # borrower attempts without a connection since the last one
    number_invalid: bool = False
    last: LastContact | None = None

    def on(self, day: date) -> ContactDay:
        """The counters of one borrower-local day (zero if nobody made contact that day)."""
        return self.days.get(day) or ContactDay(day)

    @property
    def borrower_unreachable(self) -> bool:
        """Third parties may be contacted only when this holds."""
        return self.number_invalid or self.failed_in_a_row >= FAILED_ATTEMPTS_BEFORE_THIRD_PARTY


def local_time(at: datetime, timezone: str) -> datetime:
    """``at`` as the borrower's local wall time: a time with a UTC offset is converted, a bare one is local already."""
    if at.tzinfo is None:
        return at
    return at.astimezone(ZoneInfo(timezone)).replace(tzinfo=None)


def in_quiet_hours(at: datetime) -> bool:
    start, end = QUIET_HOURS
    return at.time() >= start or at.time() < end


def may_hear_of_the_debt(party: ContactParty) -> bool:
    """The borrower and the debt-related parties (guarantor, co-borrower): the debt is disclosed to nobody else."""
    return party is ContactParty.BORROWER or party.liable


def borrower_day(elsewhere: Iterable[ContactState], day: date) -> ContactDay:
    """What the borrower's other loans counted on ``day``: their connected calls, and their
    unanswered attempts on the borrower's own number (a third party's number is one loan's)."""
    connected = unanswered = 0
    for state in elsewhere:
        counts = state.on(day)
        connected += counts.connected
        unanswered += counts.unanswered.get(ContactParty.BORROWER.value, 0)
    return ContactDay(day, connected, MappingProxyType({ContactParty.BORROWER.value: unanswered} if unanswered else {}))


def day_counts(state: ContactState, day: date, elsewhere: ContactDay | None = None) -> ContactDay:
    """One day's counters of a case, with what the borrower's other loans counted that day added."""
    counts = state.on(day)
    if elsewhere is None or (not elsewhere.connected and not elsewhere.unanswered):
        return counts
    unanswered = dict(counts.unanswered)
    for party, n in elsewhere.unanswered.items():
        unanswered[party] = unanswered.get(party, 0) + n
    return ContactDay(day, counts.connected + elsewhere.connected, MappingProxyType(unanswered))


def rule_broken(
    state: ContactState,
    channel: ContactChannel,
    party: ContactParty,
    outcome: ContactOutcome,
    at: datetime,
    collectors: int,
    *,
    disclosed_debt: bool = False,
    asked_to_pay: bool = False,
    elsewhere: ContactDay | None = None,
) -> str | None:
    """The conduct rule this contact would break, in words, or ``None`` when it may take place.

    Whoever makes the contact (the lender or an agency) does not enter: every
    contact on the case counts against the same limits, and so do the
    borrower's other loans' (``elsewhere``: ``borrower_day`` of that day).
    """
    if channel in QUIET_HOURS_CHANNELS and in_quiet_hours(at):
        return "no contact between 22:00 and 08:00 borrower local time"
    if channel is ContactChannel.VISIT and collectors < COLLECTORS_ON_A_VISIT:
        return "a field visit needs at least two collectors"
    if party is not ContactParty.BORROWER and not state.borrower_unreachable:
        return "third parties only when the borrower cannot be reached (invalid number or 3 failed attempts)"
    if asked_to_pay and not may_hear_of_the_debt(party):
        return "only the borrower and debt-related parties (guarantor, co-borrower) may be asked to pay"
    if disclosed_debt and not may_hear_of_the_debt(party):
        return "the debt is never disclosed to anyone but the borrower, a guarantor or a co-borrower"
    if outcome is ContactOutcome.THIRD_PARTY_REACHED and (disclosed_debt or asked_to_pay):
        return "someone else answered: the debt is never disclosed to them nor are they asked to pay"
    if channel is ContactChannel.CALL:
        counts = day_counts(state, at.date(), elsewhere)
        if outcome.reached:
            if counts.connected >= MAX_CONNECTED_CALLS_A_DAY:
                return f"at most {MAX_CONNECTED_CALLS_A_DAY} connected calls a day per borrower" + _on_other_loans(
                    elsewhere and elsewhere.connected
                )
        elif counts.unanswered.get(party, 0) >= MAX_UNANSWERED_A_DAY:
            return f"at most {MAX_UNANSWERED_A_DAY} unanswered attempts a day per number" + _on_other_loans(
                elsewhere and elsewhere.unanswered.get(party, 0)
            )
    return None


def _on_other_loans(n: int | None) -> str:
    return f" ({n} of them on the borrower's other loans)" if n else ""


def after_contact(state: ContactState, e: ContactRecorded) -> ContactState:
    """The state once the contact ``e`` has taken place."""
    at = datetime.fromisoformat(e.contacted_at)
    channel, party, outcome = ContactChannel(e.channel), ContactParty(e.party), ContactOutcome(e.outcome)
    day = state.on(at.date())
    if channel is ContactChannel.CALL:
        if outcome.reached:
            day = ContactDay(day.day, day.connected + 1, day.unanswered)
        else:
            unanswered = {**day.unanswered, party.value: day.unanswered.get(party, 0) + 1}
            day = ContactDay(day.day, day.connected, MappingProxyType(unanswered))
    failed, invalid = state.failed_in_a_row, state.number_invalid
    if party is ContactParty.BORROWER:
        if outcome.reached:
            failed, invalid = 0, False
        else:
            failed, invalid = failed + 1, invalid or outcome is ContactOutcome.INVALID_NUMBER
    days = MappingProxyType({**state.days, day.day: day})
    return ContactState(days, failed, invalid, LastContact(at, channel, party, outcome))


def after_new_number(state: ContactState) -> ContactState:
    """A new phone number: the old one's failures say nothing about reaching the borrower now."""
    return ContactState(state.days, 0, False, state.last)


def forget_days_before(state: ContactState, first: date) -> ContactState:
    """Drop the counters of days no contact may be dated on any more (before the last closed date)."""
    if all(day >= first for day in state.days):
        return state
    days = MappingProxyType({day: counts for day, counts in state.days.items() if day >= first})
    return ContactState(days, state.failed_in_a_row, state.number_invalid, state.last)
