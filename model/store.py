"""The BentoML model store: what training writes and the service reads, by tag only.

Files inside a model's folder are named here; the model card (`core.card.ModelCard`:
schema, metrics, threshold, tiers, costs, data hash, versions, reference
distributions, file hashes) is the model's metadata.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import bentoml
import joblib
import numpy as np
import pandas as pd
from pydantic import ValidationError

from core.card import CARD_FORMAT, FORMAT_KEY, READABLE_FORMATS, ModelCard
from core.datafiles import file_sha256
from core.errors import UserError

logger = logging.getLogger(__name__)

PIPELINE_FILE = "pipeline.joblib"  # the fitted transformer + model, one object
SPEC_FILE = "spec.yaml"  # the spec exactly as trained
SPLITS_FILE = "splits.csv"  # id -> train / test / inference
TEST_SCORES_FILE = "test_scores.csv"  # id, probability on the test split, as trained
# Top-level packages of this project a pickled pipeline may name (model/ holds its classes).
OWN_PACKAGES = ("core", "datagen", "features", "model", "training", "serving", "jobs")


class ModelFilesChanged(UserError, RuntimeError):
    """A stored model's files differ from what training wrote, or it predates the hashes."""


class StaleModel(UserError, RuntimeError):
    """A stored model this riskbento cannot read: saved before its model card format or
    with a pipeline that names modules it no longer has. Retraining is the fix."""


def _retrain(model: bentoml.Model) -> str:
    return f"make train USE_CASE={model.tag.name}"


def save(
    name: str,
    pipeline: Any,
    spec_text: str,
    card: ModelCard,
    splits: pd.DataFrame,
    test_scores: pd.DataFrame,
) -> bentoml.Model:
    """Write one model version with its card; returns it (its tag is `<name>:<version>`)."""
    labels = {"use_case": name, "family": card.champion.family}
    with bentoml.models.create(name, labels=labels, metadata=card.to_metadata()) as ref:
        folder = Path(ref.path)
        joblib.dump(pipeline, folder / PIPELINE_FILE)
        (folder / SPEC_FILE).write_text(spec_text, encoding="utf-8")
        splits.to_csv(folder / SPLITS_FILE, index=False)
        test_scores.to_csv(folder / TEST_SCORES_FILE, index=False)
        # Written into model.yaml when the block closes, after the files are final.
        hashes = {
            name: file_sha256(folder / name)
            for name in (PIPELINE_FILE, SPEC_FILE, SPLITS_FILE, TEST_SCORES_FILE)
        }
        ref.info.metadata.update(card.model_copy(update={"file_sha256": hashes}).to_metadata())
    return ref


def copy(model: bentoml.Model, name: str, with_card: ModelCard | None = None) -> bentoml.Model:
    """`model`'s files stored again as a version of `name` (with another card if given): a
    shadow challenger to measure or test with."""
    folder = Path(model.path)
    return save(
        name,
        load_pipeline(model),
        (folder / SPEC_FILE).read_text(encoding="utf-8"),
        with_card or card(model),
        read_csv(model, SPLITS_FILE),
        read_csv(model, TEST_SCORES_FILE),
    )


def card(model: bentoml.Model) -> ModelCard:
    """The model card stored with `model`; a model saved before this card format is
    refused with how to retrain it."""
    metadata = model.info.metadata
    found = metadata.get(FORMAT_KEY)
    if found not in READABLE_FORMATS:
        newer = isinstance(found, int) and found > CARD_FORMAT
        raise StaleModel(
            f"model {model.tag} was saved by {'a newer' if newer else 'an older'} riskbento "
            f"({'no model card format' if found is None else f'model card format {found}, not'}"
            f" {CARD_FORMAT}); retrain it: {_retrain(model)}"
        )
    try:
        return ModelCard.from_metadata(metadata)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors()[:3]
        )
        raise StaleModel(
            f"model {model.tag} has a model card that does not read as format {CARD_FORMAT} "
            f"({err.error_count()} problem(s): {problems}); retrain it: {_retrain(model)}"
        ) from None


def verify(model: bentoml.Model) -> None:
    """Refuse a model whose files are not byte for byte what training wrote.

    The hashes sit in the model's own metadata: this catches a corrupted, replaced or
    hand-edited file, not someone who also rewrites model.yaml."""
    retrain = f"`{_retrain(model)}` (or the path of its spec)"
    recorded = card(model).file_sha256
    if PIPELINE_FILE not in recorded:
        logger.error("refusing model %s: no file sha256 in its model card", model.tag)
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
    try:
        return joblib.load(Path(model.path) / PIPELINE_FILE)
    except ModuleNotFoundError as err:
        if (err.name or "").split(".")[0] not in OWN_PACKAGES:
            raise
        raise StaleModel(
            f"model {model.tag} was saved by an older riskbento: its pipeline names module "
            f"{err.name!r}, which this one does not have; retrain it: {_retrain(model)}"
        ) from None


def test_scores(model: bentoml.Model) -> np.ndarray:
    """The probabilities the model gave its test split at training: the score's reference."""
    return read_csv(model, TEST_SCORES_FILE)["probability"].to_numpy(dtype=float)


def split_ids(model: bentoml.Model, split: str) -> set[str]:
    """Ids of the customers the model put in `split` (train / test / inference)."""
    splits = read_csv(model, SPLITS_FILE)
    return set(splits.loc[splits["split"] == split, "id"])


def read_csv(model: bentoml.Model, filename: str) -> pd.DataFrame:
    return pd.read_csv(Path(model.path) / filename, dtype={"id": "string"})
