"""Matured outcomes joined to logged predictions: how good each model's answers were.

`python -m riskbento outcomes USE_CASE --labels FILE --log DIR [--as-of DATE]` reads a
labels CSV (the spec's id column, `outcome`: 1 when the spec's risk event happened
(`target.event`; for filing_dropoff that is completed_filing == 0), 0 when it did not;
`outcome_date`: YYYY-MM-DD, the day the outcome became known) and the prediction log
(`serving.predlog`).

The join rule (`join_rule()`, stated in every report), per model tag in the log: a label's
prediction is that tag's latest logged prediction for the id on or before the outcome
date and at most `outcomes.window_days` days before it (calendar days of the log's local
timestamps; of rows with the same timestamp, the one read last). It is used only once
its window has closed: prediction date + window_days on or before the as-of date, so an
early event waits like a 0 does and each week's event rate is complete. A label's
vintage is the ISO week of its prediction. Rows without a `role` are champion rows (older
logs); champion and shadow challenger are compared on the labels both matched.

Guarantees: a label row is used or counted, never silently dropped. Counted per kind in
the file: an unreadable id, outcome or date; an id whose rows disagree (every row of it
excluded, the ids listed); exact repeats (collapsed to one); dated after the as-of date;
an id the log never scored. Counted per model tag: no prediction of that tag for the id,
the outcome dated before the tag's first prediction of the id, the tag's latest earlier
prediction more than window_days before the outcome, not matured. Every number is
computed from the joined rows with `core.metrics`; intervals are percentile bootstrap
intervals with a fixed seed; a vintage with fewer than `outcomes.min_rows` labels or one
outcome only is shown, marked, and not judged. The champion-vs-shadow recommendation is
`core.decision.decide`, the paired bootstrap rule `make retrain` promotes by.

It writes `outcomes.md`, `.json`, `.png` and `outcomes.prom` under
`reports/<use case>/outcomes/` and pushes the gauges to `RISKBENTO_PUSHGATEWAY_URL` when
set. Exit codes: 0 every judged champion vintage above the floors, 1 one is below
(ROC-AUC under `min_roc_auc` or |mean predicted - observed| over `max_calibration_gap`),
2 a user error, 3 no vintage has enough labels to judge.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core import metrics
from core.decision import BOOTSTRAP_RESAMPLES, Decision, decide
from core.errors import UserError
from core.logs import get_logger
from core.markdown import cell, table
from core.names import PROJECT_ROOT, TIER_NAMES
from core.settings import get_settings
from core.spec import Costs, Outcomes, Spec, load_spec
from core.stats import file_sha256, files_sha256
from jobs.pushgateway import push_if_set
from serving.predlog import (
    CHAMPION,
    MODEL_COLUMN,
    ROLE_COLUMN,
    SHADOW,
    TIMESTAMP_COLUMN,
    logged_name,
    production_rows,
    read_prediction_log,
)

OUTCOME_COLUMN = "outcome"
DATE_COLUMN = "outcome_date"
POSITIVE, NEGATIVE = {"1", "1.0"}, {"0", "0.0"}

# Metric names (the alert RiskbentoOutcomeBelowFloor and the dashboard read these).
OUTCOME_ROWS = "riskbento_outcome_rows"  # labels, use_case, model_tag, role, vintage
OUTCOME_ROC_AUC = "riskbento_outcome_roc_auc"  # judged vintages only; same labels
OUTCOME_CALIBRATION_GAP = "riskbento_outcome_calibration_gap"  # mean predicted - observed
OUTCOME_MIN_ROC_AUC = "riskbento_outcome_min_roc_auc"  # the spec's floor; label use_case
OUTCOME_MAX_CALIBRATION_GAP = "riskbento_outcome_max_calibration_gap"  # label use_case
OUTCOME_PROMOTION = "riskbento_outcome_promotion_recommended"  # 0/1; use_case, model_tag
OUTCOME_LAST_RUN = "riskbento_outcome_last_run_timestamp_seconds"  # label use_case
OUTCOME_METRICS = (
    OUTCOME_ROWS, OUTCOME_ROC_AUC, OUTCOME_CALIBRATION_GAP, OUTCOME_MIN_ROC_AUC,
    OUTCOME_MAX_CALIBRATION_GAP, OUTCOME_PROMOTION, OUTCOME_LAST_RUN,
)  # fmt: skip
PUSH_JOB = "riskbento_outcomes"

EXIT_OK, EXIT_BELOW_FLOOR, EXIT_USER_ERROR, EXIT_TOO_FEW_ROWS = 0, 1, 2, 3

REPORT_DIRNAME = "outcomes"
REPORT_STEM = "outcomes"
PROM_FILE = "outcomes.prom"
PLOT_FILE = "outcomes.png"
ALL = "all"  # the vintage label of a model's rows over every week

INTERVAL_RESAMPLES = 300
INTERVAL_SEED = 7
INTERVAL = 0.95  # two-sided percentile interval
INTERVAL_METRICS = ("roc_auc", "pr_auc", "brier", "calibration_gap", "cost_per_customer")

OK, BELOW, SMALL, ONE_CLASS = "ok", "below floor", "too few to judge", "one outcome only"

# Why a label row is not used: (key, what it means) in report order.
FILE_KINDS = (
    ("blank_id", "no id"),
    ("bad_outcome", "outcome not 0 or 1"),
    ("bad_date", "outcome_date not a YYYY-MM-DD date"),
    ("conflicting", "id repeated with another outcome or date (every row of it excluded)"),
    ("repeated", "exact repeat of an earlier row (collapsed to one)"),
    ("after_as_of", "outcome dated after the as-of date (not known then)"),
    ("unknown_id", "id never scored in the log (by any model)"),
)
TAG_KINDS = (
    ("no_prediction", "this model never scored the id"),
    ("before_prediction", "outcome dated before this model's first prediction of the id"),
    ("outside_window", "this model's latest earlier prediction is older than the window"),
    ("unmatured", "prediction's outcome window still open at the as-of date"),
)

log = get_logger("outcomes")  # "[outcomes] ...": progress on stdout, problems on stderr


def join_rule(window_days: int) -> str:
    return (
        f"For each label (id, outcome, outcome_date) and each model tag in the log, the "
        f"matched prediction is that tag's latest logged prediction for the id on or before "
        f"the outcome date and at most {window_days} days (the spec's outcomes.window_days) "
        f"before it, by calendar day of the log's local timestamps (ties: the row read "
        f"last). It is used only if matured: prediction date + {window_days} days on or "
        f"before the as-of date, events included, so a week's event rate is complete. "
        f"Vintage: the ISO week of the matched prediction. Champion and shadow are compared "
        f"on the labels both matched, each with its own prediction."
    )


# ---------------------------------------------------------------- the labels


@dataclass
class Labels:
    """Usable label rows (id, y, outcome_date as a day), and what was left out."""

    frame: pd.DataFrame
    rows: int
    counts: dict[str, int]
    conflicting_ids: list[str]
    examples: dict[str, list[str]]


def read_labels(path: Path, id_column: str, as_of: date) -> Labels:
    """The labels file checked row by row; raises UserError for a file it cannot read."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"labels file {path} does not exist")
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise UserError(
            f"--labels {path}: expected a CSV table, could not read it: {err}"
        ) from None
    wanted = [id_column, OUTCOME_COLUMN, DATE_COLUMN]
    missing = [c for c in wanted if c not in raw.columns]
    if missing:
        raise UserError(
            f"--labels {path}: missing column(s) {missing}; expected {wanted} (the spec's id "
            f"column, 1/0 for the risk event, YYYY-MM-DD), got {list(raw.columns)}"
        )
    if raw.empty:
        raise UserError(f"--labels {path}: no rows under the header")
    ids = raw[id_column].str.strip()
    outcome = raw[OUTCOME_COLUMN].str.strip()
    when = pd.to_datetime(raw[DATE_COLUMN].str.strip(), errors="coerce", format="%Y-%m-%d")
    counts = dict.fromkeys(key for key, _ in FILE_KINDS)
    examples: dict[str, list[str]] = {}
    blank = ids == ""
    bad_outcome = ~blank & ~outcome.isin(POSITIVE | NEGATIVE)
    bad_date = ~blank & ~bad_outcome & when.isna()
    for key, mask, shown in [
        ("blank_id", blank, raw[id_column]),
        ("bad_outcome", bad_outcome, raw[OUTCOME_COLUMN]),
        ("bad_date", bad_date, raw[DATE_COLUMN]),
    ]:
        counts[key] = int(mask.sum())
        examples[key] = [repr(v) for v in shown[mask].head(3)]
    good = ~(blank | bad_outcome | bad_date)
    frame = pd.DataFrame(
        {
            "label_row": np.flatnonzero(good.to_numpy()),
            "id": ids[good].to_numpy(),
            "y": outcome[good].isin(POSITIVE).astype(int).to_numpy(),
            "outcome_date": when[good].to_numpy(),
        }
    )
    repeated = frame.duplicated(["id", "y", "outcome_date"])
    counts["repeated"] = int(repeated.sum())
    frame = frame[~repeated]
    clash = frame["id"].duplicated(keep=False)
    conflicting = sorted(frame.loc[clash, "id"].unique())
    counts["conflicting"] = int(clash.sum())
    frame = frame[~clash]
    late = frame["outcome_date"] > pd.Timestamp(as_of)
    counts["after_as_of"] = int(late.sum())
    examples["after_as_of"] = [str(d.date()) for d in frame.loc[late, "outcome_date"].head(3)]
    frame = frame[~late].reset_index(drop=True)
    counts["unknown_id"] = 0  # known once the log is read
    return Labels(frame, len(raw), counts, conflicting, examples)


# ---------------------------------------------------------------- the log


@dataclass
class Logged:
    """Usable logged predictions (id, ts, day, probability, prediction, tier, tag, role)."""

    frame: pd.DataFrame
    files: list[str]
    sha256: str
    skipped_lines: int
    unusable_rows: int


def read_log(log_path: Path | str, spec: Spec) -> Logged:
    # A dashboard what-if or CSV upload decides nothing: production answers only.
    frame = production_rows(read_prediction_log(log_path, spec.name))
    id_name = logged_name(spec.id_column)
    needed = [id_name, "probability", MODEL_COLUMN, TIMESTAMP_COLUMN]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise UserError(
            f"the prediction log {log_path} has no column(s) {missing} (columns: "
            f"{', '.join(map(str, frame.columns[:20]))}): expected rows written by PredictionLog "
            f"for {spec.name}"
        )
    stamps = pd.to_datetime(frame[TIMESTAMP_COLUMN], errors="coerce", format="ISO8601")
    if getattr(stamps.dt, "tz", None) is not None:
        stamps = stamps.dt.tz_localize(None)
    role = frame.get(ROLE_COLUMN, pd.Series(None, frame.index, dtype=object)).astype(object)
    out = pd.DataFrame(
        {
            "id": frame[id_name].astype(str).str.strip(),
            "ts": stamps,
            "p": pd.to_numeric(frame["probability"], errors="coerce"),
            "prediction": pd.to_numeric(frame.get("prediction"), errors="coerce"),
            "tier": frame.get("risk_tier"),
            "tag": frame[MODEL_COLUMN].astype(str),
            "role": role.fillna(CHAMPION).astype(str),
            "order": np.arange(len(frame)),
        }
    )
    usable = out["ts"].notna() & out["p"].between(0, 1) & frame[id_name].notna()
    out = out[usable].reset_index(drop=True)
    out["day"] = out["ts"].dt.normalize()
    files = list(frame.attrs["files"])
    return Logged(
        out, files, files_sha256(files), int(frame.attrs["skipped_lines"]), int((~usable).sum())
    )


# ---------------------------------------------------------------- the join


def join(
    labels: pd.DataFrame, logged: pd.DataFrame, window_days: int, as_of: date
) -> tuple[pd.DataFrame, dict[str, dict[str, int]]]:
    """Each model tag's matched, matured prediction per label (`join_rule()`), and per tag the
    count of labels it could not use, by kind."""
    matched, counts = [], {}
    window = pd.Timedelta(days=window_days)
    keyed = labels.assign(key=labels["outcome_date"] + pd.Timedelta(days=1)).sort_values("key")
    for tag, rows in logged.groupby("tag", sort=True):
        rows = rows.sort_values(["ts", "order"], kind="stable")
        merged = pd.merge_asof(
            keyed, rows.drop(columns="tag"), left_on="key", right_on="ts", by="id",
            direction="backward", allow_exact_matches=False,
        )  # fmt: skip
        scored = merged["id"].isin(set(rows["id"]))
        found = merged["ts"].notna()
        outside = found & (merged["outcome_date"] - merged["day"] > window)
        unmatured = found & ~outside & (merged["day"] + window > pd.Timestamp(as_of))
        counts[str(tag)] = {
            "matched": int((found & ~outside & ~unmatured).sum()),
            "no_prediction": int((~scored).sum()),
            "before_prediction": int((scored & ~found).sum()),
            "outside_window": int(outside.sum()),
            "unmatured": int(unmatured.sum()),
        }
        kept = merged[found & ~outside & ~unmatured].drop(columns=["key", "order"])
        matched.append(kept.assign(tag=str(tag)))
    frame = pd.concat(matched, ignore_index=True) if matched else pd.DataFrame()
    if not frame.empty:
        week = frame["ts"].dt.isocalendar()
        frame["vintage"] = [
            f"{y}-W{w:02d}" for y, w in zip(week["year"], week["week"], strict=True)
        ]
        frame = frame.sort_values(["tag", "vintage", "label_row"]).reset_index(drop=True)
    return frame, counts


# ---------------------------------------------------------------- the numbers


@dataclass
class Model:
    """What the report needs to know about one logged model tag."""

    tag: str
    role: str  # champion if any of its rows answered a caller, else shadow
    in_store: bool
    threshold: float | None  # from its model card; None: the logged decision is used
    costs: Costs
    note: str


def _model(tag: str, role: str, spec: Spec) -> Model:
    from model import store
    from model.scorer import ModelNotFound, find_model

    try:
        card = store.card(find_model(tag))
    except (ModelNotFound, store.StaleModel) as err:
        why = "not in this store" if isinstance(err, ModelNotFound) else "unreadable card"
        note = f"{why}: the logged decision and the spec's costs"
        return Model(tag, role, False, None, spec.costs, note)
    note = "its model card's threshold and costs"
    return Model(tag, role, True, card.threshold.value, card.costs, note)


def score(y: np.ndarray, p: np.ndarray, flagged: np.ndarray, costs: Costs) -> dict[str, Any]:
    """Every number of one group of matched labels (AUCs need both outcomes)."""
    two = len(np.unique(y)) == 2
    return {
        "rows": len(y),
        "events": int(y.sum()),
        "event_rate": float(y.mean()),
        "mean_predicted": float(p.mean()),
        "calibration_gap": float(p.mean() - y.mean()),
        "roc_auc": metrics.selection_score("roc_auc", y, p) if two else None,
        "pr_auc": metrics.selection_score("pr_auc", y, p) if two else None,
        "brier": metrics.selection_score("brier", y, p),
        "ece": metrics.expected_calibration_error(y, p),
        "flagged_share": float(flagged.mean()),
        "cost_per_customer": metrics.cost_per_customer(y, flagged, costs),
    }


def intervals(
    y: np.ndarray,
    p: np.ndarray,
    flagged: np.ndarray,
    costs: Costs,
    resamples: int = INTERVAL_RESAMPLES,
    seed: int = INTERVAL_SEED,
) -> dict[str, list[float] | None]:
    """Percentile bootstrap intervals (rows resampled with replacement, fixed seed); a
    resample with one outcome only has no AUC and is left out of the AUCs' intervals."""
    rng = np.random.default_rng(seed)
    drawn: dict[str, list[float]] = {name: [] for name in INTERVAL_METRICS}
    for _ in range(resamples):
        rows = rng.integers(0, len(y), len(y))
        yr, pr = y[rows], p[rows]
        if 0 < yr.sum() < len(yr):
            drawn["roc_auc"].append(metrics.selection_score("roc_auc", yr, pr))
            drawn["pr_auc"].append(metrics.selection_score("pr_auc", yr, pr))
        drawn["brier"].append(metrics.selection_score("brier", yr, pr))
        drawn["calibration_gap"].append(float(pr.mean() - yr.mean()))
        drawn["cost_per_customer"].append(metrics.cost_per_customer(yr, flagged[rows], costs))
    tail = (1 - INTERVAL) / 2 * 100
    return {
        name: [float(np.percentile(v, tail)), float(np.percentile(v, 100 - tail))] if v else None
        for name, v in drawn.items()
    }


def _flagged(rows: pd.DataFrame, model: Model) -> np.ndarray:
    if model.threshold is not None:
        return rows["p"].to_numpy() >= model.threshold
    return rows["prediction"].fillna(0).to_numpy() >= 1


def _status(numbers: dict[str, Any], floors: Outcomes) -> tuple[str, list[str]]:
    if numbers["rows"] < floors.min_rows:
        return SMALL, [f"{numbers['rows']} labels < min_rows {floors.min_rows}"]
    if numbers["roc_auc"] is None:
        return ONE_CLASS, ["every label has the same outcome"]
    why = []
    if numbers["roc_auc"] < floors.min_roc_auc:
        why.append(f"ROC-AUC {numbers['roc_auc']:.3f} < {floors.min_roc_auc:g}")
    if abs(numbers["calibration_gap"]) > floors.max_calibration_gap:
        gap = abs(numbers["calibration_gap"])
        why.append(f"|calibration gap| {gap:.3f} > {floors.max_calibration_gap:g}")
    return (BELOW if why else OK), why


def vintage_table(
    matched: pd.DataFrame, models: dict[str, Model], floors: Outcomes, resamples: int
) -> list[dict[str, Any]]:
    """One row per (model, vintage) and per model over all weeks (vintage ALL)."""
    out = []
    for tag, rows in matched.groupby("tag", sort=True):
        model = models[str(tag)]
        groups = [*rows.groupby("vintage", sort=True), (ALL, rows)]
        for vintage, group in groups:
            y, p = group["y"].to_numpy(), group["p"].to_numpy(dtype=float)
            flagged = _flagged(group, model)
            numbers = score(y, p, flagged, model.costs)
            status, why = _status(numbers, floors)
            out.append(
                {
                    "model_tag": str(tag),
                    "role": model.role,
                    "vintage": vintage,
                    **numbers,
                    "intervals": intervals(y, p, flagged, model.costs, resamples),
                    "status": status,
                    "why": why,
                }
            )
    return out


def tier_table(matched: pd.DataFrame) -> list[dict[str, Any]]:
    """Predicted vs observed event rate per logged risk tier, per model and vintage."""
    out = []
    for (tag, vintage, tier), group in matched.groupby(["tag", "vintage", "tier"], sort=True):
        out.append(_tier_row(str(tag), vintage, str(tier), group))
    for (tag, tier), group in matched.groupby(["tag", "tier"], sort=True):
        out.append(_tier_row(str(tag), ALL, str(tier), group))
    order = {name: i for i, name in enumerate(TIER_NAMES)}
    return sorted(out, key=lambda r: (r["model_tag"], r["vintage"], order.get(r["tier"], 9)))


def _tier_row(tag: str, vintage: str, tier: str, group: pd.DataFrame) -> dict[str, Any]:
    return {
        "model_tag": tag,
        "vintage": vintage,
        "tier": tier,
        "rows": len(group),
        "mean_predicted": float(group["p"].mean()),
        "observed": float(group["y"].mean()),
    }


@dataclass
class Comparison:
    champion: str
    shadow: str
    paired: int
    events: int
    scores: dict[str, dict[str, Any]]  # champion / shadow: `score` on the paired labels
    decision: Decision | None
    recommendation: str


def compare(
    matched: pd.DataFrame,
    models: dict[str, Model],
    metric: str,
    floors: Outcomes,
    resamples: int,
) -> list[Comparison]:
    """Every shadow tag against every champion tag on the labels both matched."""
    out = []
    champions = [m for m in models.values() if m.role == CHAMPION]
    for shadow in (m for m in models.values() if m.role == SHADOW):
        for champion in champions:
            pair = matched[matched["tag"] == champion.tag].merge(
                matched[matched["tag"] == shadow.tag], on="label_row", suffixes=("_c", "_s")
            )
            if pair.empty:
                continue
            y = pair["y_c"].to_numpy()
            sides = {}
            for name, model, suffix in (("champion", champion, "_c"), ("shadow", shadow, "_s")):
                rows = pair[[f"p{suffix}", f"prediction{suffix}"]]
                rows = rows.rename(columns=lambda c, s=suffix: c.removesuffix(s))
                sides[name] = (rows["p"].to_numpy(dtype=float), _flagged(rows, model), model)
            scores = {n: score(y, p, f, m.costs) for n, (p, f, m) in sides.items()}
            decision = None
            if len(y) >= floors.min_rows and len(np.unique(y)) == 2:
                decision = decide(metric, y, sides["champion"][0], sides["shadow"][0], resamples)
                verb = "promote" if decision.promote else "keep"
                recommendation = (
                    f"{verb} {shadow.tag if decision.promote else champion.tag}: {decision.why}"
                )
            else:
                recommendation = (
                    f"not judged: {len(y)} paired labels ({int(y.sum())} events); the paired "
                    f"test needs at least {floors.min_rows} with both outcomes"
                )
            comparison = Comparison(
                champion.tag, shadow.tag, len(y), int(y.sum()), scores, decision, recommendation
            )
            out.append(comparison)
    return out


# ---------------------------------------------------------------- one run


@dataclass
class OutcomesRun:
    use_case: str
    as_of: date
    labels_path: Path
    labels_sha256: str
    labels: Labels
    log_path: Path
    logged: Logged
    floors: Outcomes
    selection_metric: str
    models: dict[str, Model]
    tag_counts: dict[str, dict[str, int]]
    vintages: list[dict[str, Any]]
    tiers: list[dict[str, Any]]
    comparisons: list[Comparison]
    written_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def judged(self, role: str = CHAMPION) -> list[dict[str, Any]]:
        return [
            v for v in self.vintages
            if v["role"] == role and v["vintage"] != ALL and v["status"] in (OK, BELOW)
        ]  # fmt: skip

    @property
    def below(self) -> list[dict[str, Any]]:
        return [v for v in self.judged() if v["status"] == BELOW]

    @property
    def exit_code(self) -> int:
        if self.below:
            return EXIT_BELOW_FLOOR
        return EXIT_OK if self.judged() else EXIT_TOO_FEW_ROWS


def check(
    use_case: str | Path,
    labels_path: Path | str,
    log_path: Path | str,
    as_of: date | None = None,
    resamples: int = INTERVAL_RESAMPLES,
    comparison_resamples: int = BOOTSTRAP_RESAMPLES,
) -> OutcomesRun:
    """Join, score, judge and compare; raises UserError when nothing can be joined."""
    spec = load_spec(use_case, check_data=False)  # floors: the spec as it is now
    as_of = as_of or date.today()  # the log's timestamps are local time
    floors = spec.outcomes
    labels = read_labels(Path(labels_path), spec.id_column, as_of)
    logged = read_log(log_path, spec)
    unknown = ~labels.frame["id"].isin(set(logged.frame["id"]))
    labels.counts["unknown_id"] = int(unknown.sum())
    labels.examples["unknown_id"] = [repr(i) for i in labels.frame.loc[unknown, "id"].head(3)]
    matched, tag_counts = join(labels.frame[~unknown], logged.frame, floors.window_days, as_of)
    if matched.empty:
        raise UserError(
            f"no label of {labels_path} matched a matured prediction in {log_path} (as of "
            f"{as_of}): {_summary(labels, tag_counts)}"
        )
    roles = logged.frame.groupby("tag")["role"].agg(
        lambda r: CHAMPION if (r == CHAMPION).any() else SHADOW
    )
    models = {str(tag): _model(str(tag), role, spec) for tag, role in roles.items()}
    return OutcomesRun(
        use_case=spec.name,
        as_of=as_of,
        labels_path=Path(labels_path),
        labels_sha256=file_sha256(labels_path),
        labels=labels,
        log_path=Path(log_path),
        logged=logged,
        floors=floors,
        selection_metric=spec.selection_metric,
        models=models,
        tag_counts=tag_counts,
        vintages=vintage_table(matched, models, floors, resamples),
        tiers=tier_table(matched),
        comparisons=compare(matched, models, spec.selection_metric, floors, comparison_resamples),
    )


def _summary(labels: Labels, tag_counts: dict[str, dict[str, int]]) -> str:
    parts = [f"{labels.rows} rows"]
    parts += [f"{n} {key}" for key, n in labels.counts.items() if n]
    for tag, counts in tag_counts.items():
        shown = ", ".join(f"{n} {key}" for key, n in counts.items() if n)
        parts.append(f"{tag}: {shown}")
    return "; ".join(parts)


# ---------------------------------------------------------------- outputs


def _shown_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def verdict(run: OutcomesRun) -> str:
    """One line: what was found, for the console and the report."""
    f = run.floors
    judged = run.judged()
    if run.below:
        shown = "; ".join(
            f"{v['vintage']} {v['model_tag']} ({', '.join(v['why'])})" for v in run.below
        )
        text = f"{len(run.below)} of {len(judged)} judged champion week(s) below the floor: {shown}"
    elif judged:
        text = (
            f"every judged champion week ({len(judged)}) above the floors (ROC-AUC ≥ "
            f"{f.min_roc_auc:g}, |calibration gap| ≤ {f.max_calibration_gap:g})"
        )
    else:
        text = f"no champion week has {f.min_rows} matured labels with both outcomes: not judged"
    promoted = [c for c in run.comparisons if c.decision is not None and c.decision.promote]
    if promoted:
        text += "; shadow recommended for promotion: " + ", ".join(c.shadow for c in promoted)
    return text


def _comparison_dict(c: Comparison) -> dict[str, Any]:
    out = asdict(c)
    out["decision"] = asdict(c.decision) if c.decision is not None else None
    return out


def as_json(run: OutcomesRun, written: dict[str, str]) -> dict[str, Any]:
    return {
        "use_case": run.use_case,
        "as_of": run.as_of.isoformat(),
        "join_rule": join_rule(run.floors.window_days),
        "floors": run.floors.model_dump(),
        "labels": {
            "path": str(run.labels_path),
            "sha256": run.labels_sha256,
            "rows": run.labels.rows,
            "used_by_some_model": len(run.labels.frame) - run.labels.counts["unknown_id"],
            "not_used": run.labels.counts,
            "conflicting_ids": run.labels.conflicting_ids,
            "examples": run.labels.examples,
        },
        "log": {
            "path": str(run.log_path),
            "files": run.logged.files,
            "sha256": run.logged.sha256,
            "skipped_lines": run.logged.skipped_lines,
            "unusable_rows": run.logged.unusable_rows,
        },
        "models": {tag: asdict(m) for tag, m in run.models.items()},
        "per_model": run.tag_counts,
        "vintages": run.vintages,
        "tiers": run.tiers,
        "selection_metric": run.selection_metric,
        "comparisons": [_comparison_dict(c) for c in run.comparisons],
        "below_floor": [f"{v['vintage']} {v['model_tag']}" for v in run.below],
        "verdict": verdict(run),
        "interval": {"level": INTERVAL, "resamples": INTERVAL_RESAMPLES, "seed": INTERVAL_SEED},
        "written_at": run.written_at.isoformat(timespec="seconds"),
        "files_written": written,
    }


def _with_interval(v: dict[str, Any], name: str, fmt: str = ".3f") -> str:
    value, band = v[name], v["intervals"].get(name)
    if value is None:
        return cell(None)
    text = format(value, fmt)
    return text + (f" [{band[0]:{fmt}}, {band[1]:{fmt}}]" if band else "")


def markdown(run: OutcomesRun, written: dict[str, str]) -> str:
    f, lab = run.floors, run.labels
    headline = verdict(run)
    roles = ", ".join(f"`{t}` ({m.role})" for t, m in run.models.items())
    lines = [
        f"# {run.use_case}: logged predictions against matured outcomes",
        "",
        f"As of {run.as_of.isoformat()}; labels `{run.labels_path}` (sha256 "
        f"`{run.labels_sha256}`, {lab.rows:,} rows); log `{run.log_path}` "
        f"({len(run.logged.files)} file(s), sha256 `{run.logged.sha256[:16]}`: "
        f"{', '.join(f'`{Path(p).name}`' for p in run.logged.files)}); models {roles}; "
        f"written {run.written_at.isoformat(timespec='seconds')}.",
        "",
        f"**{headline[:1].upper()}{headline[1:]}.**",
        "",
        f"Floors (spec `outcomes:`): ROC-AUC ≥ {f.min_roc_auc:g} and |mean predicted − "
        f"observed event rate| ≤ {f.max_calibration_gap:g} per week with at least "
        f"{f.min_rows} matured labels and both outcomes; only champion weeks set the exit code.",
        "",
        "## Join rule",
        "",
        join_rule(f.window_days),
        "",
        "## Labels not used",
        "",
        *table(
            ["kind", "rows", "examples"],
            [
                [what, lab.counts[key], ", ".join(lab.examples.get(key, []))]
                for key, what in FILE_KINDS
            ],
        ),
    ]
    if lab.conflicting_ids:
        shown = ", ".join(f"`{i}`" for i in lab.conflicting_ids[:20])
        more = len(lab.conflicting_ids) - 20
        lines += ["", f"Conflicting ids: {shown}" + (f" and {more} more" if more > 0 else "") + "."]
    if run.logged.skipped_lines or run.logged.unusable_rows:
        lines += [
            "",
            f"Log: {run.logged.skipped_lines} unreadable line(s) skipped, "
            f"{run.logged.unusable_rows} row(s) without a readable id, timestamp or probability.",
        ]
    lines += [
        "",
        "Per model, of the labels whose id the log scored:",
        "",
        *table(
            ["model", "role", "matched, matured", *(what for _, what in TAG_KINDS)],
            [
                [f"`{tag}`", run.models[tag].role, c["matched"], *(c[k] for k, _ in TAG_KINDS)]
                for tag, c in run.tag_counts.items()
            ],
        ),
        "",
        "## Per week (vintage) and model",
        "",
        f"Brackets: {INTERVAL:.0%} percentile bootstrap intervals ({INTERVAL_RESAMPLES} "
        f"resamples, seed {INTERVAL_SEED}). Calibration gap: mean predicted − observed "
        f"event rate. Cost: per customer at the model's threshold, in its costs' unit.",
        "",
        *table(
            [
                "week",
                "model",
                "role",
                "labels",
                "events",
                "event rate",
                "calibration gap",
                "ROC-AUC",
                "PR-AUC",
                "Brier",
                "cost / customer",
                "status",
            ],
            [
                [
                    v["vintage"],
                    f"`{v['model_tag']}`",
                    v["role"],
                    v["rows"],
                    v["events"],
                    cell(v["event_rate"], ".3f"),
                    _with_interval(v, "calibration_gap", "+.3f"),
                    _with_interval(v, "roc_auc"),
                    _with_interval(v, "pr_auc"),
                    _with_interval(v, "brier"),
                    _with_interval(v, "cost_per_customer", ".2f"),
                    v["status"] + (f": {'; '.join(v['why'])}" if v["status"] == BELOW else ""),
                ]
                for v in run.vintages
            ],
        ),
        "",
        "## Calibration by tier (all weeks)",
        "",
        *table(
            ["model", "tier", "labels", "mean predicted", "observed event rate"],
            [
                [f"`{t['model_tag']}`", t["tier"], t["rows"], t["mean_predicted"], t["observed"]]
                for t in run.tiers
                if t["vintage"] == ALL
            ],
            fmt=".3f",
        ),
        "",
        "## Champion vs shadow",
        "",
    ]
    lines += _comparison_lines(run)
    lines += [
        "",
        "## Models",
        "",
        *table(
            ["model", "role", "in the store", "threshold", "costs", "decision from"],
            [
                [
                    f"`{m.tag}`",
                    m.role,
                    "yes" if m.in_store else "no",
                    cell(m.threshold),
                    f"missed {m.costs.missed_event:g}, false alarm {m.costs.false_alarm:g} "
                    f"{m.costs.unit}",
                    m.note,
                ]
                for m in run.models.values()
            ],
        ),
    ]
    if PLOT_FILE in written:
        lines += ["", f"![ROC-AUC and calibration gap per week]({PLOT_FILE})"]
    lines += ["", f"Prometheus metrics: `{PROM_FILE}` ({', '.join(OUTCOME_METRICS)})."]
    return "\n".join(lines) + "\n"


def _comparison_lines(run: OutcomesRun) -> list[str]:
    if not run.comparisons:
        return ["No shadow challenger matched the same labels as a champion: nothing to compare."]
    metric = run.selection_metric
    rows = []
    for c in run.comparisons:
        d = c.decision
        rows.append(
            [f"`{c.champion}`", f"`{c.shadow}`", c.paired, c.events,
             cell(c.scores["champion"][metric], ".4f"), cell(c.scores["shadow"][metric], ".4f"),
             cell(d.gain if d else None, ".4f"), cell(d.margin if d else None, ".4f"),
             c.recommendation]
        )  # fmt: skip
    return [
        f"Paired on the labels both matched (each its own prediction), metric {metric} (the "
        "spec's selection metric). The shadow is recommended for promotion only if its gain "
        "exceeds 1.645 × the standard deviation of the gain over paired, stratified bootstrap "
        "resamples (`core/decision.py`, the rule `make retrain` promotes by). The "
        "recommendation is not an action: promoting is a deploy.",
        "",
        *table(
            [
                "champion",
                "shadow",
                "paired labels",
                "events",
                "champion",
                "shadow",
                "gain",
                "margin",
                "recommendation",
            ],
            rows,
        ),
    ]


def plot(run: OutcomesRun, folder: Path) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")  # files only, no screen
    import matplotlib.pyplot as plt

    weekly = [v for v in run.vintages if v["vintage"] != ALL and v["status"] in (OK, BELOW)]
    weeks = sorted({v["vintage"] for v in weekly})
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for name, ax, floor in (
        ("roc_auc", axes[0], [run.floors.min_roc_auc]),
        (
            "calibration_gap",
            axes[1],
            [-run.floors.max_calibration_gap, run.floors.max_calibration_gap],
        ),
    ):
        for i, tag in enumerate(run.models):
            rows = [v for v in weekly if v["model_tag"] == tag and v[name] is not None]
            if not rows:
                continue
            x = np.array([weeks.index(v["vintage"]) for v in rows]) + 0.1 * i
            y = np.array([v[name] for v in rows])
            bands = [v["intervals"][name] or [v[name], v[name]] for v in rows]
            err = np.abs(np.array(bands).T - y)
            ax.errorbar(
                x, y, yerr=err, fmt="o-", capsize=3, label=f"{tag} ({run.models[tag].role})"
            )
        for level in floor:
            ax.axhline(level, linestyle="--", color="tab:red")
        ax.set_xticks(range(len(weeks)), weeks, rotation=45, ha="right", fontsize=7)
        ax.set_title(f"{name.replace('_', ' ')} (judged weeks; bars: {INTERVAL:.0%} interval)")
    if weekly:
        axes[0].legend(fontsize=7)
    fig.suptitle(f"{run.use_case}: matured outcomes per week (as of {run.as_of})")
    fig.tight_layout()
    fig.savefig(folder / PLOT_FILE, dpi=100)
    plt.close(fig)
    return {PLOT_FILE: str(folder / PLOT_FILE)}


def metrics_registry(run: OutcomesRun) -> Any:
    """The outcome metrics of one run in their own registry (never the process-wide one)."""
    from prometheus_client import CollectorRegistry, Gauge

    registry = CollectorRegistry()
    labels = ["use_case", "model_tag", "role", "vintage"]
    rows = Gauge(
        OUTCOME_ROWS,
        "Matured labels matched to a model's predictions per week",
        labels,
        registry=registry,
    )
    roc = Gauge(
        OUTCOME_ROC_AUC,
        "ROC-AUC per week on matured labels (judged weeks only)",
        labels,
        registry=registry,
    )
    gap = Gauge(
        OUTCOME_CALIBRATION_GAP,
        "Mean predicted minus observed event rate per week (judged weeks only)",
        labels,
        registry=registry,
    )
    for v in run.vintages:
        if v["vintage"] == ALL:
            continue
        key = (run.use_case, v["model_tag"], v["role"], v["vintage"])
        rows.labels(*key).set(v["rows"])
        if v["status"] in (OK, BELOW):
            roc.labels(*key).set(v["roc_auc"])
            gap.labels(*key).set(v["calibration_gap"])
    for name, text, value in (
        (OUTCOME_MIN_ROC_AUC, "The spec's outcomes.min_roc_auc floor", run.floors.min_roc_auc),
        (
            OUTCOME_MAX_CALIBRATION_GAP,
            "The spec's outcomes.max_calibration_gap",
            run.floors.max_calibration_gap,
        ),
        (
            OUTCOME_LAST_RUN,
            "When the last outcomes run finished (Unix time)",
            run.written_at.timestamp(),
        ),
    ):
        Gauge(name, text, ["use_case"], registry=registry).labels(run.use_case).set(value)
    promotion = Gauge(
        OUTCOME_PROMOTION,
        "1 if the paired bootstrap test recommends promoting this shadow challenger",
        ["use_case", "model_tag", "champion_tag"],
        registry=registry,
    )
    for c in run.comparisons:
        promoted = c.decision is not None and c.decision.promote
        promotion.labels(run.use_case, c.shadow, c.champion).set(int(promoted))
    return registry


def write_report(run: OutcomesRun, folder: Path) -> dict[str, str]:
    """Markdown, JSON, plot and Prometheus text under `folder`; returns name -> path."""
    from prometheus_client import write_to_textfile

    folder.mkdir(parents=True, exist_ok=True)
    written = plot(run, folder)
    write_to_textfile(str(folder / PROM_FILE), metrics_registry(run))
    written[PROM_FILE] = str(folder / PROM_FILE)
    md, js = folder / f"{REPORT_STEM}.md", folder / f"{REPORT_STEM}.json"
    written[md.name], written[js.name] = str(md), str(js)
    md.write_text(markdown(run, written), encoding="utf-8")
    js.write_text(json.dumps(as_json(run, written), indent=2, default=str), encoding="utf-8")
    return written


def run_outcomes(
    use_case: str | Path,
    labels_path: Path | str,
    log_path: Path | str,
    as_of: date | None = None,
    out_dir: Path | None = None,
) -> int:
    """`python -m riskbento outcomes`: join, report, push; returns the exit code."""
    run = check(use_case, labels_path, log_path, as_of)
    folder = out_dir or get_settings().reports_dir / run.use_case / REPORT_DIRNAME
    written = write_report(run, folder)
    for m in run.models.values():
        if not m.in_store:
            log.warning(f"{m.tag} ({m.role}): {m.note}")
    log.info(f"{run.use_case} (as of {run.as_of}): {verdict(run)}")
    for c in run.comparisons:
        log.info(f"{c.shadow} vs {c.champion} on {c.paired} paired labels: {c.recommendation}")
    log.info(f"report: {_shown_path(Path(written[f'{REPORT_STEM}.md']))}")
    push_if_set(PUSH_JOB, metrics_registry(run), run.use_case, log)
    if run.exit_code == EXIT_TOO_FEW_ROWS:
        log.error(f"{run.use_case}: {verdict(run)}")
    return run.exit_code
