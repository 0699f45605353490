"""Reading a file of rows (CSV or JSON Lines, optionally gzipped) and writing its rejects file.

    RowFile(path, encoding).rows()   one ``SourceRow`` a row: its number and its values as a dict,
                                     or why it could not be read; ``position`` counts the bytes read
    RejectsFile(path, source)        each rejected row as given, plus ``reject_row`` and ``reject_reason``,
                                     in the input's format, so it can be fixed and imported again

The format follows the extension: ``.csv``, ``.jsonl`` or ``.ndjson``, each
optionally ``.gz``. A subclass names its columns (``LoanFile``: the loan
book's, ``PaymentFile``: the payment file's, ``PlanFile``: the schedule file's). Memory is bounded by one row,
whatever the file's size. A file that cannot be read at all is a
``FileError`` naming what to do about it.

The rejects file repeats rows as given, personal values included: it is
created owner-only (mode 0600).
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import os
import re
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, ClassVar

from states.errors import UserError
from states import loanfile, paymentfile, planfile

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
FIELD_LIMIT = 16 << 20  # characters in one CSV field: a long field is a row to reject, not an unreadable file
_UNDECODED = re.compile("[\udc80-\udcff]")  # bytes the encoding could not read, kept by surrogateescape
REJECT_COLUMNS = ("reject_row", "reject_reason")


class FileError(UserError):
    """A file that cannot be read at all; the message says why and what would do."""


@dataclass
class SourceRow:
    """A row as read: its number, its values (None when unreadable) and why it could not be read."""

    row: int
    values: dict[str, Any] | None
    problem: str | None = None
    line: str | None = None  # the text of an unreadable JSON line, for the rejects file


class _CountingReader(io.RawIOBase):
    """Counts the bytes read from the file (the progress bar's position)."""

    def __init__(self, raw: IO[bytes]):
        self.raw, self.count = raw, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self.raw.readinto(buffer)
        self.count += n or 0
        return n

    def close(self) -> None:
        self.raw.close()
        super().close()


def file_format(path: Path, what: str = "file") -> str:
    """``csv`` or ``jsonl``, by the extension (a ``.gz`` after it is looked through)."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    kind = FORMATS.get(suffixes[-1] if suffixes else "")
    if kind is None:
        raise FileError(
            f"{path.name}: {''.join(path.suffixes) or 'no extension'} is not a {what} extension; "
            f"use .csv or .jsonl (JSON Lines, also .ndjson), optionally gzipped (.csv.gz)"
        )
    return kind


class RowFile:
    """A file of rows opened for streaming: ``rows()`` yields ``SourceRow``s; ``position`` counts bytes read.

    ``columns`` are the names the rows may hold (any other is listed in ``ignored``), ``required``
    those a CSV header must have."""

    what: ClassVar[str] = "file"
    columns: ClassVar[Sequence[str]] = ()
    required: ClassVar[Sequence[str]] = ()

    def __init__(self, path: Path, encoding: str = "utf-8"):
        self.path = Path(path)
        self.kind = file_format(self.path, self.what)
        if not self.path.is_file():
            raise FileError(f"{self.path}: no such file")
        self.size = self.path.stat().st_size
        try:
            known = codecs.lookup(encoding)
        except (LookupError, TypeError):
            known = None
        if known is None or not getattr(known, "_is_text_encoding", True):
            raise FileError(f"--encoding {encoding!r} is not a text encoding; use e.g. utf-8, gbk, gb18030 or utf-16")
        self.encoding_name = known.name  # as messages name it
        self.encoding = "utf-8-sig" if known.name == "utf-8" else known.name  # a BOM is not data
        self.header: list[str] | None = None
        self.ignored: set[str] = set()
        self._known = {*self.columns, *REJECT_COLUMNS}  # a rejects file imported again
        self._counter: _CountingReader | None = None

    @property
    def position(self) -> int:
        return self._counter.count if self._counter else 0

    def rows(self) -> Iterator[SourceRow]:
        self._counter = _CountingReader(open(self.path, "rb"))
        binary: IO[bytes] = io.BufferedReader(self._counter, 1 << 16)
        if self.path.suffix.lower() == ".gz":
            binary = gzip.GzipFile(fileobj=binary)  # type: ignore[assignment]
        # Bytes the encoding cannot read are kept (surrogateescape) and reject their own row only.
        text = io.TextIOWrapper(binary, encoding=self.encoding, errors="surrogateescape", newline="")
        reader = self._csv(text) if self.kind == "csv" else self._jsonl(text)
        last = 0
        try:
            for source_row in reader:
                last = source_row.row
                yield _undecoded_rejected(source_row, self.encoding_name)
        except csv.Error as exc:
            raise FileError(f"{self.path.name}: not readable as CSV after row {last}: {exc}") from None
        except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
            raise FileError(f"{self.path.name}: not a readable gzip file after row {last} ({exc}); compress it again or give it uncompressed") from None
        except UnicodeError as exc:  # an encoding that must start with a byte-order mark, and the file has none
            raise FileError(f"{self.path.name}: not {self.encoding_name} text ({exc}); give its encoding, e.g. --encoding utf-16-le") from None
        finally:
            text.close()

    def _csv(self, text: IO[str]) -> Iterator[SourceRow]:
        csv.field_size_limit(max(csv.field_size_limit(), FIELD_LIMIT))
        reader = csv.reader(text)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise FileError(f"{self.path.name}: the file is empty; its first line must be the header") from None
        twice = sorted({h for h in header if header.count(h) > 1})
        if twice:
            raise FileError(f"{self.path.name}: the header names {', '.join(twice)} more than once")
        missing = [c for c in self.required if c not in header]
        if missing:
            raise FileError(
                f"{self.path.name}: the header lacks the required column(s) {', '.join(missing)}; "
                f"it has {', '.join(header) or 'nothing'} (see the README's column table)"
            )
        self.header = header
        self.ignored = {h for h in header if h not in self._known}
        width = len(header)
        for cells in reader:
            if not cells or (len(cells) == 1 and not cells[0].strip()):
                continue
            if len(cells) != width:
                yield SourceRow(
                    reader.line_num, dict(zip(header, cells)), f"has {len(cells)} values but the header has {width} columns"
                )
                continue
            yield SourceRow(reader.line_num, dict(zip(header, cells)))

    def _jsonl(self, text: IO[str]) -> Iterator[SourceRow]:
        for number, line in enumerate(text, 1):
            if not line.strip():
                continue
            try:
                values = json.loads(line, parse_float=Decimal)
            except ValueError as exc:
                yield SourceRow(number, None, f"is not JSON ({exc.msg} at character {exc.pos})", _UNDECODED.sub("?", line.rstrip("\n")))
                continue
            if not isinstance(values, dict):
                yield SourceRow(number, None, "is not a JSON object {...}", _UNDECODED.sub("?", line.rstrip("\n")))
                continue
            if len(self.ignored) < 100:
                self.ignored.update(k for k in values if k not in self._known)
            yield SourceRow(number, values)


def _undecoded_rejected(row: SourceRow, encoding: str) -> SourceRow:
    """A row holding bytes that are not ``encoding`` text, refused with that reason (the rest of the file goes on)."""
    if row.problem is not None or row.values is None:
        return row
    bad = [str(k) for k, v in row.values.items() if isinstance(v, str) and _UNDECODED.search(v) or _UNDECODED.search(str(k))]
    if not bad:
        return row
    clean = {_UNDECODED.sub("?", str(k)): _UNDECODED.sub("?", v) if isinstance(v, str) else v for k, v in row.values.items()}
    return SourceRow(
        row.row, clean, f"has bytes that are not {encoding} text in column(s) {', '.join(_UNDECODED.sub('?', b) for b in bad)}; "
        f"save the file as UTF-8, or give its encoding (e.g. --encoding gbk)"
    )


class LoanFile(RowFile):
    """A loan file: the columns of ``states.loanfile``."""

    what = "loan file"
    columns = tuple(c.name for c in loanfile.COLUMNS)
    required = loanfile.REQUIRED


class PaymentFile(RowFile):
    """A payment file: the columns of ``states.paymentfile``."""

    what = "payment file"
    columns = tuple(c.name for c in paymentfile.COLUMNS)
    required = paymentfile.REQUIRED


class PlanFile(RowFile):
    """A schedule file: the repayment plans of ``states.planfile``, one row per installment."""

    what = "schedule file"
    columns = tuple(c.name for c in planfile.COLUMNS)
    required = planfile.REQUIRED


class RejectsFile:
    """The rejected rows as given plus ``reject_row`` and ``reject_reason``, in the input's format,
    so they can be fixed and imported again. Created (mode 0600) on the first rejected row."""

    def __init__(self, path: Path, source: RowFile):
        self.path, self.source = Path(path), source
        self.kind = source.kind
        folder = next((p for p in (self.path.parent, *self.path.parent.parents) if p.exists()), Path("/"))
        if self.path.is_dir() or not os.access(folder, os.W_OK) or (self.path.exists() and not os.access(self.path, os.W_OK)):
            raise FileError(f"--rejects {self.path}: cannot be written there; give a file path in a folder you can write")
        self._handle: IO[str] | None = None
        self._writer: Any = None

    def write(self, source: SourceRow, reason: str) -> None:
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.fchmod(fd, 0o600)
            self._handle = os.fdopen(fd, "w", encoding="utf-8", newline="")
            if self.kind == "csv":
                self._writer = csv.writer(self._handle)
                self._writer.writerow([*self._header, *REJECT_COLUMNS])
        if self.kind == "csv":
            values = source.values or {}
            self._writer.writerow([_cell(values.get(h)) for h in self._header] + [source.row, reason])
        else:
            record = dict(source.values) if source.values is not None else {"line": source.line}
            record.update(reject_row=source.row, reject_reason=reason)
            self._handle.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")

    @property
    def _header(self) -> list[str]:
        return [h for h in self.source.header or self.source.columns if h not in REJECT_COLUMNS]

    @property
    def written(self) -> bool:
        return self._handle is not None

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()


def _cell(value: object) -> str:
    return "" if value is None else str(value)


def default_rejects_path(path: Path) -> Path:
    """``loans.csv`` -> ``loans.rejects.csv`` (``loans.jsonl.gz`` -> ``loans.rejects.jsonl``)."""
    name = path.name[:-3] if path.name.lower().endswith(".gz") else path.name
    stem, dot, suffix = name.rpartition(".")
    return path.with_name(f"{stem}.rejects.{suffix}" if dot else f"{name}.rejects")
