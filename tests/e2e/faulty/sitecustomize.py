"""Test seam for a worker subprocess: make the close fail on chosen cases, or hang mid-batch.

Put this folder (and the project root) on PYTHONPATH of a worker process (the
flow runs a Prefect worker starts inherit it): every App that process
bootstraps gets a fault that

- raises for the case ids in COLLECTFLOW_FAULT_CASES, as a bug in the domain code would;
- on the COLLECTFLOW_FAULT_HANG_AFTER-th case it is about to advance, touches the file
  COLLECTFLOW_FAULT_HANG_MARK (if set) and hangs there, holding its batch, until the test
  kills the process (a worker dying mid-batch).

Never on a production path.
"""

import os

_IDS = {i for i in os.environ.get("COLLECTFLOW_FAULT_CASES", "").split(",") if i}
_HANG_AFTER = int(os.environ.get("COLLECTFLOW_FAULT_HANG_AFTER", "0") or 0)
_HANG_MARK = os.environ.get("COLLECTFLOW_FAULT_HANG_MARK", "")

if _IDS or _HANG_AFTER:
    import time
    from pathlib import Path

    import flows.bootstrap as _bootstrap

    class InjectedFault(RuntimeError):
        """A failure injected by a test."""

    _seen = [0]

    def _fault(case) -> None:
        _seen[0] += 1
        if _seen[0] == _HANG_AFTER:
            if _HANG_MARK:
                Path(_HANG_MARK).write_text(case.case_id, encoding="utf-8")
            time.sleep(3600)  # mid-batch, its lease renewed by the worker, until killed
        if case.case_id in _IDS:
            raise InjectedFault(f"injected fault for case {case.case_id}")

    _original = _bootstrap.bootstrap

    def _faulty_bootstrap(*args, **kwargs):
        kwargs.setdefault("fault", _fault)
        return _original(*args, **kwargs)

    _bootstrap.bootstrap = _faulty_bootstrap
