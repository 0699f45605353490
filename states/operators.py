"""Who may do what: the operator roster's rule.

An operator id is always checked for its form (``states.parse.parse_operator``).
Without a roster (the embedded default) any well-formed id may act. Once a
roster exists, only operators on it, and active, may act, and each action
needs a role that may take it: collectors work cases; writing a case off and
reading personal data in the clear need a supervisor (an auditor may read,
never change anything). The system's own actor (``system``, what an import
books with when no operator is given) acts only while there is no roster.

The roster itself changes by ``AddOperator`` and ``DeactivateOperator``, judged by
``roster_change`` against the whole roster: once any operator on it is active, only
an active supervisor changes it; on a roster with no one active (bootstrapping) the
first operator added is a supervisor, with no acting operator needed; and the last
active supervisor is never deactivated or given another role (no one could change
the roster again). Each change is an ``OperatorChange``, kept append-only beside
the roster (who, what, the role before and after).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from states.errors import DomainError
from states.events import SYSTEM
from states.parse import parse_enum, parse_operator
from states.vocabulary import OperatorRole

COLLECTOR, SUPERVISOR, AUDITOR = OperatorRole.COLLECTOR, OperatorRole.SUPERVISOR, OperatorRole.AUDITOR
LEAST_PRIVILEGED_FIRST = (COLLECTOR, AUDITOR, SUPERVISOR)  # the role a refusal suggests adding: the least that may act

#: action -> the roles that may take it (actions are the commands' names, plus the reads).
MAY: dict[str, frozenset[OperatorRole]] = {
    "record-payment": frozenset({COLLECTOR, SUPERVISOR}),
    "record-promise": frozenset({COLLECTOR, SUPERVISOR}),
    "record-contact": frozenset({COLLECTOR, SUPERVISOR}),
    "pause-case": frozenset({COLLECTOR, SUPERVISOR}),
    "report-visit": frozenset({COLLECTOR, SUPERVISOR}),
    "resume-case": frozenset({COLLECTOR, SUPERVISOR}),
    "write-off-case": frozenset({SUPERVISOR}),
    "file-lawsuit": frozenset({SUPERVISOR}),
    "enter-judgment": frozenset({COLLECTOR, SUPERVISOR}),
    "record-execution": frozenset({COLLECTOR, SUPERVISOR}),
    "recall-agency": frozenset({SUPERVISOR}),
    "manage-agencies": frozenset({SUPERVISOR}),
    "import-loans": frozenset({SUPERVISOR}),
    "reveal-personal-data": frozenset({SUPERVISOR, AUDITOR}),
    "rotate-keys": frozenset({SUPERVISOR}),
    "rebuild-case": frozenset({SUPERVISOR}),
    "add-operator": frozenset({SUPERVISOR}),
    "deactivate-operator": frozenset({SUPERVISOR}),
}


@dataclass(frozen=True)
class Operator:
    operator_id: str
    role: OperatorRole
    active: bool = True


class NotAllowed(DomainError):
    """An operator the roster does not let take this action; ``action`` is how the message names it
    (an entry point that names it otherwise, as the CLI its commands, renames it)."""

    def __init__(self, message: str, action: str = "") -> None:  # a default: an exception is rebuilt from its message alone (pickle)
        super().__init__(message)
        self.action = action


def authorise(operator_id: str, action: str, entry: Operator | None, *, roster_in_use: bool) -> None:
    """Refuse ``action`` by ``operator_id`` unless the roster allows it (no roster: allowed).

    Each refusal names the operator and who may take the action: an active operator of its roles."""
    if not roster_in_use:
        return
    allowed = MAY[action]
    roles = " or ".join(sorted(role.value for role in allowed))
    needs = f"{action} needs an active {roles} on the operator roster"
    if operator_id == SYSTEM:
        raise NotAllowed(f"operator: none given, and {needs}; give your operator id", action)
    if entry is None:
        least = next(role.value for role in LEAST_PRIVILEGED_FIRST if role in allowed)
        raise NotAllowed(
            f"operator: {operator_id!r} is not on the operator roster; {needs} "
            f"(a supervisor adds it with: collectflow operators add {operator_id} --role {least} --operator SUPERVISOR)",
            action,
        )
    if not entry.active:
        raise NotAllowed(f"operator: {operator_id!r} is deactivated on the operator roster; {needs}", action)
    if entry.role not in allowed:
        raise NotAllowed(f"operator: {operator_id!r} is {_a(entry.role.value)}; {action} needs {_a(roles)}", action)


def _a(noun: str) -> str:
    """``noun`` with its indefinite article: "an auditor", "a collector"."""
    return f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"


# ---------------------------------------------------------------------------
# changing the roster


class ChangeKind(StrEnum):
    """What a row of the roster's history records."""

    ADDED = "added"
    ROLE_CHANGED = "role_changed"
    DEACTIVATED = "deactivated"
    REACTIVATED = "reactivated"
    #: an operator on the roster when its history began (migration 0019): its role then, who put it there unknown
    ALREADY_ON_ROSTER = "already_on_roster"


@dataclass(frozen=True)
class AddOperator:
    """Put an operator on the roster, change its role, or reactivate it; ``operator`` is who does it
    (None: no one, allowed only while no one on the roster is active; recorded as the system's actor)."""

    action = "add-operator"

    operator_id: str
    role: OperatorRole
    operator: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "operator_id", parse_operator(self.operator_id, "operator_id"))
        object.__setattr__(self, "role", parse_enum(OperatorRole, self.role, "role"))
        if self.operator is not None:
            object.__setattr__(self, "operator", parse_operator(self.operator, "operator"))

    @property
    def actor(self) -> str:
        return SYSTEM if self.operator is None else self.operator


@dataclass(frozen=True)
class DeactivateOperator:
    """Take an operator off duty (its id stays in the history); ``operator`` is who does it."""

    action = "deactivate-operator"

    operator_id: str
    operator: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "operator_id", parse_operator(self.operator_id, "operator_id"))
        if self.operator is not None:
            object.__setattr__(self, "operator", parse_operator(self.operator, "operator"))

    @property
    def actor(self) -> str:
        return SYSTEM if self.operator is None else self.operator


RosterCommand = AddOperator | DeactivateOperator


@dataclass(frozen=True)
class OperatorChange:
    """One change of the roster: the operator's role before (None: it was not on it) and after, and
    whether it is active after; ``actor`` made it."""

    operator_id: str
    change: ChangeKind
    role_before: OperatorRole | None
    role_after: OperatorRole
    active: bool
    actor: str

    def entry(self) -> Operator:
        """The operator's roster entry after the change."""
        return Operator(self.operator_id, self.role_after, self.active)


class RosterRefused(DomainError):
    """A roster change the roster's rules refuse (not who asks: that is ``NotAllowed``)."""


def roster_change(cmd: RosterCommand, roster: Sequence[Operator]) -> OperatorChange:
    """The change ``cmd`` makes to ``roster`` (every entry, active or not), or the refusal that names why not."""
    entries = {entry.operator_id: entry for entry in roster}
    in_use = any(entry.active for entry in roster)
    authorise(cmd.actor, cmd.action, entries.get(cmd.actor), roster_in_use=in_use)
    entry = entries.get(cmd.operator_id)
    last_supervisor = (
        entry is not None and entry.active and entry.role is SUPERVISOR
        and sum(1 for e in roster if e.active and e.role is SUPERVISOR) == 1
    )
    if isinstance(cmd, DeactivateOperator):
        if entry is None:
            raise RosterRefused(f"operator {cmd.operator_id!r} is not on the operator roster; nothing to deactivate (collectflow operators list)")
        if not entry.active:
            raise RosterRefused(f"operator {cmd.operator_id!r} is already inactive; nothing to change (collectflow operators list)")
        if last_supervisor:
            raise RosterRefused(
                f"operator {cmd.operator_id!r} is the last active supervisor on the roster; deactivated, no one could change "
                f"the roster again: add another supervisor first (collectflow operators add ID --role supervisor --operator {cmd.actor})"
            )
        return OperatorChange(cmd.operator_id, ChangeKind.DEACTIVATED, entry.role, entry.role, False, cmd.actor)
    if not in_use and cmd.role is not SUPERVISOR:
        raise RosterRefused(
            f"role: {cmd.role.value!r} for the first operator on the roster; the first is a supervisor, or no one could "
            f"ever change the roster: add a supervisor first (collectflow operators add ID --role supervisor)"
        )
    if entry is None:
        return OperatorChange(cmd.operator_id, ChangeKind.ADDED, None, cmd.role, True, cmd.actor)
    if not entry.active:
        return OperatorChange(cmd.operator_id, ChangeKind.REACTIVATED, entry.role, cmd.role, True, cmd.actor)
    if entry.role is cmd.role:
        raise RosterRefused(f"operator {cmd.operator_id!r} is already an active {cmd.role.value}; nothing to change (collectflow operators list)")
    if last_supervisor:
        raise RosterRefused(
            f"role: {cmd.role.value!r} for {cmd.operator_id!r}, the last active supervisor on the roster, would leave no one to "
            f"change the roster: add another supervisor first (collectflow operators add ID --role supervisor --operator {cmd.actor})"
        )
    return OperatorChange(cmd.operator_id, ChangeKind.ROLE_CHANGED, entry.role, cmd.role, True, cmd.actor)
