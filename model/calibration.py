"""A fitted map from the champion's probability to a calibrated one, stored inside the model.

Training picks the method (none / sigmoid / isotonic) by cross-validated log-loss on
the champion's out-of-fold probabilities. Both forms are a few numbers replayed with
numpy, by the pipeline and the fast path alike, so the two stay equal. Each form is
non-decreasing, so the calibrated probability keeps the model's ranking and any
monotone constraint.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_is_fitted

METHODS = ("none", "sigmoid", "isotonic")
_EDGE = 1e-12  # keeps log-odds finite


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), _EDGE, 1 - _EDGE)
    return np.log(p / (1 - p))


class Calibrator(BaseEstimator):
    """`fit(p, y)` learns the map; `apply(p)` replays it.

    sigmoid: Platt scaling on the log-odds, with a positive slope (else it would reverse
    the ranking, and the method is refused). isotonic: a non-decreasing step function,
    interpolated linearly between its knots and kept off 0 and 1 by half a row's weight,
    so no customer is told a probability of exactly 0 or 1."""

    def __init__(self, method: str = "sigmoid"):
        self.method = method

    def fit(self, p: np.ndarray, y: np.ndarray) -> Calibrator:
        if self.method not in METHODS:
            raise ValueError(f"method: expected one of {METHODS}, got {self.method!r}")
        p, y = np.asarray(p, dtype=np.float64), np.asarray(y, dtype=int)
        if self.method == "sigmoid":
            platt = LogisticRegression(C=1e6, max_iter=1000).fit(_logit(p)[:, None], y)
            self.slope_, self.intercept_ = float(platt.coef_[0, 0]), float(platt.intercept_[0])
            if self.slope_ <= 0:
                raise ValueError(
                    f"sigmoid calibration: expected a positive slope, got {self.slope_:.4g} "
                    "(the scores rank customers the wrong way round)"
                )
        elif self.method == "isotonic":
            edge = 0.5 / (len(y) + 1)
            iso = IsotonicRegression(y_min=edge, y_max=1 - edge, out_of_bounds="clip")
            iso.fit(p, y)
            self.knots_x_ = np.asarray(iso.X_thresholds_, dtype=np.float64)
            self.knots_y_ = np.asarray(iso.y_thresholds_, dtype=np.float64)
        self.fitted_ = True
        return self

    def apply(self, p: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "fitted_")
        p = np.asarray(p, dtype=np.float64)
        if self.method == "sigmoid":
            return 1.0 / (1.0 + np.exp(-(self.slope_ * _logit(p) + self.intercept_)))
        if self.method == "isotonic":
            return np.interp(p, self.knots_x_, self.knots_y_)
        return p

    def describe(self) -> dict[str, Any]:
        """The fitted numbers, for the report and the card."""
        check_is_fitted(self, "fitted_")
        if self.method == "sigmoid":
            return {"method": self.method, "slope": self.slope_, "intercept": self.intercept_}
        if self.method == "isotonic":
            return {"method": self.method, "knots": len(self.knots_x_)}
        return {"method": self.method}


class Calibrated(ClassifierMixin, BaseEstimator):
    """A fitted model (pipeline or soft vote) followed by its fitted calibrator.

    Built from parts that are already fitted (training fits the calibrator on
    out-of-fold probabilities, never on the rows the model was fitted on)."""

    def __init__(self, model: Any = None, calibrator: Calibrator | None = None):
        self.model = model
        self.calibrator = calibrator

    def fit(self, X: Any, y: Any) -> Calibrated:
        raise TypeError(
            "Calibrated is assembled from a fitted model and a calibrator fitted on "
            "out-of-fold probabilities; fit those, then wrap them"
        )

    @property
    def classes_(self) -> np.ndarray:
        return self.model.classes_

    def __sklearn_is_fitted__(self) -> bool:
        return self.model is not None and self.calibrator is not None

    def predict_proba(self, X: Any) -> np.ndarray:
        positive = self.calibrator.apply(self.model.predict_proba(X)[:, 1])
        return np.column_stack([1 - positive, positive])

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[(self.predict_proba(X)[:, 1] >= 0.5).astype(int)]


def calibrated(model: Any, calibrator: Calibrator) -> Any:
    """The model to store: wrapped only when the calibrator changes anything."""
    return model if calibrator.method == "none" else Calibrated(model, calibrator)


def uncalibrated(model: Any) -> Any:
    """The fitted model inside, without its calibrator."""
    return model.model if isinstance(model, Calibrated) else model
