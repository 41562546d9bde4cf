"""Synthetic traffic for `make drift`: the inference hold-out stored with a model (or a
shifted copy of it), scored by that model and written to a prediction log as the
service would, in batches.

With `outcomes`, it also writes the records' labels for `make outcomes` (id, outcome =
the hold-out's true risk event, outcome_date), so the delayed-label loop runs locally.
The service stamps each logged row with the time it answered; to give the outcomes
weeks (vintages) whose windows have closed, this job alone rewrites the timestamps of
the rows it just logged (matched by id), spreading them evenly over OUTCOME_WEEKS full
ISO weeks that matured before the as-of date plus the week of the last matured day,
which is partly still open. An event's outcome_date is a day drawn within its window,
a non-event's the day its window closes; only outcomes known by the as-of date are
written (the rest are counted), as a real labels feed would hold them.
"""

from __future__ import annotations

import json
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.errors import UserError
from core.spec import FeatureType, Spec, load_spec
from serving.predlog import (
    SHADOW,
    TIMESTAMP_COLUMN,
    PredictionLog,
    PredictionLogError,
    log_files,
    logged_name,
)

SHIFTED_NUMERIC = 2  # numeric features moved by one reference standard deviation
SHIFTED_CATEGORICAL = 1  # categorical features whose mix changes
SHIFTED_SHARE = 0.6  # of rows moved to the rarest level
SEED = 0
OUTCOME_WEEKS = 4  # fully matured ISO weeks of backdated traffic (plus one partly open)
OUTCOME_COLUMNS = ("outcome", "outcome_date")  # after the spec's id column


def shift_frame(
    frame: pd.DataFrame, spec: Spec, reference: dict[str, Any], seed: int = SEED
) -> tuple[pd.DataFrame, dict[str, str]]:
    """A copy with the first numeric features moved by one standard deviation (within the
    spec's range) and the first categorical feature's mix changed; returns what moved."""
    out = frame.copy()
    rng = np.random.default_rng(seed)
    changed: dict[str, str] = {}
    movable = [f for f in spec.features if f.type is FeatureType.numeric]
    numeric = [f for f in movable if reference[f.name].get("std", 0) > 0][:SHIFTED_NUMERIC]
    for f in numeric:
        ref = reference[f.name]
        step = float(ref["std"])
        if f.max is not None and ref["mean"] + step > f.max:
            step = -step  # no room above: move down
        values = pd.to_numeric(out[f.name], errors="coerce") + step
        values = values.clip(lower=f.min, upper=f.max)
        out[f.name] = values.round() if f.integer else values
        changed[f.name] = f"{step:+.4g} (one training standard deviation)"
    categorical = [f for f in spec.features if f.type is FeatureType.categorical]
    for f in categorical[:SHIFTED_CATEGORICAL]:
        levels = reference[f.name]["shares"]
        rarest = min(levels, key=levels.get) if levels else (f.levels or [""])[-1]
        moved = rng.random(len(out)) < SHIFTED_SHARE
        out.loc[moved, f.name] = rarest
        changed[f.name] = f"{SHIFTED_SHARE:.0%} of rows set to {rarest!r}"
    return out, changed


def _records(frame: pd.DataFrame, spec: Spec) -> list[dict[str, Any]]:
    """Rows as the service receives them: JSON values, null for a blank."""
    whole = {f.name for f in spec.features if f.integer or f.type is FeatureType.binary}
    records = []
    for row in frame[[spec.id_column, *spec.feature_names]].to_dict("records"):
        record: dict[str, Any] = {}
        for key, value in row.items():
            if pd.isna(value):
                record[key] = None
            elif isinstance(value, np.generic):
                record[key] = value.item()
            else:
                record[key] = value
            if key in whole and record[key] is not None:
                record[key] = int(record[key])
        record[spec.id_column] = str(row[spec.id_column])
        records.append(record)
    return records


def backdated_stamps(n: int, window_days: int, as_of: date, weeks: int) -> list[datetime]:
    """`n` times spread evenly over `weeks` ISO weeks that matured by `as_of` and the week
    of the last matured day (`as_of - window_days`), oldest first."""
    last_matured = as_of - timedelta(days=window_days)
    monday = last_matured - timedelta(days=last_matured.weekday())
    start = datetime.combine(monday - timedelta(weeks=weeks), datetime.min.time())
    span = timedelta(weeks=weeks + 1)
    return [start + span * ((i + 0.5) / n) for i in range(n)]


def outcome_dates(
    stamps: list[datetime], y: np.ndarray, window_days: int, seed: int = SEED
) -> list[date]:
    """An event: a day within its window (1 to window_days days later); a non-event: the
    day its window closes."""
    rng = np.random.default_rng(seed)
    later = np.where(y == 1, rng.integers(1, window_days + 1, len(y)), window_days)
    return [s.date() + timedelta(days=int(d)) for s, d in zip(stamps, later, strict=True)]


def _sizes(out: Path, use_case: str) -> dict[Path, int]:
    try:
        return {f: f.stat().st_size for f in log_files(out, use_case)}
    except (FileNotFoundError, PredictionLogError):
        return {}


def backdate(out: Path, spec: Spec, before: dict[Path, int], stamps: dict[str, datetime]) -> int:
    """Rewrite, in place, the timestamp of every row logged after `before` (file sizes)
    with its id's time in `stamps`; returns the rows rewritten."""
    id_name, done = logged_name(spec.id_column), 0
    for file in log_files(out, spec.name):
        start = before.get(file, 0)
        with file.open("r+b") as handle:
            handle.seek(start)
            rows = [json.loads(line) for line in handle.read().splitlines() if line.strip()]
            for row in rows:
                row[TIMESTAMP_COLUMN] = stamps[str(row[id_name])].isoformat()
            handle.seek(start)
            handle.write("".join(json.dumps(r) + "\n" for r in rows).encode())
            handle.truncate()
        done += len(rows)
    return done


def write_outcomes(
    path: Path, spec: Spec, ids: list[str], y: np.ndarray, stamps: list[datetime], as_of: date
) -> tuple[int, int]:
    """The labels file `make outcomes` reads; returns (rows written, not known by as_of)."""
    days = outcome_dates(stamps, y, spec.outcomes.window_days)
    labels = pd.DataFrame({spec.id_column: ids, OUTCOME_COLUMNS[0]: y, OUTCOME_COLUMNS[1]: days})
    known = labels[OUTCOME_COLUMNS[1]] <= as_of
    path.parent.mkdir(parents=True, exist_ok=True)
    labels[known].to_csv(path, index=False)
    return int(known.sum()), int((~known).sum())


def make_traffic(
    use_case: str | Path,
    out: Path,
    shift: bool = False,
    rows: int | None = None,
    model_tag: str | None = None,
    batch: int = 100,
    outcomes: Path | None = None,
    as_of: date | None = None,
    weeks: int = OUTCOME_WEEKS,
    shadow_tag: str | None = None,
) -> dict[str, Any]:
    """Score the inference hold-out (or a shifted copy) with the stored model and log it
    through PredictionLog under `out`, in batches as /predict would; with `shadow_tag`,
    log that model's answers beside them as the service's shadow would; with `outcomes`,
    backdate the rows and write their outcomes known by `as_of` (default today)."""
    from model.holdout import split_rows
    from model.scorer import Scorer, find_model

    spec = load_spec(use_case)
    scorer = Scorer.from_store(model_tag or f"{spec.name}:latest")
    held = split_rows(find_model(scorer.tag), spec, "inference", scorer.amount_cap)
    holdout, holdout_y = held.frame, held.y
    if rows is not None:
        if not 1 <= rows <= len(holdout):
            raise UserError(f"--rows: expected 1 to {len(holdout)} (the hold-out), got {rows}")
        holdout, holdout_y = holdout.iloc[:rows], holdout_y[:rows]
    changed: dict[str, str] = {}
    if shift:
        reference = scorer.card.reference.tables()["features"]
        holdout, changed = shift_frame(holdout, spec, reference)
    records = _records(holdout, spec)
    log = PredictionLog(spec, scorer.tag, out)
    shadow = Scorer.from_store(shadow_tag) if shadow_tag else None
    before = _sizes(out, spec.name)
    started = time.perf_counter()
    for start in range(0, len(records), batch):
        chunk = records[start : start + batch]
        log.log(chunk, scorer.score_records(chunk, explain=False))
        if shadow is not None:
            log.log(chunk, shadow.score_records(chunk, explain=False), shadow.tag, SHADOW)
    done: dict[str, Any] = {
        "use_case": spec.name,
        "model_tag": scorer.tag,
        "shadow_tag": shadow.tag if shadow else None,
        "rows": len(records),
        "log": str(out / log.name),
        "shifted": changed,
    }
    if outcomes is not None:
        as_of = as_of or date.today()  # the log's timestamps are local time
        ids = [r[spec.id_column] for r in records]
        if len(set(ids)) != len(ids):
            raise UserError(f"{spec.name}: the hold-out repeats ids; cannot write one outcome each")
        stamps = backdated_stamps(len(ids), spec.outcomes.window_days, as_of, weeks)
        rewritten = backdate(out, spec, before, dict(zip(ids, stamps, strict=True)))
        y = holdout_y[: len(ids)]
        written, unknown = write_outcomes(Path(outcomes), spec, ids, y, stamps, as_of)
        done |= {
            "rewritten": rewritten,
            "first": stamps[0].isoformat(timespec="seconds"),
            "last": stamps[-1].isoformat(timespec="seconds"),
            "outcomes": str(outcomes),
            "outcomes_written": written,
            "outcomes_not_known_yet": unknown,
        }
    done["seconds"] = time.perf_counter() - started
    return done
