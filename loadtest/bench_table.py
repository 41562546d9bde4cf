"""The cross-use-case table of `make bench`: one row per use case, side by side.

`loadtest.bench` reads each use case's report (`serving_<name>.json`) into a `Row`
(`bench.cross_row`), nothing measured or typed here; this module only lays the rows out:
`serving_all.md` (the machine and the versions on top, then the table) and
`serving_all.json` (the same rows, every field).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.markdown import MISSING, table

STEM = "serving_all"
# In-process paths, by their names in a report's "in_process", with what the column shows.
PATHS = {
    "full pipeline": "full pipeline",
    "fast path": "fast path, no reasons",
    "scoring function": "with reasons (riskbento's answer)",
    "model alone": "model alone",
}
VERDICT = {True: "met", False: "NOT met", None: "not measured"}


@dataclass(frozen=True)
class PredictAt:
    """riskbento `/predict` at one concurrency (None: not run)."""

    concurrency: int
    rps: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None


@dataclass(frozen=True)
class Target:
    """One of the report's targets: reported, never asserted."""

    target: str
    value: float | None
    bound: float
    met: bool | None


@dataclass(frozen=True)
class Row:
    """One use case's run, every number read from its report."""

    use_case: str
    model_tag: str
    champion_family: str | None  # the model card's champion
    champion_candidate: str | None
    report: str  # its serving_<name>.json
    smoke: bool
    workers: int
    settings: str  # riskbento's settings label
    duration_s: float  # measured seconds per scenario
    elapsed_s: float | None
    load_average_at_start: list[float]
    us_per_record: dict[str, float | None]  # p50 µs, one record, keyed like PATHS
    rows_per_s_at_1000: dict[str, float | None]
    predict: list[PredictAt]
    at_concurrency: int  # of the ratios and the server CPU below
    vs_plain: float | None
    vs_tuned_full: float | None  # the tuned peer giving the same full answer
    vs_tuned: float | None  # the probability-only tuned peer (context)
    server_cpu_us_per_request: float | None  # riskbento /predict
    batch_concurrency: int | None  # the best concurrency of 1,000-record bodies
    batch_rows_per_s: float | None
    batch_vs_inprocess_full: float | None  # ÷ in-process full pipeline at 1,000
    targets: dict[str, Target] = field(default_factory=dict)  # by the report's target key
    machine: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)


def _n(value: Any, digits: int = 1) -> str:
    if value is None:
        return MISSING
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _with_target(row: Row, key: str, value: float | None, digits: int) -> str:
    """A value with its target's verdict beside it (a report without that target: none)."""
    target = row.targets.get(key)
    shown = _n(value, digits)
    return shown if target is None else f"{shown} ({VERDICT[target.met]})"


def _predict_cell(at: PredictAt) -> str:
    if at.rps is None:
        return MISSING
    return f"{_n(at.rps)} ({_n(at.p50_ms, 2)} / {_n(at.p99_ms, 2)})"


def _machine_line(machine: dict[str, Any]) -> str:
    return (
        f"{machine.get('cores')} cores ({machine.get('cpu_model')}), "
        f"{machine.get('memory_gb')} GB; {machine.get('platform')}"
    )


def _shared(rows: list[Row], what: str, text: Any) -> list[str]:
    """One line when every row agrees, else one per distinct value with its use cases."""
    seen: dict[str, list[str]] = {}
    for row in rows:
        seen.setdefault(text(row), []).append(row.use_case)
    if len(seen) == 1:
        return [f"{what}: {next(iter(seen))}."]
    return [f"{what} ({', '.join(names)}): {value}." for value, names in seen.items()]


def render(rows: list[Row]) -> str:
    """The Markdown: machine, versions and settings on top, then one row per use case."""
    concurrency = [at.concurrency for at in rows[0].predict] if rows else []
    c = rows[0].at_concurrency if rows else 0
    lines = [
        "# Serving benchmark across use cases",
        "",
        *_shared(rows, "Machine", lambda r: _machine_line(r.machine)),
        *_shared(rows, "Versions", lambda r: ", ".join(f"{k} {v}" for k, v in r.versions.items())),
        *_shared(rows, "riskbento served with", lambda r: r.settings),
        "",
        "Each row is its own run of `loadtest.bench` (its report named below); ratios are "
        "within that run. In process: one thread, p50 µs for one record and rows/s for "
        f"1,000. Served: `/predict` req/s (p50 / p99 ms); ratios, p99 and server CPU at "
        f"c={c}; `/predict_batch` with 1,000-record bodies at its best concurrency. Targets "
        "(reported, never asserted) beside their values.",
        "",
        *table(
            [
                "use case",
                "model",
                "champion",
                *(f"µs / record: {label}" for label in PATHS.values()),
                *(f"rows/s @1,000: {label}" for label in PATHS.values()),
                *(f"/predict c={n} req/s (p50 / p99 ms)" for n in concurrency),
                f"÷ plain peer (c={c}{_bound(rows, 'vs_plain', ', ≥ {:g}x')})",
                f"÷ tuned peer, same answer (c={c}{_bound(rows, 'vs_tuned_full', ', ≥ {:g}x')})",
                f"p99 ms (c={c}{_bound(rows, 'p99', ', ≤ {:g}')})",
                f"server µs CPU / request (c={c})",
                "/predict_batch 1,000 rows/s (c)",
                f"÷ in-process full pipeline @1,000{_bound(rows, 'batch_share', ' (≥ {:g})')}",
            ],
            [
                [
                    row.use_case,
                    f"`{row.model_tag}`",
                    row.champion_family or MISSING,
                    *(_n(row.us_per_record.get(p)) for p in PATHS),
                    *(_n(row.rows_per_s_at_1000.get(p), 0) for p in PATHS),
                    *(_predict_cell(at) for at in row.predict),
                    _with_target(row, "vs_plain", row.vs_plain, 2),
                    _with_target(row, "vs_tuned_full", row.vs_tuned_full, 2),
                    _with_target(row, "p99", _p99_at(row), 2),
                    _n(row.server_cpu_us_per_request, 0),
                    f"{_n(row.batch_rows_per_s)} ({_n(row.batch_concurrency)})",
                    _with_target(row, "batch_share", row.batch_vs_inprocess_full, 2),
                ]
                for row in rows
            ],
        ),
        "",
        "Runs:",
        "",
    ]
    for row in rows:
        met = sum(t.met is True for t in row.targets.values())
        lines.append(
            f"- {row.use_case} (`{row.model_tag}`, champion {row.champion_family or MISSING}"
            f"{f' = {row.champion_candidate}' if row.champion_candidate else ''}): "
            f"{'SMOKE, ' if row.smoke else ''}{row.duration_s:g} s per scenario, "
            f"{row.workers} workers, load average at start {row.load_average_at_start}, "
            f"{_n(row.elapsed_s, 0)} s in all; targets met {met} of {len(row.targets)}; "
            f"`{row.report}`"
        )
    return "\n".join(lines) + "\n"


def _bound(rows: list[Row], key: str, text: str) -> str:
    """The first row's bound of a target, for a column header ('' when no row has it)."""
    target = next((row.targets[key] for row in rows if key in row.targets), None)
    if target is None:
        return ""
    return text.format(target.bound)


def _p99_at(row: Row) -> float | None:
    return next((at.p99_ms for at in row.predict if at.concurrency == row.at_concurrency), None)


def as_json(rows: list[Row]) -> dict[str, Any]:
    """Every field of every row; the first row's machine and versions on top."""
    return {
        "machine": rows[0].machine if rows else {},
        "versions": rows[0].versions if rows else {},
        "use_cases": [row.use_case for row in rows],
        "rows": [asdict(row) for row in rows],
    }


def write(rows: list[Row], out: Path) -> tuple[Path, str]:
    """`serving_all.md` and `.json` in `out`; returns the json's path and the Markdown."""
    text = render(rows)
    (out / f"{STEM}.md").write_text(text)
    path = out / f"{STEM}.json"
    path.write_text(json.dumps(as_json(rows), indent=2, default=str))
    return path, text
