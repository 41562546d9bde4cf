"""Synthetic traffic for `make drift`: the inference hold-out stored with a model (or a
shifted copy of it), scored by that model and written to a prediction log as the
service would, in batches."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.errors import UserError
from core.spec import FeatureType, Spec, load_spec
from serving.predlog import PredictionLog

SHIFTED_NUMERIC = 2  # numeric features moved by one reference standard deviation
SHIFTED_CATEGORICAL = 1  # categorical features whose mix changes
SHIFTED_SHARE = 0.6  # of rows moved to the rarest level
SEED = 0


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


def make_traffic(
    use_case: str | Path,
    out: Path,
    shift: bool = False,
    rows: int | None = None,
    model_tag: str | None = None,
    batch: int = 100,
) -> dict[str, Any]:
    """Score the inference hold-out (or a shifted copy) with the stored model and log it
    through PredictionLog under `out`, in batches as /predict would."""
    from model.holdout import split_rows
    from model.scorer import Scorer, find_model

    spec = load_spec(use_case)
    scorer = Scorer.from_store(model_tag or f"{spec.name}:latest")
    holdout = split_rows(find_model(scorer.tag), spec, "inference", scorer.amount_cap).frame
    if rows is not None:
        if not 1 <= rows <= len(holdout):
            raise UserError(f"--rows: expected 1 to {len(holdout)} (the hold-out), got {rows}")
        holdout = holdout.iloc[:rows]
    changed: dict[str, str] = {}
    if shift:
        reference = scorer.card.reference.tables()["features"]
        holdout, changed = shift_frame(holdout, spec, reference)
    records = _records(holdout, spec)
    log = PredictionLog(spec, scorer.tag, out)
    started = time.perf_counter()
    for start in range(0, len(records), batch):
        chunk = records[start : start + batch]
        log.log(chunk, scorer.score_records(chunk, explain=False))
    return {
        "use_case": spec.name,
        "model_tag": scorer.tag,
        "rows": len(records),
        "log": str(out / log.name),
        "shifted": changed,
        "seconds": time.perf_counter() - started,
    }
