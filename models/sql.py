"""Small SQL helpers every part of the store uses: id chunks, code-point ordering, UTC now."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date, datetime, timezone
from typing import Any, TypeVar

from sqlalchemy.sql.elements import ColumnElement

CHUNK = 1000  # ids per IN (...) list: well inside SQLite's and PostgreSQL's parameter limits
T = TypeVar("T")


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[list[T]]:
    items = list(items)
    for start in range(0, len(items), size):
        yield items[start : start + size]


def binary_order(column: ColumnElement, dialect: str) -> ColumnElement:
    """Order by code point on both databases (PostgreSQL would use the locale's collation)."""
    return column.collate("C") if dialect == "postgresql" else column


def plain(value: Any) -> Any:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


def now() -> datetime:
    return datetime.now(timezone.utc)
