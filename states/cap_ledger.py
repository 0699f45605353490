"""What the legal cap holds back, and when it lets it go: the queue of unenforced charges.

The cap is read *path-independently* (DOMAIN.md §3): as of every date D,
``charged(D) = min(accrued(D), limit(D))`` and ``unenforceable(D) =
accrued(D) - charged(D)``, whatever dates the case was reviewed on. Both
accrued and limit only grow, so charged only grows: nothing once charged is
taken back, and what the cap held back is charged later when the limit grows
past what is charged (a *release*).

Which charges are the charged ones is read in the order they fell due, the
oldest first (a court looks at the running total over the whole period): the
charges that fell due last are the ones above the cap, and they wait in a
first-in, first-out queue of ``Unenforced`` lots. Within one posting the
charges fell due in this order: late fees (the day after the missed due
date, the first day of the stretch), then penalty and compound interest (day
by day through the stretch; penalty before compound), then contract interest
(on its due date, the last day of the stretch). So a posting first releases
the queue, oldest lot first, then charges its own charges in that order, and
what does not fit joins the queue.

Why this order and no other: with it, every installment's enforceable late
fee and contract interest, and the enforceable penalty and compound interest
together, are the same whatever dates the stretches were cut at, so the
payments (which pay penalty and compound interest first, then late fees,
then contract interest, then principal) and the compound interest (on unpaid
contract interest) are the same too. A fixed component order (always cut the
late fee first) is not: a contract interest posted with a long stretch of
penalty would then be charged ahead of penalty that a more often reviewed
case had charged already.

Penalty and compound interest arrive together, day by day; adjacent lots of
them are kept as one block (a penalty lot and a compound lot), so the queue
stays short (about three lots per installment).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

from states.errors import DomainError
from states.money import ZERO

FLOW = frozenset({"penalty_interest", "compound_interest"})  # accrue day by day; kept as one block


@dataclass(frozen=True, slots=True)
class Unenforced:
    """A charge, or the part of one, that lies above the cap for now (in fen)."""

    component: str
    amount: Decimal
    installment: int | None = None

    def same_charge(self, other: Unenforced) -> bool:
        return self.component == other.component and self.installment == other.installment


class Settlement(NamedTuple):
    """What one posting charges under the cap: old lots released, the new charges' enforceable parts
    (immutable; built per stretch)."""

    released: tuple[Unenforced, ...]
    enforceable: tuple[Decimal, ...]  # one per new charge, in the order given
    queue: tuple[Unenforced, ...]  # what stays above the cap afterwards


def settle(queue: Sequence[Unenforced], new: Sequence[tuple[str, Decimal, int | None]], room: Decimal) -> Settlement:
    """Charge up to ``room`` (the limit less what is charged): the queue first, oldest first, then ``new``.

    ``new`` is the posting's charges, ``(component, amount, installment)``, in
    the order they fell due (see the module docstring); what does not fit joins
    the queue as an ``Unenforced`` lot.
    """
    room = max(ZERO, room)
    lots = list(queue)
    released: list[Unenforced] = []
    while room > 0 and lots:
        head = lots[0]
        take = min(room, head.amount)
        released.append(Unenforced(head.component, take, head.installment))
        room -= take
        if take == head.amount:
            lots.pop(0)
        else:
            lots[0] = Unenforced(head.component, head.amount - take, head.installment)
    enforceable: list[Decimal] = []
    for component, amount, installment in new:
        take = min(room, amount)
        enforceable.append(take)
        room -= take
        if amount > take:
            _append(lots, Unenforced(component, amount - take, installment))
    return Settlement(tuple(released), tuple(enforceable), tuple(lots))


def after_posting(
    queue: Sequence[Unenforced], released: Sequence[Unenforced], cut: Sequence[Unenforced]
) -> tuple[Unenforced, ...]:
    """The queue once a recorded posting is applied: its releases leave the front, its cuts join the back."""
    lots = list(queue)
    for lot in released:
        if not lots or not lots[0].same_charge(lot) or lots[0].amount < lot.amount:
            head = lots[0] if lots else None
            raise DomainError(f"a release of {lot.amount} {_label(lot)} does not match the oldest unenforced charge {head}")
        if lots[0].amount == lot.amount:
            lots.pop(0)
        else:
            lots[0] = Unenforced(lot.component, lots[0].amount - lot.amount, lot.installment)
    for lot in cut:
        if lot.amount:
            _append(lots, lot)
    return tuple(lots)


def before_posting(
    queue: Sequence[Unenforced], released: Sequence[Unenforced], cut: Sequence[Unenforced]
) -> tuple[Unenforced, ...]:
    """The exact inverse of ``after_posting``: the queue as it was before that posting."""
    lots = list(queue)
    for lot in reversed([c for c in cut if c.amount]):
        index = _merge_index(lots, lot)
        if index is None or lots[index].amount < lot.amount:
            raise DomainError(f"cannot reverse the unenforced {lot.amount} {_label(lot)}: not at the back of the queue")
        if lots[index].amount == lot.amount:
            lots.pop(index)
        else:
            lots[index] = Unenforced(lot.component, lots[index].amount - lot.amount, lot.installment)
    for lot in reversed(released):
        if lots and lots[0].same_charge(lot):
            lots[0] = Unenforced(lot.component, lots[0].amount + lot.amount, lot.installment)
        else:
            lots.insert(0, lot)
    return tuple(lots)


def totals_by_component(queue: Sequence[Unenforced]) -> dict[str, Decimal]:
    """What the queue holds per component (the case's ``unenforceable`` figures)."""
    totals: dict[str, Decimal] = {}
    for lot in queue:
        totals[lot.component] = totals.get(lot.component, ZERO) + lot.amount
    return totals


def _append(lots: list[Unenforced], lot: Unenforced) -> None:
    index = _merge_index(lots, lot)
    if index is None:
        lots.append(lot)
    else:
        lots[index] = Unenforced(lot.component, lots[index].amount + lot.amount, lot.installment)


def _merge_index(lots: list[Unenforced], lot: Unenforced) -> int | None:
    """Where ``lot`` merges at the back: the same charge in the trailing penalty/compound block, or the last lot."""
    if lot.component in FLOW:
        index = len(lots) - 1
        while index >= 0 and lots[index].component in FLOW:
            if lots[index].same_charge(lot):
                return index
            index -= 1
        return None
    if lots and lots[-1].same_charge(lot):
        return len(lots) - 1
    return None


def _label(lot: Unenforced) -> str:
    return lot.component + ("" if lot.installment is None else f" of installment {lot.installment}")
