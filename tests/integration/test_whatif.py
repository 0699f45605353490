"""What-if on a real store: the proposed policy's differences, and the store left byte for byte as it was."""

from __future__ import annotations

import hashlib
import json
from datetime import date, timedelta
from pathlib import Path

from typer.testing import CliRunner

from flows import runtime
from flows.bootstrap import bootstrap
from flows.handlers.whatif import whatif
from states.policy import CollectionPolicy
from tests.integration.builders import FIRST_DUE, POLICY, advance, book, pay


def test_a_sooner_visit_moves_exactly_the_cases_in_phone_between_dpd_20_and_30(store, tmp_path, db_url, monkeypatch):
    ids = book(store, 3)
    end = FIRST_DUE + timedelta(days=40)
    advance(store, ids, FIRST_DUE + timedelta(days=15))
    pay(store, ids[0], "100000.00", FIRST_DUE + timedelta(days=15), "PAYOFF-1")  # settled before DPD 20
    advance(store, ids, end)
    app = bootstrap(engine=store.engine, policy=POLICY, clock=lambda: date(2026, 12, 1))
    digest = store.digest()

    result = whatif(app, CollectionPolicy(visit_at_dpd=20), start=FIRST_DUE, end=end)

    moved = {d.case_id: d.days_in_another_stage for d in result.differences if d.days_in_another_stage}
    assert moved == {ids[1]: 11, ids[2]: 11}  # DPD 20..30, and not the case settled at DPD 15
    assert result.totals()["cases_that_differ"] == 2
    assert store.digest() == digest

    policy_file = tmp_path / "sooner.toml"
    policy_file.write_text("visit_at_dpd = 20\n", encoding="utf-8")
    monkeypatch.setenv("COLLECTFLOW_DATABASE_URL", db_url)
    runtime.forget()
    before = _file_hash(db_url)
    try:
        out = tmp_path / "diff.json"
        shown = CliRunner().invoke(
            __import__("flows.cli", fromlist=["app"]).app,
            ["whatif", "--policy", str(policy_file), "--from", FIRST_DUE.isoformat(), "--to", end.isoformat(), "--out", str(out), "--json"],
        )
    finally:
        runtime.forget()
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["case_days_in_another_stage"] == 22
    assert sorted(row["case_id"] for row in json.loads(out.read_text())) == ids[1:]
    assert store.digest() == digest and _file_hash(db_url) == before


def _file_hash(db_url: str) -> str | None:
    if not db_url.startswith("sqlite:///"):
        return None
    return hashlib.sha256(Path(db_url.removeprefix("sqlite:///")).read_bytes()).hexdigest()
