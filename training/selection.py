"""Which candidate is stored: the cheapest to serve among those as good as the best.

A candidate whose cross-validated score is within one standard error of the best one's
is as good as far as the data can tell; of those, the one that answers a single record
fastest on the fast path is chosen (Breiman's one-standard-error rule, with serving
cost as the measure of simplicity). Serving cost is measured here, on the fitted
candidate, not assumed from its family.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from core import metrics
from core.spec import Spec
from features.tabular import columns_from_frame
from model.fastpath import encoded_owners, probability_function

if TYPE_CHECKING:  # typing only: train.py imports this module
    from training.train import CVResult

RULE = (
    "the cheapest candidate to serve (fast path, µs per single record) among those whose "
    "cross-validated score is within one standard error of the best"
)
BATCH_ROWS = 1_000
_ROUNDS, _SINGLE_CALLS = 3, 100


def _best_round(call, rounds: int, calls: int) -> float:
    """Seconds per call: the fastest of `rounds` timed loops (the least disturbed)."""
    call()  # warm-up: first-call allocations, lazy imports
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            call()
        best = min(best, (time.perf_counter() - start) / calls)
    return best


def serving_cost(spec: Spec, model: Any, X: pd.DataFrame) -> dict[str, float]:
    """µs per record on the fast path: one record per call, and a batch of 1,000 rows
    (the rows of X repeated), probabilities only (reasons multiply both by about the
    number of features). A model without a fast form is timed through its pipeline."""
    batch = X.iloc[np.resize(np.arange(len(X)), BATCH_ROWS)]
    one, many = columns_from_frame(X.iloc[:1], spec), columns_from_frame(batch, spec)
    probabilities = probability_function(model)
    single, batched = (lambda: probabilities(one)), (lambda: probabilities(many))
    return {
        "single": round(_best_round(single, _ROUNDS, _SINGLE_CALLS) * 1e6, 2),
        "batch_1000": round(_best_round(batched, _ROUNDS, 1) * 1e6 / BATCH_ROWS, 3),
    }


def sign_breaches(spec: Spec, pipeline: Any) -> dict[str, str]:
    """A logistic regression's coefficients against the spec's monotone directions: each
    constrained feature's value column must have a coefficient of the declared sign (or
    zero). The scaler divides by a positive scale, so the sign is the raw feature's.
    Returns feature -> what is wrong."""
    weights = pipeline.steps[-1][1].estimator_.coef_[0]
    owners = encoded_owners(pipeline.steps[0][1])
    breaches = {}
    for feature in spec.features:
        if not feature.monotone or feature.name not in owners:
            continue
        weight = float(weights[owners.index(feature.name)])  # the value, before any indicator
        if weight * feature.direction < 0:
            breaches[feature.name] = (
                f"{feature.name}: coefficient {weight:+.4g} where the spec says {feature.monotone}"
            )
    return breaches


def standard_error(result: CVResult) -> float:
    return result.std / np.sqrt(len(result.fold_scores))


def choose(
    spec: Spec, results: list[CVResult], costs: dict[str, dict[str, float]], tried: list[CVResult]
) -> tuple[CVResult, CVResult, dict[str, Any]]:
    """Champion, challenger and the record of the choice, from the family winners
    `results` (`costs` is keyed by their labels). The challenger is the best-scoring of
    the other winners (the best by score itself when a cheaper one won); with a single
    family, the best other configuration it tried."""
    higher = metrics.greater_is_better(spec.selection_metric)
    ranked = sorted(results, key=lambda r: r.mean, reverse=higher)
    best = ranked[0]
    margin = standard_error(best)
    floor = best.mean - margin if higher else best.mean + margin
    within = [r for r in ranked if (r.mean >= floor if higher else r.mean <= floor)]
    champion = min(within, key=lambda r: costs[r.candidate.label]["single"])
    others = [r for r in ranked if r is not champion] or sorted(
        (r for r in tried if r.candidate.label != champion.candidate.label),
        key=lambda r: r.mean,
        reverse=higher,
    )
    challenger = others[0]
    record = {
        "rule": RULE,
        "metric": spec.selection_metric,
        "best_by_score": best.candidate.label,
        "best_cv_mean": best.mean,
        "standard_error": margin,
        "within": [r.candidate.label for r in within],
        "chosen": champion.candidate.label,
        "serving_us": {r.candidate.label: costs[r.candidate.label] for r in ranked},
    }
    return champion, challenger, record
