"""The model families we compare and their small, bounded search spaces."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import ParameterSampler
from sklearn.pipeline import Pipeline
from xgboost import XGBClassifier

from core.spec import Spec
from features.tabular import Family, build_transformer
from model.ensemble import ENSEMBLE, SoftVote
from model.rebalance import RebalancedClassifier

N_JOBS = 2  # the machines this runs on have 2 cores

# family name -> (transformer flavour, search space, configurations drawn)
SEARCH: dict[str, tuple[Family, dict[str, list[Any]], int]] = {
    "logistic_regression": ("linear", {"C": [0.01, 0.03, 0.1, 0.3, 1.0, 3.0]}, 3),
    "random_forest": (
        "forest",
        {"max_depth": [6, 8, 12], "min_samples_leaf": [5, 10, 20], "max_features": ["sqrt", 0.3]},
        3,
    ),
    "xgboost": (
        "boosting",
        {
            "max_depth": [2, 3, 4],
            "learning_rate": [0.02, 0.05],
            "n_estimators": [300, 600],
            "min_child_weight": [1, 5, 10],
            "reg_lambda": [1.0, 5.0],
        },
        5,
    ),
}
FAMILIES = tuple(SEARCH)


@dataclass(frozen=True)
class Candidate:
    family: str
    params: dict[str, Any] = field(hash=False)
    imbalance: str = "none"
    members: tuple[Candidate, ...] = ()  # the soft-vote ensemble's members

    @property
    def label(self) -> str:
        if self.members:
            return f"{self.family}({' + '.join(m.label for m in self.members)})"
        shown = ", ".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        return f"{self.family}({shown}; imbalance={self.imbalance})"


def soft_vote(members: list[Candidate]) -> Candidate:
    return Candidate(ENSEMBLE, {}, "per member", tuple(members))


def _estimator(family: str, params: dict[str, Any], seed: int):
    if family == "logistic_regression":
        return LogisticRegression(max_iter=3000, **params)
    if family == "random_forest":
        return RandomForestClassifier(
            n_estimators=300, max_samples=0.7, n_jobs=N_JOBS, random_state=seed, **params
        )
    if family == "xgboost":
        return XGBClassifier(
            tree_method="hist",
            subsample=0.8,
            colsample_bytree=0.8,
            n_jobs=N_JOBS,
            random_state=seed,
            eval_metric="logloss",
            **params,
        )
    raise ValueError(f"family: expected one of {FAMILIES}, got {family!r}")


def make_pipeline(spec: Spec, candidate: Candidate, seed: int) -> Pipeline | SoftVote:
    """Transformer + (rebalanced) model: the one fitted object that is saved and served
    (for the ensemble, one such pipeline per member)."""
    if candidate.members:
        return SoftVote([make_pipeline(spec, m, seed) for m in candidate.members])
    flavour = SEARCH[candidate.family][0]
    model = RebalancedClassifier(
        _estimator(candidate.family, candidate.params, seed), candidate.imbalance, seed
    )
    return Pipeline([("features", build_transformer(spec, flavour)), ("model", model)])


def search_space(family: str, seed: int, limit: int | None = None) -> list[Candidate]:
    """The configurations tried for one family (drawn once, deterministically)."""
    _, grid, n = SEARCH[family]
    drawn = ParameterSampler(grid, n_iter=min(n, limit or n), random_state=seed)
    return [Candidate(family, dict(params)) for params in drawn]
