"""The calibrator stored in a model: what it learns, that it keeps the ranking, that it
never says 0 or 1, and that the fast path replays it exactly."""

import numpy as np
import pytest
from test_fastpath import EDGES, SPEC, toy_frame  # the same toy spec and data

from features.tabular import columns_from_frame, prepare_frame
from model.calibration import Calibrated, Calibrator, calibrated, uncalibrated
from model.ensemble import fitted_pipelines
from model.fastpath import derive
from training.calibrate import choose_calibrator
from training.candidates import Candidate, make_pipeline, search_space


def _overconfident(n: int = 4000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Scores whose log-odds are twice the truth: a model that is too sure of itself."""
    rng = np.random.default_rng(seed)
    true_logit = rng.normal(-1.5, 1.0, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-true_logit))).astype(int)
    return 1 / (1 + np.exp(-2 * true_logit)), y


@pytest.mark.parametrize("method", ["sigmoid", "isotonic"])
def test_calibration_keeps_the_ranking_and_never_answers_0_or_1(method):
    p, y = _overconfident()
    calibrator = Calibrator(method).fit(p, y)
    grid = np.linspace(0, 1, 2001)
    out = calibrator.apply(grid)
    assert (np.diff(out) >= 0).all()  # a riskier score never gets a lower probability
    assert out.min() > 0 and out.max() < 1


def test_sigmoid_undoes_overconfidence():
    p, y = _overconfident()
    fitted = Calibrator("sigmoid").fit(p, y).describe()
    assert fitted["slope"] == pytest.approx(0.5, abs=0.08)  # the truth: half the log-odds


def test_a_reversed_score_is_refused_not_flipped():
    p, y = _overconfident()
    with pytest.raises(ValueError, match="expected a positive slope"):
        Calibrator("sigmoid").fit(1 - p, y)


def test_an_unknown_method_is_named():
    with pytest.raises(ValueError, match=r"expected one of \('none', 'sigmoid', 'isotonic'\)"):
        Calibrator("platt").fit(np.array([0.2, 0.8]), np.array([0, 1]))


def test_the_choice_improves_an_overconfident_models_log_loss():
    p, y = _overconfident()
    calibrator, record, crossed = choose_calibrator(p, y, seed=0)
    assert calibrator.method == record["method"]
    assert record["method"] != "none"
    assert record["cv_log_loss"][record["method"]] < record["cv_log_loss"]["none"]
    # The out-of-fold calibrated scores are what the threshold is chosen on.
    assert crossed.shape == p.shape and not np.allclose(crossed, p)


def test_a_calibrated_model_is_wrapped_and_a_none_is_not():
    p, y = _overconfident()
    assert calibrated("model", Calibrator("none").fit(p, y)) == "model"
    wrapped = calibrated("model", Calibrator("sigmoid").fit(p, y))
    assert isinstance(wrapped, Calibrated) and uncalibrated(wrapped) == "model"


@pytest.mark.parametrize("method", ["sigmoid", "isotonic"])
@pytest.mark.parametrize("family", ["logistic_regression", "xgboost"])
def test_the_fast_path_replays_the_calibrator_exactly(family, method):
    frame, y = toy_frame()
    X = prepare_frame(frame, SPEC)
    candidate = Candidate(family, search_space(family, seed=0, limit=1)[0].params)
    raw = make_pipeline(SPEC, candidate, seed=0).fit(X, y)
    model = Calibrated(raw, Calibrator(method).fit(raw.predict_proba(X)[:, 1], y))
    assert fitted_pipelines(model) == [raw]
    fast = derive(model)
    for probe in (frame, EDGES):
        expected = model.predict_proba(prepare_frame(probe, SPEC))[:, 1]
        got = fast.probabilities(columns_from_frame(probe, SPEC))
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)
    assert not np.allclose(expected, raw.predict_proba(prepare_frame(EDGES, SPEC))[:, 1])


def test_isotonic_needs_to_beat_every_smooth_map_by_more_than_noise():
    """Scores already calibrated: isotonic can fit the folds' noise a hair better, but a
    smooth map is within one standard error of it, so its flat steps are not chosen."""
    rng = np.random.default_rng(3)
    p = rng.beta(1, 6, 3000)
    y = (rng.random(3000) < p).astype(int)
    _, record, _ = choose_calibrator(p, y, seed=0)
    assert record["method"] in ("none", "sigmoid")
    losses = record["cv_log_loss"]
    assert losses[record["method"]] <= min(losses.values()) + record["standard_error"]
