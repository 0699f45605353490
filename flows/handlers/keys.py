"""The use cases behind ``collectflow keys``: rotate the personal-data key, show the keys. No Prefect here.

    rotate(app, operator=..., on=...)   who (checked against the roster: a supervisor) and when
                                        (never in the future), then ``models.keys.rotate_keys``
    status(app)                         the active key, the retired ones, a rotation left half-way
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from flows.bootstrap import App
from flows.handlers.cases import check_not_in_future, check_operator
from models.keys import KeyStatus, Rotation, key_status, rotate_keys
from states.parse import parse_operator


def rotate(app: App, *, operator: str, on: date | None = None, fault: Callable[[str, int], None] | None = None) -> Rotation:
    operator = parse_operator(operator)
    check_operator(app.store, operator, "rotate-keys")
    day = on or app.today()
    check_not_in_future({"date": day}, app.today())
    return rotate_keys(app.engine, app.settings, operator=operator, on=day, fault=fault)


def status(app: App) -> KeyStatus:
    return key_status(app.engine, app.settings)
