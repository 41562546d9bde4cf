"""Statistics written once: population stability index over quantile bins, Tukey fences,
and the sha256 of files.

PSI compares two share vectors over the same bins. A numeric column is binned against
the decile edges of the expected sample (`quantile_edges`), bins (-inf, e1], (e1, e2],
..., (ek, inf) (`bin_counts`): the drift check stores those edges with the model
(training/reference.py), the quality report learns them from the labeled rows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

PSI_BINS = 10  # quantile bins of a numeric column (fewer where quantiles repeat)
PSI_EPSILON = 1e-4  # share given to an empty bin, so PSI stays finite
OUTLIER_FENCE_K = 3.0  # Tukey's "far out" fences: beyond Q1 - 3*IQR or Q3 + 3*IQR

_CHUNK = 1 << 20


# ---------------------------------------------------------------- PSI


def psi(expected: np.ndarray, actual: np.ndarray, epsilon: float = PSI_EPSILON) -> float:
    """Population stability index of two share vectors over the same bins:
    sum((actual - expected) * ln(actual / expected)); an empty bin counts as `epsilon`."""
    expected = np.maximum(np.asarray(expected, dtype=float), epsilon)
    actual = np.maximum(np.asarray(actual, dtype=float), epsilon)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def quantile_edges(present: np.ndarray, bins: int = PSI_BINS) -> np.ndarray:
    """Inner edges of `bins` quantile bins of the (non-missing) values: the bins are
    (-inf, e1], (e1, e2], ..., (ek, inf); repeated quantiles merge bins, so a constant
    column has no edge and one bin."""
    if present.size == 0:
        return np.zeros(0)
    return np.unique(np.quantile(present, np.linspace(0, 1, bins + 1)))[1:-1]


def bin_counts(present: np.ndarray, edges: np.ndarray | list[float]) -> np.ndarray:
    """How many of the (non-missing) values fall in each bin (-inf, e1], ..., (ek, inf)."""
    return np.bincount(np.searchsorted(edges, present, side="left"), minlength=len(edges) + 1)


def shares(counts: np.ndarray) -> np.ndarray:
    """Counts as shares of their total (all zero when there is nothing to count)."""
    total = counts.sum()
    return counts / total if total else np.zeros(len(counts))


# ---------------------------------------------------------------- outliers


def tukey_fence(values: pd.Series, k: float = OUTLIER_FENCE_K) -> tuple[float, float]:
    """Tukey's fences (Q1 - k*IQR, Q3 + k*IQR) of the values (missing ones skipped)."""
    q1, q3 = values.quantile([0.25, 0.75])
    iqr = q3 - q1
    return float(q1 - k * iqr), float(q3 + k * iqr)


# ---------------------------------------------------------------- file hashes


def files_sha256(paths: Iterable[Path | str]) -> str:
    """One sha256 over the files' bytes, in order."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def file_sha256(path: Path | str) -> str:
    return files_sha256([path])
