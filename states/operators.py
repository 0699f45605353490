"""Who may do what: the operator roster's rule.

An operator id is always checked for its form (``states.parse.parse_operator``).
Without a roster (the embedded default) any well-formed id may act. Once a
roster exists, only operators on it, and active, may act, and each action
needs a role that may take it: collectors work cases; writing a case off and
reading personal data in the clear need a supervisor (an auditor may read,
never change anything). The system's own actor (``system``, what an import
books with when no operator is given) acts only while there is no roster.
"""

from __future__ import annotations

from dataclasses import dataclass

from states.errors import DomainError
from states.events import SYSTEM
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
            f"(a supervisor adds it with: collectflow operators add {operator_id} --role {least})",
            action,
        )
    if not entry.active:
        raise NotAllowed(f"operator: {operator_id!r} is deactivated on the operator roster; {needs}", action)
    if entry.role not in allowed:
        raise NotAllowed(f"operator: {operator_id!r} is {_a(entry.role.value)}; {action} needs {_a(roles)}", action)


def _a(noun: str) -> str:
    """``noun`` with its indefinite article: "an auditor", "a collector"."""
    return f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"
