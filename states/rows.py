"""A file's row refused, column by column: the shared grammar of every file's row rules.

A row rule (``states.loanfile``, ``states.paymentfile``) reads each column's
value as given (``cell_text``), parses it with the parser every other entry
point uses (``parsed`` around a ``states.parse`` function) and, when it is
refused, records a ``RowError``: the row, the column, the value as shown
(masked for a personal column) and what is accepted. ``RowRejected`` carries
every problem of one row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from states.parse import InputError
from states.parse import shown as quoted


@dataclass(frozen=True)
class Column:
    """One column of a file. ``read(text, name)`` turns a value as given into the field's value."""

    name: str
    required: bool
    default: str | None  # as documented; None for a required column
    accepted: str
    read: Callable[[str, str], Any] = field(repr=False, compare=False)
    fallback: str | None = field(default=None, repr=False, compare=False)  # read when left empty; None: no value


@dataclass(frozen=True)
class RowError:
    """One problem of one row. ``shown`` is the value as given, masked for a personal column."""

    row: int
    column: str
    shown: str
    problem: str
    accepted: str

    def __str__(self) -> str:
        return f"row {self.row}, column {self.column}: {self.shown!r} {self.problem}; accepted: {self.accepted}"


class RowRejected(Exception):
    def __init__(self, errors: list[RowError]):
        super().__init__("; ".join(map(str, errors)))
        self.errors = errors


class Bad(Exception):
    """A column's value is refused: ``problem`` completes "'<value>' ..."."""

    def __init__(self, problem: str, accepted: str | None = None):
        super().__init__(problem)
        self.problem, self.accepted = problem, accepted


def cell_text(value: object) -> str:
    """A cell as text: a CSV cell trimmed, a JSON number or boolean as written; a list or an object is refused."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, Decimal)):
        return str(value)
    if isinstance(value, str):
        return value.strip()
    raise Bad(f"is a {type(value).__name__}, not a single value")


def parsed(read: Callable[[], Any], text: str, field: str) -> Any:
    """``read()`` through ``states.parse``; its refusal without the "field: 'value'" it opens with,
    which the ``RowError`` names itself."""
    try:
        return read()
    except InputError as exc:
        message = str(exc).removeprefix(f"{field}: ")
        value = f"{quoted(text)} "
        raise Bad(message.removeprefix(value) if message.startswith(value) else f"is refused: {message}") from None


class RowCheck:
    """One row read column by column: ``values`` (None for an optional column left empty),
    ``texts`` as given, and every problem found; ``refuse`` adds one, ``done`` raises them all.

    ``shown(column, text)`` is a value as a message may show it (masked for a personal column)."""

    def __init__(self, raw: Mapping[str, object], row: int, columns: Sequence[Column], shown: Callable[[str, str], str]):
        self.row, self._shown = row, shown
        self._columns = {c.name: c for c in columns}
        self.errors: list[RowError] = []
        self.values: dict[str, Any] = {}
        self.texts: dict[str, str] = {}
        for column in columns:
            try:
                text = cell_text(raw.get(column.name))
            except Bad as bad:
                self.refuse(column.name, "", bad.problem)
                continue
            self.texts[column.name] = text
            if not text and column.required:
                self.refuse(column.name, "", "is missing (required)")
                continue
            if not text and column.fallback is None:
                self.values[column.name] = None
                continue
            try:
                self.values[column.name] = column.read(text or column.fallback, column.name)
            except Bad as bad:
                self.refuse(column.name, text, bad.problem, bad.accepted)

    def refuse(self, column: str, text: str, problem: str, accepted: str | None = None) -> None:
        self.errors.append(RowError(self.row, column, self._shown(column, text), problem, accepted or self._columns[column].accepted))

    def ok(self, *names: str) -> bool:
        """Every one of these columns read to a value."""
        return all(self.values.get(n) is not None for n in names)

    def done(self) -> None:
        if self.errors:
            raise RowRejected(self.errors)
