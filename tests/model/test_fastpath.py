"""The fast path gives the pipeline's probabilities (to 1e-9) for every model family, every
missing-value rule, unseen levels and range boundaries."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.spec import parse_spec
from features.tabular import columns_from_frame, columns_from_records, prepare_frame
from model.fastpath import FastPath, NoFastForm, derive
from model.rebalance import METHODS
from training.candidates import FAMILIES, Candidate, make_pipeline, search_space, soft_vote

SPEC = parse_spec(
    {
        "name": "toy",
        "purpose": "x",
        "data": {"table": "t.csv"},
        "id_column": "id",
        "target": {"column": "y", "positive": 1},
        "features": [
            {"name": "income", "type": "numeric", "min": 0, "max": 1e6, "description": "x"},
            {"name": "span", "type": "numeric", "missing": "native", "description": "x"},
            {"name": "bill", "type": "numeric", "missing": "constant", "fill_value": 0,
             "description": "x"},
            {"name": "flag", "type": "binary", "description": "x"},
            {"name": "plan", "type": "categorical", "levels": ["a", "b", "c"],
             "unseen": "accept", "description": "x"},
            {"name": "channel", "type": "categorical", "levels": ["web", "app"],
             "missing": "native", "description": "x"},
        ],
        "costs": {"missed_event": 1, "false_alarm": 1},
        "tiers": {"medium": 0.3, "high": 0.6},
    },
    "toy",
    Path("."),
)  # fmt: skip


def toy_frame(n: int = 600, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "income": rng.lognormal(10, 0.5, n),
            "span": np.where(rng.random(n) < 0.3, np.nan, rng.normal(20, 5, n)),
            "bill": np.where(rng.random(n) < 0.1, np.nan, rng.gamma(2, 50, n)),
            "flag": rng.integers(0, 2, n).astype(float),
            "plan": rng.choice(["a", "b", "c"], n).astype(object),
            "channel": np.where(rng.random(n) < 0.2, None, rng.choice(["web", "app"], n)),
        }
    )
    frame.loc[rng.random(n) < 0.05, "income"] = np.nan
    logit = -1 + 0.8 * frame["flag"] + frame["span"].isna() - 0.5 * (frame["plan"] == "c")
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame, y


EDGES = pd.DataFrame(
    {
        "income": [np.nan, 0.0, 1e6, 1e12, 5e4],
        "span": [np.nan, -1e9, 0.0, 1e9, np.nan],
        "bill": [np.nan, 0.0, np.nan, 1e7, 1.0],
        "flag": [0.0, 1.0, 0.0, 1.0, 1.0],
        "plan": ["zzz", None, "a", "c", "b"],  # unseen, blank, known
        "channel": [None, "web", "fax", None, "app"],
    }
)


def _first(family: str, imbalance: str = "none") -> Candidate:
    return Candidate(family, search_space(family, seed=0, limit=1)[0].params, imbalance)


def _assert_fast_equals_pipeline(candidate: Candidate) -> None:
    frame, y = toy_frame()
    model = make_pipeline(SPEC, candidate, seed=0).fit(prepare_frame(frame, SPEC), y)
    fast = derive(model)
    for probe in (frame, EDGES):
        expected = model.predict_proba(prepare_frame(probe, SPEC))[:, 1]
        got = fast.probabilities(columns_from_frame(probe, SPEC))
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("imbalance", ["none", "weights", "undersample"])
def test_fast_path_equals_pipeline(family, imbalance):
    _assert_fast_equals_pipeline(_first(family, imbalance))


TYPICAL = {"income": 5e4, "span": 20.0, "bill": 100.0, "flag": 1.0, "plan": "b", "channel": "web"}


@pytest.mark.parametrize("family", [*FAMILIES, "soft_vote"])
def test_reasons_shortcut_equals_rescoring_each_record_with_one_feature_typical(family):
    """`explained` reuses the encoded matrix; it must equal encoding the altered records."""
    frame, y = toy_frame()
    members = [_first(f, m) for f, m in zip(FAMILIES, METHODS, strict=True)]
    candidate = soft_vote(members) if family == "soft_vote" else _first(family)
    fast = derive(make_pipeline(SPEC, candidate, seed=0).fit(prepare_frame(frame, SPEC), y))
    columns = columns_from_frame(EDGES, SPEC)
    names = list(TYPICAL)
    stacked = {
        f: np.concatenate([np.full(len(EDGES), TYPICAL[f], col.dtype) if f == k else col
                           for k in names])
        for f, col in columns.items()
    }  # fmt: skip
    p, occluded = fast.explained(columns, TYPICAL, names)
    np.testing.assert_allclose(occluded, fast.probabilities(stacked), rtol=0, atol=1e-12)
    assert np.array_equal(p, fast.probabilities(columns))  # the records' own, bit for bit


@pytest.mark.parametrize("family", FAMILIES)
def test_a_feature_already_at_its_typical_value_has_an_effect_of_exactly_zero(family):
    """`explained` copies a record's own probability where the feature already is typical
    (no re-scoring): the effect is 0 bit for bit, and the other features still move."""
    frame, y = toy_frame()
    fast = derive(make_pipeline(SPEC, _first(family), seed=0).fit(prepare_frame(frame, SPEC), y))
    records = pd.concat([EDGES, pd.DataFrame([TYPICAL])], ignore_index=True)
    columns = columns_from_frame(records, SPEC)
    names = list(TYPICAL)
    p, occluded = fast.explained(columns, TYPICAL, names)
    effects = p[None, :] - occluded.reshape(len(names), len(records))
    assert (effects[:, -1] == 0.0).all()  # the typical record itself
    assert effects[names.index("income"), 4] == 0.0  # EDGES' last row has the typical income
    assert (effects[:, :-1] != 0.0).any()


def test_fast_path_of_the_soft_vote_ensemble_equals_its_mean_of_members():
    members = [
        _first(family, imbalance) for family, imbalance in zip(FAMILIES, METHODS, strict=True)
    ]
    _assert_fast_equals_pipeline(soft_vote(members))


def test_records_and_frames_give_the_same_columns():
    records = EDGES.astype(object).where(EDGES.notna(), None).to_dict(orient="records")
    from_records = columns_from_records(records, SPEC)
    from_frame = columns_from_frame(EDGES, SPEC)
    for name in SPEC.feature_names:
        left, right = from_records[name], from_frame[name]
        assert pd.isna(left).tolist() == pd.isna(right).tolist()
        assert [v for v in left if not pd.isna(v)] == [v for v in right if not pd.isna(v)]


def test_a_step_without_fast_form_is_refused_with_its_name():
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    with pytest.raises(NoFastForm, match="FunctionTransformer"):
        FastPath.derive(Pipeline([("f", FunctionTransformer()), ("m", FunctionTransformer())]))


def test_a_stored_scikit_learn_forest_keeps_its_exact_fast_path():
    """Models stored before the forest became XGBoost's random-forest mode."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import Pipeline

    from features.tabular import build_transformer
    from model.rebalance import RebalancedClassifier

    frame, y = toy_frame()
    forest = RandomForestClassifier(n_estimators=40, max_depth=6, random_state=0)
    model = Pipeline(
        [("features", build_transformer(SPEC, "forest")), ("model", RebalancedClassifier(forest))]
    ).fit(prepare_frame(frame, SPEC), y)
    fast = derive(model)
    for probe in (frame, EDGES):
        expected = model.predict_proba(prepare_frame(probe, SPEC))[:, 1]
        got = fast.probabilities(columns_from_frame(probe, SPEC))
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)
