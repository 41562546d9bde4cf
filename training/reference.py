"""Reference distributions stored with a model, for drift checks on live traffic."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from core.spec import FeatureType, Spec
from core.stats import bin_counts, quantile_edges, shares


def numeric_reference(values: pd.Series) -> dict[str, Any]:
    present = values.dropna().to_numpy(dtype=float)
    if present.size == 0:
        return {"type": "numeric", "missing": 1.0, "edges": [], "shares": []}
    edges = quantile_edges(present)
    return {
        "type": "numeric",
        "missing": float(values.isna().mean()),
        "edges": edges.tolist(),
        "shares": shares(bin_counts(present, edges)).tolist(),
        "min": float(present.min()),
        "max": float(present.max()),
        "mean": float(present.mean()),
        "median": float(np.median(present)),
        "std": float(present.std()),
    }


def categorical_reference(values: pd.Series) -> dict[str, Any]:
    shares = values.dropna().astype(str).value_counts(normalize=True).sort_index()
    return {
        "type": "categorical",
        "missing": float(values.isna().mean()),
        "shares": {k: float(v) for k, v in shares.items()},
        "mode": str(shares.idxmax()) if len(shares) else None,
    }


def reference_distributions(
    features: pd.DataFrame, spec: Spec, scores: np.ndarray
) -> dict[str, Any]:
    """Per input feature (training split) and for the score (test split)."""
    out: dict[str, Any] = {}
    for feature in spec.features:
        column = features[feature.name]
        if feature.type is FeatureType.categorical:
            out[feature.name] = categorical_reference(column)
        else:
            out[feature.name] = numeric_reference(pd.to_numeric(column, errors="coerce"))
    return {"features": out, "score": numeric_reference(pd.Series(scores))}
