"""A soft-vote ensemble of the family winners: the mean of their probabilities.

Each member is a whole pipeline (its own transformer flavour + rebalanced model), so
every member's probability already means what it says; their mean does too. It is a
candidate like any other: it becomes champion only if its cross-validated score beats
every single family on the spec's metric.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from model.calibration import uncalibrated

ENSEMBLE = "soft_vote"


class SoftVote(ClassifierMixin, BaseEstimator):
    """Fits a clone of every member pipeline on the same rows; averages their probabilities."""

    def __init__(self, members: list[Pipeline] | None = None):
        self.members = members

    def fit(self, X: Any, y: Any) -> SoftVote:
        if not self.members:
            raise ValueError("members: expected at least one pipeline, got none")
        self.members_ = [clone(member).fit(X, y) for member in self.members]
        self.classes_ = self.members_[0].classes_
        return self

    @classmethod
    def of_fitted(cls, members: list[Pipeline]) -> SoftVote:
        """The ensemble of pipelines already fitted on the same rows (no refitting)."""
        vote = cls(members)
        vote.members_ = list(members)
        vote.classes_ = members[0].classes_
        return vote

    def predict_proba(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "members_")
        return np.mean([member.predict_proba(X) for member in self.members_], axis=0)

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


def fitted_pipelines(model: Any) -> list[Pipeline]:
    """The fitted transformer + model pipelines inside a stored model (one, or the members)."""
    model = uncalibrated(model)
    return list(model.members_) if isinstance(model, SoftVote) else [model]
