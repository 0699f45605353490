"""Test seam for failure injection in the daily close (unset in production).

``FAULT`` is called with each case before it is advanced; a test sets it to
raise for chosen cases, or it is set from ``COLLECTFLOW_FAULT_CASES`` (a
comma-separated list of case ids that raise) so that a subprocess, such as a
Prefect worker, can be made to fail the same way.
"""

from __future__ import annotations

import os
from typing import Callable


class InjectedFault(RuntimeError):
    """A failure injected by a test."""


def _from_environment() -> Callable | None:
    ids = {i for i in os.environ.get("COLLECTFLOW_FAULT_CASES", "").split(",") if i}
    if not ids:
        return None

    def fault(case) -> None:
        if case.case_id in ids:
            raise InjectedFault(f"injected fault for case {case.case_id}")

    return fault


FAULT: Callable | None = _from_environment()
