"""What every ``collectflow`` command shares: one-line failures, dates, JSON and tables, the app.

A mistake in the input is reported in one line naming the bad value
(``fail``); ``--json`` prints ``print_json``'s form; tables fit the
terminal (``print_rows``).
"""

from __future__ import annotations

import functools
import json
import sys
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


#: The fields of what a command builds that an option fills under another name; every other field is
#: named as its option (``payment_id`` is ``--payment-id``, ``as_of`` is ``--as-of``).
FILLED_BY = {
    "received_on": "--on", "made_on": "--on", "filed_on": "--on", "entered_on": "--on", "recorded_on": "--on",
    "business_date": "--date", "promised_on": "--by", "contacted_at": "--at", "visited_at": "--at", "licence_no": "--licence",
}


def option_names(params: Sequence) -> dict[str, str]:
    """field -> the option of ``params`` (a command's Click parameters) that gives it; only options the command has."""
    typed = {opt for param in params if not getattr(param, "hidden", False) for opt in getattr(param, "opts", ()) if opt.startswith("--")}
    names = {opt[2:].replace("-", "_"): opt for opt in typed}
    names.update({field: option for field, option in FILLED_BY.items() if option in typed})
    return names


def in_users_terms(command) -> None:
    """Make a command's refusals name what the user typed, not what the code calls it.

    A refusal raised anywhere below the command (the parser, a handler, the domain) names the field of
    what it builds (``promised_on: ...``) and the action the roster checks (``write-off-case needs ...``);
    on the CLI they become the option (``--by: ...``) and the command (``collectflow write-off needs ...``).
    The root command group applies it to every command (``CollectflowGroup``): one rule, no list per command."""
    from states.errors import UserError
    from states.parse import InputError, renamed

    names = option_names(command.params)
    callback = command.callback

    @functools.wraps(callback)
    def run(*args, **kwargs):
        try:
            return callback(*args, **kwargs)
        except UserError as exc:
            action = getattr(exc, "action", "")
            message = renamed(str(exc), {**names, action: _command_path()} if action else names)
            if message == str(exc):
                raise
            raise InputError(message) from None

    command.callback = run


def _command_path() -> str:
    """The command as the user typed it, as the messages name commands: ``collectflow loans import``
    (not the program's path or ``python -m flows.cli``)."""
    try:
        from typer._click.globals import get_current_context
    except ImportError:  # pragma: no cover - Typer before 0.29
        from click import get_current_context

    ctx, words = get_current_context(), []
    while ctx.parent is not None:
        words.append(ctx.info_name)
        ctx = ctx.parent
    return " ".join(["collectflow", *reversed(words)])


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
