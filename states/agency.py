"""Outsourcing at a cost (DOMAIN.md §7): the agency registry's rules, placement, commission, performance.

An **agency** has a name, a licence number, a capacity (cases it may hold
at once) and a commission rate per bucket group at placement (M4-M6, M7+,
written_off). The registry's entries are never edited: an agency is added,
and may be deactivated (it takes no new placement; what it holds stays
until recalled). ``RegisterAgency`` and ``DeactivateAgency`` are the
commands, validated once here.

**Placement.** The close (or a handler) hands the case an ``AgencyBoard``:
an immutable view, for one business date, of every active agency's
capacity left and measured recovery rate (recovered / balance placed over
the last ``agency_measure_days``; an agency without placements in that
window gets the portfolio average). A seeded hash of the case id puts
``agency_challenger_share`` percent of the cases under the challenger
strategy, the rest under the champion (``strategy_for``); the strategy
chooses among the agencies with room (``AgencyBoard.choose``), preferring
one the case was not with last. A case is never placed beyond an
agency's capacity: ``choose`` only returns agencies with room, and
``after`` takes every placement and recall into the board, so the next case
of a batch sees what this one took.

**Commission** is the lender's cost on what is recovered while placed, at
the rate of the bucket group at placement (``commission``): never charged
to the borrower, never in the borrower's balance. 1,000.00 recovered at
15 % is 150.00.

**Performance** (``performance``) adds placements and their recoveries up
per agency and strategy: cases placed, balance placed, recovered, recovery
rate, commission, net recovered.

Nothing here reads a clock or a store: the business date and the figures
are given.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from states.delinquency import Bucket
from states.errors import DomainError
from states.money import ZERO, round_fen
from states.parse import InputError, parse_int, parse_operator, parse_text, shown
from states.vocabulary import AGENCY_PREFIX

COMMISSION_GROUPS = ("M4-M6", "M7+", "written_off")
WRITTEN_OFF_GROUP = "written_off"

#: The placement strategies a policy may name (champion and challenger).
BEST_RECOVERY = "best_recovery"  # the highest measured recovery rate among agencies with room
MOST_FREE_CAPACITY = "most_free_capacity"  # the largest share of its capacity still free
STRATEGIES = (BEST_RECOVERY, MOST_FREE_CAPACITY)
#: The strategy recorded on placements made from the policy's agency list (no registry in use).
ROTATION = "rotation"

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
NAME_RULE = "1 to 64 characters: letters, digits and . _ - (starting with a letter or digit)"
RATE_EXAMPLE = "M4-M6=0.15,M7+=0.25,written_off=0.35"


class AgencyError(DomainError):
    """An agency command the registry's rules refuse."""


# --------------------------------------------------------------------------
# the registry's values


def rate_group(bucket: Bucket | None, written_off: bool) -> str:
    """The commission group of a case at placement: written_off, M7+, else M4-M6."""
    if written_off:
        return WRITTEN_OFF_GROUP
    return "M7+" if bucket is Bucket.M7_PLUS else "M4-M6"


def parse_agency_name(value: object, field: str = "name") -> str:
    if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value.strip()):
        raise InputError(f"{field}: {shown(value)} is not an agency name; {NAME_RULE}")
    return value.strip()


def parse_rate(value: object, field: str) -> Decimal:
    """A commission rate: a decimal fraction between 0 and 1 (0.15 is 15 %)."""
    text = value.strip() if isinstance(value, str) else value
    if isinstance(text, Decimal):
        rate = text
    elif isinstance(text, str) and re.fullmatch(r"(?:0|1)(?:\.[0-9]{1,6})?|\.[0-9]{1,6}", text):
        rate = Decimal(text)
    else:
        raise InputError(f"{field}: {shown(value)} is not a rate; give a decimal fraction between 0 and 1, e.g. 0.15 for 15 %")
    if not rate.is_finite() or not ZERO <= rate <= 1:
        raise InputError(f"{field}: {shown(str(value))} must be between 0 and 1 (0.15 is 15 %)")
    return rate


def parse_rates(value: object, field: str = "rates") -> Mapping[str, Decimal]:
    """``M4-M6=0.15,M7+=0.25,written_off=0.35`` (or a mapping): a rate for every group, each once."""
    groups = ", ".join(COMMISSION_GROUPS)
    if isinstance(value, Mapping):
        pairs = [(str(k), v) for k, v in value.items()]
    elif isinstance(value, str) and value.strip():
        pairs = []
        for part in value.split(","):
            if "=" not in part:
                raise InputError(f"{field}: {shown(part.strip())} is not GROUP=RATE; write e.g. {RATE_EXAMPLE}")
            group, rate = part.split("=", 1)
            pairs.append((group.strip(), rate))
    else:
        raise InputError(f"{field}: {shown(value)} names no rates; write e.g. {RATE_EXAMPLE}")
    rates: dict[str, Decimal] = {}
    for group, rate in pairs:
        if group not in COMMISSION_GROUPS:
            raise InputError(f"{field}: unknown bucket group {shown(group)}; known groups: {groups}")
        if group in rates:
            raise InputError(f"{field}: {group} is given twice; give each group once")
        rates[group] = parse_rate(rate, f"{field} {group}")
    missing = [g for g in COMMISSION_GROUPS if g not in rates]
    if missing:
        raise InputError(f"{field}: no rate for {', '.join(missing)}; every group needs one: {groups}")
    return MappingProxyType({g: rates[g] for g in COMMISSION_GROUPS})


def rates_text(rates: Mapping[str, Decimal]) -> str:
    return ",".join(f"{g}={rates[g]}" for g in COMMISSION_GROUPS)


@dataclass(frozen=True)
class Agency:
    """A registry entry (never edited; ``active`` changes only by a recorded deactivation)."""

    name: str
    licence_no: str
    capacity: int
    rates: Mapping[str, Decimal]
    active: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "licence_no": self.licence_no,
            "capacity": self.capacity,
            "rates": {g: str(r) for g, r in self.rates.items()},
            "active": self.active,
        }


@dataclass(frozen=True)
class RegisterAgency:
    """Put an agency on the registry. Every field is read here, once; a bad one names itself."""

    action = "manage-agencies"

    name: str
    licence_no: str
    capacity: int
    rates: Mapping[str, Decimal]
    operator: str
    active: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", parse_agency_name(self.name, "name"))
        licence = parse_text(self.licence_no, "licence", max_chars=64)
        if any(ch.isspace() for ch in licence):
            raise InputError(f"licence: {shown(self.licence_no)} contains spaces; a licence number is one word")
        object.__setattr__(self, "licence_no", licence)
        object.__setattr__(self, "capacity", parse_int(self.capacity, "capacity", minimum=1, maximum=10_000_000))
        object.__setattr__(self, "rates", parse_rates(self.rates, "rates"))
        object.__setattr__(self, "operator", parse_operator(self.operator, "operator"))
        if not isinstance(self.active, bool):
            raise InputError(f"active: {shown(self.active)} must be true or false")

    def agency(self) -> Agency:
        return Agency(self.name, self.licence_no, self.capacity, self.rates, self.active)


@dataclass(frozen=True)
class DeactivateAgency:
    """Take an agency off new placements (what it holds stays until recalled)."""

    action = "manage-agencies"

    name: str
    operator: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", parse_agency_name(self.name, "name"))
        object.__setattr__(self, "operator", parse_operator(self.operator, "operator"))


def check_deactivation(agency: Agency) -> None:
    if not agency.active:
        raise AgencyError(f"agency {agency.name!r} is already inactive; nothing to change")


def check_registration(agency: Agency, registered: Iterable[Agency]) -> None:
    """An agency joins the registry under a name no other has in any letter case (``agency:north``
    and ``agency:NORTH`` would be two agencies to a reader, one to a collector), and with a licence
    number that is no other agency's (one licence, one agency)."""
    for known in registered:
        if known.name.casefold() == agency.name.casefold():
            raise AgencyError(
                f"agency: {agency.name!r} differs only in letter case from {known.name!r}, already registered "
                f"(licence {known.licence_no}); register it under another name"
            )
        if known.licence_no.casefold() == agency.licence_no.casefold():
            raise AgencyError(
                f"licence: {agency.licence_no!r} is already the licence of agency {known.name!r}; a licence number "
                "belongs to one agency (collectflow agency list shows each one's)"
            )


def check_contact_maker(by: str, registered: Iterable[str], rotation: Sequence[str]) -> None:
    """A contact said to be made by ``agency:NAME`` names an agency of the lender: one on the registry,
    or, while none is registered, one of the policy's rotation list (which then takes the placements)."""
    if not by.startswith(AGENCY_PREFIX):
        return
    name = by[len(AGENCY_PREFIX):]
    registered = sorted(registered)
    known = registered or list(rotation)
    if name in known:
        return
    where = (
        f"registered: {', '.join(registered)}" if registered
        else f"none is registered and the policy's rotation list has {', '.join(rotation)}"
    )
    raise AgencyError(f"by: agency {name!r} is not registered ({where}); list agencies with: collectflow agency list")


# --------------------------------------------------------------------------
# measuring and commission


def recovery_rate(recovered: Decimal, placed: Decimal) -> Decimal | None:
    """Recovered / balance placed, to four places (None when nothing was placed)."""
    if placed <= 0:
        return None
    return (recovered / placed).quantize(Decimal("0.0001"))


def commission(recovered: Decimal, rate: Decimal) -> Decimal:
    """The agency's commission on what it recovered: the lender's cost, to the fen (half up)."""
    return round_fen(recovered * rate)


def strategy_for(case_id: str, seed: str, challenger_share: int, champion: str, challenger: str) -> str:
    """The champion or the challenger for this case: a seeded hash of the case id, reproducible.

    ``challenger_share`` percent of case ids fall under the challenger (a bucket
    of 10,000 per case), whatever order they arrive in.
    """
    digest = hashlib.sha256(f"{seed}:{case_id}".encode()).digest()
    return challenger if int.from_bytes(digest[:8], "big") % 10_000 < challenger_share * 100 else champion


# --------------------------------------------------------------------------
# the board: what a placement chooses from, for one business date


@dataclass(frozen=True)
class AgencyStanding:
    """One active agency as a placement sees it on a business date."""

    name: str
    capacity: int
    placed: int  # cases it holds now
    rates: Mapping[str, Decimal]
    measured_rate: Decimal | None = None  # None: no history in the window (the portfolio average is used)

    @property
    def capacity_left(self) -> int:
        return max(self.capacity - self.placed, 0)


@dataclass(frozen=True)
class Choice:
    agency: str
    strategy: str
    rate_group: str
    commission_rate: Decimal


@dataclass(frozen=True)
class AgencyBoard:
    """The active agencies for one business date, immutable; ``after`` gives the board after events."""

    business_date: date
    standings: tuple[AgencyStanding, ...]
    portfolio_rate: Decimal = ZERO
    champion: str = BEST_RECOVERY
    challenger: str = MOST_FREE_CAPACITY
    challenger_share: int = 20
    seed: str = "collectflow"
    _index: Mapping[str, int] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        names = [s.name for s in self.standings]
        if len(set(names)) != len(names):
            raise AgencyError(f"agency board: an agency is listed twice in {names}")
        for strategy in (self.champion, self.challenger):
            if strategy not in STRATEGIES:
                raise AgencyError(f"agency strategy {strategy!r} is not one of: {', '.join(STRATEGIES)}")
        object.__setattr__(self, "_index", {name: n for n, name in enumerate(names)})

    @classmethod
    def for_policy(cls, business_date: date, standings: Iterable[AgencyStanding], portfolio_rate: Decimal, policy: Any) -> AgencyBoard:
        """The board under a collection policy's strategies, share and seed."""
        return cls(
            business_date,
            tuple(sorted(standings, key=lambda s: s.name)),
            portfolio_rate,
            policy.agency_champion,
            policy.agency_challenger,
            policy.agency_challenger_share,
            policy.agency_split_seed,
        )

    def standing(self, name: str) -> AgencyStanding | None:
        n = self._index.get(name)
        return None if n is None else self.standings[n]

    def rate_of(self, standing: AgencyStanding) -> Decimal:
        return self.portfolio_rate if standing.measured_rate is None else standing.measured_rate

    def strategy_for(self, case_id: str) -> str:
        return strategy_for(case_id, self.seed, self.challenger_share, self.champion, self.challenger)

    def choose(self, case_id: str, group: str, avoid: str | None = None) -> Choice | None:
        """The agency this case goes to under its strategy, or None when no active agency has room.

        An agency other than ``avoid`` (the one the case was with last) is
        preferred; the same one again only when no other has room (a renewal).
        """
        strategy = self.strategy_for(case_id)
        with_room = [s for s in self.standings if s.capacity_left > 0]
        others = [s for s in with_room if s.name != avoid] or with_room
        if not others:
            return None
        if strategy == BEST_RECOVERY:
            best = min(others, key=lambda s: (-self.rate_of(s), -s.capacity_left, s.name))
        else:
            best = min(others, key=lambda s: (-Decimal(s.capacity_left) / s.capacity, -self.rate_of(s), s.name))
        return Choice(best.name, strategy, group, best.rates[group])

    def after(self, events: Iterable[Any]) -> AgencyBoard:
        """The board once these events happened: a placement takes a place, a recall frees one."""
        placed = {s.name: s.placed for s in self.standings}
        changed = False
        for event in events:
            kind = getattr(event, "type", "")
            if kind in ("PlacedWithAgency", "RecalledFromAgency") and event.agency_id in placed:
                placed[event.agency_id] += 1 if kind == "PlacedWithAgency" else -1
                changed = True
        if not changed:
            return self
        return replace(self, standings=tuple(replace(s, placed=max(placed[s.name], 0)) for s in self.standings))

    def as_rows(self) -> list[dict[str, Any]]:
        return [
            {
                "agency": s.name,
                "capacity": s.capacity,
                "placed": s.placed,
                "capacity_left": s.capacity_left,
                "measured_rate": None if s.measured_rate is None else str(s.measured_rate),
                "rate_used": str(self.rate_of(s)),
            }
            for s in self.standings
        ]


# --------------------------------------------------------------------------
# performance


@dataclass(frozen=True)
class PlacementFigures:
    """One placement with what it recovered (the report's input, from the store)."""

    agency: str
    strategy: str
    balance_placed: Decimal
    recovered: Decimal
    commission: Decimal


@dataclass(frozen=True)
class Performance:
    agency: str
    strategy: str
    cases_placed: int
    balance_placed: Decimal
    recovered: Decimal
    commission: Decimal

    @property
    def recovery_rate(self) -> Decimal | None:
        return recovery_rate(self.recovered, self.balance_placed)

    @property
    def net_recovered(self) -> Decimal:
        return self.recovered - self.commission

    def as_dict(self) -> dict[str, Any]:
        rate = self.recovery_rate
        return {
            "agency": self.agency,
            "strategy": self.strategy,
            "cases_placed": self.cases_placed,
            "balance_placed": str(self.balance_placed),
            "recovered": str(self.recovered),
            "recovery_rate": None if rate is None else str(rate),
            "commission": str(self.commission),
            "net_recovered": str(self.net_recovered),
        }


ALL = "all"


def performance(placements: Sequence[PlacementFigures]) -> tuple[Performance, ...]:
    """Per agency and strategy, then per agency (strategy ``all``) and per strategy (agency ``all``),
    then the whole: the rows of the agency report, in name order."""
    sums: dict[tuple[str, str], list] = {}
    for p in placements:
        for key in ((p.agency, p.strategy), (p.agency, ALL), (ALL, p.strategy), (ALL, ALL)):
            row = sums.setdefault(key, [0, ZERO, ZERO, ZERO])
            row[0] += 1
            row[1] += p.balance_placed
            row[2] += p.recovered
            row[3] += p.commission
    order = sorted(sums, key=lambda k: (k[0] == ALL, k[0], k[1] == ALL, k[1]))
    return tuple(Performance(a, s, *sums[(a, s)]) for a, s in order)
