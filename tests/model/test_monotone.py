"""Behaviour: where a spec declares `monotone`, the served probability never moves the
wrong way as that feature sweeps its range, for many customers, whatever else they have."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_fastpath import SPEC, toy_frame  # the same toy spec and data

from core.spec import FeatureType, parse_spec
from features.tabular import columns_from_frame, prepare_frame
from model.scorer import Scorer
from training.candidates import Candidate, make_pipeline
from training.selection import sign_breaches
from training.train import assemble, fit_held

POINTS = 40


@pytest.mark.parametrize("use_case", ["credit_risk", "default", "offboarding"])
def test_probability_follows_every_declared_direction(trained_tag, builtin_spec, use_case):
    spec = builtin_spec(use_case)
    constrained = [f for f in spec.features if f.monotone]
    assert constrained, f"{use_case} declares no monotone feature"
    scorer = Scorer.from_store(trained_tag(use_case))
    data = assemble(spec)
    frame = data.frame[(data.split == "test").to_numpy()].head(150).reset_index(drop=True)
    X = prepare_frame(frame, spec)
    moved = []
    for feature in constrained:
        if feature.type is FeatureType.binary:
            grid = np.array([0.0, 1.0])
        else:  # the declared range where there is one, the observed one otherwise
            low = feature.min if feature.min is not None else X[feature.name].min()
            high = feature.max if feature.max is not None else X[feature.name].max()
            grid = np.linspace(low, high, POINTS)
        swept = pd.concat([X.assign(**{feature.name: v}) for v in grid], ignore_index=True)
        p = scorer.probabilities(columns_from_frame(swept, spec)).reshape(len(grid), len(X))
        steps = np.diff(p, axis=0) * feature.direction
        assert steps.min() >= -1e-12, (
            f"{use_case}.{feature.name} ({feature.monotone}): moves the wrong way by "
            f"{-steps.min():.4g}"
        )
        moved.append(np.ptp(p, axis=0).max())
    assert max(moved) > 0.01, "no constrained feature moves the score: the sweep proves nothing"


def _constrained(**monotone: str):
    features = [f.model_copy(update={"monotone": monotone.get(f.name)}) for f in SPEC.features]
    return SPEC.model_copy(update={"features": features})


def test_a_logistic_regression_drops_a_feature_whose_sign_it_cannot_keep():
    frame, y = toy_frame()
    X = prepare_frame(frame, SPEC)
    # flag raises the risk in the toy data; declaring it decreasing forces it out.
    spec = _constrained(flag="decreasing")
    candidate = Candidate("logistic_regression", {"C": 1.0})
    assert sign_breaches(spec, make_pipeline(spec, candidate, 0).fit(X, y))
    model, held, why = fit_held(spec, candidate, X, y, seed=0)
    assert held.dropped == ("flag",) and "flag: coefficient +" in why[0]
    assert not sign_breaches(spec, model)
    flipped = X.assign(flag=1 - X["flag"])
    np.testing.assert_array_equal(model.predict_proba(X), model.predict_proba(flipped))


def test_xgboost_is_constrained_while_it_fits():
    frame, y = toy_frame()
    X = prepare_frame(frame, SPEC)
    spec = _constrained(flag="decreasing", income="increasing")
    model, held, why = fit_held(spec, Candidate("xgboost", {"n_estimators": 30}), X, y, 0)
    assert held.dropped == () and why == []
    p = [model.predict_proba(X.assign(flag=v))[:, 1] for v in (0.0, 1.0)]
    assert (p[1] <= p[0] + 1e-12).all()  # the data says flag raises risk; the spec wins


def test_the_forest_is_held_to_the_constraints_too():
    frame, y = toy_frame()
    X = prepare_frame(frame, SPEC)
    spec = _constrained(flag="decreasing")
    model, held, why = fit_held(spec, Candidate("random_forest", {"max_depth": 6}), X, y, 0)
    assert held.dropped == () and why == []
    p = [model.predict_proba(X.assign(flag=v))[:, 1] for v in (0.0, 1.0)]
    assert (p[1] <= p[0] + 1e-12).all()  # the data says flag raises risk; the spec wins


def test_monotone_on_a_category_is_refused_with_the_feature_named():
    raw = SPEC.model_dump(mode="json")
    plan = next(f for f in raw["features"] if f["name"] == "plan")
    plan["monotone"] = "increasing"
    with pytest.raises(ValueError, match="monotone applies to numeric and binary features"):
        parse_spec(raw, "toy", Path("."))
