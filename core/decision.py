"""The promotion rule, one for every comparison: retraining's challenger against the
champion on its hold-out (`training/retrain.py`) and a shadow challenger against the
champion on the same customers' matured outcomes (`jobs/outcomes.py`).

The challenger wins when its gain on the metric exceeds the comparison set's sampling
noise: 1.645 x the standard deviation of the gain over paired, stratified bootstrap
resamples of the same customers (a one-sided 95 % test), measured on each comparison's
own data, so a small comparison set needs a large gain.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from core import metrics

BOOTSTRAP_RESAMPLES = 1_000
CONFIDENCE = 0.95  # one-sided: the gain must be this unlikely to be noise
BOOTSTRAP_SEED = 42


@dataclass(kw_only=True)
class Decision:
    """The comparison's outcome; the champion-side fields stay empty when there is none."""

    metric: str
    champion_score: float | None = None
    challenger_score: float
    gain: float | None = None  # positive: the challenger is better, whatever the direction
    margin: float | None = None  # the gain must exceed this
    bootstrap_std: float | None = None
    resamples: int = 0
    confidence: float = CONFIDENCE
    promote: bool
    why: str


def bootstrap_gains(
    metric: str,
    y: np.ndarray,
    p_champion: np.ndarray,
    p_challenger: np.ndarray,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> np.ndarray:
    """The challenger's gain over the champion on paired resamples of the same customers,
    stratified (each resample keeps the number of risk events)."""
    rng = np.random.default_rng(seed)
    sign = 1.0 if metrics.greater_is_better(metric) else -1.0
    positives, negatives = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    gains = np.empty(resamples)
    for i in range(resamples):
        rows = np.concatenate(
            [
                rng.choice(positives, len(positives)),
                rng.choice(negatives, len(negatives)),
            ]
        )
        champion = metrics.selection_score(metric, y[rows], p_champion[rows])
        challenger = metrics.selection_score(metric, y[rows], p_challenger[rows])
        gains[i] = sign * (challenger - champion)
    return gains


def decide(
    metric: str,
    y: np.ndarray,
    p_champion: np.ndarray | None,
    p_challenger: np.ndarray,
    resamples: int = BOOTSTRAP_RESAMPLES,
) -> Decision:
    """Promote when the challenger's gain exceeds the comparison set's noise margin."""
    challenger = metrics.selection_score(metric, y, p_challenger)
    if p_champion is None:
        return Decision(
            metric=metric,
            challenger_score=challenger,
            promote=True,
            why="there is no champion yet: the challenger becomes the first model",
        )
    champion = metrics.selection_score(metric, y, p_champion)
    sign = 1.0 if metrics.greater_is_better(metric) else -1.0
    gain = sign * (challenger - champion)
    std = float(np.std(bootstrap_gains(metric, y, p_champion, p_challenger, resamples)))
    margin = NormalDist().inv_cdf(CONFIDENCE) * std
    promote = gain > margin
    better = "higher" if sign > 0 else "lower"
    if promote:
        why = (
            f"the challenger's {metric} is better by {gain:.5f} ({better} is better), more "
            f"than the noise margin {margin:.5f}"
        )
    elif gain > 0:
        why = (
            f"the challenger's {metric} is better by only {gain:.5f}, within the noise "
            f"margin {margin:.5f}: not shown to be better, the champion stays"
        )
    elif gain == 0:
        why = f"the challenger's {metric} equals the champion's: the champion stays"
    else:
        why = f"the challenger's {metric} is worse by {-gain:.5f}: the champion stays"
    return Decision(
        metric=metric,
        champion_score=champion,
        challenger_score=challenger,
        gain=gain,
        margin=margin,
        bootstrap_std=std,
        resamples=resamples,
        promote=promote,
        why=why,
    )
