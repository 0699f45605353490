"""What ``verify`` reports: a finding per thing wrong, gathered in one report."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Finding:
    """One thing wrong with one case (at one event, when it can be pinned to one)."""

    case_id: str
    seq: int | None
    problem: str

    def __str__(self) -> str:
        where = f"case {self.case_id}" + (f" seq {self.seq}" if self.seq is not None else "")
        return f"{where}: {self.problem}"


@dataclass
class VerifyReport:
    cases_checked: int = 0
    events_checked: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def failing_cases(self) -> list[str]:
        return sorted({f.case_id for f in self.findings})

    def for_case(self, case_id: str) -> list[Finding]:
        return [f for f in self.findings if f.case_id == case_id]
