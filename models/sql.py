"""Small SQL helpers every part of the store uses: id chunks, code-point ordering, UTC now, many rows at once."""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime, timezone
from typing import Any, TypeVar

from sqlalchemy import Column, Connection, Date, Dialect, Table
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


# --------------------------------------------------------------------------
# many rows through the driver


def executemany_rows(
    conn: Connection, sql: str, binds: Sequence[tuple[str, Column]], rows: Iterable[Mapping[str, Any]]
) -> int:
    """Run ``sql`` (one positional ``?`` per bind, in order) once per row through the driver's
    executemany. ``binds`` names, for each mark, the row's key and the column whose type's
    bind processor turns the value into what the driver gets: what SQLAlchemy's executemany
    sends, without its per-row parameter compiling (a tenth of the close's time on SQLite,
    profiled for issue 13). SQLite's paramstyle; returns the rows affected."""
    params = [tuple(values) for values in _driver_values(conn, binds, rows)]  # SQLAlchemy passes tuples on
    if not params:
        return 0
    return conn.exec_driver_sql(sql, params).rowcount


def _driver_values(conn: Connection, binds: Sequence[tuple[str, Column]], rows: Iterable[Mapping[str, Any]]) -> Iterator[list[Any]]:
    """Each row's values in the order of ``binds``, each through its column's bind processor."""
    keys = [key for key, _ in binds]
    processors = _bind_processors(conn.dialect, tuple(column for _, column in binds))
    values_of = operator.itemgetter(*keys) if len(keys) > 1 else (lambda row: (row[keys[0]],))
    converting = [(index, _remembering(process)) for index, process in enumerate(processors) if process is not None]
    for row in rows:
        values = list(values_of(row))
        for index, process in converting:
            values[index] = process(values[index])
        yield values


@functools.lru_cache(maxsize=64)
def _bind_processors(dialect: Dialect, columns: tuple[Column, ...]) -> tuple[Callable[[Any], Any] | None, ...]:
    return tuple(_iso_dates(column.type.dialect_impl(dialect).bind_processor(dialect)) for column in columns)


_SAMPLE_DATES = (date(1, 1, 1), date(999, 12, 31), date(2024, 2, 29), date(9999, 12, 31))


def _iso_dates(process: Callable[[Any], Any] | None) -> Callable[[Any], Any] | None:
    """``process``, but a plain date written by ``isoformat`` (0.1 us) when ``process`` writes dates
    exactly so (SQLite's DATE: 1.3 us a value); anything else still goes through ``process``."""
    if process is None:
        return None
    try:
        same = all(process(day) == day.isoformat() for day in _SAMPLE_DATES)
    except Exception:  # noqa: BLE001 - a processor for another kind of value
        same = False
    if not same:
        return process

    def iso(value: Any) -> Any:
        return value.isoformat() if type(value) is date else process(value)

    return iso


def driver_rows(
    conn: Connection, sql: str, columns: Sequence[Column], params: Sequence[Any], *, yield_per: int
) -> Iterator[dict[str, Any]]:
    """The rows of ``sql`` (selecting ``columns``, in order; ``mark`` placeholders for ``params``),
    fetched ``yield_per`` at a time through the driver (a server-side cursor on PostgreSQL), each
    value through its column's result processor, as dicts by column name: the values SQLAlchemy's
    ``.mappings()`` gives, for a quarter of its cost per row (verify reads every event)."""
    names = [column.name for column in columns]
    converting = [
        (index, _memoized(process) if isinstance(column.type, Date) else process)
        for index, (column, process) in enumerate(zip(columns, _result_processors(conn.dialect, tuple(columns))))
        if process is not None
    ]
    result = conn.exec_driver_sql(sql, tuple(params), execution_options={"yield_per": yield_per})  # this statement's only
    while batch := result.fetchmany(yield_per):
        for row in batch:
            values = list(row)
            for index, process in converting:
                values[index] = process(values[index])
            yield dict(zip(names, values))


def rows_of(conn: Connection, table: Table, column: str, values: Sequence[Any], *, yield_per: int = CHUNK) -> Iterator[dict[str, Any]]:
    """Every row of ``table`` whose ``column`` is one of ``values`` (at most a few thousand), all its
    columns, through the driver (``driver_rows``): the dicts ``.mappings()`` would give."""
    quote = conn.dialect.identifier_preparer.quote
    sql = "SELECT {} FROM {} WHERE {} IN ({})".format(
        ", ".join(quote(c.name) for c in table.c), quote(table.name), quote(column), ", ".join([mark(conn)] * len(values))
    )
    return driver_rows(conn, sql, list(table.c), values, yield_per=yield_per)


def mark(conn: Connection) -> str:
    """The driver's positional placeholder (``driver_rows``)."""
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


@functools.lru_cache(maxsize=64)
def _result_processors(dialect: Dialect, columns: tuple[Column, ...]) -> tuple[Callable[[Any], Any] | None, ...]:
    return tuple(column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns)


def _memoized(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``process`` remembering what it gave for each value (a stream's dates repeat; SQLite's DATE
    costs ~1.3 us a value); forgets them all past 10,000."""
    seen: dict[Any, Any] = {}

    def remembered(value: Any) -> Any:
        try:
            return seen[value]
        except KeyError:
            if len(seen) >= 10_000:
                seen.clear()
            seen[value] = converted = process(value)
            return converted

    return remembered


def copy_rows(conn: Connection, sql: str, binds: Sequence[tuple[str, Column]], rows: Iterable[Mapping[str, Any]]) -> bool:
    """On PostgreSQL with psycopg 3: write ``rows`` by ``sql`` (a ``COPY ... FROM STDIN`` naming the
    columns of ``binds``, in order) inside the connection's transaction, each value through its
    column's bind processor as ``executemany_rows`` does. False (nothing written) on another driver."""
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        if not hasattr(cursor, "copy"):
            return False
        with cursor.copy(sql) as copy:
            for values in _driver_values(conn, binds, rows):
                copy.write_row(values)
        return True
    finally:
        cursor.close()


def _remembering(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``process`` giving the same object's result again without calling it: a batch's rows share
    their dates and their instant (each bind costs 0.5-1.3 us on SQLite). The values are immutable."""
    last_in: Any = object()
    last_out: Any = None

    def remembered(value: Any) -> Any:
        nonlocal last_in, last_out
        if value is not last_in:
            last_in, last_out = value, process(value)
        return last_out

    return remembered
