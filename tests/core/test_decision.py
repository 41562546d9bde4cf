"""The promotion rule (core/decision.py), shared by retraining and the outcomes job: a
challenger wins only when its gain exceeds the paired bootstrap's noise margin."""

import numpy as np
import pytest

from core import decision
from core.decision import bootstrap_gains, decide

RESAMPLES = 200


def test_a_gain_beyond_the_margin_promotes():
    y, good, _ = _scores()
    noise = np.random.default_rng(1).random(len(y))
    d = decide("roc_auc", y, noise, good, resamples=RESAMPLES)
    assert d.promote and d.gain > d.margin > 0
    assert d.margin == pytest.approx(1.6448536 * d.bootstrap_std, rel=1e-6)


def test_a_gain_within_the_noise_does_not_promote():
    y, good, _ = _scores()
    nudged = np.clip(good + np.random.default_rng(2).normal(0, 0.01, len(y)), 0, 1)
    d = decide("roc_auc", y, good, nudged, resamples=RESAMPLES)
    assert not d.promote
    assert abs(d.gain) <= d.margin
    assert "champion stays" in d.why


def test_equal_scores_do_not_promote_and_the_gains_are_paired():
    y, good, _ = _scores()
    same = decide("brier", y, good, good.copy(), resamples=RESAMPLES)
    assert not same.promote and "equals the champion's" in same.why
    # Paired resamples of the same customers: identical scores gain exactly nothing.
    assert not bootstrap_gains("roc_auc", y, good, good.copy(), resamples=50).any()


def test_the_bootstrap_is_seeded_and_stratified():
    y, good, _ = _scores(300)
    noise = np.random.default_rng(3).random(len(y))
    first = bootstrap_gains("pr_auc", y, noise, good, resamples=30)
    assert np.array_equal(first, bootstrap_gains("pr_auc", y, noise, good, resamples=30))
    assert decision.BOOTSTRAP_SEED == 42 and decision.CONFIDENCE == 0.95


def test_retraining_uses_this_rule():
    from training import retrain

    assert retrain.decide is decide


# Moved with the rule from tests/training/test_retrain.py.


def _scores(n: int = 1_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels, an informative score and pure noise."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    informative = 1 / (1 + np.exp(-(2.0 * y - 1 + rng.normal(0, 1, n))))
    return y, informative, rng.random(n)


def test_a_worse_challenger_is_not_promoted():
    y, good, noise = _scores()
    decision = decide("roc_auc", y, good, noise, resamples=RESAMPLES)
    assert not decision.promote
    assert decision.gain < 0
    assert "worse" in decision.why


def test_for_a_lower_is_better_metric_a_lower_score_is_the_gain():
    y, good, noise = _scores()
    decision = decide("brier", y, noise, good, resamples=RESAMPLES)
    assert decision.challenger_score < decision.champion_score
    assert decision.gain == pytest.approx(decision.champion_score - decision.challenger_score)
    assert decision.promote


def test_the_margin_grows_when_the_comparison_set_shrinks():
    big = decide("roc_auc", *_reorder(_scores(2_000)), resamples=RESAMPLES)
    small = decide("roc_auc", *_reorder(_scores(200)), resamples=RESAMPLES)
    assert small.margin > big.margin


def _reorder(scores: tuple[np.ndarray, np.ndarray, np.ndarray]) -> tuple:
    """(y, champion = the informative score, challenger = the same plus a little noise)."""
    y, good, _ = scores
    rng = np.random.default_rng(1)
    return y, good, np.clip(good + rng.normal(0, 0.05, len(good)), 0, 1)


def test_without_a_champion_the_challenger_becomes_the_first_model():
    y, good, _ = _scores()
    decision = decide("roc_auc", y, None, good, resamples=RESAMPLES)
    assert decision.promote
    assert decision.champion_score is None
    assert "no champion" in decision.why


# ---------------------------------------------------------------- matured labels
