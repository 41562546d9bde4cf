"""Imbalance handling whose probabilities still mean what they say."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils import get_tags
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data
from xgboost import XGBClassifier

METHODS = ("none", "weights", "undersample")


def sigmoid(margin: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(margin, dtype=np.float64)))


def seen_probability(estimator, X) -> np.ndarray:
    """The fitted estimator's probability of the risk event. XGBoost's is its margin from
    the in-place predictor with a float64 sigmoid: the fast path makes the same call, so
    both paths give the same numbers."""
    if isinstance(estimator, XGBClassifier):
        margin = estimator.get_booster().inplace_predict(X, predict_type="margin")
        return sigmoid(margin)
    return estimator.predict_proba(X)[:, 1]


class RebalancedClassifier(ClassifierMixin, BaseEstimator):
    """Fit `estimator` on rebalanced data, then map its probabilities back to the true prior.

    `weights` gives the risk events the weight n_negative / n_positive; `undersample`
    keeps every risk event and as many randomly drawn others (brief 002's choice).
    Both make the model see a prior of ~0.5; the odds are then scaled by
    (true prior odds / seen prior odds), the standard correction for
    prior shift (Saerens et al. 2002; Dal Pozzolo et al. 2015 for undersampling).
    """

    def __init__(self, estimator=None, method: str = "none", random_state: int = 0):
        self.estimator = estimator
        self.method = method
        self.random_state = random_state

    def fit(self, X, y):
        if self.method not in METHODS:
            raise ValueError(f"method: expected one of {METHODS}, got {self.method!r}")
        X, y = validate_data(self, X, y, ensure_all_finite=False)  # NaN is for XGBoost to read
        check_classification_targets(y)
        if type_of_target(y) != "binary":
            raise ValueError(
                f"Only binary classification is supported: got a {type_of_target(y)} target"
            )
        self.classes_ = np.unique(y)
        if len(self.classes_) < 2:
            raise ValueError(f"needs both classes, got one class ({self.classes_[0]!r})")
        positive = y == self.classes_[1]
        self.prior_ = float(positive.mean())
        rows = np.arange(len(y))
        weight = None
        if self.method == "undersample":
            rng = np.random.default_rng(self.random_state)
            negatives = rows[~positive]
            keep = rng.choice(negatives, size=min(positive.sum(), len(negatives)), replace=False)
            rows = np.sort(np.concatenate([rows[positive], keep]))
            self.seen_prior_ = float(positive[rows].mean())
        elif self.method == "weights":
            weight = np.where(positive, (~positive).sum() / positive.sum(), 1.0)
            self.seen_prior_ = 0.5
        else:
            self.seen_prior_ = self.prior_
        X_fit = X[rows]
        self.estimator_ = clone(self.estimator)
        if weight is None:
            self.estimator_.fit(X_fit, y[rows])
        else:
            self.estimator_.fit(X_fit, y[rows], sample_weight=weight)
        return self

    @property
    def log_odds_shift_(self) -> float:
        """Added to the model's log-odds to undo the rebalancing."""
        check_is_fitted(self, "prior_")

        def logit(p: float) -> float:
            return float(np.log(p / (1 - p)))

        return logit(self.prior_) - logit(self.seen_prior_)

    def predict_proba(self, X):
        check_is_fitted(self, "estimator_")
        X = validate_data(self, X, reset=False, ensure_all_finite=False)
        positive = self.correct(seen_probability(self.estimator_, X), self.log_odds_shift_)
        return np.column_stack([1 - positive, positive])

    @staticmethod
    def correct(seen: np.ndarray, log_odds_shift: float) -> np.ndarray:
        """Map probabilities learned under the rebalanced prior back to the true one."""
        # float64 whatever the model returns (XGBoost answers in float32), so every
        # scoring path computes the same numbers.
        seen = np.clip(np.asarray(seen, dtype=np.float64), 1e-12, 1 - 1e-12)
        odds = seen / (1 - seen) * np.exp(log_odds_shift)
        return odds / (1 + odds)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False  # a risk event happens or it does not
        if self.estimator is not None:
            tags.input_tags.allow_nan = get_tags(self.estimator).input_tags.allow_nan
        return tags

    def predict(self, X):
        check_is_fitted(self, "estimator_")
        return self.classes_[(self.predict_proba(X)[:, 1] >= 0.5).astype(int)]
