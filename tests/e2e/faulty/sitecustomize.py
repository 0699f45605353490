"""Test seam for a worker subprocess: make the close fail on the cases in COLLECTFLOW_FAULT_CASES.

Put this folder on PYTHONPATH of a Prefect worker (the flow runs it starts
inherit it): every App that process bootstraps gets a fault that raises for
those case ids, as a bug in the domain code would. Never on a production path.
"""

import os

_IDS = {i for i in os.environ.get("COLLECTFLOW_FAULT_CASES", "").split(",") if i}

if _IDS:
    import flows.bootstrap as _bootstrap

    class InjectedFault(RuntimeError):
        """A failure injected by a test."""

    def _fault(case) -> None:
        if case.case_id in _IDS:
            raise InjectedFault(f"injected fault for case {case.case_id}")

    _original = _bootstrap.bootstrap

    def _faulty_bootstrap(*args, **kwargs):
        kwargs.setdefault("fault", _fault)
        return _original(*args, **kwargs)

    _bootstrap.bootstrap = _faulty_bootstrap
