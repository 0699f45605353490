"""What every file import shares: the figures of its report, and the rows read with their rejects.

    FileReport               rows read, unchanged, rejected (the first messages kept), the rejects
                             file, the columns not used, the time; each import adds its own figures
    RowImport(file, rejects, report)
      rows(on_progress, every)   the readable rows of the file; an unreadable one (a bad byte, a
                                 CSV row of the wrong width, a JSON line that is not an object)
                                 is rejected with its reason; progress every ``every`` rows
      reject(source, message)    a row refused: counted, its message kept, the row written as
                                 given to the rejects file (owner-only, ``flows.files.RejectsFile``)
      close()                    the rejects file closed, the report's file figures filled in

The loan import (``flows.handlers.loans``) and the payment import
(``flows.handlers.payments``) read their files through it. No Prefect here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from flows.files import RejectsFile, RowFile, SourceRow, default_rejects_path
from states.errors import UserError

REJECTIONS_KEPT = 100  # messages a report keeps (the rejects file has them all)


@dataclass
class FileReport:
    """What an import of a file did. Personal values appear in it only masked."""

    source: str
    business_date: date
    rows: int = 0
    unchanged: int = 0
    rejected: int = 0
    rejections: list[str] = field(default_factory=list)  # the first REJECTIONS_KEPT messages
    rejects_file: str | None = None
    ignored_columns: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0

    def reject(self, message: str) -> None:
        self.rejected += 1
        if len(self.rejections) < REJECTIONS_KEPT:
            self.rejections.append(message)

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "business_date": self.business_date.isoformat(),
            "rows": self.rows,
            "unchanged": self.unchanged,
            "rejected": self.rejected,
            "rejects_file": self.rejects_file,
            "rejections": list(self.rejections),
            "ignored_columns": list(self.ignored_columns),
            "seconds": round(self.seconds, 3),
            "rows_per_second": round(self.rows_per_second, 1),
        }


class RowImport:
    """One file being imported: its rows read, its rejected rows written, its report's file figures."""

    def __init__(self, row_file: RowFile, rejects: str | Path | None, report: FileReport, error: type[UserError] = UserError):
        self.file, self.report = row_file, report
        self.rejects_path = Path(rejects) if rejects else default_rejects_path(row_file.path)
        if self.rejects_path.resolve() == row_file.path.resolve():
            raise error(f"--rejects {self.rejects_path}: that is the file being imported; give another path")
        self._rows = row_file.rows()
        self.rejects_file = RejectsFile(self.rejects_path, row_file)

    def reject(self, source: SourceRow | None, message: str) -> None:
        self.report.reject(message)
        if source is not None:
            self.rejects_file.write(source, message)

    def rows(self, on_progress: Callable[[int, int, int], None] | None = None, every: int = 2_000) -> Iterator[SourceRow]:
        """The readable rows; ``on_progress(rows, bytes read, file bytes)`` every ``every`` rows and at the end."""
        next_progress = every
        for source in self._rows:
            self.report.rows += 1
            if source.problem is not None or source.values is None:
                self.reject(source, f"row {source.row}: {source.problem}")
            else:
                yield source
            if on_progress is not None and self.report.rows >= next_progress:
                next_progress += every
                on_progress(self.report.rows, self.file.position, self.file.size)
        if on_progress is not None:
            on_progress(self.report.rows, self.file.size, self.file.size)

    def close(self) -> None:
        self.rejects_file.close()
        self.report.ignored_columns = sorted(self.file.ignored)
        self.report.rejects_file = str(self.rejects_path) if self.rejects_file.written else None

    def __enter__(self) -> RowImport:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
