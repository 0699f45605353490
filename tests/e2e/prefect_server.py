"""Helpers for end-to-end tests against a real Prefect server.

Everything here talks to Prefect the way an operator would: a real
``prefect server start`` subprocess with its own PREFECT_HOME / SQLite file,
the ``prefect`` CLI (run as ``sys.executable -m prefect``), real process
workers, and the REST API.  Nothing is mocked.

Typical use (see ``conftest.py`` for the fixtures)::

    def test_close(prefect_server, tmp_path):
        env = prefect_server.env
        run_cli(["work-pool", "create", "pool", "--type", "process"], env)
        run_cli(["--no-prompt", "deploy", "--all"], env, cwd=PROJECT)
        with start_worker("pool", env, cwd=PROJECT):
            run_id = deployment_run("nightly-close/daily-close", {"batch": 2}, env)
            assert wait_for_flow_run(prefect_server.api_url, run_id) == "Completed"
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

#: ``prefect`` CLI of the interpreter running the tests (the project venv).
PREFECT_CMD: list[str] = [sys.executable, "-m", "prefect"]

#: Arguments that make Debian's chromium run headless in a sandbox-less container
#: without touching the network on its own.
CHROMIUM_PATH = "/usr/bin/chromium"
CHROMIUM_ARGS: list[str] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-quic",
    "--disable-sync",
]

#: State *types* after which a flow run will not move again on its own.
TERMINAL_STATE_TYPES = frozenset({"COMPLETED", "FAILED", "CANCELLED", "CRASHED"})

# Inherited variables that would point a child at another server / profile.
_SCRUBBED_ENV = (
    "PREFECT_API_URL",
    "PREFECT_API_KEY",
    "PREFECT_API_AUTH_STRING",
    "PREFECT_PROFILE",
    "PREFECT_PROFILES_PATH",
    "PREFECT_HOME",
    "PREFECT_UI_URL",
    "PREFECT_SERVER_DATABASE_CONNECTION_URL",
    "PREFECT_API_DATABASE_CONNECTION_URL",
)

_UUID_RE = re.compile(
    r"UUID:\s*([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
)


class PrefectCLIError(RuntimeError):
    """A ``prefect`` CLI call failed or timed out; carries its output."""

    def __init__(self, args: Sequence[str], returncode: int | None, stdout: str, stderr: str):
        self.args_ = list(args)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        what = "timed out" if returncode is None else f"exited {returncode}"
        super().__init__(
            f"`prefect {' '.join(args)}` {what}\n"
            f"--- stdout ---\n{_tail(stdout, 60)}\n--- stderr ---\n{_tail(stderr, 60)}"
        )


# --------------------------------------------------------------------------- utils


def _tail(text: str, lines: int) -> str:
    return "\n".join((text or "").splitlines()[-lines:])


def file_tail(path: str | os.PathLike[str], lines: int = 80) -> str:
    """Last ``lines`` lines of a (log) file, '' if it does not exist."""
    try:
        return _tail(Path(path).read_text(errors="replace"), lines)
    except FileNotFoundError:
        return ""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _descendants(pid: int) -> list[int]:
    """PIDs of all live descendants of ``pid`` (Linux /proc walk)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # field 4 (ppid) comes after the ")" closing the command name
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out: list[int] = []
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            out.append(child)
            stack.append(child)
    return out


def terminate_process_tree(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM the process group of ``proc`` (it must have been started with
    ``start_new_session=True``) plus any descendants that moved to their own
    session (Prefect may isolate flow-run subprocesses), then SIGKILL leftovers."""
    if proc.poll() is not None:
        # Already reaped: its pid/pgid may belong to someone else by now.
        return
    strays = _descendants(proc.pid)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        for pid in strays:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        try:
            proc.wait(timeout=grace)
            break
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)
    # Leftovers (grandchildren in the group, flow runs in their own session).
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in strays):
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    for pid in strays:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def _die_with_parent() -> None:
    """preexec_fn: SIGTERM the child when the spawning thread dies (Linux only), so
    a SIGKILLed pytest does not leave servers/workers behind."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def _spawn(cmd: Sequence[str], env: Mapping[str, str], cwd: str | os.PathLike[str] | None,
           log_path: Path) -> subprocess.Popen:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "ab", buffering=0)
    try:
        return subprocess.Popen(
            list(cmd), env=dict(env), cwd=cwd, stdin=subprocess.DEVNULL,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
    finally:
        log.close()  # the child holds its own descriptor


def prefect_env(home: str | os.PathLike[str], api_url: str | None = None,
                base: Mapping[str, str] | None = None, **extra: str) -> dict[str, str]:
    """Environment for running Prefect (server, CLI, worker) in isolation.

    ``base`` defaults to ``os.environ``; connection-related PREFECT_* variables
    from it are dropped so nothing leaks in from the developer's profile.
    """
    env = {k: v for k, v in (os.environ if base is None else base).items()
           if k not in _SCRUBBED_ENV}
    home = str(home)
    env.update({
        "PREFECT_HOME": home,
        "PREFECT_PROFILES_PATH": str(Path(home) / "profiles.toml"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{Path(home) / 'prefect.db'}",
        "PREFECT_CLI_COLORS": "false",
        "PREFECT_CLI_WRAP_LINES": "false",
        "COLUMNS": "200",  # rich would otherwise wrap ids at 80 columns
        "PYTHONUNBUFFERED": "1",
    })
    if api_url:
        env["PREFECT_API_URL"] = api_url
    env.update({k: str(v) for k, v in extra.items()})
    return env


# ----------------------------------------------------------------------- the server


@dataclass
class PrefectServer:
    """A running ``prefect server start`` subprocess."""

    port: int
    home: Path
    log_path: Path
    proc: subprocess.Popen
    env: dict[str, str]
    startup_seconds: float = 0.0
    extra_logs: list[Path] = field(default_factory=list)  # worker logs etc.

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 80) -> str:
        return file_tail(self.log_path, lines)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def cli(self, args: Sequence[str], cwd: str | os.PathLike[str] | None = None,
            timeout: float = 180.0) -> str:
        return run_cli(args, self.env, cwd=cwd, timeout=timeout)

    def stop(self) -> None:
        terminate_process_tree(self.proc)

    def debug_report(self, lines: int = 60) -> str:
        parts = [f"=== prefect server log ({self.log_path}) ===", self.log_tail(lines)]
        for p in self.extra_logs:
            parts += [f"=== {p} ===", file_tail(p, lines)]
        return "\n".join(parts)


def start_prefect_server(base_dir: str | os.PathLike[str] | None = None, *,
                         timeout: float = 120.0, attempts: int = 3,
                         extra_env: Mapping[str, str] | None = None) -> PrefectServer:
    """Start ``prefect server start`` on a free port with an isolated PREFECT_HOME
    (``<base_dir>/home``; SQLite DB ``home/prefect.db``) and wait for /api/health.

    Raises RuntimeError with the server log tail if it does not come up.
    """
    base = Path(base_dir or tempfile.mkdtemp(prefix="prefect-e2e-"))
    home = base / "home"
    home.mkdir(parents=True, exist_ok=True)
    last_error = ""
    for attempt in range(1, attempts + 1):
        port = free_port()
        api_url = f"http://127.0.0.1:{port}/api"
        env = prefect_env(home, api_url, **{
            "PREFECT_UI_ENABLED": "true",
            # "/" would otherwise redirect to the React V2 UI (/v2/), which rendered
            # blank in headless chromium here; deep links like /runs/flow-run/ID are V1.
            "PREFECT_SERVER_UI_V2_ENABLED": "false",
            "PREFECT_SERVER_API_HOST": "127.0.0.1",
            "PREFECT_SERVER_API_PORT": str(port),
            "PREFECT_UI_URL": f"http://127.0.0.1:{port}",
            **(extra_env or {}),
        })
        log_path = base / f"server-{attempt}.log"
        started = time.monotonic()
        proc = _spawn([*PREFECT_CMD, "server", "start", "--host", "127.0.0.1",
                       "--port", str(port)], env, base, log_path)
        server = PrefectServer(port=port, home=home, log_path=log_path, proc=proc, env=env)
        _register_cleanup(server.stop)
        deadline = started + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                last_error = f"server exited with {proc.returncode}"
                break
            if _health_ok(api_url):
                server.startup_seconds = time.monotonic() - started
                return server
            time.sleep(0.5)
        else:
            last_error = f"/api/health not ok after {timeout:.0f}s"
        server.stop()
        tail = file_tail(log_path, 60)
        if "address already in use" not in tail.lower():
            break
    raise RuntimeError(f"Prefect server did not start: {last_error}\n"
                       f"--- {log_path} ---\n{file_tail(log_path, 80)}")


def _health_ok(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=3) as resp:
            return resp.status == 200 and resp.read().strip() == b"true"
    except (urllib.error.URLError, OSError, ValueError):
        return False


_cleanups: list[Any] = []


def _register_cleanup(fn: Any) -> None:
    _cleanups.append(fn)


@atexit.register
def _run_cleanups() -> None:  # safety net if a fixture's teardown never ran
    for fn in reversed(_cleanups):
        with contextlib.suppress(Exception):
            fn()


# ------------------------------------------------------------------------- the CLI


def run_cli(args: Sequence[str], env: Mapping[str, str],
            cwd: str | os.PathLike[str] | None = None, timeout: float = 180.0,
            check: bool = True, input: str | None = None) -> str:
    """Run ``prefect <args>`` and return its stdout.

    Raises :class:`PrefectCLIError` (with stdout and stderr) on a non-zero exit
    (when ``check``) or on timeout.  Each call costs ~3-5 s of interpreter and
    import start-up on this 2-core box, so batch work where you can.
    """
    args = [str(a) for a in args]
    try:
        res = subprocess.run([*PREFECT_CMD, *args], env=dict(env), cwd=cwd, timeout=timeout,
                             capture_output=True, text=True, input=input,
                             stdin=None if input is not None else subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        def _s(b: Any) -> str:
            return b.decode(errors="replace") if isinstance(b, bytes) else (b or "")
        raise PrefectCLIError(args, None, _s(exc.stdout), _s(exc.stderr)) from None
    if check and res.returncode != 0:
        raise PrefectCLIError(args, res.returncode, res.stdout, res.stderr)
    return res.stdout


def create_work_pool(name: str, env: Mapping[str, str], pool_type: str = "process",
                     concurrency_limit: int | None = None) -> None:
    """``prefect work-pool create NAME --type TYPE --overwrite`` (+ optional
    ``prefect work-pool set-concurrency-limit NAME N``)."""
    run_cli(["work-pool", "create", name, "--type", pool_type, "--overwrite"], env)
    if concurrency_limit is not None:
        run_cli(["work-pool", "set-concurrency-limit", name, str(concurrency_limit)], env)


def deploy_all(project_dir: str | os.PathLike[str], env: Mapping[str, str],
               prefect_file: str = "prefect.yaml", timeout: float = 240.0) -> str:
    """``prefect --no-prompt deploy --all`` in ``project_dir``."""
    return run_cli(["--no-prompt", "deploy", "--all", "--prefect-file", prefect_file],
                   env, cwd=project_dir, timeout=timeout)


def deployment_run(name: str, params: Mapping[str, Any] | None, env: Mapping[str, str],
                   cwd: str | os.PathLike[str] | None = None, timeout: float = 120.0,
                   extra_args: Sequence[str] = ()) -> str:
    """``prefect deployment run 'flow/deployment' --param k=<json>`` -> flow run id.

    Values are JSON-encoded (the CLI parses them as JSON), so ints, bools,
    lists and dicts keep their types.
    """
    args = ["deployment", "run", name]
    for key, value in (params or {}).items():
        args += ["--param", f"{key}={json.dumps(value)}"]
    out = run_cli([*args, *extra_args], env, cwd=cwd, timeout=timeout)
    match = _UUID_RE.search(out)
    if not match:
        raise PrefectCLIError(args, 0, out, "could not find 'UUID: <id>' in the output")
    return match.group(1)


# ------------------------------------------------------------------------- workers


@dataclass
class WorkerHandle:
    pool: str
    proc: subprocess.Popen
    log_path: Path
    offset: int = 0  # where this worker's output starts in log_path

    def log(self) -> str:
        """This worker's output so far."""
        with open(self.log_path, "rb") as fh:
            fh.seek(self.offset)
            return fh.read().decode(errors="replace")

    def log_tail(self, lines: int = 80) -> str:
        return _tail(self.log(), lines)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        terminate_process_tree(self.proc, grace=15.0)


@contextlib.contextmanager
def start_worker(pool: str, env: Mapping[str, str], cwd: str | os.PathLike[str] | None = None,
                 *, name: str | None = None, log_path: str | os.PathLike[str] | None = None,
                 poll_seconds: float = 2.0, ready_timeout: float = 90.0,
                 extra_args: Sequence[str] = (),
                 server: PrefectServer | None = None) -> Iterator[WorkerHandle]:
    """``prefect worker start --pool POOL --type process`` for the ``with`` block.

    Waits until the worker logs that it started (its first poll follows
    immediately); ``poll_seconds`` sets PREFECT_WORKER_QUERY_SECONDS (default
    10 s in Prefect) so runs are picked up quickly.  Output goes to
    ``log_path`` (default: a temp file); pass ``server`` to have the log tail
    shown in failure reports.  The worker's process group and any flow-run
    subprocesses are killed on exit.
    """
    if log_path is None:
        fd, tmp = tempfile.mkstemp(prefix=f"worker-{pool}-", suffix=".log")
        os.close(fd)
        log_path = tmp
    log_path = Path(log_path)
    wenv = dict(env)
    wenv["PREFECT_WORKER_QUERY_SECONDS"] = str(poll_seconds)
    wenv.setdefault("PREFECT_WORKER_PREFETCH_SECONDS", "5")
    cmd = [*PREFECT_CMD, "worker", "start", "--pool", pool, "--type", "process"]
    if name:
        cmd += ["--name", name]
    cmd += list(extra_args)
    offset = log_path.stat().st_size if log_path.exists() else 0  # log may be reused
    proc = _spawn(cmd, wenv, cwd, log_path)
    handle = WorkerHandle(pool=pool, proc=proc, log_path=log_path, offset=offset)
    _register_cleanup(handle.stop)
    if server is not None:
        server.extra_logs.append(log_path)
    try:
        deadline = time.monotonic() + ready_timeout
        while "started!" not in handle.log():
            if not handle.alive():
                raise RuntimeError(f"worker for pool {pool!r} exited with {proc.returncode}\n"
                                   f"{handle.log_tail(60)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"worker for pool {pool!r} not started after "
                                   f"{ready_timeout:.0f}s\n{handle.log_tail(60)}")
            time.sleep(0.3)
        yield handle
    finally:
        handle.stop()


# ------------------------------------------------------------------- the REST API


def api_request(api_url: str, method: str, path: str, body: Any = None,
                timeout: float = 15.0) -> Any:
    """Minimal JSON call against the Prefect REST API (``path`` like '/flow_runs/ID')."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"{api_url.rstrip('/')}{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


def get_flow_run(api_url: str, flow_run_id: str) -> dict[str, Any]:
    return api_request(api_url, "GET", f"/flow_runs/{flow_run_id}")


def _state_of(api_or_client: Any, flow_run_id: str) -> tuple[str | None, str | None, dict]:
    """(state name, state type, raw) via REST url or a SyncPrefectClient."""
    if isinstance(api_or_client, str):
        fr = get_flow_run(api_or_client, flow_run_id)
        st = fr.get("state") or {}
        return st.get("name"), st.get("type"), fr
    fr = api_or_client.read_flow_run(flow_run_id)
    if fr.state is None:
        return None, None, {}
    return fr.state.name, fr.state.type.value, fr.model_dump(mode="json")


def wait_for_flow_run(api_or_client: Any, flow_run_id: str, timeout: float = 180.0,
                      poll: float = 1.0, states: Iterable[str] | None = None) -> str:
    """Poll a flow run until it is terminal and return the state *name*
    ('Completed', 'Failed', 'Crashed', 'Cancelled', ...).

    ``api_or_client`` is the API url (``prefect_server.api_url``) or a
    ``SyncPrefectClient``.  ``states`` overrides what counts as done: any state
    names or types (e.g. ``{"Completed"}`` to wait past a Failed run being
    retried).  Raises TimeoutError with the last state seen.
    """
    wanted = {s.upper() for s in states} if states is not None else None
    deadline = time.monotonic() + timeout
    name = typ = None
    while True:
        with contextlib.suppress(urllib.error.URLError, OSError):
            name, typ, _ = _state_of(api_or_client, flow_run_id)
        if name is not None:
            if wanted is None and typ in TERMINAL_STATE_TYPES:
                return name
            if wanted is not None and (name.upper() in wanted or (typ or "") in wanted):
                return name
        if time.monotonic() > deadline:
            raise TimeoutError(f"flow run {flow_run_id} still {name!r} ({typ}) after {timeout:.0f}s")
        time.sleep(poll)


def flow_run_states(api_url: str, flow_run_id: str) -> list[str]:
    """Names of every state the run went through, oldest first."""
    rows = api_request(api_url, "GET", f"/flow_run_states/?flow_run_id={flow_run_id}")
    rows.sort(key=lambda r: r["timestamp"])
    return [r["name"] for r in rows]


def flow_run_logs(api_url: str, flow_run_id: str, limit: int = 200) -> list[str]:
    rows = api_request(api_url, "POST", "/logs/filter", {
        "logs": {"flow_run_id": {"any_": [flow_run_id]}},
        "limit": limit, "sort": "TIMESTAMP_ASC",
    })
    return [r["message"] for r in rows]


@contextlib.contextmanager
def prefect_client(api_url: str) -> Iterator[Any]:
    """In-process ``SyncPrefectClient`` pointed at ``api_url``."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        with get_client(sync_client=True) as client:
            yield client


# -------------------------------------------------------------------- the browser


def launch_chromium(playwright: Any, **kwargs: Any) -> Any:
    """``playwright.chromium.launch`` with Debian's chromium and the container flags."""
    return playwright.chromium.launch(executable_path=CHROMIUM_PATH, args=CHROMIUM_ARGS,
                                      headless=True, **kwargs)


def flow_run_page_url(ui_url: str, flow_run_id: str) -> str:
    return f"{ui_url.rstrip('/')}/runs/flow-run/{flow_run_id}"


def retry_flow_run_in_ui(page: Any, ui_url: str, flow_run_id: str,
                         screenshot: str | os.PathLike[str] | None = None) -> None:
    """Click Retry on the flow run page of the (default, Vue) Prefect 3.9 UI and
    confirm the modal.  Selectors (verified against 3.9.1):

    * header button:  ``get_by_role("button", name="Retry", exact=True)``
      (``<button class="p-button p-button--outline">Retry ⟳</button>``, only
      rendered for a run in a terminal state that has a deployment)
    * modal:          ``get_by_role("dialog")`` (``.p-modal``) titled "Retry <run name>?"
    * confirm button: ``dialog.get_by_role("button", name="Retry", exact=True)``
      (``.p-modal__footer .p-button--default``)

    Afterwards the run goes AwaitingRetry (type SCHEDULED) -> Pending -> Running
    -> ... and a worker picks it up; wait with
    ``wait_for_flow_run(api_url, id, states={"Completed"})`` or similar.
    """
    page.goto(flow_run_page_url(ui_url, flow_run_id))
    page.get_by_role("button", name="Retry", exact=True).click()
    dialog = page.get_by_role("dialog")
    dialog.wait_for(state="visible")
    dialog.get_by_role("button", name="Retry", exact=True).click()
    dialog.wait_for(state="hidden")
    if screenshot:
        page.screenshot(path=str(screenshot))
