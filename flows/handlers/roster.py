"""The use cases of the operator roster: change it (add, change a role, reactivate, deactivate), read it
and its history. No Prefect here; every entry point that changes the roster calls ``change_roster``.

    change_roster(cmd, app)        AddOperator / DeactivateOperator: who asks is checked by
                                   ``states.operators.authorise`` (an active supervisor once anyone on
                                   the roster is active) and the change by ``roster_change``, both
                                   inside the store's transaction that writes it with its record
    roster(app) / history(app, operator_id=None)   the roster; its changes, oldest first

The check runs in the store's transaction, against the roster read there, so two supervisors
deactivating each other at once cannot leave the roster without one.
"""

from __future__ import annotations

from typing import Any

from flows.bootstrap import App
from states.operators import Operator, OperatorChange, RosterCommand
from states.parse import parse_operator

HISTORY_COLUMNS = ("change_id", "recorded_at", "operator", "change", "role_before", "role_after", "actor")


def change_roster(cmd: RosterCommand, app: App) -> OperatorChange:
    return app.store.change_roster(cmd)


def roster(app: App) -> list[Operator]:
    return app.store.operators()


def history(app: App, operator_id: str | None = None) -> list[dict[str, Any]]:
    """The roster's changes, oldest first; only ``operator_id``'s when given."""
    return app.store.operator_changes(None if operator_id is None else parse_operator(operator_id, "operator_id"))
