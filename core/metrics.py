"""Metrics, business cost and threshold choice: computed, never typed in."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)

from core.names import TIER_NAMES
from core.spec import Costs

CALIBRATION_BINS = 10
TABLE_THRESHOLDS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)

# name -> (function of (y, p), greater is better)
SELECTION = {
    "roc_auc": (roc_auc_score, True),
    "pr_auc": (average_precision_score, True),
    "log_loss": (lambda y, p: log_loss(y, p, labels=[0, 1]), False),
    "brier": (brier_score_loss, False),
}


def selection_score(metric: str, y: np.ndarray, p: np.ndarray) -> float:
    return float(SELECTION[metric][0](y, p))


def greater_is_better(metric: str) -> bool:
    return SELECTION[metric][1]


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = CALIBRATION_BINS) -> float:
    """Mean |observed rate - mean predicted| over equal-width bins, weighted by bin size."""
    which = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            total += inside.sum() * abs(y[inside].mean() - p[inside].mean())
    return float(total / len(y))


def cost_per_customer(y: np.ndarray, flagged: np.ndarray, costs: Costs) -> float:
    missed = np.sum((y == 1) & ~flagged)
    false_alarms = np.sum((y == 0) & flagged)
    return float((missed * costs.missed_event + false_alarms * costs.false_alarm) / len(y))


def best_threshold(y: np.ndarray, p: np.ndarray, costs: Costs) -> tuple[float, float]:
    """The threshold (flag when p >= t) with the lowest expected cost, and that cost per customer.

    Every distinct score is a candidate, so the optimum on these predictions is exact.
    """
    order = np.argsort(-p, kind="stable")
    p_sorted, y_sorted = p[order], y[order]
    tp = np.cumsum(y_sorted)
    fp = np.arange(1, len(y) + 1) - tp
    fn = y.sum() - tp
    last_of_value = np.r_[p_sorted[1:] != p_sorted[:-1], True]
    cost = (fn * costs.missed_event + fp * costs.false_alarm)[last_of_value]
    thresholds = p_sorted[last_of_value]
    flag_nobody = y.sum() * costs.missed_event
    best = int(np.argmin(cost))
    if flag_nobody <= cost[best]:
        return 1.0, float(flag_nobody / len(y))
    return float(thresholds[best]), float(cost[best] / len(y))


def at_threshold(y: np.ndarray, p: np.ndarray, threshold: float, costs: Costs) -> dict[str, Any]:
    flagged = p >= threshold
    return {
        "threshold": float(threshold),
        "precision": float(precision_score(y, flagged, zero_division=0)),
        "recall": float(recall_score(y, flagged, zero_division=0)),
        "f1": float(f1_score(y, flagged, zero_division=0)),
        "flagged_share": float(flagged.mean()),
        "cost_per_customer": cost_per_customer(y, flagged, costs),
    }


def threshold_table(y: np.ndarray, p: np.ndarray, costs: Costs, chosen: float) -> list[dict]:
    thresholds = sorted({*TABLE_THRESHOLDS, round(chosen, 4)})
    return [at_threshold(y, p, t, costs) for t in thresholds]


def evaluate(y: np.ndarray, p: np.ndarray, threshold: float, costs: Costs) -> dict[str, Any]:
    """Every headline number for one set of predictions at the chosen threshold."""
    tn, fp, fn, tp = confusion_matrix(y, p >= threshold, labels=[0, 1]).ravel()
    two_classes = len(np.unique(y)) == 2
    return {
        "rows": len(y),
        "positive_rate": float(y.mean()),
        **at_threshold(y, p, threshold, costs),
        "roc_auc": float(roc_auc_score(y, p)) if two_classes else float("nan"),
        "pr_auc": float(average_precision_score(y, p)) if two_classes else float("nan"),
        "brier": float(brier_score_loss(y, p)),
        "log_loss": float(log_loss(y, np.clip(p, 1e-15, 1 - 1e-15), labels=[0, 1])),
        "ece": expected_calibration_error(y, p),
        "confusion": {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)},
    }


def tier_table(y: np.ndarray, p: np.ndarray, tiers: dict[str, float]) -> list[dict[str, Any]]:
    """Share of customers and risk-event rate in each tier (test split)."""
    edges = [("low", 0.0, tiers["medium"]), ("medium", tiers["medium"], tiers["high"])]
    edges.append(("high", tiers["high"], 1.0 + 1e-9))
    rows = []
    for name, low, high in edges:
        inside = (p >= low) & (p < high)
        rows.append(
            {
                "tier": name,
                "range": f"[{low:g}, {min(high, 1.0):g})",
                "share": float(inside.mean()),
                "customers": int(inside.sum()),
                "risk_event_rate": float(y[inside].mean()) if inside.any() else None,
            }
        )
    return rows


def tier_index(p: np.ndarray, medium: float, high: float) -> np.ndarray:
    """0 low, 1 medium, 2 high (index into TIER_NAMES) for each probability."""
    return (p >= medium).astype(np.intp) + (p >= high).astype(np.intp)


def tier_shares(p: np.ndarray, medium: float, high: float) -> dict[str, float]:
    counts = np.bincount(tier_index(p, medium, high), minlength=len(TIER_NAMES))
    return {name: float(c / max(len(p), 1)) for name, c in zip(TIER_NAMES, counts, strict=True)}
