"""The last check before a model is stored: does its probability follow the spec's
monotone directions? Each constrained feature is swept over its training range for a
sample of training rows, everything else held, and every step is compared."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from core.spec import FeatureType, Spec

SWEEP_ROWS, SWEEP_POINTS = 200, 25
TOLERANCE = 1e-12  # float noise; a real reversal is far larger


def sweep_values(X: pd.DataFrame, name: str, binary: bool) -> np.ndarray:
    if binary:
        return np.array([0.0, 1.0])
    values = X[name].dropna()
    return np.linspace(values.min(), values.max(), SWEEP_POINTS)


def breaches(spec: Spec, model: Any, X: pd.DataFrame, seed: int) -> list[str]:
    """One line per constrained feature whose sweep moves the wrong way somewhere."""
    rows = X.sample(min(SWEEP_ROWS, len(X)), random_state=seed).reset_index(drop=True)
    found = []
    for feature in spec.features:
        if not feature.monotone:
            continue
        grid = sweep_values(X, feature.name, feature.type is FeatureType.binary)
        stacked = pd.concat([rows.assign(**{feature.name: v}) for v in grid], ignore_index=True)
        p = model.predict_proba(stacked)[:, 1].reshape(len(grid), len(rows))
        steps = np.diff(p, axis=0) * feature.direction
        if (steps < -TOLERANCE).any():
            worst = float(-steps.min())
            found.append(
                f"{feature.name} ({feature.monotone}): the probability moves the wrong way "
                f"by up to {worst:.4g} for {int((steps < -TOLERANCE).any(axis=0).sum())} "
                f"of {len(rows)} swept rows"
            )
    return found
