"""The fast path's XGBoost call must give inplace_predict's numbers, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from xgboost import XGBClassifier

from model.xgbpredict import margin_predictor


@pytest.fixture(scope="module")
def booster():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 7))
    X[rng.random(X.shape) < 0.1] = np.nan  # blanks go XGBoost's learned default way
    y = (np.nan_to_num(X[:, 0]) + rng.normal(size=600) > 0).astype(int)
    return XGBClassifier(n_estimators=40, max_depth=3, n_jobs=1).fit(X, y).get_booster()


@pytest.mark.parametrize("rows", [0, 1, 7, 1_000])
def test_margins_equal_inplace_predict_bit_for_bit(booster, rows):
    rng = np.random.default_rng(rows)
    X = rng.normal(scale=3.0, size=(rows, 7))
    X[rng.random(X.shape) < 0.2] = np.nan
    got = margin_predictor(booster)(X)
    expected = booster.inplace_predict(X, predict_type="margin")
    assert got.dtype == expected.dtype and got.shape == (rows,)
    assert np.array_equal(got, expected)


def test_each_call_returns_its_own_array(booster):
    """XGBoost reuses its output buffer: an earlier answer must not change afterwards."""
    predict = margin_predictor(booster)
    first = predict(np.zeros((3, 7)))
    kept = first.copy()
    predict(np.full((3, 7), 5.0))
    assert np.array_equal(first, kept)


def test_a_strided_or_integer_matrix_is_read_as_its_values(booster):
    X = np.arange(7 * 20, dtype=np.int64).reshape(20, 7) % 5
    wide = np.zeros((20, 14))
    wide[:, ::2] = X  # every other column: a non-contiguous view
    predict = margin_predictor(booster)
    expected = booster.inplace_predict(X.astype(float), predict_type="margin")
    assert np.array_equal(predict(X), expected)
    assert np.array_equal(predict(wide[:, ::2]), expected)
