"""The per-customer transformer, built from a spec's feature list.

Every step is a standard scikit-learn imputer / scaler / encoder (or a small
custom one exposing its parameters), so a fast numpy scoring path can later be
derived from the fitted object. It is fitted only inside the training pipeline.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils.validation import check_is_fitted, validate_data

from core.spec import ORDERED, Feature, FeatureType, MissingRule, Spec

# linear: impute + scale + one-hot; forest: impute + one-hot; boosting: NaN kept where allowed
Family = Literal["linear", "forest", "boosting"]

BLANK_LEVEL = "(blank)"  # the level a blank category becomes under `missing: native`
_EPOCH = pd.Timestamp("1970-01-01")
_DAY = pd.Timedelta(days=1)


class DatetimeToDays(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Dates to days since 1970-01-01 (float; unparseable -> NaN). Learns nothing."""

    def fit(self, X, y=None):
        validate_data(self, X, dtype=None, ensure_all_finite=False)
        return self

    def transform(self, X):
        check_is_fitted(self, "n_features_in_")
        values = validate_data(self, X, dtype=None, ensure_all_finite=False, reset=False)
        frame = pd.DataFrame(values)
        days = {
            col: (pd.to_datetime(frame[col], errors="coerce", format="mixed") - _EPOCH) / _DAY
            for col in frame.columns
        }
        return pd.DataFrame(days).to_numpy(dtype=float)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.string = True
        return tags


def _imputer(feature: Feature, family: Family) -> SimpleImputer | str:
    categorical = feature.type is FeatureType.categorical
    match feature.missing:
        case MissingRule.constant:
            value = str(feature.fill_value) if categorical else float(feature.fill_value)
            return SimpleImputer(strategy="constant", fill_value=value)
        case MissingRule.native if categorical:
            # A blank category is a level of its own (BLANK_LEVEL), for every model family.
            return SimpleImputer(strategy="constant", fill_value=BLANK_LEVEL)
        case MissingRule.native if family == "boosting":
            return "passthrough"
        case MissingRule.native:
            # The blank itself carries signal (not missing at random): keep it as a column.
            return SimpleImputer(strategy="median", add_indicator=True)
        case _:
            return SimpleImputer(strategy="most_frequent" if categorical else "median")


def _steps(feature: Feature, family: Family) -> tuple[tuple, ...]:
    """A hashable description of a feature's steps, to group identical columns."""
    imputer = _imputer(feature, family)
    key: tuple = (feature.type.value, repr(imputer))
    if feature.type is FeatureType.categorical:
        key += (tuple(feature.levels or ()),)
    return key


def _pipeline(feature: Feature, family: Family) -> Pipeline:
    steps: list[tuple[str, object]] = []
    if feature.type is FeatureType.datetime:
        steps.append(("days", DatetimeToDays()))
    imputer = _imputer(feature, family)
    if imputer != "passthrough":
        steps.append(("impute", imputer))
    if feature.type is FeatureType.categorical:
        levels = list(feature.levels or [])
        if feature.missing is MissingRule.native:
            levels.append(BLANK_LEVEL)
        encoder = OneHotEncoder(categories=[levels], handle_unknown="ignore", dtype=float)
        steps.append(("onehot", encoder))
    elif family == "linear":
        steps.append(("scale", StandardScaler()))
    if not steps:
        steps.append(("keep", "passthrough"))
    return Pipeline(steps)


def build_transformer(spec: Spec, family: Family) -> ColumnTransformer:
    """One ColumnTransformer for the spec's features; columns with identical steps share one."""
    text = [f.name for f in spec.features if f.type is FeatureType.text]
    if text:
        raise ValueError(
            f"features {text}: free text in the customer table is not a model input; "
            "describe it through data.transactions.description or list it under drop"
        )
    groups: dict[tuple, list[Feature]] = defaultdict(list)
    for feature in spec.features:
        if feature.type is FeatureType.categorical:
            groups[(feature.name,)].append(feature)  # each has its own level list
        else:
            groups[_steps(feature, family)].append(feature)
    transformers = []
    for i, members in enumerate(groups.values()):
        names = [f.name for f in members]
        label = names[0] if len(names) == 1 else f"{members[0].type.value}_{i}"
        transformers.append((label, _pipeline(members[0], family), names))
    return ColumnTransformer(
        transformers, remainder="drop", sparse_threshold=0.0, verbose_feature_names_out=False
    )


def boosting_directions(spec: Spec) -> tuple[int, ...]:
    """XGBoost's monotone_constraints for the boosting transformer's output columns, in
    order: the feature's direction for its one number column, 0 for one-hot columns.
    (That transformer adds no indicator columns, so its layout follows from the spec.)"""
    directions: list[int] = []
    for _, _, names in build_transformer(spec, "boosting").transformers:
        for name in names:
            feature = spec.feature(name)
            if feature.type is FeatureType.categorical:
                blank = feature.missing is MissingRule.native
                directions += [0] * (len(feature.levels or ()) + blank)
            else:
                directions.append(feature.direction)
    return tuple(directions)


def _level_text(value: object) -> str:
    """Category values as text; 1.0 read from a CSV with blanks is the level '1'."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def prepare_frame(frame: pd.DataFrame, spec: Spec) -> pd.DataFrame:
    """The spec's feature columns with the types the transformer expects.

    Numbers become float (blanks NaN), categories text (blanks NaN). Training and
    serving both call this, so a CSV and a JSON request reach the model alike.
    """
    out = {}
    for feature in spec.features:
        column = frame[feature.name]
        if feature.type in ORDERED:
            out[feature.name] = pd.to_numeric(column, errors="coerce").astype(float)
        elif feature.type is FeatureType.categorical:
            out[feature.name] = column.map(_level_text, na_action="ignore").astype(object)
        else:
            out[feature.name] = column
    return pd.DataFrame(out, index=frame.index)


def columns_from_frame(frame: pd.DataFrame, spec: Spec) -> dict[str, np.ndarray]:
    """The same values as `prepare_frame`, as one numpy array per feature (fast path input)."""
    prepared = prepare_frame(frame, spec)
    return {
        f.name: prepared[f.name].to_numpy(dtype=float if _is_number(f) else object)
        for f in spec.features
    }


def columns_from_records(records: list[dict], spec: Spec) -> dict[str, np.ndarray]:
    """JSON records straight to arrays, without building a DataFrame."""
    out = {}
    for feature in spec.features:
        values = [r.get(feature.name) for r in records]
        if _is_number(feature):
            out[feature.name] = np.array([np.nan if v is None else v for v in values], dtype=float)
        elif feature.type is FeatureType.categorical:
            out[feature.name] = np.array(
                [None if v is None else _level_text(v) for v in values], dtype=object
            )
        else:
            out[feature.name] = np.array(values, dtype=object)
    return out


def _is_number(feature: Feature) -> bool:
    return feature.type in ORDERED
