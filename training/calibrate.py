"""Choose the champion's calibrator by cross-validated log-loss on its out-of-fold scores.

The out-of-fold probabilities come from models that never saw the row they score, so a
calibrator fitted on them learns how the model's scores relate to outcomes on new
customers. Each method is scored the same way, on folds of those probabilities; the one
with the lowest mean log-loss (isotonic only if neither smooth map is within one standard
error of it) is refitted on all of them and stored in the model.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedKFold

from model.calibration import METHODS, Calibrator

FOLDS = 5


def choose_calibrator(
    oof: np.ndarray, y: np.ndarray, seed: int
) -> tuple[Calibrator, dict[str, Any], np.ndarray]:
    """The fitted calibrator, the record of the choice (each method's CV log-loss, and why
    a method was refused), and the out-of-fold probabilities calibrated out of fold (what
    the threshold is chosen on)."""
    losses: dict[str, list[float]] = {m: [] for m in METHODS}
    crossed = {m: np.zeros(len(y)) for m in METHODS}
    refused: dict[str, str] = {}
    for fit, held in StratifiedKFold(FOLDS, shuffle=True, random_state=seed).split(oof, y):
        for method in METHODS:
            if method in refused:
                continue
            try:
                calibrator = Calibrator(method).fit(oof[fit], y[fit])
            except ValueError as err:  # a sigmoid with a negative slope
                refused[method] = str(err)
                continue
            crossed[method][held] = calibrator.apply(oof[held])
            losses[method].append(log_loss(y[held], crossed[method][held], labels=[0, 1]))
    mean = {m: float(np.mean(v)) for m, v in losses.items() if m not in refused}
    best = min(mean, key=lambda m: (mean[m], METHODS.index(m)))  # ties: the simpler
    margin = float(np.std(losses[best]) / np.sqrt(len(losses[best])))
    # Isotonic only where no smooth map comes within one standard error of it: its flat
    # steps can win by noise, and a flat step hides what moved a customer's score (the
    # reasons measure that movement).
    smooth = [m for m in ("none", "sigmoid") if m in mean and mean[m] <= mean[best] + margin]
    chosen = min(smooth, key=lambda m: mean[m]) if best == "isotonic" and smooth else best
    calibrator = Calibrator(chosen).fit(oof, y)
    record = {
        "method": chosen,
        "cv_log_loss": mean,
        "rule": "the lowest; isotonic only if no smooth map is within one standard error",
        "standard_error": margin,
        "refused": refused,
        "fitted": calibrator.describe(),
        "folds": FOLDS,
    }
    return calibrator, record, crossed[chosen]
