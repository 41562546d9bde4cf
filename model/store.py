"""The BentoML model store: what training writes and the service reads, by tag only.

Files inside a model's folder are named here; the model card (schema, metrics,
threshold, tiers, costs, data hash, versions) and the reference distributions
live in the model's metadata.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import bentoml
import joblib
import numpy as np
import pandas as pd

from core.datafiles import file_sha256
from core.errors import UserError

logger = logging.getLogger(__name__)

PIPELINE_FILE = "pipeline.joblib"  # the fitted transformer + model, one object
SPEC_FILE = "spec.yaml"  # the spec exactly as trained
SPLITS_FILE = "splits.csv"  # id -> train / test / inference
TEST_SCORES_FILE = "test_scores.csv"  # id, probability on the test split, as trained
REFERENCE_KEY = "reference"  # metadata key of the reference distributions
FILE_SHA256_KEY = "file_sha256"  # metadata key: file name -> sha256 of every file save() wrote


class ModelFilesChanged(UserError, RuntimeError):
    """A stored model's files differ from what training wrote, or it predates the hashes."""


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
        # Written into model.yaml when the block closes, after the files are final.
        ref.info.metadata[FILE_SHA256_KEY] = {
            name: file_sha256(folder / name)
            for name in (PIPELINE_FILE, SPEC_FILE, SPLITS_FILE, TEST_SCORES_FILE)
        }
    return ref


def verify(model: bentoml.Model) -> None:
    """Refuse a model whose files are not byte for byte what training wrote.

    The hashes sit in the model's own metadata: this catches a corrupted, replaced or
    hand-edited file, not someone who also rewrites model.yaml."""
    retrain = f"`make train USE_CASE={model.tag.name}` (or the path of its spec)"
    recorded = model.info.metadata.get(FILE_SHA256_KEY) or {}
    if PIPELINE_FILE not in recorded:
        logger.error("refusing model %s: no %r in its metadata", model.tag, FILE_SHA256_KEY)
        raise ModelFilesChanged(
            f"model {model.tag} has no sha256 recorded for {PIPELINE_FILE} (saved before "
            f"riskbento recorded file hashes), so its files cannot be checked; retrain it: "
            f"{retrain}"
        )
    folder = Path(model.path)
    changed = []
    for name, expected in sorted(recorded.items()):
        path = folder / name
        actual = file_sha256(path) if path.is_file() else "missing"
        if actual != expected:
            logger.error(
                "refusing model %s: %s changed since training: expected sha256 %s, got %s",
                model.tag, path, expected, actual,
            )  # fmt: skip
            changed.append(f"{name} (expected sha256 {expected}, got {actual})")
    if changed:
        raise ModelFilesChanged(
            f"model {model.tag} refused: {len(changed)} file(s) changed since training in "
            f"{folder}: {'; '.join(changed)}; restore the files or retrain: {retrain}"
        )


def load_pipeline(model: bentoml.Model) -> Any:
    """The fitted pipeline, after checking every file of the model against its hash
    (unpickling a changed file would run whatever it holds)."""
    verify(model)
    return joblib.load(Path(model.path) / PIPELINE_FILE)


def test_scores(model: bentoml.Model) -> np.ndarray:
    """The probabilities the model gave its test split at training: the score's reference."""
    return read_csv(model, TEST_SCORES_FILE)["probability"].to_numpy(dtype=float)


def split_ids(model: bentoml.Model, split: str) -> set[str]:
    """Ids of the customers the model put in `split` (train / test / inference)."""
    splits = read_csv(model, SPLITS_FILE)
    return set(splits.loc[splits["split"] == split, "id"])


def read_csv(model: bentoml.Model, filename: str) -> pd.DataFrame:
    return pd.read_csv(Path(model.path) / filename, dtype={"id": "string"})
