"""No clear personal value leaves the encrypted store: a small demo run, the import-loans flow on
the README's sample, a daily close and the default CLI output, then every log line, Prefect
artifact, flow and task run, the Prefect server's database file, the CLI output and the whole
case store (as SQL text and as raw file bytes) is searched for each borrower's name, national
id, phone number and address in the clear. One found fails the test, naming where."""

from __future__ import annotations

import csv
import json
import shutil
from datetime import date, timedelta
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_DATABASE_CONNECTION_URL
from sqlalchemy import select
from sqlmodel import SQLModel
from typer.testing import CliRunner

from flows import simulation
from flows.cli import app
from flows.daily import advance_portfolio
from flows.demo import run_demo
from flows.import_loans import LoanImport, import_loans
from models.audit import verify
from states.events import PersonalDataRead

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "docs" / "sample-loans.csv"
PERSONAL = ("borrower_name", "national_id", "phone", "address", "guarantor_name", "guarantor_phone")
DEMO_START, DEMO_DAYS, DEMO_SIZE, DEMO_SEED = date(2026, 3, 1), 12, 40, 3
IMPORT_DAY = date(2026, 11, 28)


def clear_values() -> dict[str, str]:
    """Every personal value of the run, in the clear -> who it belongs to."""
    values: dict[str, str] = {}
    for b in simulation.make_portfolio(DEMO_SIZE, DEMO_START, DEMO_SEED):
        for field, value in b.person.personal().items():
            if value:
                values[value] = f"demo {b.case_id} {field}"
    with open(SAMPLE, encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            for field in PERSONAL:
                if row[field]:
                    values[row[field]] = f"sample {row['contract_no']} {field}"
    return values


def _every(read) -> list:
    """Every item of a paged Prefect read (the API returns at most 200 at a time)."""
    items, offset = [], 0
    while page := read(limit=200, offset=offset):
        items += page
        offset += len(page)
    return items


def prefect_text() -> dict[str, str]:
    """What the Prefect server holds, by source: logs, artifacts, flow runs (parameters), task runs."""
    with get_client(sync_client=True) as client:
        return {
            "logs": "\n".join(f"{log.name}: {log.message}" for log in _every(client.read_logs)),
            "artifacts": "\n".join(
                f"{a.key} {a.description} {json.dumps(a.data, ensure_ascii=False, default=str)}"
                for a in _every(client.read_artifacts)
            ),
            "flow runs": "\n".join(
                f"{r.name} {json.dumps(r.parameters, ensure_ascii=False, default=str)} {r.state and r.state.message}"
                for r in _every(client.read_flow_runs)
            ),
            "task runs": "\n".join(f"{r.name} {r.state and r.state.message}" for r in _every(client.read_task_runs)),
        }


def case_store_text(store) -> str:
    parts: list[str] = []
    with store.engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            for record in conn.execute(select(table)):
                parts.extend(str(value) for value in record)
    return "\n".join(parts)


def file_bytes(path: Path) -> str:
    """A database file and its WAL, as text (deleted pages included): what a copy of the disk shows."""
    blobs = [p.read_bytes() for p in sorted(path.parent.glob(path.name + "*"))]
    return b"".join(blobs).decode("utf-8", errors="replace")


def test_a_demo_run_and_an_import_leave_no_clear_personal_value_anywhere(store, tmp_path, monkeypatch, capfd, caplog):
    monkeypatch.setenv("COLLECTFLOW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COLLECTFLOW_KEY_DIR", str(tmp_path / "keys"))  # the key file is generated here
    monkeypatch.delenv("COLLECTFLOW_SECRET_KEY", raising=False)
    runner = CliRunner()

    # a small demo: seasoned and new loans, payments, promises, closes
    result = run_demo(size=DEMO_SIZE, days=DEMO_DAYS, start=DEMO_START, seed=DEMO_SEED)
    assert result["booked"] >= DEMO_SIZE // 2  # the seasoned half and those disbursed during the run

    # the README's sample through the import-loans deployment's flow, then a close
    sample = tmp_path / "sample-loans.csv"
    shutil.copy(SAMPLE, sample)
    imported = import_loans(LoanImport(file=str(sample), operator="op-import", business_date=IMPORT_DAY))
    assert (imported["booked"], imported["rejected"]) == (17, 3)
    assert imported["rejects_file"] == str(tmp_path / "sample-loans.rejects.csv")
    assert advance_portfolio(business_date=IMPORT_DAY + timedelta(days=1), return_state=True).is_completed()

    # what an operator sees by default, and one sanctioned read of a clear value
    env = {"COLLECTFLOW_DATA_DIR": str(tmp_path / "data"), "COLLECTFLOW_KEY_DIR": str(tmp_path / "keys")}
    outputs = []
    for args in (
        ["case", "show", "HT2026-0002", "--json"],
        ["case", "replay", "HT2026-0002"],
        ["case", "replay", "CF0000001", "--json"],
        ["borrower", "show", "HT2026-0002"],
        ["borrower", "show", "CF0000002", "--json"],
        ["loans", "import", str(sample), "--json"],
    ):
        shown = runner.invoke(app, args, env=env)
        assert shown.exit_code in (0, 1), (args, shown.output)
        outputs.append(shown.output)
    revealed = runner.invoke(app, ["borrower", "reveal", "HT2026-0002", "--operator", "op-7"], env=env)
    assert revealed.exit_code == 0 and revealed.stdout.strip() == "18258398415"  # printed only when asked
    assert any(isinstance(e, PersonalDataRead) and e.actor == "op-7" for e in store.events("C-HT2026-0002"))
    assert verify(store.engine).ok

    captured = capfd.readouterr()
    database = Path(store.engine.url.database)
    prefect_database = Path(PREFECT_API_DATABASE_CONNECTION_URL.value().split("///", 1)[1])
    searched = {
        **prefect_text(),
        "Prefect server database file": file_bytes(prefect_database),
        "stdout and stderr": captured.out + captured.err,
        "log records": "\n".join(record.getMessage() for record in caplog.records),
        "default CLI output": "\n".join(outputs),
        "case store, as SQL": case_store_text(store),
        "case store, file bytes": file_bytes(database),
    }
    values = clear_values()
    assert len(values) > 4 * DEMO_SIZE  # the scan looks for something real
    leaks = [f"{owner} in {source}" for source, text in searched.items() for value, owner in values.items() if value in text]
    assert not leaks, leaks[:20]
    # and the masked forms are where they should be
    assert "182****8415" in searched["default CLI output"]
    assert "row 7, column annual_rate" in searched["artifacts"]
