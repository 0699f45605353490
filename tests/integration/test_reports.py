"""The portfolio report on a small hand-built book: every figure pinned, on SQLite and PostgreSQL.

Seven loans (``builders``: 10,000 + n yuan, 18 %, 12 monthly installments
from 2024-02-15), closed to the month ends of 2024 up to June 30, with
payments at known dates:

1. pays everything due on 03-20 (cured from phone), then each installment on its due date;
2. never pays until outsourced, then 1,000.00 on 06-10 while placed with AGENCY-POOL;
3. never pays;
4. pays the loan off on 04-10 (settled);
5. promises on 03-25 to pay 1,500.00 by 03-30 and pays all it owes (more) on 03-29 (kept,
   cured); promises again on 05-20 for 05-25 and pays nothing (broken);
6. pays 3,000.00 on 05-31 after that day's review: its oldest unpaid installment moves from
   02-15 to 04-15 with no later review that month (the report replays it: M2, not M4);
7. booked on 2024-05-01, first due 06-01, never pays.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest

from flows.handlers.reports import build_report, report_date
from models import roll_rates
from models.store import CaseStore
from states.case import CollectionCase
from states.commands import MakePromise
from states.parse import InputError
from tests.integration import builders
from tests.integration.builders import POLICY, advance, opened, pay

AS_OF = date(2024, 6, 30)
MONTH_ENDS = (date(2024, 2, 29), date(2024, 3, 31), date(2024, 4, 30), date(2024, 5, 31), AS_OF)


def promise(store: CaseStore, case_id: str, amount: str, made_on: date, promised_on: date) -> None:
    case = store.load_one(case_id)
    version = case.version
    cmd = MakePromise(case=case_id, operator=builders.OPERATOR, amount=amount, promised_on=promised_on, made_on=made_on)
    store.save([(case, case.make_promise(cmd, POLICY))], expected_versions={case_id: version})


def pay_all_due(store: CaseStore, case_id: str, on: date) -> None:
    due = store.load_one(case_id).view(on, POLICY).projection.total_due
    pay(store, case_id, str(due), on, f"P-{case_id}-{on}")


def payoff(store: CaseStore, case_id: str, on: date) -> None:
    pay(store, case_id, str(store.load_one(case_id).view(on, POLICY).payoff), on, f"PAYOFF-{case_id}")


@pytest.fixture
def book(store: CaseStore) -> list[str]:
    ids = builders.book(store, 6)
    store.add_cases([opened(7, disbursed_on=date(2024, 5, 1), first_due_on=date(2024, 6, 1))])
    ids.append(builders.case_id(7))
    c = dict(enumerate(ids, 1))
    steps: list[tuple[date, list]] = [
        (date(2024, 3, 20), [lambda: pay_all_due(store, c[1], date(2024, 3, 20))]),
        (date(2024, 3, 25), [lambda: promise(store, c[5], "1500.00", date(2024, 3, 25), date(2024, 3, 30))]),
        (date(2024, 3, 29), [lambda: pay_all_due(store, c[5], date(2024, 3, 29))]),
        (date(2024, 4, 10), [lambda: payoff(store, c[4], date(2024, 4, 10))]),
        (date(2024, 4, 15), [lambda: pay_all_due(store, c[1], date(2024, 4, 15))]),
        (date(2024, 5, 15), [lambda: pay_all_due(store, c[1], date(2024, 5, 15))]),
        (date(2024, 5, 20), [lambda: promise(store, c[5], "1500.00", date(2024, 5, 20), date(2024, 5, 25))]),
        (date(2024, 5, 31), [lambda: pay(store, c[6], "3000.00", date(2024, 5, 31), "P-6-0531")]),
        (date(2024, 6, 10), [lambda: pay(store, c[2], "1000.00", date(2024, 6, 10), "P-2-0610")]),
        (date(2024, 6, 15), [lambda: pay_all_due(store, c[1], date(2024, 6, 15))]),
    ]
    days = sorted({*MONTH_ENDS, *(day for day, _ in steps)})
    actions = dict(steps)
    for day in days:
        open_ids = [i for i in ids if not store.load_one(i).stage.is_closed]
        advance(store, open_ids, day)  # the close of the day, then what operators record that day
        for action in actions.get(day, []):
            action()
    return ids


def test_a_past_month_end_dpd_read_from_the_reviews_equals_a_replay_of_the_events(store, book):
    replayed = 0
    for month_end in MONTH_ENDS:
        readings = store.dpd_readings(month_end)
        replayed += sum(r.needs_replay for r in readings.values())
        with store.engine.connect() as conn:
            positions = roll_rates.positions_at(conn, month_end)
        for case_id, (dpd, closed) in positions.items():
            case = CollectionCase.replay(store.events(case_id, month_end))
            assert (dpd, closed) == (case.dpd(month_end), case.stage.value if case.stage.is_closed else None), (case_id, month_end)
    assert replayed == 1  # case 6, paid on 05-31 after that day's review
    assert store.dpd_readings(date(2024, 5, 31))["CASE-000006"].needs_replay


def test_the_report_of_a_small_book_pins_every_figure(store, book):
    data = build_report(store, AS_OF).as_dict()
    pinned = PINNED
    assert data["as_of"] == "2024-06-30"
    assert {s["name"]: s["cases"] for s in data["by_stage"] if s["cases"]} == pinned["stages"]
    assert {b["name"]: b["cases"] for b in data["by_bucket"] if b["cases"]} == pinned["buckets"]
    assert data["total"] == pinned["total"]
    assert data["dpd_distribution"]["dpd_zero"] == 1
    assert {b["band"]: b["cases"] for b in data["dpd_distribution"]["bands"] if b["cases"]} == pinned["bands"]
    assert data["funnel"] == pinned["funnel"]
    roll = data["roll_rates"]
    assert (roll["from_month_end"], roll["to_month_end"]) == ("2024-05-31", "2024-06-30")
    moves = {
        (row, column): n
        for row, counts in zip(roll["rows"], roll["counts"])
        for column, n in zip(roll["columns"], counts)
        if n
    }
    assert moves == pinned["roll_moves"]
    rates = {row: dict(zip(roll["columns"], line)) for row, line in zip(roll["rows"], roll["rates"])}
    assert (rates["M0"]["M0"], rates["M0"]["M1"], rates["M0"]["settled"]) == ("0.5000", "0.5000", "0.0000")
    assert rates["M4"]["M5"] == "1.0000" and set(rates["M6"].values()) == {None}  # no case in M6: no rate
    assert data["cure"] == {"in_collection": 7, "cured": 2, "rate": "0.2857"}
    assert data["promises"] == {"made": 2, "kept": 1, "broken": 1, "kept_rate": "0.5000"}
    recovery = data["recovery"]
    assert {a["name"]: a["amount"] for a in recovery["by_stage"] if a["amount"] != "0.00"} == pinned["recovery_by_stage"]
    assert {a["name"]: a["amount"] for a in recovery["by_agency"]} == {"AGENCY-POOL": "4000.00", "in house": pinned["in_house"]}
    assert [m["month"] for m in recovery["by_month"]] == ["2024-03", "2024-04", "2024-05", "2024-06"]
    assert recovery["total"] == str(sum(Decimal(a["amount"]) for a in recovery["by_agency"]))
    assert {c["component"]: (c["charged"], c["unenforceable"]) for c in data["charges"]} == pinned["charges"]
    # AGENCY-POOL recovered 4,000.00 while placed in M4-M6 (the policy's 15 %): 600.00, the lender's cost
    assert data["costs"]["litigation"] == "0.00" and data["costs"]["agency_commission"] == "600.00"
    assert "CommissionAccrued" in data["costs"]["agency_commission_note"]
    assert data["stuck"] == []


def test_payments_by_stage_and_agency_add_up_to_every_payment_received(store, book):
    data = build_report(store, AS_OF).as_dict()
    received = sum(
        (e.amount for cid in book for e in store.events(cid) if e.type == "PaymentReceived"), Decimal("0")
    )
    assert Decimal(data["recovery"]["total"]) == received
    months = data["recovery"]["by_month"]
    assert sum(Decimal(a["amount"]) for m in months for a in m["by_agency"]) == received


def test_charges_posted_equal_what_the_cases_charged_by_replay(store, book):
    data = build_report(store, AS_OF).as_dict()
    charged: dict[str, Decimal] = {}
    for cid in book:
        for event in store.events(cid, AS_OF):
            for posting in getattr(event, "postings", ()):
                charged[posting.component] = charged.get(posting.component, Decimal("0")) + posting.enforceable
    assert {c["component"]: Decimal(c["charged"]) for c in data["charges"] if c["charged"] != "0.00"} == {
        k: v for k, v in charged.items() if v
    }


def test_the_report_date_defaults_to_the_last_close_and_refuses_a_later_one(store, book):
    with pytest.raises(InputError, match="no business date has been closed yet"):
        report_date(store, None, date(2024, 7, 1))
    for day in (MONTH_ENDS[0], AS_OF):  # the first close and the last (the book's other days are the cases' own)
        store.begin_business_day(day)
        store.finish_business_day(day, advanced=6, stuck=0)
    assert report_date(store, None, date(2024, 7, 1)) == AS_OF
    assert report_date(store, date(2024, 5, 31), date(2024, 7, 1)) == date(2024, 5, 31)
    with pytest.raises(InputError, match=r"--as-of: 2024-02-28 is before the first closed business date 2024-02-29"):
        report_date(store, date(2024, 2, 28), date(2024, 7, 1))
    with pytest.raises(InputError, match=r"--as-of: 2024-07-01 is after the last closed business date 2024-06-30"):
        report_date(store, date(2024, 7, 1), date(2024, 7, 2))


# Read off the cases' own histories: see the module docstring.
PINNED: dict = {
    "stages": {"current": 1, "phone": 1, "visit": 1, "outsourced": 3, "settled": 1},  # 1 | 7 | 5 | 2 3 6 | 4
    "buckets": {"M0": 1, "M1": 1, "M3": 2, "M5": 2},  # 1 | 7 (DPD 29) | 5, 6 (76) | 2, 3 (136)
    "total": {"name": "all", "cases": 7, "principal_outstanding": "51914.86", "total_due": "14134.20", "unenforceable": "0.00"},
    "bands": {"21-30": 1, "71-80": 2, "131-140": 2},
    "funnel": [
        {"stage": "booked", "cases": 7},
        {"stage": "overdue", "cases": 7},
        {"stage": "phone", "cases": 7},
        {"stage": "visit", "cases": 6},  # all but 7 (case 1 paid on 03-20, at DPD 34: in visit)
        {"stage": "outsourced", "cases": 3},
        {"stage": "litigation", "cases": 0},
    ],
    # 05-31 -> 06-30: 1 stays M0, 7 (first due 06-01) rolls to M1, 5 and 6 (DPD 46) to M3, 2 and 3 to M5;
    # 4 was settled before 05-31: not a row
    "roll_moves": {("M0", "M0"): 1, ("M0", "M1"): 1, ("M2", "M3"): 2, ("M4", "M5"): 2},
    "recovery_by_stage": {
        "current": "2750.67",  # case 1's three installments of 916.89 after its cure
        "visit": "14173.20",  # case 1 on 03-20, case 5 on 03-29, case 4's payoff on 04-10
        "outsourced": "4000.00",  # case 6's 3,000.00 and case 2's 1,000.00, both placed
    },
    "in_house": "16923.87",
    "charges": {
        "costs": ("0.00", "0.00"),
        "penalty_interest": ("809.85", "0.00"),
        "compound_interest": ("0.00", "0.00"),
        "late_fee": ("0.00", "0.00"),
        "contract_interest": ("3762.77", "0.00"),
        "delayed_performance_interest": ("0.00", "0.00"),  # no judgment in this book
    },
}


def test_charges_above_the_cap_are_reported_as_unenforceable(store):
    """A private-lending contract at 18 % under a cap of 4 x LPR (13.8 %): the excess is never charged."""
    store.add_cases([opened(21, cap_regime="private")])
    advance(store, [builders.case_id(21)], AS_OF)
    data = build_report(store, AS_OF).as_dict()
    above_cap = sum(Decimal(c["unenforceable"]) for c in data["charges"])
    row = store.case_row(builders.case_id(21)).projection
    assert above_cap == row.unenforceable > 0
    assert data["total"]["unenforceable"] == str(row.unenforceable)


# --------------------------------------------------------------------------- what people see


def test_the_tables_stay_readable_at_sixty_columns(store, book):
    from rich.console import Console

    from flows.report import portfolio_report

    console = Console(width=60, record=True, color_system=None)
    console.print(portfolio_report(build_report(store, AS_OF).as_dict()))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 60
    assert "…" not in text  # nothing cut off
    for figure in ("51,914.86", "14,173.20", "28.6 %", "M7+", "w/o", "AGENCY-POOL", "3,762.77"):
        assert figure in text, figure


def test_the_markdown_has_every_section_with_the_report_figures(store, book):
    from flows.report import report_markdown, report_sections

    data = build_report(store, AS_OF).as_dict()
    markdown = report_markdown(data)
    assert markdown.startswith("# Portfolio report as of 2024-06-30")
    for section in report_sections(data):
        assert f"## {section.title}" in markdown
    assert "| outsourced | 3 | " in markdown and "| AGENCY-POOL | 4,000.00 | 19.1 % |" in markdown


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_the_charts_are_png_images_drawn_from_the_report_figures(store, book, tmp_path):
    from matplotlib.image import imread

    from flows import charts

    data = build_report(store, AS_OF).as_dict()
    written = charts.save_report(data, tmp_path / "out")
    assert set(written) == {"json", "markdown", *charts.CHART_FILES}
    for name in charts.CHART_FILES:
        path = written[name]
        assert path.read_bytes()[:8] == PNG_SIGNATURE, name
        pixels = imread(path)
        height, width = pixels.shape[:2]
        assert width >= 700 and height >= 450, (name, width, height)
        assert pixels.std() > 0.05, f"{name}: an almost blank image"
        assert path.stat().st_size > 15_000, name
    assert json.loads(written["json"].read_text(encoding="utf-8")) == data

    funnel = charts.draw_stage_funnel(data)
    (ax,) = funnel.axes
    assert [bar.get_width() for bar in ax.patches] == [f["cases"] for f in data["funnel"]]
    assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()

    heat = charts.draw_roll_rates(data)
    grid = heat.axes[0].images[0].get_array()
    for i, line in enumerate(data["roll_rates"]["rates"]):
        for j, rate in enumerate(line):
            assert (grid.mask[i, j] if rate is None else grid[i, j] == pytest.approx(100 * float(rate))), (i, j)

    recovery = charts.draw_recovery_by_agency(data)
    placed_ax, house_ax = recovery.axes[:2]
    months = data["recovery"]["by_month"]
    assert [p.get_height() for p in placed_ax.patches] == [float(m["by_agency"][0]["amount"]) for m in months]
    assert [p.get_height() for p in house_ax.patches] == [float(m["by_agency"][1]["amount"]) for m in months]
    assert [t.get_text() for t in placed_ax.get_legend().get_texts()] == ["AGENCY-POOL"]
    assert placed_ax.get_title() and house_ax.get_xlabel() and placed_ax.get_ylabel()

    dpd = charts.draw_dpd_distribution(data)
    (ax,) = dpd.axes
    assert [p.get_height() for p in ax.patches] == [b["cases"] for b in data["dpd_distribution"]["bands"]]
    assert "DPD 0: 1 cases" in ax.get_title() and ax.get_xlabel() and ax.get_ylabel()


# --------------------------------------------------------------------------- the command


@pytest.fixture
def cli(db_url, monkeypatch):
    """Run ``collectflow`` in-process on this test's database; (exit code, stdout, stderr)."""
    from typer.testing import CliRunner

    from flows import runtime
    from flows.cli import app

    monkeypatch.setenv("COLLECTFLOW_DATABASE_URL", db_url)
    runtime.forget()

    def invoke(*args: str):
        result = CliRunner().invoke(app, list(args))
        return result.exit_code, result.stdout, result.stderr

    yield invoke
    runtime.forget()


def closed(store: CaseStore, *days: date) -> None:
    """Record the closes of ``days`` (the book's cases were advanced directly, as a close advances them)."""
    for day in days:
        store.begin_business_day(day)
        store.finish_business_day(day, advanced=7, stuck=0)


def test_collectflow_report_json_is_the_report_and_the_charts_go_to_out(store, book, cli, tmp_path):
    closed(store, *MONTH_ENDS)
    code, out, err = cli("report", "--as-of", "2024-06-30", "--out", str(tmp_path / "charts"), "--json")
    assert code == 0, err
    assert json.loads(out) == build_report(store, AS_OF).as_dict()
    assert sorted(p.name for p in (tmp_path / "charts").iterdir()) == sorted(
        ["report.json", "report.md", "stage-funnel.png", "roll-rates.png", "recovery-by-agency.png", "dpd-distribution.png"]
    )
    code, out, err = cli("report", "--as-of", "2024-05-31", "--out", str(tmp_path / "may"))
    assert code == 0, err
    assert "Roll rates 2024-04-30 -> 2024-05-31" in out and f"written to {(tmp_path / 'may').resolve()}" in out


@pytest.mark.parametrize(
    "args, named",
    [
        (["--as-of", "2024-13-01"], "--as-of: '2024-13-01' is not a date"),
        (["--as-of", "yesterday"], "--as-of: 'yesterday' is not a date"),
        (["--as-of", "2999-01-01"], "--as-of: 2999-01-01 is after today"),
        ([], "--as-of: no business date has been closed yet"),
    ],
)
def test_a_bad_as_of_is_one_line_naming_it(store, book, cli, tmp_path, args, named):
    code, out, err = cli("report", *args, "--out", str(tmp_path))
    assert code == 2 and out == ""
    assert err.startswith(f"error: {named}") and err.count("\n") == 1 and "Traceback" not in err


def test_an_out_that_is_a_file_is_one_line_naming_it(store, book, cli, tmp_path):
    a_file = tmp_path / "report.txt"
    a_file.write_text("not a directory")
    closed(store, AS_OF)
    code, out, err = cli("report", "--as-of", "2024-06-30", "--out", str(a_file))
    assert code == 2 and out == ""
    assert err == f"error: --out: '{a_file}' is a file; give a directory (created if it does not exist)\n"
