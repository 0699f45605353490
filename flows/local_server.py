"""Prefect's temporary local server dies with the command that started it.

In local mode (no ``PREFECT_API_URL``) a flow run starts a temporary Prefect
server as a child process and stops it when the run ends. If the command is
killed (``kill -9``, an out-of-memory kill, a closed terminal), that child
was left running, holding a port and memory. ``die_with_this_process`` makes
the kernel send the server SIGTERM when its parent dies (Linux
``PR_SET_PDEATHSIG``), by handing Prefect's server module a ``subprocess``
whose ``Popen`` sets that in the child. Nothing else changes, and on systems
without ``prctl`` it does nothing.

Flow-run heartbeats let a Prefect server mark a run crashed when its process
vanishes. In local mode the temporary server ends with the command, so no one
reads them, and each flow run's end waits up to a second for the heartbeat
thread, which sleeps in whole seconds (Prefect 3.9's ``_send_heartbeats``):
``local_mode_heartbeats_off`` turns them off for one command's runs when no
``PREFECT_API_URL`` is set. Against a server they stay as configured.
"""

from __future__ import annotations

import ctypes
import signal
import subprocess
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager

PR_SET_PDEATHSIG = 1


def _set_death_signal() -> None:  # runs in the child, between fork and exec
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class _Popen(subprocess.Popen):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("preexec_fn", _set_death_signal)
        super().__init__(*args, **kwargs)


def die_with_this_process() -> None:
    """From now on, Prefect's temporary local server is stopped if this process dies."""
    if not sys.platform.startswith("linux"):
        return
    from prefect.server.api import server as prefect_server

    if getattr(prefect_server.subprocess, "Popen", None) is _Popen:
        return
    shim = types.ModuleType("subprocess_dying_with_parent")
    shim.__dict__.update(subprocess.__dict__)
    shim.Popen = _Popen
    prefect_server.subprocess = shim


@contextmanager
def local_mode_heartbeats_off() -> Iterator[None]:
    """Within: no flow-run heartbeats when Prefect runs in local mode (no API URL); otherwise nothing changes."""
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        temporary_settings,
    )

    if PREFECT_API_URL.value():
        yield
        return
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield
