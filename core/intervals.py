"""Bootstrap intervals for the headline test metrics: how much of a score is the test set.

Each resample draws the test customers again with replacement, stratified (the number of
risk events stays the same, as in `core/decision.py`), and is held as a count per
customer; every metric is then a weighted sum over the customers sorted once, so 1,000
resamples of 20,000 rows take about a second instead of a thousand scikit-learn calls.
The interval is the percentile one; `value` is the metric on the test split itself
(`core.metrics`, the number the training report shows).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from core import metrics
from core.spec import Costs

RESAMPLES = 1_000
LEVEL = 0.95
SEED = 42
CHUNK = 50  # resamples held in memory at once (50 x rows counts)
CI_METRICS = ("roc_auc", "pr_auc", "brier", "ece", "cost_per_customer")


def resample_counts(y: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """(resamples, rows) counts: how often each customer is drawn, stratified by class."""
    rng = np.random.default_rng(seed)
    counts = np.zeros((resamples, len(y)))
    for rows in (np.flatnonzero(y == 1), np.flatnonzero(y == 0)):
        if len(rows) == 0:
            continue
        drawn = rows[rng.integers(0, len(rows), size=(resamples, len(rows)))]
        offsets = np.arange(resamples)[:, None] * len(y)
        counts += np.bincount((drawn + offsets).ravel(), minlength=resamples * len(y)).reshape(
            resamples, len(y)
        )
    return counts


class _Sorted:
    """The customers sorted by score once, with the tie groups every resample shares."""

    def __init__(self, y: np.ndarray, p: np.ndarray):
        order = np.argsort(p, kind="stable")
        self.order = order
        self.y = y[order].astype(float)
        ps = p[order]
        self.starts = np.flatnonzero(np.r_[True, ps[1:] != ps[:-1]])

    def groups(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Weighted events and non-events per tie group, ascending score."""
        ws = w[:, self.order]
        pos = np.add.reduceat(ws * self.y, self.starts, axis=1)
        neg = np.add.reduceat(ws * (1 - self.y), self.starts, axis=1)
        return pos, neg


def weighted_roc_auc(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """ROC-AUC per row of tie-group weights: P(event scores above non-event), ties half."""
    below = np.cumsum(neg, axis=1) - neg
    pairs = pos.sum(axis=1) * neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (pos * (below + 0.5 * neg)).sum(axis=1) / pairs


def weighted_average_precision(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """Average precision per row (scikit-learn's step sum: recall gained x precision there)."""
    tp = np.cumsum(pos[:, ::-1], axis=1)
    fp = np.cumsum(neg[:, ::-1], axis=1)
    flagged = tp + fp
    precision = np.divide(tp, flagged, out=np.zeros_like(tp), where=flagged > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall_gained = pos[:, ::-1] / pos.sum(axis=1, keepdims=True)
    return (recall_gained * precision).sum(axis=1)


def resampled_metrics(
    y: np.ndarray, p: np.ndarray, threshold: float, costs: Costs, counts: np.ndarray
) -> dict[str, np.ndarray]:
    """Every CI metric on each row of `counts` (a row of ones is the test split itself)."""
    sorted_ = _Sorted(y, p)
    n = counts.sum(axis=1)
    bins = metrics.CALIBRATION_BINS
    in_bin = np.eye(bins)[np.minimum((p * bins).astype(int), bins - 1)]  # rows x bins, one-hot
    flagged = p >= threshold
    cost = np.where(y == 1, ~flagged * costs.missed_event, flagged * costs.false_alarm)
    gap = y - p
    out: dict[str, list[np.ndarray]] = {name: [] for name in CI_METRICS}
    for start in range(0, len(counts), CHUNK):
        w = counts[start : start + CHUNK]
        pos, neg = sorted_.groups(w)
        out["roc_auc"].append(weighted_roc_auc(pos, neg))
        out["pr_auc"].append(weighted_average_precision(pos, neg))
        out["brier"].append((w * gap**2).sum(axis=1) / n[start : start + CHUNK])
        out["ece"].append(np.abs((w * gap) @ in_bin).sum(axis=1) / n[start : start + CHUNK])
        out["cost_per_customer"].append((w * cost).sum(axis=1) / n[start : start + CHUNK])
    return {name: np.concatenate(values) for name, values in out.items()}


def point_metrics(y: np.ndarray, p: np.ndarray, threshold: float, costs: Costs) -> dict[str, float]:
    """The CI metrics on the test split itself, computed as `core.metrics.evaluate` does."""
    two_classes = len(np.unique(y)) == 2
    return {
        "roc_auc": float(roc_auc_score(y, p)) if two_classes else float("nan"),
        "pr_auc": float(average_precision_score(y, p)) if two_classes else float("nan"),
        "brier": float(brier_score_loss(y, p)),
        "ece": metrics.expected_calibration_error(y, p),
        "cost_per_customer": metrics.cost_per_customer(y, p >= threshold, costs),
    }


def bootstrap_intervals(
    y: np.ndarray,
    p: np.ndarray,
    threshold: float,
    costs: Costs,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    level: float = LEVEL,
) -> dict[str, dict[str, Any]]:
    """`{metric: {value, low, high, resamples}}`: the percentile bootstrap interval of each
    CI metric at `level`; `resamples` counts those where the metric is defined."""
    y = np.asarray(y, dtype=int)
    p = np.asarray(p, dtype=float)
    values = point_metrics(y, p, threshold, costs)
    draws = resampled_metrics(y, p, threshold, costs, resample_counts(y, resamples, seed))
    tail = (1 - level) / 2
    out = {}
    for name in CI_METRICS:
        finite = draws[name][np.isfinite(draws[name])]
        low, high = np.quantile(finite, [tail, 1 - tail]) if len(finite) else (np.nan, np.nan)
        out[name] = {
            "value": values[name],
            "low": float(low),
            "high": float(high),
            "resamples": len(finite),
            "level": level,
            "seed": seed,
        }
    return out
