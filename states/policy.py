"""The operator's collection policy: escalation thresholds, holds, rates and switches.

Every number in DOMAIN.md §2, §3, §7 and §8 that an operator may change lives
here, with the documented default. A policy is validated when it is built,
however it is built, so an invalid one never reaches the state machine; the
error names the field, the value given and what is accepted.

Policies are stored as plain data (``as_dict``) and versioned by
``fingerprint``. ``from_toml`` reads the operator's file
(docs/policy.example.toml shows every field).
"""

from __future__ import annotations

from states.errors import UserError

import hashlib
import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any

from states.agency import COMMISSION_GROUPS, STRATEGIES
from states.allocation import AllocationOrder
from states.defaults import DEFAULT_PENALTY_UPLIFT
from states.loan import MAX_PENALTY_UPLIFT


class PolicyError(UserError):
    """A policy setting that is missing, unknown or out of range."""


# The escalation thresholds in stage order; each must exceed the one before
# (write-off may coincide with litigation).
_THRESHOLDS = (
    "overdue_at_dpd",
    "phone_at_dpd",
    "visit_at_dpd",
    "outsource_at_dpd",
    "litigation_at_dpd",
    "write_off_at_dpd",
)
# Counts of days or promises where zero would switch the rule off by accident.
_POSITIVE_INTS = (
    "overdue_at_dpd",
    "promise_max_days",
    "broken_promises_to_skip_hold",
    "placement_days",
    "max_pause_days",
    "credit_report_notice_days",
    "agency_measure_days",
    "placement_retry_days",
)
_NON_NEGATIVE_INTS = (*(name for name in _THRESHOLDS if name not in _POSITIVE_INTS), "backdating_days")
_BOOLS = ("attorney_fee_recoverable", "month_end_posting")
# field -> (lowest, highest) accepted, inclusive; None for no upper bound.
_DECIMAL_RANGES: dict[str, tuple[Decimal, Decimal | None]] = {
    "litigation_min_claim": (Decimal("0"), None),
    "litigation_expected_recovery_rate": (Decimal("0"), Decimal("1")),
    "penalty_uplift": (Decimal("0"), MAX_PENALTY_UPLIFT),
}
_DEFAULT_COMMISSION_RATES = {
    "M4-M6": Decimal("0.15"),
    "M7+": Decimal("0.25"),
    "written_off": Decimal("0.35"),
}


@dataclass(frozen=True)
class CollectionPolicy:
    """One collection policy; defaults are DOMAIN.md's default rule set."""

    # §2 escalation: the DPD from which each stage may be entered.
    overdue_at_dpd: int = 1
    phone_at_dpd: int = 4
    visit_at_dpd: int = 31
    outsource_at_dpd: int = 91
    litigation_at_dpd: int = 181
    write_off_at_dpd: int = 361
    # §2 litigation is worth it only for a claim this large, and only when
    # claim x expected recovery rate exceeds the expected legal cost.
    litigation_min_claim: Decimal = Decimal("5000")
    litigation_expected_recovery_rate: Decimal = Decimal("0.40")
    # §2 promises to pay, pauses and agency placements.
    promise_max_days: int = 14
    broken_promises_to_skip_hold: int = 2
    placement_days: int = 90
    max_pause_days: int = 60
    # §2/§6 field visits: a visit is due this many days after the case enters the visit stage (or a
    # failed one); this many failed (or overdue) visits let a case go to an agency from the visit DPD on.
    visit_due_days: int = 7
    failed_visits_to_outsource: int = 2
    # §3 penalty rate = contract rate x (1 + uplift), unless the contract says otherwise.
    penalty_uplift: Decimal = DEFAULT_PENALTY_UPLIFT
    # §4 how payments are applied, unless the contract says otherwise.
    allocation_order: AllocationOrder = AllocationOrder.CIVIL_CODE_561
    # §7 default agency commission by bucket group at placement.
    commission_rates: Mapping[str, Decimal] = field(
        default_factory=lambda: MappingProxyType(dict(_DEFAULT_COMMISSION_RATES)),
        hash=False,
    )
    # §5 whether attorney fees are claimed from the borrower in court.
    attorney_fee_recoverable: bool = True
    # Post accrued charges to each case at every month-end, not only on events.
    month_end_posting: bool = True
    # §8 the credit-report pre-notice goes out at least this many days before the
    # month end that carries the first negative record.
    credit_report_notice_days: int = 7
    # §7 agencies that take placements, in rotation (their ids).
    agencies: tuple[str, ...] = ("AGENCY-POOL",)
    # §7 with agencies on the registry (``collectflow agency add``) the list above is not used: a
    # placement goes to an active agency with room, chosen by the case's strategy (``states.agency``).
    # A seeded hash of the case id puts ``agency_challenger_share`` percent of the cases under the
    # challenger, the rest under the champion; recovery rates are measured over ``agency_measure_days``.
    # A case no agency has room for is tried again ``placement_retry_days`` later.
    agency_champion: str = "best_recovery"
    agency_challenger: str = "most_free_capacity"
    agency_challenger_share: int = 20
    agency_split_seed: str = "collectflow"
    agency_measure_days: int = 90
    placement_retry_days: int = 7
    # §9 a payment dated more than this many days before the case's last closed date needs an
    # operator's back-dating reason (within it, it is value-dated: ``states.value_dating``).
    backdating_days: int = 31
    # The collection teams and their share (percent) of the daily call list (``states.worklist``).
    teams: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({"collectors": 100}), hash=False)

    def __post_init__(self) -> None:
        for name in _POSITIVE_INTS:
            self._set(name, _integer(name, getattr(self, name), minimum=1))
        for name in _NON_NEGATIVE_INTS:
            self._set(name, _integer(name, getattr(self, name), minimum=0))
        for earlier, later in zip(_THRESHOLDS, _THRESHOLDS[1:]):
            low, high = getattr(self, earlier), getattr(self, later)
            may_coincide = later == "write_off_at_dpd"
            if high < low or (high == low and not may_coincide):
                relation = "at least" if may_coincide else "greater than"
                raise PolicyError(
                    f"{later}: must be {relation} {earlier} ({low}) so stages escalate "
                    f"in order, got {high}"
                )
        for name, (lowest, highest) in _DECIMAL_RANGES.items():
            self._set(name, _decimal(name, getattr(self, name), lowest, highest))
        for name in _BOOLS:
            value = getattr(self, name)
            if not isinstance(value, bool):
                raise PolicyError(f"{name}: must be true or false, got {value!r}")
        self._set("allocation_order", _allocation_order(self.allocation_order))
        self._set("commission_rates", _commission_rates(self.commission_rates))
        self._set("agencies", _agencies(self.agencies))
        for name in ("agency_champion", "agency_challenger"):
            if getattr(self, name) not in STRATEGIES:
                raise PolicyError(f"{name}: {getattr(self, name)!r} is not one of: {', '.join(STRATEGIES)}")
        share = self.agency_challenger_share
        if isinstance(share, bool) or not isinstance(share, int) or not 0 <= share <= 100:
            raise PolicyError(f"agency_challenger_share: must be a whole percent between 0 and 100, got {share!r}")
        if not isinstance(self.agency_split_seed, str) or not self.agency_split_seed.strip():
            raise PolicyError(f"agency_split_seed: must be non-empty text, got {self.agency_split_seed!r}")
        self._set("teams", _teams(self.teams))

    def stage_thresholds(self) -> tuple[int, ...]:
        """Every DPD at which some stage rule can start to apply, ascending."""
        return tuple(sorted({getattr(self, name) for name in _THRESHOLDS}))

    def _set(self, name: str, value: object) -> None:
        object.__setattr__(self, name, value)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> CollectionPolicy:
        """Build from plain data; absent fields keep their defaults, unknown keys are refused.

        A partial ``commission_rates`` table overrides only the groups it names.
        """
        if not isinstance(data, Mapping):
            raise PolicyError(f"policy: expected a table of settings, got {data!r}")
        known = [f.name for f in fields(cls)]
        for key in data:
            if key not in known:
                raise PolicyError(f"{key}: unknown policy setting; known settings: {', '.join(known)}")
        values = dict(data)
        if "commission_rates" in values:
            given = values["commission_rates"]
            if not isinstance(given, Mapping):
                raise PolicyError(
                    f"commission_rates: must be a table of bucket group -> rate, got {given!r}"
                )
            values["commission_rates"] = {**_DEFAULT_COMMISSION_RATES, **given}
        return cls(**values)

    @classmethod
    def from_toml(cls, text: str) -> CollectionPolicy:
        """Read a policy file's text. TOML has no decimal type, so a rate written as a
        bare number (``penalty_uplift = 0.5``) arrives as a float and is converted via
        its shortest repr, ``str(0.5) == "0.5"``, which gives back exactly the digits
        written for any literal of up to 15 significant digits. Quoted decimals
        (``"0.5"``) are accepted too and are exact whatever their length."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise PolicyError(f"policy file is not valid TOML: {exc}") from None
        return cls.from_mapping(data)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able data: integers, booleans, and decimals as canonical strings."""
        result: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Decimal):
                value = _decimal_text(value)
            elif isinstance(value, AllocationOrder):
                value = value.value
            elif f.name == "agencies":
                value = list(value)
            elif f.name == "commission_rates":
                value = {group: _decimal_text(rate) for group, rate in value.items()}
            elif f.name == "teams":
                value = dict(value)
            result[f.name] = value
        return result

    def to_toml(self) -> str:
        """The policy as TOML text that ``from_toml`` reads back unchanged (decimals quoted, exact)."""
        lines = []
        data = self.as_dict()
        tables = {name: data.pop(name) for name in ("commission_rates", "teams")}
        for name, value in data.items():
            lines.append(f"{name} = {_toml_value(value)}")
        for table, entries in tables.items():
            lines.append("")
            lines.append(f"[{table}]")
            for key, value in entries.items():
                lines.append(f"{json.dumps(key)} = {_toml_value(value)}")
        return "\n".join(lines) + "\n"

    def fingerprint(self) -> str:
        """sha256 hex of the canonical JSON of ``as_dict``: equal policies, equal fingerprints."""
        canonical = json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _agencies(value: object) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)) or not value:
        raise PolicyError(f"agencies: must be a non-empty list of agency ids, got {value!r}")
    if any(not isinstance(a, str) or not a.strip() for a in value) or len(set(value)) != len(value):
        raise PolicyError(f"agencies: ids must be distinct non-empty strings, got {list(value)!r}")
    return tuple(value)


def _teams(value: object) -> Mapping[str, int]:
    """Team name -> share of the call list in percent; the shares add up to 100."""
    if not isinstance(value, Mapping) or not value:
        raise PolicyError(f"teams: must be a table of team name -> share in percent, got {value!r}")
    for name, share in value.items():
        if not isinstance(name, str) or not name.strip():
            raise PolicyError(f"teams: team names must be non-empty text, got {name!r}")
        _integer(f"teams.{name}", share, minimum=1)
    total = sum(value.values())
    if total != 100:
        raise PolicyError(f"teams: the shares must add up to 100 (percent of the call list), they add up to {total}")
    return MappingProxyType(dict(value))


def _integer(name: str, value: object, *, minimum: int) -> int:
    kind = "positive" if minimum == 1 else "non-negative"
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise PolicyError(f"{name}: must be a {kind} integer, got {value!r}")
    return value


def _decimal(name: str, value: object, lowest: Decimal, highest: Decimal | None) -> Decimal:
    if isinstance(value, bool):
        raise PolicyError(f"{name}: {value!r} is not a decimal number")
    if isinstance(value, float):
        # Only TOML puts floats here (it has no decimal type); str() gives the digits written.
        value = str(value)
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, (int, str)):
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            raise PolicyError(f"{name}: {value!r} is not a decimal number") from None
    else:
        raise PolicyError(f"{name}: {value!r} is not a decimal number")
    if not number.is_finite():
        raise PolicyError(f"{name}: {value!r} is not a finite decimal number")
    if number < lowest or (highest is not None and number > highest):
        accepted = f"between {lowest} and {highest}" if highest is not None else f"at least {lowest}"
        raise PolicyError(f"{name}: must be {accepted}, got {value}")
    return number


def _allocation_order(value: object) -> AllocationOrder:
    try:
        return AllocationOrder(value)
    except ValueError:
        accepted = ", ".join(o.value for o in AllocationOrder)
        raise PolicyError(f"allocation_order: {value!r} is not one of: {accepted}") from None


def _commission_rates(value: object) -> Mapping[str, Decimal]:
    if not isinstance(value, Mapping):
        raise PolicyError(f"commission_rates: must be a table of bucket group -> rate, got {value!r}")
    groups = ", ".join(COMMISSION_GROUPS)
    for group in value:
        if group not in COMMISSION_GROUPS:
            raise PolicyError(f"commission_rates: unknown bucket group {group!r}; known groups: {groups}")
    missing = [group for group in COMMISSION_GROUPS if group not in value]
    if missing:
        raise PolicyError(f"commission_rates: no rate for {', '.join(missing)}; every group needs one: {groups}")
    rates = {
        group: _decimal(f"commission_rates.{group}", value[group], Decimal("0"), Decimal("1"))
        for group in COMMISSION_GROUPS
    }
    return MappingProxyType(rates)


def _decimal_text(value: Decimal) -> str:
    # One spelling per number (0.50 and 0.5 alike), so equal policies share a fingerprint.
    if value == 0:
        return "0"
    return format(value.normalize(), "f")


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return json.dumps(value)
    return json.dumps(str(value))
