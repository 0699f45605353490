"""The portfolio report's charts: PNG files drawn with matplotlib's Agg backend.

Each ``draw_*`` takes the report's ``as_dict()`` (the same figures the tables
and the JSON show) and returns a ``Figure``; ``save_report`` writes the four
charts, ``report.json`` and ``report.md`` into one directory. Decimal
amounts become floats here, at the drawing edge only. No pyplot: figures
are built on their own Agg canvas, so drawing needs no display and leaves
no global state behind.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from flows.handlers.reports import IN_HOUSE
from flows.report import report_markdown, roll_cell
from states.parse import InputError

CHART_FILES = {
    "stage_funnel": "stage-funnel.png",
    "roll_rates": "roll-rates.png",
    "recovery_by_agency": "recovery-by-agency.png",
    "dpd_distribution": "dpd-distribution.png",
}
DPI = 110
BLUE, GREY = "#3b6ea5", "#9aa5b1"
AGENCY_COLOURS = ("#3b6ea5", "#e08e45", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#ff9da7", "#9c755f")


def _figure(width: float = 7.5, height: float = 4.5) -> Figure:
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _number(value: float) -> str:
    return f"{value:,.0f}"


def draw_stage_funnel(data: dict) -> Figure:
    """Horizontal bars: loans booked, then the cases that reached each stage, with the share of booked."""
    stages = [f["stage"] for f in data["funnel"]]
    counts = [f["cases"] for f in data["funnel"]]
    booked = counts[0] or 1
    figure = _figure()
    ax = figure.add_subplot()
    bars = ax.barh(stages, counts, color=[GREY, *[BLUE] * (len(counts) - 1)])
    ax.invert_yaxis()  # booked on top, down the lifecycle
    ax.bar_label(bars, labels=[f"{n:,} ({100 * n / booked:.1f} %)" for n in counts], padding=3, fontsize=9)
    ax.set_xlim(0, max(counts + [1]) * 1.25)
    ax.set_title(f"Stage funnel: cases that reached each stage, up to {data['as_of']}")
    ax.set_xlabel("cases (share of loans booked)")
    ax.set_ylabel("stage")
    return figure


def draw_roll_rates(data: dict) -> Figure:
    """Heat map of the roll-rate matrix: % of each row's cases, the case count under it."""
    roll = data["roll_rates"]
    rows, columns = roll["rows"], roll["columns"]
    grid = [[float("nan") if r is None else 100 * float(Decimal(r)) for r in line] for line in roll["rates"]]
    figure = _figure(8.5, 5.2)
    ax = figure.add_subplot()
    colours = matplotlib.colormaps["Blues"].with_extremes(bad="#eeeeee")  # a row with no case: grey
    image = ax.imshow(grid, cmap=colours, vmin=0, vmax=100, aspect="auto")
    for i, (counts, rates) in enumerate(zip(roll["counts"], roll["rates"])):
        if not sum(counts):
            ax.text((len(columns) - 1) / 2, i, "no case", ha="center", va="center", fontsize=8, color="#666666")
        for j, (n, r) in enumerate(zip(counts, rates)):
            if n:
                share = 100 * float(Decimal(r))
                ax.text(j, i, f"{roll_cell(n, r)}%\n{n:,}", ha="center", va="center", fontsize=7.5,
                        color="white" if share > 55 else "black")
    ax.set_xticks(range(len(columns)), [c.replace("_", " ") for c in columns], rotation=30, ha="right")
    ax.set_yticks(range(len(rows)), [f"{row} ({sum(c):,})" for row, c in zip(rows, roll["counts"])])
    ax.set_title(f"Roll rates: bucket on {roll['from_month_end']} (rows) -> on {roll['to_month_end']} (columns)")
    ax.set_xlabel(f"bucket or outcome on {roll['to_month_end']}")
    ax.set_ylabel(f"bucket on {roll['from_month_end']} (open cases)")
    figure.colorbar(image, ax=ax, label="% of the row's cases")
    return figure


def draw_recovery_by_agency(data: dict) -> Figure:
    """Yuan recovered each month: on top, stacked by the agency the case was placed with; below,
    what came in on cases not placed (in house), each on its own scale so neither hides the other."""
    months = data["recovery"]["by_month"]
    labels = [m["month"] for m in months]
    names = [a["name"] for a in months[0]["by_agency"]] if months else []
    figure = _figure(7.5, 5.5)
    placed_ax, house_ax = figure.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    bottom = [0.0] * len(months)
    for n, name in enumerate(names):
        values = [float(Decimal(m["by_agency"][n]["amount"])) for m in months]
        if name == IN_HOUSE:
            bars = house_ax.bar(labels, values, color=GREY)
            house_ax.bar_label(bars, labels=[_number(v) for v in values], padding=2, fontsize=8)
            house_ax.set_ylim(0, max(values + [1.0]) * 1.25)
            continue
        placed_ax.bar(labels, values, bottom=bottom, label=name, color=AGENCY_COLOURS[n % len(AGENCY_COLOURS)])
        bottom = [b + v for b, v in zip(bottom, values)]
    for x, total in enumerate(bottom):
        placed_ax.annotate(_number(total), (x, total), ha="center", va="bottom", fontsize=8, xytext=(0, 2), textcoords="offset points")
    if any(name != IN_HOUSE for name in names):
        placed_ax.legend(title="agency", fontsize=8, title_fontsize=8, loc="upper left")
    else:
        placed_ax.text(0.5, 0.5, "no payment on a placed case yet", ha="center", va="center", transform=placed_ax.transAxes)
    placed_ax.set_ylim(0, max(bottom + [1.0]) * 1.25)
    for ax, label in ((placed_ax, "yuan, placed cases"), (house_ax, "yuan, in house")):
        ax.yaxis.set_major_formatter(lambda value, _pos: _number(value))
        ax.set_ylabel(label)
    placed_ax.set_title(f"Recovery by agency, month by month, up to {data['as_of']}")
    house_ax.set_xlabel("month received")
    return figure


def draw_dpd_distribution(data: dict) -> Figure:
    """Bars: open cases by DPD band as of the report's date (DPD 0 named in the title, not drawn)."""
    distribution = data["dpd_distribution"]
    bands = [b["band"] for b in distribution["bands"]]
    counts = [b["cases"] for b in distribution["bands"]]
    figure = _figure(8.5, 4.5)
    ax = figure.add_subplot()
    bars = ax.bar(bands, counts, color=BLUE)
    ax.bar_label(bars, labels=[f"{n:,}" if n else "" for n in counts], padding=2, fontsize=8)
    ax.set_ylim(0, max(counts + [1]) * 1.15)
    ax.tick_params(axis="x", labelrotation=45, labelsize=8)
    ax.set_title(f"Open cases by days past due on {data['as_of']} (DPD 0: {distribution['dpd_zero']:,} cases, not drawn)")
    ax.set_xlabel("days past due (band)")
    ax.set_ylabel("open cases")
    return figure


DRAW = {
    "stage_funnel": draw_stage_funnel,
    "roll_rates": draw_roll_rates,
    "recovery_by_agency": draw_recovery_by_agency,
    "dpd_distribution": draw_dpd_distribution,
}


def output_dir(path: Path | str, field: str = "--out") -> Path:
    """The directory the report is written to, created if missing; one line naming it if it cannot be."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise InputError(f"{field}: {str(out)!r} is a file; give a directory (created if it does not exist)")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".collectflow-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise InputError(f"{field}: cannot write in {str(out)!r} ({exc.strerror or exc}); give a writable directory") from None
    return out


def save_report(data: dict, out: Path | str, field: str = "--out") -> dict[str, Path]:
    """Write report.json, report.md and the four charts into ``out``; the paths written, by name."""
    folder = output_dir(out, field)
    written = {"json": folder / "report.json", "markdown": folder / "report.md"}
    written["json"].write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    written["markdown"].write_text(report_markdown(data), encoding="utf-8")
    for name, draw in DRAW.items():
        path = folder / CHART_FILES[name]
        draw(data).savefig(path, format="png")
        written[name] = path
    return written
