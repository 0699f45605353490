"""What ``verify`` reports: a finding per thing wrong, gathered in one report."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from models.report_totals import StoredTotals


@dataclass(frozen=True)
class Finding:
    """One thing wrong with one case (at one event, when it can be pinned to one)."""

    case_id: str
    seq: int | None
    problem: str

    def __str__(self) -> str:
        where = f"case {self.case_id}" + (f" seq {self.seq}" if self.seq is not None else "")
        return f"{where}: {self.problem}"


class UnreadableEvent(Finding):
    """A stored event this code cannot read (its payload is not a JSON object): the case's checks
    that read its events are not run, as the unreadable event is the finding."""


def checked(case_id: str, what: str, check: Callable[..., list[Finding]], *args: Any) -> list[Finding]:
    """``check(*args)``'s findings, or one finding naming ``what`` was not checked when the events it
    reads cannot be (a payload edited into another shape, which the case's replay reports too)."""
    try:
        return check(*args)
    except Exception as exc:  # noqa: BLE001 - an unreadable event is a finding, never a crash
        return [Finding(case_id, None, f"{what} not checked: its events cannot be read ({type(exc).__name__}: {exc})")]


@dataclass
class VerifyReport:
    cases_checked: int = 0
    events_checked: int = 0
    findings: list[Finding] = field(default_factory=list)
    cases_replayed: int = 0  # checked in full; an incremental verify only reads and digests the others
    incremental: bool = False
    # (case_id, version, digest) of the cases an incremental verify found clean, to be checkpointed
    checkpoints: list[tuple[str, int, str]] = field(default_factory=list, repr=False)
    checkpoint_problem: str | None = None  # why checkpoints could not be kept (the verify itself stands)
    # the reports' totals the events checked so far make (a verify of the whole store only)
    totals: StoredTotals | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def failing_cases(self) -> list[str]:
        return sorted({f.case_id for f in self.findings})

    def for_case(self, case_id: str) -> list[Finding]:
        return [f for f in self.findings if f.case_id == case_id]
