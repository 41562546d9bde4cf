"""Helpers shared by the generators."""

from pathlib import Path

import numpy as np
import pandas as pd


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    """Write a CSV byte-identically on every platform (no index, `\\n` line ends)."""
    frame.to_csv(path, index=False, lineterminator="\n")
    return path


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def intercept_for_rate(logit: np.ndarray, rate: float, iterations: int = 60) -> float:
    """The shift b such that mean(sigmoid(logit + b)) == rate (bisection)."""
    low, high = -30.0, 30.0
    for _ in range(iterations):
        mid = (low + high) / 2
        if sigmoid(logit + mid).mean() < rate:
            low = mid
        else:
            high = mid
    return (low + high) / 2
