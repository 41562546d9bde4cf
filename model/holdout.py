"""A stored model's split, rebuilt from the data files: which customers trained, tested or
were held out is read from the store (`splits.csv`), never recomputed, and their features
are built with the model's own transaction amount cap."""

from __future__ import annotations

from dataclasses import dataclass

import bentoml
import numpy as np
import pandas as pd

from core.datafiles import read_table, read_transactions
from core.errors import UserError
from core.spec import Spec
from features.customers import customer_features, dedupe_table
from model import store


class SplitMissing(UserError, LookupError):
    """The data no longer holds every customer a stored model's split names."""


@dataclass(frozen=True)
class SplitRows:
    frame: pd.DataFrame  # table columns + model features, in the table's order
    y: np.ndarray  # 1 where the risk event happened


def split_rows(model: bentoml.Model, spec: Spec, split: str, cap: float | None) -> SplitRows:
    """The customers of `split` (train / test / inference) as stored with `model`."""
    ids = store.split_ids(model, split)
    table, _ = dedupe_table(read_table(spec), spec.id_column)
    rows = table[table[spec.id_column].astype(str).isin(ids)].reset_index(drop=True)
    if len(rows) != len(ids):
        raise SplitMissing(
            f"{model.tag} stored {len(ids)} {split} customers; the data at "
            f"{spec.resolve(spec.data.table)} holds {len(rows)} of them: retrain with "
            f"`make train USE_CASE={spec.name}`"
        )
    y = spec.target.is_positive(rows[spec.target.column]).to_numpy(dtype=int)
    raw = read_transactions(spec) if spec.data.transactions is not None else None
    frame, _ = customer_features(spec, rows, raw, cap)
    return SplitRows(frame, y)
