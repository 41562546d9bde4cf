"""The model families we compare and their small, bounded search spaces."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import ParameterSampler, train_test_split
from sklearn.pipeline import Pipeline
from xgboost import XGBClassifier, XGBRFClassifier

from core.spec import Spec
from features.tabular import Family, boosting_directions, build_transformer
from model.ensemble import ENSEMBLE, SoftVote
from model.rebalance import RebalancedClassifier

# Each fit is single-threaded; the cross-validation folds run side by side instead
# (training/train.py): small fits gain little from threads, and XGBoost's threads
# spin-wait when the machine is busy, losing several times over.
FIT_THREADS = 1
STOPPING_THREADS = 2  # the early-stopping fit (boosting_rounds) runs alone: both cores

# family name -> (transformer flavour, search space, configurations drawn)
SEARCH: dict[str, tuple[Family, dict[str, list[Any]], int]] = {
    "logistic_regression": ("linear", {"C": [0.01, 0.03, 0.1, 0.3, 1.0, 3.0]}, 3),
    # XGBoost's random-forest mode: bagged trees fitted in one round, fast to fit on
    # binned features, held to monotone constraints, and served by the same tree walk
    "random_forest": (
        "boosting",
        {"max_depth": [6, 8, 12], "min_child_weight": [1, 5], "colsample_bynode": [0.5, 0.8]},
        2,
    ),
    # the start of XGBoost's staged search (BOOSTING_STAGES); n_estimators is not searched:
    # early stopping finds it for each configuration (boosting_rounds)
    "xgboost": (
        "boosting",
        {"max_depth": [3], "learning_rate": [0.1], "min_child_weight": [5], "reg_lambda": [1.0]},
        1,
    ),
}
FOREST_TREES = 100
# XGBoost is tuned in stages, each stage trying these changes to the best settings so far:
# the tree depth at a fast learning rate, then the regularisation around it, then a slower
# rate that fits the chosen shape in finer steps (the usual order for boosted trees: the
# depth matters most, the learning rate is cheapest to lower last)
FINE_LEARNING_RATE = 0.02
BOOSTING_STAGES: tuple[tuple[dict[str, Any], ...], ...] = (
    ({"max_depth": 2}, {"max_depth": 4}),
    ({"min_child_weight": 1}, {"reg_lambda": 5.0}),
    ({"learning_rate": FINE_LEARNING_RATE},),
)
BOOSTING_MAX_ROUNDS = 1_000
BOOSTING_PATIENCE = 30  # rounds without improvement before early stopping
FAMILIES = tuple(SEARCH)


@dataclass(frozen=True)
class Candidate:
    family: str
    params: dict[str, Any] = field(hash=False)
    imbalance: str = "none"
    members: tuple[Candidate, ...] = ()  # the soft-vote ensemble's members
    dropped: tuple[str, ...] = ()  # features left out (a monotone sign it could not keep)

    @property
    def label(self) -> str:
        if self.members:
            return f"{self.family}({' + '.join(m.label for m in self.members)})"
        shown = ", ".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        without = f"; without {', '.join(self.dropped)}" if self.dropped else ""
        return f"{self.family}({shown}; imbalance={self.imbalance}{without})"


def soft_vote(members: list[Candidate]) -> Candidate:
    return Candidate(ENSEMBLE, {}, "per member", tuple(members))


def _estimator(family: str, params: dict[str, Any], seed: int, directions: tuple[int, ...] = ()):
    if family == "logistic_regression":
        return LogisticRegression(max_iter=3000, **params)
    if family == "random_forest":
        return XGBRFClassifier(
            subsample=0.7,
            tree_method="hist",
            n_jobs=FIT_THREADS,
            random_state=seed,
            monotone_constraints=directions if any(directions) else None,
            **{"n_estimators": FOREST_TREES, **params},
        )
    if family == "xgboost":
        return XGBClassifier(
            tree_method="hist",
            subsample=0.8,
            colsample_bytree=0.8,
            n_jobs=FIT_THREADS,
            random_state=seed,
            eval_metric="logloss",
            monotone_constraints=directions if any(directions) else None,
            **params,
        )
    raise ValueError(f"family: expected one of {FAMILIES}, got {family!r}")


def make_pipeline(spec: Spec, candidate: Candidate, seed: int) -> Pipeline | SoftVote:
    """Transformer + (rebalanced) model: the one fitted object that is saved and served
    (for the ensemble, one such pipeline per member)."""
    if candidate.members:
        return SoftVote([make_pipeline(spec, m, seed) for m in candidate.members])
    flavour = SEARCH[candidate.family][0]
    if candidate.dropped:  # the transformer selects columns by name: the rest are not read
        kept = [f for f in spec.features if f.name not in candidate.dropped]
        spec = spec.model_copy(update={"features": kept})
    directions = boosting_directions(spec) if flavour == "boosting" else ()
    model = RebalancedClassifier(
        _estimator(candidate.family, candidate.params, seed, directions), candidate.imbalance, seed
    )
    return Pipeline([("features", build_transformer(spec, flavour)), ("model", model)])


def search_space(family: str, seed: int, limit: int | None = None) -> list[Candidate]:
    """The configurations tried for one family (drawn once, deterministically)."""
    _, grid, n = SEARCH[family]
    drawn = ParameterSampler(grid, n_iter=min(n, limit or n), random_state=seed)
    return [Candidate(family, dict(params)) for params in drawn]


def variations(candidate: Candidate, stage: tuple[dict[str, Any], ...]) -> list[Candidate]:
    """The candidate with each of a stage's changes, its rounds left to early stopping
    (a change it already has is not tried again)."""
    params = {k: v for k, v in candidate.params.items() if k != "n_estimators"}
    return [
        Candidate(candidate.family, {**params, **change})
        for change in stage
        if any(params.get(k) != v for k, v in change.items())
    ]


def stopping_split(y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows to fit on (80 %) and rows to stop on (20 %), stratified: boosting_rounds' split."""
    return train_test_split(np.arange(len(y)), test_size=0.2, stratify=y, random_state=seed)


def boosting_rounds(
    spec: Spec, candidate: Candidate, encoded: tuple[np.ndarray, ...], seed: int
) -> Candidate:
    """The XGBoost candidate with n_estimators set by early stopping: fitted with up to
    BOOSTING_MAX_ROUNDS rounds on the fitting rows of the stopping split, stopped after
    BOOSTING_PATIENCE rounds without a better log-loss on its other rows. `encoded`:
    (fit X, fit y, stop X, stop y), already through the boosting transformer fitted on
    the fitting rows."""
    fit_z, fit_y, stop_z, stop_y = encoded
    model = _estimator(
        "xgboost",
        {**candidate.params, "n_estimators": BOOSTING_MAX_ROUNDS},
        seed,
        boosting_directions(spec),
    )
    model.set_params(early_stopping_rounds=BOOSTING_PATIENCE, n_jobs=STOPPING_THREADS)
    model.fit(fit_z, fit_y, eval_set=[(stop_z, stop_y)], verbose=False)
    rounds = int(model.best_iteration) + 1
    return Candidate(candidate.family, {**candidate.params, "n_estimators": rounds})
