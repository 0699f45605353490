"""``collectflow keys``: the personal-data key, rotated and shown.

    collectflow keys rotate --operator OP [--date D]   a new key, every borrower row re-keyed in one
                                                       transaction, the old key retired, the rotation recorded
    collectflow keys status [--json]                   the active key, the retired keys, a rotation left half-way

The steps and what a crash leaves are in ``models.keys``; the design is in
docs/decisions.md ("Key rotation"). Prefect is not imported here.
"""

from __future__ import annotations

import json
import sys
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

keys_app = typer.Typer(help="The personal-data key: rotate it, see which keys are active and retired.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)


def _app():
    from flows import runtime

    return runtime.app()


@keys_app.command("rotate")
def keys_rotate(
    operator: str = typer.Option(..., "--operator", help="Your operator id (a supervisor, when the roster is in use): recorded with the rotation"),
    on: Optional[str] = typer.Option(None, "--date", help="The business date the rotation is recorded on (default: today)"),
) -> None:
    """Make a new personal-data key and re-encrypt every borrower row under it, in one transaction.

    The old key is kept in <key dir>/retired/, so what was written under it stays readable.
    Run it again after a crash: it finishes (or cleanly redoes) the interrupted rotation."""
    from flows.cli_common import parse_date
    from flows.handlers.keys import rotate

    done = rotate(_app(), operator=operator, on=parse_date(on, "--date"))
    if done.finished_only:
        console.print(f"finished the interrupted rotation {done.rotation_id}: key {done.to_key_id} is now active", highlight=False)
    else:
        console.print(
            f"rotation {done.rotation_id}: {done.rows:,} borrower row(s) re-keyed from {done.from_key_id} to {done.to_key_id}",
            highlight=False,
        )
    console.print(f"old key {done.from_key_id} retired: {done.retired_path}", highlight=False, soft_wrap=True)
    console.print("restart workers that hold the old key: the database refuses borrower rows written under it", highlight=False)


@keys_app.command("status")
def keys_status(as_json: bool = typer.Option(False, "--json", help="Print one JSON object")) -> None:
    """The active key (id, since when), the retired keys, borrower rows by key, and any rotation left half-way."""
    from flows.handlers.keys import status

    found = status(_app())
    data = {
        "active": {"key_id": found.active.key_id, "since": found.active.since.isoformat() if found.active.since else None, "file": str(found.active.path)},
        "retired": [{"key_id": k.key_id, "retired": k.since.isoformat() if k.since else None, "file": str(k.path)} for k in found.retired],
        "pending": None if found.pending is None else {"key_id": found.pending.key_id, "committed": found.pending_committed, "file": str(found.pending.path)},
        "borrower_rows_by_key": dict(sorted(found.rows_by_key.items())),
        "rotations": [
            {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in r.items()} for r in found.rotations
        ],
    }
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    else:
        table = Table(title="personal data keys", show_header=True)
        for column in ("key id", "state", "since", "borrower rows", "file"):
            table.add_column(column, overflow="fold")
        rows = found.rows_by_key
        table.add_row(found.active.key_id, "active", _when(found.active.since), str(rows.get(found.active.key_id, 0)), str(found.active.path))
        for key in found.retired:
            table.add_row(key.key_id, "retired", _when(key.since), str(rows.get(key.key_id, 0)), str(key.path))
        if found.pending is not None:
            state = "pending (committed)" if found.pending_committed else "pending"
            table.add_row(found.pending.key_id, state, _when(found.pending.since), str(rows.get(found.pending.key_id, 0)), str(found.pending.path))
        console.print(table)
        for r in found.rotations:
            console.print(
                f"rotation {r['rotation_id']}: {r['from_key_id']} -> {r['to_key_id']} by {r['operator']} on {r['business_date']}, "
                f"{r['borrowers_rekeyed']} row(s), {r['status']}",
                highlight=False,
            )
    if found.pending is not None:
        what = "committed; run collectflow keys rotate to promote its key file" if found.pending_committed else (
            "not committed (the data is under the active key); run collectflow keys rotate to redo it"
        )
        err.print(f"[yellow]a rotation to key {found.pending.key_id} was interrupted: {what}[/]", highlight=False)
    for key_id, count in sorted(found.unknown_keys.items()):
        err.print(f"[red]{count} borrower row(s) under key id {key_id}, which is not in the key directory[/]", highlight=False)
    if found.unknown_keys:
        raise typer.Exit(1)


def _when(moment) -> str:
    return "-" if moment is None else moment.isoformat(timespec="seconds")
