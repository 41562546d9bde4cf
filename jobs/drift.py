"""Drift of logged traffic against the training data (`jobs/traffic.py` makes traffic to try it on).

`check(use_case, log)` reads the prediction log (`serving.predlog`), takes the
reference distributions stored with the model that answered (training split for the
features, test split for the score: `training/reference.py`) and computes, per feature
and for the score:

- PSI over the reference's bins (numeric: its decile edges; categorical: one bin per
  level, an unknown level its own bin; binary: 0 and 1), with a blank as one more bin
  and PSI_EPSILON in place of an empty bin's share;
- KS where it makes sense: for the score, the exact two-sample statistic against the
  test-split scores stored with the model; for numeric features, the largest gap
  between the two cumulative shares at the reference's decile edges (a lower bound of
  the exact statistic, which would need the training rows).

The spec's `drift:` thresholds decide (PSI at or above `psi_alert` is drift). It writes
Markdown + JSON + PNG plots + a Prometheus text file under `reports/<use case>/drift/`
and, when `RISKBENTO_PUSHGATEWAY_URL` is set, pushes the metrics to that Pushgateway.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.errors import UserError
from core.logs import get_logger
from core.markdown import cell, table
from core.names import PROJECT_ROOT
from core.settings import get_settings
from core.spec import Drift, FeatureType, Spec, load_spec
from core.stats import PSI_EPSILON, bin_counts, files_sha256, psi, shares
from jobs.pushgateway import push_if_set
from serving.predlog import (
    MODEL_COLUMN,
    ROLE_COLUMN,
    SHADOW,
    TIMESTAMP_COLUMN,
    logged_name,
    production_rows,
    read_prediction_log,
)

# Metric names (the drift dashboard and its alert rules read these).
DRIFT_PSI = "riskbento_drift_psi"  # gauge; labels use_case, feature ("score" for the score)
DRIFT_DETECTED = "riskbento_drift_detected"  # gauge 0/1; label use_case
DRIFT_LAST_RUN = "riskbento_drift_last_run_timestamp_seconds"  # gauge; label use_case
DRIFT_METRICS = (DRIFT_PSI, DRIFT_DETECTED, DRIFT_LAST_RUN)
PUSH_JOB = "riskbento_drift"

SCORE = "score"  # the `feature` label of the score's PSI
SCORE_COLUMN = "probability"  # the score as logged
MISSING_BIN = "(blank)"

EXIT_OK, EXIT_DRIFT, EXIT_USER_ERROR, EXIT_TOO_FEW_ROWS = 0, 1, 2, 3

REPORT_DIRNAME = "drift"
REPORT_STEM = "drift"
PROM_FILE = "drift.prom"
PSI_PLOT = "drift_psi.png"
DISTRIBUTION_PLOT = "drift_distributions.png"
PLOTTED = 12  # distribution panels: the score and the columns with the largest PSI

OK, WARN, ALERT = "ok", "warn", "alert"

log = get_logger("drift")  # "[drift] ...": progress on stdout, problems on stderr


class TooFewRows(UserError):
    """Fewer logged rows than the spec's `drift.min_rows`: not enough traffic to judge."""


class LogMismatch(UserError, ValueError):
    """A prediction log that does not belong to this use case or model."""


# ---------------------------------------------------------------- the statistics


def _with_missing(present: np.ndarray, missing: float) -> np.ndarray:
    """Shares among present values -> shares among all rows, blank as the last bin."""
    return np.append(present * (1.0 - missing), missing)


@dataclass
class Binned:
    """One column's reference and observed shares over the same bins (blank last)."""

    labels: list[str]
    expected: np.ndarray
    actual: np.ndarray
    ks: float | None = None
    ks_kind: str | None = None


def _edge_labels(edges: list[float]) -> list[str]:
    if not edges:
        return ["all values"]
    labels = [f"≤ {edges[0]:.4g}"]
    labels += [f"({a:.4g}, {b:.4g}]" for a, b in itertools.pairwise(edges)]
    return [*labels, f"> {edges[-1]:.4g}"]


def bin_numeric(reference: dict[str, Any], values: pd.Series) -> Binned:
    """Numeric values over the reference's bins (-inf, e1], (e1, e2], ..., (ek, inf)."""
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    present = numbers[~np.isnan(numbers)]
    edges = [float(e) for e in reference.get("edges", [])]
    ref_present = np.asarray(reference.get("shares", []), dtype=float)
    observed = shares(bin_counts(present, edges)) if ref_present.size else np.zeros(0)
    missing = float(np.isnan(numbers).mean()) if numbers.size else 0.0
    ks = None
    if ref_present.size > 1 and present.size:
        gaps = np.cumsum(ref_present)[:-1] - np.cumsum(observed)[:-1]
        ks = float(np.max(np.abs(gaps)))
    labels = _edge_labels(edges) if ref_present.size else []
    return Binned(
        labels=[*labels, MISSING_BIN],
        expected=_with_missing(ref_present, float(reference.get("missing", 0.0))),
        actual=_with_missing(observed, missing),
        ks=ks,
        ks_kind=None if ks is None else "decile edges",
    )


def bin_binary(reference: dict[str, Any], values: pd.Series) -> Binned:
    """0/1 values: the reference's quantile bins cannot split them, its mean can."""
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    present = numbers[~np.isnan(numbers)]
    ones = float(reference.get("mean", 0.0))
    observed_ones = float((present >= 0.5).mean()) if present.size else 0.0
    missing = float(np.isnan(numbers).mean()) if numbers.size else 0.0
    observed = np.array([1 - observed_ones, observed_ones]) if present.size else np.zeros(2)
    return Binned(
        labels=["0", "1", MISSING_BIN],
        expected=_with_missing(np.array([1 - ones, ones]), float(reference.get("missing", 0.0))),
        actual=_with_missing(observed, missing),
    )


def bin_categorical(
    reference: dict[str, Any], values: pd.Series, levels: list[str] | None = None
) -> Binned:
    """One bin per known level (the reference's and the spec's), one per unknown level seen."""
    ref_shares: dict[str, float] = dict(reference.get("shares", {}))
    blank = values.isna().to_numpy()
    seen = values[~blank].astype(str).value_counts()
    known = sorted(set(ref_shares) | set(levels or []))
    labels = known + sorted(set(seen.index) - set(known))
    counts = np.array([seen.get(level, 0) for level in labels], dtype=float)
    missing = float(blank.mean()) if blank.size else 0.0
    return Binned(
        labels=[*labels, MISSING_BIN],
        expected=_with_missing(
            np.array([ref_shares.get(level, 0.0) for level in labels]),
            float(reference.get("missing", 0.0)),
        ),
        actual=_with_missing(shares(counts), missing),
    )


def ks_two_sample(reference: np.ndarray, observed: np.ndarray) -> float:
    """The largest gap between two empirical distribution functions."""
    from scipy.stats import ks_2samp

    return float(ks_2samp(reference, observed).statistic)


# ---------------------------------------------------------------- one run


@dataclass
class ColumnDrift:
    name: str
    kind: str  # numeric | binary | categorical | score
    psi: float
    status: str
    binned: Binned
    mean_reference: float | None = None
    mean_observed: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "column": self.name,
            "type": self.kind,
            "psi": self.psi,
            "status": self.status,
            "ks": self.binned.ks,
            "ks_kind": self.binned.ks_kind,
            "missing_reference": float(self.binned.expected[-1]),
            "missing_observed": float(self.binned.actual[-1]),
            "mean_reference": self.mean_reference,
            "mean_observed": self.mean_observed,
            "bins": [
                {"bin": label, "reference": float(e), "observed": float(a)}
                for label, e, a in zip(
                    self.binned.labels, self.binned.expected, self.binned.actual, strict=True
                )
            ],
        }


@dataclass
class DriftRun:
    use_case: str
    model_tag: str
    log_path: Path
    files: list[str]
    log_sha256: str
    rows: int
    other_rows: dict[str, int]
    skipped_lines: int
    window: tuple[str | None, str | None]
    thresholds: Drift
    columns: list[ColumnDrift]
    written_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def drifted(self) -> list[ColumnDrift]:
        return [c for c in self.columns if c.status == ALERT]

    @property
    def warned(self) -> list[ColumnDrift]:
        return [c for c in self.columns if c.status == WARN]

    @property
    def detected(self) -> bool:
        return bool(self.drifted)

    @property
    def exit_code(self) -> int:
        return EXIT_DRIFT if self.detected else EXIT_OK


def _status(value: float, thresholds: Drift) -> str:
    if value >= thresholds.psi_alert:
        return ALERT
    return WARN if value >= thresholds.psi_warn else OK


def _mean(values: pd.Series) -> float | None:
    numbers = pd.to_numeric(values, errors="coerce")
    return None if numbers.isna().all() else float(numbers.mean())


def _pick_model_rows(
    frame: pd.DataFrame, use_case: str, model_tag: str | None
) -> tuple[pd.DataFrame, str, dict[str, int]]:
    """Rows answered by one model: the one asked for, or the one that answered last."""
    if MODEL_COLUMN not in frame.columns:
        raise LogMismatch(
            f"the prediction log has no {MODEL_COLUMN!r} column (columns: "
            f"{', '.join(map(str, frame.columns[:20]))}): expected rows written by PredictionLog"
        )
    tags = frame[MODEL_COLUMN].astype(str)
    counts = tags.value_counts().to_dict()
    latest = len(frame) - 1  # files are read in name order: workers, then rotations
    if TIMESTAMP_COLUMN in frame.columns:
        stamps = pd.to_datetime(frame[TIMESTAMP_COLUMN], errors="coerce", format="ISO8601")
        if stamps.notna().any():
            latest = frame.index.get_loc(stamps.idxmax())  # skips unparsable stamps
    tag = model_tag or str(tags.iloc[latest])
    if tag not in counts:
        raise LogMismatch(f"no logged rows answered by {tag!r}; models in the log: {counts}")
    if tag.split(":")[0] != use_case:
        raise LogMismatch(
            f"the log's rows come from model {tag!r}, not from use case {use_case!r}: "
            "pass the log of this use case (or the use case of this log)"
        )
    others = {t: int(n) for t, n in counts.items() if t != tag}
    return frame[tags == tag].reset_index(drop=True), tag, others


def _judged(
    name: str,
    kind: str,
    binned: Binned,
    thresholds: Drift,
    means: tuple[float | None, float | None] | None,
) -> ColumnDrift:
    value = psi(binned.expected, binned.actual)
    means = means or (None, None)
    return ColumnDrift(
        name=name,
        kind=kind,
        psi=value,
        status=_status(value, thresholds),
        binned=binned,
        mean_reference=means[0],
        mean_observed=means[1],
    )


def compare(
    rows: pd.DataFrame,
    model_spec: Spec,
    reference: dict[str, Any],
    thresholds: Drift,
    reference_scores: np.ndarray | None,
) -> list[ColumnDrift]:
    """Every model feature and the score, compared with the stored reference."""
    missing = [f.name for f in model_spec.features if logged_name(f.name) not in rows.columns] + (
        [SCORE_COLUMN] if SCORE_COLUMN not in rows.columns else []
    )
    if missing:
        raise LogMismatch(
            f"the prediction log has no column(s) {missing} that model's spec "
            f"{model_spec.name!r} needs: was it written for another model?"
        )
    out: list[ColumnDrift] = []
    for feature in model_spec.features:
        values = rows[logged_name(feature.name)]
        ref = reference["features"][feature.name]
        if feature.type is FeatureType.categorical:
            kind, binned, means = "categorical", bin_categorical(ref, values, feature.levels), None
        elif feature.type is FeatureType.binary:
            kind, binned = "binary", bin_binary(ref, values)
        else:  # numeric; text and datetime were stored as numbers too (training/reference.py)
            kind, binned = "numeric", bin_numeric(ref, values)
        if kind != "categorical":
            means = (ref.get("mean"), _mean(values))
        out.append(_judged(feature.name, kind, binned, thresholds, means))
    scores = rows[SCORE_COLUMN]
    binned = bin_numeric(reference["score"], scores)
    present = pd.to_numeric(scores, errors="coerce").dropna().to_numpy(dtype=float)
    if reference_scores is not None and reference_scores.size and present.size:
        binned.ks = ks_two_sample(reference_scores, present)
        binned.ks_kind = "exact, against the test-split scores"
    means = (reference["score"].get("mean"), _mean(scores))
    out.append(_judged(SCORE, SCORE, binned, thresholds, means))
    return out


def _window(rows: pd.DataFrame) -> tuple[str | None, str | None]:
    if TIMESTAMP_COLUMN not in rows.columns:
        return None, None
    stamps = pd.to_datetime(rows[TIMESTAMP_COLUMN], errors="coerce", format="ISO8601").dropna()
    if stamps.empty:
        return None, None
    return stamps.min().isoformat(), stamps.max().isoformat()


def _reference_scores(model: Any) -> np.ndarray | None:
    from model import store

    if not (Path(model.path) / store.TEST_SCORES_FILE).exists():
        return None
    return store.test_scores(model)


def check(use_case: str | Path, log_path: Path | str, model_tag: str | None = None) -> DriftRun:
    """Judge one use case's logged traffic; raises TooFewRows below `drift.min_rows`."""
    from model import store
    from model.scorer import find_model

    spec = load_spec(use_case, check_data=False)  # thresholds: the spec as it is now
    log_path = Path(log_path)
    frame = read_prediction_log(log_path, spec.name)
    if ROLE_COLUMN in frame.columns:  # a shadow challenger's answers are not the traffic's
        frame = frame[frame[ROLE_COLUMN] != SHADOW].reset_index(drop=True)
    frame = production_rows(frame)  # not the dashboard's what-ifs and CSV uploads
    rows, tag, others = _pick_model_rows(frame, spec.name, model_tag)
    thresholds = spec.drift
    if len(rows) < thresholds.min_rows:
        raise TooFewRows(
            f"{spec.name}: {len(rows)} logged row(s) answered by {tag} in {log_path}, fewer "
            f"than drift.min_rows = {thresholds.min_rows}: not enough traffic to judge drift"
        )
    model = find_model(tag)
    card = store.card(model)
    model_spec = card.spec  # features: as the model was trained
    columns = compare(
        rows, model_spec, card.reference.tables(), thresholds, _reference_scores(model)
    )
    files = list(frame.attrs["files"])
    return DriftRun(
        use_case=spec.name,
        model_tag=tag,
        log_path=log_path,
        files=files,
        log_sha256=files_sha256(files),  # names the exact traffic judged
        rows=len(rows),
        other_rows=others,
        skipped_lines=int(frame.attrs["skipped_lines"]),
        window=_window(rows),
        thresholds=thresholds,
        columns=columns,
    )


# ---------------------------------------------------------------- outputs


def _shown_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def as_json(run: DriftRun, written: dict[str, str]) -> dict[str, Any]:
    t = run.thresholds
    return {
        "use_case": run.use_case,
        "model_tag": run.model_tag,
        "log": {
            "path": str(run.log_path),
            "files": run.files,
            "sha256": run.log_sha256,
            "skipped_lines": run.skipped_lines,
            "rows_from_other_models": run.other_rows,
        },
        "rows": run.rows,
        "window": {"first": run.window[0], "last": run.window[1]},
        "thresholds": {"psi_warn": t.psi_warn, "psi_alert": t.psi_alert, "min_rows": t.min_rows},
        "epsilon": PSI_EPSILON,
        "drift_detected": run.detected,
        "drifted": [c.name for c in run.drifted],
        "warned": [c.name for c in run.warned],
        "columns": [c.as_dict() for c in run.columns],
        "written_at": run.written_at.isoformat(timespec="seconds"),
        "files_written": written,
    }


def verdict(run: DriftRun) -> str:
    """One line: what was found, for the console and the report."""
    t = run.thresholds
    if run.detected:
        shown = ", ".join(f"{c.name} (PSI {c.psi:.3f})" for c in _by_psi(run.drifted))
        return f"drift detected in {len(run.drifted)} column(s), PSI ≥ {t.psi_alert:g}: {shown}"
    top = _by_psi(run.columns)[0]
    text = f"no drift: every PSI below {t.psi_alert:g} (largest {top.name}, {top.psi:.3f})"
    if run.warned:
        text += f"; at or above the {t.psi_warn:g} warning level: " + ", ".join(
            f"{c.name} ({c.psi:.3f})" for c in _by_psi(run.warned)
        )
    return text


def _by_psi(columns: list[ColumnDrift]) -> list[ColumnDrift]:
    return sorted(columns, key=lambda c: -c.psi)


def markdown(run: DriftRun, written: dict[str, str]) -> str:
    t = run.thresholds
    first, last = run.window
    window = f"from {first} to {last} (server local time)" if first else "with no timestamps"
    headline = verdict(run)
    lines = [
        f"# {run.use_case}: logged traffic against the training data",
        "",
        f"Model `{run.model_tag}`; log `{run.log_path}` ({len(run.files)} file(s), sha256 "
        f"`{run.log_sha256[:16]}`); {run.rows:,} rows {window}; "
        f"written {run.written_at.isoformat(timespec='seconds')}.",
        "",
        f"**{headline[:1].upper()}{headline[1:]}.**",
        "",
        f"Thresholds (spec `drift:`): PSI warning {t.psi_warn:g}, drift {t.psi_alert:g}, at "
        f"least {t.min_rows} rows. PSI is taken over the reference's bins (numeric: decile "
        "edges of the training split; categorical: one bin per level, an unknown level its own "
        f"bin; binary: 0 and 1; the score: deciles of the test split), a blank is its own bin, "
        f"an empty bin counts as {PSI_EPSILON:g}. KS: {_ks_note(run)}.",
    ]
    if run.other_rows:
        lines += ["", f"Rows answered by other models were left out: {run.other_rows}."]
    if run.skipped_lines:
        lines += ["", f"{run.skipped_lines} unreadable log line(s) were skipped."]
    lines += [
        "",
        *table(
            ["column", "type", "PSI", "status", "KS", "blank ref → log", "mean ref → log"],
            [
                [
                    c.name,
                    c.kind,
                    c.psi,
                    c.status,
                    cell(c.binned.ks, ".3f"),
                    f"{c.binned.expected[-1]:.1%} → {c.binned.actual[-1]:.1%}",
                    f"{cell(c.mean_reference, '.4g')} → {cell(c.mean_observed, '.4g')}",
                ]
                for c in _by_psi(run.columns)
            ],
        ),
    ]
    if PSI_PLOT in written:
        lines += ["", f"![PSI per column]({PSI_PLOT})"]
    if DISTRIBUTION_PLOT in written:
        lines += ["", f"![Shares per bin, reference vs log]({DISTRIBUTION_PLOT})"]
    lines += ["", f"Prometheus metrics: `{PROM_FILE}` ({', '.join(DRIFT_METRICS)})."]
    return "\n".join(lines) + "\n"


def _ks_note(run: DriftRun) -> str:
    score = next(c for c in run.columns if c.name == SCORE)
    return (
        f"for the score, {score.binned.ks_kind or 'not available'}; for numeric features, "
        "the largest gap of the cumulative shares at the reference's decile edges (a lower bound)"
    )


def plot(run: DriftRun, folder: Path) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")  # files only, no screen
    import matplotlib.pyplot as plt

    t = run.thresholds
    colours = {OK: "tab:green", WARN: "tab:orange", ALERT: "tab:red"}
    ordered = _by_psi(run.columns)[::-1]
    fig, ax = plt.subplots(figsize=(7, 0.28 * len(ordered) + 1.5))
    names, values = [c.name for c in ordered], [c.psi for c in ordered]
    ax.barh(names, values, color=[colours[c.status] for c in ordered])
    ax.axvline(t.psi_warn, linestyle="--", color="tab:orange", label=f"warning {t.psi_warn:g}")
    ax.axvline(t.psi_alert, linestyle="--", color="tab:red", label=f"drift {t.psi_alert:g}")
    ax.set(xlabel="PSI", title=f"{run.use_case}: PSI per column ({run.rows:,} rows)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(folder / PSI_PLOT, dpi=100)
    plt.close(fig)

    score = [c for c in run.columns if c.name == SCORE]
    shown = score + [c for c in _by_psi(run.columns) if c.name != SCORE][: PLOTTED - 1]
    cols = 3
    rows = math.ceil(len(shown) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3 * rows), squeeze=False)
    for ax, c in zip(axes.flat, shown, strict=False):
        x = np.arange(len(c.binned.labels))
        ax.bar(x - 0.2, c.binned.expected, width=0.4, label="reference")
        ax.bar(x + 0.2, c.binned.actual, width=0.4, label="log")
        ax.set_xticks(x, c.binned.labels, rotation=45, ha="right", fontsize=7)
        ax.set_title(f"{c.name}: PSI {c.psi:.3f} ({c.status})", color=colours[c.status])
        ax.set_ylabel("share")
    for ax in list(axes.flat)[len(shown) :]:
        ax.axis("off")
    axes.flat[0].legend()
    fig.tight_layout()
    fig.savefig(folder / DISTRIBUTION_PLOT, dpi=100)
    plt.close(fig)
    return {PSI_PLOT: str(folder / PSI_PLOT), DISTRIBUTION_PLOT: str(folder / DISTRIBUTION_PLOT)}


def metrics_registry(run: DriftRun) -> Any:
    """The drift metrics of one run in their own registry (never the process-wide one)."""
    from prometheus_client import CollectorRegistry, Gauge

    registry = CollectorRegistry()
    psi_gauge = Gauge(
        DRIFT_PSI,
        "Population stability index of logged traffic vs the training reference",
        ["use_case", "feature"],
        registry=registry,
    )
    for c in run.columns:
        psi_gauge.labels(run.use_case, c.name).set(c.psi)
    Gauge(
        DRIFT_DETECTED,
        "1 if the last drift run found a PSI at or above the spec's drift.psi_alert",
        ["use_case"],
        registry=registry,
    ).labels(run.use_case).set(int(run.detected))
    Gauge(
        DRIFT_LAST_RUN,
        "When the last drift run finished (Unix time)",
        ["use_case"],
        registry=registry,
    ).labels(run.use_case).set(run.written_at.timestamp())
    return registry


def write_report(run: DriftRun, folder: Path) -> dict[str, str]:
    """Markdown, JSON, plots and Prometheus text under `folder`; returns name -> path."""
    from prometheus_client import write_to_textfile

    folder.mkdir(parents=True, exist_ok=True)
    written = plot(run, folder)
    registry = metrics_registry(run)
    write_to_textfile(str(folder / PROM_FILE), registry)
    written[PROM_FILE] = str(folder / PROM_FILE)
    md, js = folder / f"{REPORT_STEM}.md", folder / f"{REPORT_STEM}.json"
    written[md.name], written[js.name] = str(md), str(js)
    md.write_text(markdown(run, written), encoding="utf-8")
    js.write_text(json.dumps(as_json(run, written), indent=2), encoding="utf-8")
    return written


def run_drift(
    use_case: str | Path,
    log_path: Path | str,
    out_dir: Path | None = None,
    model_tag: str | None = None,
) -> int:
    """`python -m riskbento drift`: check, report, push; returns the exit code."""
    try:
        run = check(use_case, log_path, model_tag)
    except TooFewRows as err:
        log.error(str(err))
        return EXIT_TOO_FEW_ROWS
    folder = out_dir or get_settings().reports_dir / run.use_case / REPORT_DIRNAME
    written = write_report(run, folder)
    log.info(f"{run.use_case} ({run.model_tag}, {run.rows:,} rows): {verdict(run)}")
    log.info(f"report: {_shown_path(Path(written[f'{REPORT_STEM}.md']))}")
    push_if_set(PUSH_JOB, metrics_registry(run), run.use_case, log)
    return run.exit_code
