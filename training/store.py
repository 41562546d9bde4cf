"""The BentoML model store: what training writes and the service reads, by tag only.

Files inside a model's folder are named here; the model card (schema, metrics,
threshold, tiers, costs, data hash, versions) and the reference distributions
live in the model's metadata.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import bentoml
import joblib
import pandas as pd

PIPELINE_FILE = "pipeline.joblib"  # the fitted transformer + model, one object
SPEC_FILE = "spec.yaml"  # the spec exactly as trained
SPLITS_FILE = "splits.csv"  # id -> train / test / inference
TEST_SCORES_FILE = "test_scores.csv"  # id, probability on the test split, as trained
REFERENCE_KEY = "reference"  # metadata key of the reference distributions


def _metadata_safe(value: Any) -> Any:
    """The store's metadata takes no None: omit such keys, show them as 'n/a' in lists."""
    if isinstance(value, dict):
        return {k: _metadata_safe(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return ["n/a" if v is None else _metadata_safe(v) for v in value]
    return value


def save(
    name: str,
    pipeline: Any,
    spec_text: str,
    card: dict[str, Any],
    reference: dict[str, Any],
    splits: pd.DataFrame,
    test_scores: pd.DataFrame,
) -> bentoml.Model:
    """Write one model version; returns it (its tag is `<name>:<version>`)."""
    labels = {"use_case": name, "family": card["champion"]["family"]}
    metadata = _metadata_safe({**card, REFERENCE_KEY: reference})
    with bentoml.models.create(name, labels=labels, metadata=metadata) as ref:
        folder = Path(ref.path)
        joblib.dump(pipeline, folder / PIPELINE_FILE)
        (folder / SPEC_FILE).write_text(spec_text, encoding="utf-8")
        splits.to_csv(folder / SPLITS_FILE, index=False)
        test_scores.to_csv(folder / TEST_SCORES_FILE, index=False)
    return ref


def load_pipeline(model: bentoml.Model) -> Any:
    return joblib.load(Path(model.path) / PIPELINE_FILE)


def read_csv(model: bentoml.Model, filename: str) -> pd.DataFrame:
    return pd.read_csv(Path(model.path) / filename, dtype={"id": "string"})
