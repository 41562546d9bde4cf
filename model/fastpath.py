"""A numpy scoring path derived from a fitted pipeline, for single records and small batches.

`FastPath.derive` reads the learned parameters of the fitted steps (imputer
statistics, scaler means and scales, encoder levels, model weights or trees)
and replays them with numpy on plain column arrays: no DataFrame, no
ColumnTransformer dispatch. Nothing is re-implemented by hand per feature: every
number comes from the fitted object, and the tests hold both paths to 1e-9.
A step without a fast form raises `NoFastForm`, and the caller keeps the pipeline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from xgboost import XGBClassifier

from model.calibration import Calibrated, Calibrator
from model.ensemble import SoftVote
from model.rebalance import RebalancedClassifier, sigmoid
from model.xgbpredict import margin_predictor

Columns = dict[str, np.ndarray]  # feature name -> float array (numbers) or object array (text)
Block = Callable[[np.ndarray], np.ndarray]


# Rows x trees up to which walking a scikit-learn forest with numpy beats its own loop,
# whose fixed cost per call dominates small batches (make bench measures both paths).
WALK_MAX_CELLS = 200_000


class NoFastForm(ValueError):
    """A fitted step this module cannot replay; the full pipeline is used instead."""


def _is_missing(values: np.ndarray) -> np.ndarray:
    return np.isnan(values) if values.dtype.kind == "f" else pd.isna(values)


def _imputer(step: SimpleImputer) -> Block:
    fill = step.statistics_
    kept = step.indicator_.features_ if step.add_indicator else None

    def apply(block: np.ndarray) -> np.ndarray:
        missing = _is_missing(block)
        out = np.where(missing, fill[None, :], block)
        if kept is not None:
            out = np.hstack([out.astype(float), missing[:, kept].astype(float)])
        return out

    return apply


def _onehot(step: OneHotEncoder) -> Block:
    if step.handle_unknown != "ignore" or step.drop is not None:
        raise NoFastForm("OneHotEncoder without handle_unknown='ignore' or with drop")
    levels = [np.asarray(c, dtype=object) for c in step.categories_]

    def apply(block: np.ndarray) -> np.ndarray:
        return np.hstack(
            [(block[:, [j]] == levels[j][None, :]).astype(float) for j in range(block.shape[1])]
        )

    return apply


def _scaler(step: StandardScaler) -> Block:
    mean = step.mean_ if step.with_mean else 0.0
    scale = step.scale_ if step.with_std else 1.0
    return lambda block: (block.astype(float) - mean) / scale


def _owners(step: Any, owners: list[str]) -> list[str]:
    """The input feature behind each output column of a step (every step here works
    column by column, so each output column has exactly one)."""
    if isinstance(step, SimpleImputer) and step.add_indicator:
        return owners + [owners[j] for j in step.indicator_.features_]
    if isinstance(step, OneHotEncoder):
        return [owners[j] for j, levels in enumerate(step.categories_) for _ in levels]
    return owners


def _step(step: Any) -> Block:
    if step == "passthrough":
        return lambda block: block
    if isinstance(step, SimpleImputer):
        return _imputer(step)
    if isinstance(step, OneHotEncoder):
        return _onehot(step)
    if isinstance(step, StandardScaler):
        return _scaler(step)
    raise NoFastForm(f"no fast form for {type(step).__name__}")


@dataclass
class _Group:
    columns: list[str]
    steps: list[Block]
    numeric: bool
    owners: list[str]  # the feature behind each encoded column


def _fitted_groups(transformer: ColumnTransformer):
    """(columns, fitted steps, owner of each output column) per kept group."""
    for _, fitted, columns in transformer.transformers_:
        if fitted == "drop":
            continue
        steps = [s for _, s in fitted.steps] if isinstance(fitted, Pipeline) else [fitted]
        owners = list(columns)
        for step in steps:
            owners = _owners(step, owners)
        yield list(columns), steps, owners


def encoded_owners(transformer: ColumnTransformer) -> list[str]:
    """The feature behind each column of the fitted transformer's output, in order (no
    fast form needed: a step without one maps column to column)."""
    return [name for *_, owners in _fitted_groups(transformer) for name in owners]


def _groups(transformer: ColumnTransformer) -> list[_Group]:
    if transformer.remainder != "drop":
        raise NoFastForm(
            f"the ColumnTransformer's remainder is {transformer.remainder!r}, not 'drop'"
        )
    return [
        _Group(columns, [_step(s) for s in steps], _numeric(steps), owners)
        for columns, steps, owners in _fitted_groups(transformer)
    ]


def _numeric(steps: list[Any]) -> bool:
    return not any(isinstance(s, OneHotEncoder) for s in steps)


def _forest(forest: RandomForestClassifier) -> Callable[[np.ndarray], np.ndarray]:
    """Models stored before the forest became XGBoost's random-forest mode: scikit-learn's
    forest. All trees walked at once, one level per numpy step, on the fitted trees' own arrays.

    The trees' nodes are laid end to end in flat arrays (a leaf's children point to
    itself, so walking on from a leaf stays there). Like scikit-learn, inputs are compared
    as float32 against the float64 thresholds and a blank goes where the tree learned
    blanks go, so the leaves reached are the same."""
    trees = [e.tree_ for e in forest.estimators_]
    roots = np.cumsum([0] + [t.node_count for t in trees[:-1]])
    nodes = [np.arange(t.node_count) for t in trees]

    def flat(parts: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(parts)

    is_leaf = flat([t.children_left < 0 for t in trees])
    own = flat([root + n for root, n in zip(roots, nodes, strict=True)])
    left = np.where(
        is_leaf, own, flat([r + t.children_left for r, t in zip(roots, trees, strict=True)])
    )
    right = np.where(
        is_leaf, own, flat([r + t.children_right for r, t in zip(roots, trees, strict=True)])
    )
    feature = np.where(is_leaf, 0, flat([t.feature for t in trees]))
    threshold = flat([t.threshold for t in trees])
    blank_left = flat([t.missing_go_to_left.astype(bool) for t in trees])
    event = flat([t.value[:, 0, 1] for t in trees])  # class 1's share at each node
    depth = max(t.max_depth for t in trees)

    def predict(X: np.ndarray) -> np.ndarray:
        if len(X) * len(trees) > WALK_MAX_CELLS:
            # Large batches: scikit-learn's compiled walk (apply: the leaf each tree reaches)
            # wins over numpy temporaries; the leaves are averaged below, the same way as
            # after the numpy walk, so a record's probability never depends on its batch.
            leaf = np.ascontiguousarray(roots + forest.apply(X.astype(np.float32)))  # rows x trees
            return event[leaf].sum(axis=1) / len(trees)
        X32 = X.astype(np.float32).astype(np.float64)
        rows = np.arange(len(X))[:, None]
        node = np.broadcast_to(roots, (len(X), len(trees)))
        for _ in range(depth):
            value = X32[rows, feature[node]]
            go_left = np.where(np.isnan(value), blank_left[node], value <= threshold[node])
            node = np.where(go_left, left[node], right[node])
        return event[node].sum(axis=1) / len(trees)

    return predict


def _model(model: RebalancedClassifier) -> Callable[[np.ndarray], np.ndarray]:
    """Probability of the risk event as the fitted model sees it (before prior correction)."""
    inner = model.estimator_
    if isinstance(inner, RandomForestClassifier):
        return _forest(inner)
    if isinstance(inner, LogisticRegression):
        weights, bias = inner.coef_[0], inner.intercept_[0]
        # Row by row (einsum's loop, not BLAS): a record's probability is then bit for bit
        # the same whatever batch it arrives in (BLAS kernels treat rows by position).
        return lambda X: 1.0 / (1.0 + np.exp(-(np.einsum("ij,j->i", X, weights) + bias)))
    if isinstance(inner, XGBClassifier):  # XGBoost and its random-forest mode
        booster = inner.get_booster()
        booster.set_param({"nthread": 1})  # one request, one core: no thread pool wake-ups
        margin = margin_predictor(booster)  # inplace_predict's numbers, less Python per call
        return lambda X: sigmoid(margin(X))
    return lambda X: inner.predict_proba(X)[:, 1]


class FastPath:
    """Encoder + model replayed with numpy; `probabilities` equals the pipeline's."""

    def __init__(self, groups: list[_Group], model: RebalancedClassifier):
        self.groups = groups
        self.model = model
        self.seen_probability = _model(model)
        self.shift = model.log_odds_shift_  # read once: the property checks fitting each time
        owners = [name for group in self.groups for name in group.owners]
        self.columns_of = {
            name: np.flatnonzero([o == name for o in owners]) for name in dict.fromkeys(owners)
        }
        self._plan: tuple[tuple, np.ndarray, np.ndarray] | None = None  # _occlusion_plan's

    @classmethod
    def derive(cls, pipeline: Pipeline) -> FastPath:
        transformer, model = pipeline.steps[0][1], pipeline.steps[-1][1]
        if not isinstance(transformer, ColumnTransformer):
            raise NoFastForm(f"first step is {type(transformer).__name__}, not a ColumnTransformer")
        if not isinstance(model, RebalancedClassifier):
            raise NoFastForm(f"last step is {type(model).__name__}, not a RebalancedClassifier")
        if len(pipeline.steps) != 2:
            raise NoFastForm("the pipeline has steps between transformer and model")
        return cls(_groups(transformer), model)

    def encode(self, columns: Columns) -> np.ndarray:
        """The model's input matrix, as the fitted ColumnTransformer would produce it."""
        blocks = []
        for group in self.groups:
            dtype = float if group.numeric else object
            block = np.column_stack([columns[c] for c in group.columns]).astype(dtype)
            for step in group.steps:
                block = step(block)
            blocks.append(np.asarray(block, dtype=float))
        return np.hstack(blocks)

    def probabilities(self, columns: Columns) -> np.ndarray:
        seen = self.seen_probability(self.encode(columns))
        return RebalancedClassifier.correct(seen, self.shift)

    def explained(
        self, columns: Columns, typical: dict[str, Any], names: list[str]
    ) -> tuple[np.ndarray, np.ndarray]:
        """The records' probabilities (as `probabilities` gives them), and the
        probabilities with each of `names` in turn set to its typical value, block by
        block (len(names) x n), from one model call. Each encoded column depends on one
        feature only, so a record with feature k typical encodes as the record with k's
        columns taken from the typical record's encoding. A record whose k columns
        already are the typical ones would come back unchanged, so it is not scored
        again: its own probability is copied (the model scores each row on its own, so
        that is the same number)."""
        X = self.encode(columns)
        n = len(X)
        typical_row, owned = self._occlusion_plan(columns, typical, names)
        differs = ~(np.equal(X, typical_row) | (np.isnan(X) & np.isnan(typical_row)))
        # (k, i) pairs where record i changes with feature k typical (a float product:
        # numpy multiplies boolean matrices without BLAS)
        changes = (differs.astype(np.float32) @ owned.T.astype(np.float32)).T > 0
        feature, record = np.nonzero(changes)
        stacked = np.empty((n + len(record), X.shape[1]))
        stacked[:n] = X
        np.take(X, record, axis=0, out=stacked[n:])
        np.copyto(stacked[n:], typical_row, where=owned[feature])
        scored = self.seen_probability(stacked)
        seen = np.repeat(scored[None, :n], len(names), axis=0)
        seen[feature, record] = scored[n:]
        correct = RebalancedClassifier.correct
        return correct(scored[:n], self.shift), correct(seen.ravel(), self.shift)

    def _occlusion_plan(
        self, columns: Columns, typical: dict[str, Any], names: list[str]
    ) -> tuple[np.ndarray, np.ndarray]:
        """The typical record's encoding, and which encoded columns each of `names` owns
        (len(names) x columns), made once per set of typical values."""
        key = (tuple(names), tuple(typical[name] for name in names))
        if self._plan is None or self._plan[0] != key:
            one = {  # a feature not occluded keeps a record's value: its columns are unused
                name: np.array([typical[name]], dtype=col.dtype) if name in typical else col[:1]
                for name, col in columns.items()
            }
            typical_row = self.encode(one)[0]
            owned = np.zeros((len(names), len(typical_row)), dtype=bool)
            for k, name in enumerate(names):
                owned[k, self.columns_of.get(name, [])] = True
            self._plan = (key, typical_row, owned)
        return self._plan[1], self._plan[2]


class FastVote:
    """The soft-vote ensemble replayed member by member: the mean of their fast paths."""

    def __init__(self, members: list[FastPath]):
        self.members = members

    def probabilities(self, columns: Columns) -> np.ndarray:
        return np.mean([member.probabilities(columns) for member in self.members], axis=0)

    def explained(
        self, columns: Columns, typical: dict[str, Any], names: list[str]
    ) -> tuple[np.ndarray, np.ndarray]:
        parts = [member.explained(columns, typical, names) for member in self.members]
        return np.mean([p for p, _ in parts], axis=0), np.mean([o for _, o in parts], axis=0)

    def encode(self, columns: Columns) -> list[np.ndarray]:
        """Each member's input matrix (members encode differently)."""
        return [member.encode(columns) for member in self.members]

    def seen_probability(self, encoded: list[np.ndarray]) -> np.ndarray:
        """The members' models alone on their encoded inputs (before prior correction)."""
        pairs = zip(self.members, encoded, strict=True)
        return np.mean([member.seen_probability(X) for member, X in pairs], axis=0)


class FastCalibrated:
    """A fast path followed by the stored model's calibrator (the same numpy map)."""

    def __init__(self, inner: FastPath | FastVote, calibrator: Calibrator):
        self.inner = inner
        self.calibrator = calibrator

    def probabilities(self, columns: Columns) -> np.ndarray:
        return self.calibrator.apply(self.inner.probabilities(columns))

    def explained(
        self, columns: Columns, typical: dict[str, Any], names: list[str]
    ) -> tuple[np.ndarray, np.ndarray]:
        p, occluded = self.inner.explained(columns, typical, names)
        return self.calibrator.apply(p), self.calibrator.apply(occluded)

    def encode(self, columns: Columns) -> Any:
        return self.inner.encode(columns)

    def seen_probability(self, encoded: Any) -> np.ndarray:
        return self.inner.seen_probability(encoded)


Fast = FastPath | FastVote | FastCalibrated


def derive(model: Pipeline | SoftVote | Calibrated) -> Fast:
    """The fast path of a stored model: one pipeline, or each member of an ensemble, and
    the calibrator after them."""
    if isinstance(model, Calibrated):
        return FastCalibrated(derive(model.model), model.calibrator)
    if isinstance(model, SoftVote):
        return FastVote([FastPath.derive(member) for member in model.members_])
    return FastPath.derive(model)


def probability_function(
    model: Pipeline | SoftVote | Calibrated,
) -> Callable[[Columns], np.ndarray]:
    """Probabilities of a fitted model from feature columns: on its fast path where it has
    one, else through its pipeline on the same columns as a frame (the scorer's rule)."""
    try:
        return derive(model).probabilities
    except NoFastForm:
        return lambda columns: model.predict_proba(pd.DataFrame(columns))[:, 1]
