"""What every ``collectflow`` command shares: one-line failures, dates, JSON and tables, the app.

A mistake in the input is reported in one line naming the bad value
(``fail``); ``--json`` prints ``print_json``'s form; tables fit the
terminal (``print_rows``).
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from datetime import date
from typing import Optional, Sequence

from rich.console import Console

from flows import report

console = Console()
err = Console(stderr=True)


def fail(message: str, code: int = 2) -> None:
    """One unwrapped line on stderr, whatever the terminal width (a long path is never cut)."""
    sys.stderr.write(f"error: {' '.join(message.split())}\n")
    raise SystemExit(code)


def one_output(**chosen: bool) -> None:
    """Refuse two output forms at once (``--json`` and ``--csv``): each would silently win over the other."""
    given = [f"--{name}" for name, on in chosen.items() if on]
    if len(given) > 1:
        fail(f"{' and '.join(given)}: give one of them, not both (without either, a table)")


def options(**names: str) -> Callable:
    """A command's refusals name the options the user typed, not the fields of what it builds
    (``received_on`` -> ``--on``): ``@options(received_on="--on")`` under ``@app.command``."""
    from states.errors import UserError
    from states.parse import InputError, renamed

    def wrap(command: Callable) -> Callable:
        @functools.wraps(command)
        def run(*args, **kwargs):
            try:
                return command(*args, **kwargs)
            except UserError as exc:
                message = renamed(str(exc), names)
                if message == str(exc):
                    raise
                raise InputError(message) from None

        return run

    return wrap


def parse_date(value: Optional[str], name: str) -> Optional[date]:
    from states.parse import parse_date as parse

    return None if value is None else parse(value, name)


def current_app():
    from flows import runtime

    return runtime.app()


def iso(day: Optional[date]) -> Optional[str]:
    return None if day is None else day.isoformat()


def print_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def as_of_or_today(as_of: Optional[str]) -> date:
    """--as-of, or today in the lender's time zone; never after today."""
    from flows.handlers.cases import check_not_in_future

    today = current_app().today()
    day = parse_date(as_of, "--as-of") or today
    check_not_in_future({"--as-of": day}, today)
    return day


def print_rows(rows: list[dict], columns: Sequence[str], *, as_json: bool, as_csv: bool, title: str) -> None:
    if as_json:
        print_json(rows)
    elif as_csv:
        import csv

        writer = csv.DictWriter(sys.stdout, list(columns), extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    else:
        console.print(report.rows_table(rows, columns, title, console.width))


def run_command(cmd) -> list:
    from flows.handlers.cases import handle

    events = handle(cmd, current_app())
    if not events:
        console.print(f"nothing recorded: this {cmd.action.split('-')[1]} was already recorded", highlight=False)
    for e in events:
        console.print(report.event_line(e), highlight=False)
    return events
