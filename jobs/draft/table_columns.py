"""Profiling the table's columns: the --positive value in the target's own type, the id
column, and for every other column its type, levels and bounds around the observed range,
its blank share and missing rule (`native` where the quality report's missing-not-at-random
test says blanks are informative), and whether it nearly determines the target. Id-like,
constant, date and free-text columns are marked dropped, with the reason.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_integer_dtype, is_numeric_dtype
from pydantic import ValidationError
from sklearn.metrics import roc_auc_score

from core.spec import Feature, FeatureType, MissingRule, Target
from core.stats import tukey_fence
from jobs.draft.findings import (
    DATE_SHARE,
    NUMBER_SHARE,
    REVIEW,
    SHOWN,
    Column,
    DraftError,
    _ceil_sig,
    _show,
)
from jobs.quality import MNAR_ALPHA, missing_vs_target_test

MAX_LEVELS = 50  # a text column with more distinct values is free text, not a category
ID_MIN_ROWS = 100  # an integer column unique per row is an id from this many rows (or by name)
LEAK_AUC = 0.95  # single-column ROC-AUC from which a column nearly determines the target
LEAK_PURE = 0.95  # ... or a level this pure in the risk event
LEAK_MIN_ROWS = 30  # levels with fewer labeled rows are pooled for the leakage check
_ID_NAME = re.compile(r"(^|[_\s])(id|uuid|guid|key)$|^id[_\s]|identifier", re.IGNORECASE)
_PROTECTED_NAME = re.compile(
    r"^(age|age_band|age_group|sex|gender|female|male|race|ethnicity|religion|"
    r"marital_status|nationality|disability|senior_citizen)$",
    re.IGNORECASE,
)
_DATE_TEXT = re.compile(
    r"^\d{4}-\d{1,2}-\d{1,2}([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?)?\s*(Z|[+-]\d{2}:?\d{2})?$"
    r"|^\d{1,2}[/.]\d{1,2}[/.]\d{2,4}( \d{1,2}:\d{2}(:\d{2})?)?$"
)
_PERCENT_NAME = re.compile(r"pct|percent", re.IGNORECASE)
_COUNT_NAME = re.compile(r"(^|_)(num|n|nb|count|cnt|number|total|sum|amount|qty)(_|$)", re.I)


def _level_text(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _values_seen(values: pd.Series) -> str:
    counts = values.dropna().map(_level_text).value_counts()
    shown = ", ".join(f"{v!r} ({n:,} rows)" for v, n in counts.head(SHOWN).items())
    more = f" and {len(counts) - SHOWN} more" if len(counts) > SHOWN else ""
    return shown + more


def _usable_name(name: str) -> bool:
    """The spec's own rule for a feature name."""
    try:
        Feature(name=name, type=FeatureType.binary, description="x")
    except ValidationError:
        return False
    return True


def _positive(values: pd.Series, given: str, column: str) -> str | int | float | bool:
    """The --positive text as the target column's own type; it must occur in the column."""
    present = values.dropna()
    seen = _values_seen(present)
    value: str | int | float | bool
    if is_bool_dtype(present):
        lowered = given.strip().lower()
        if lowered not in ("true", "false", "1", "0"):
            raise DraftError(
                f"--positive: column {column!r} holds true/false; expected true or false, "
                f"got {given!r}"
            )
        value = lowered in ("true", "1")
    elif is_numeric_dtype(present):
        try:
            number = float(given)
        except ValueError:
            raise DraftError(
                f"--positive: column {column!r} holds numbers; expected one of its values "
                f"({seen}), got {given!r}"
            ) from None
        value = int(number) if number.is_integer() else number
    else:
        value = given.strip()
    if not Target(column=column, positive=value).is_positive(values).any():
        near = [v for v in present.astype(str).unique() if v.strip().lower() == given.lower()]
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise DraftError(
            f"--positive: value {given!r} never occurs in column {column!r} "
            f"(values seen: {seen}){hint}"
        )
    return value


def _unique_per_row(values: pd.Series) -> bool:
    present = values.dropna()
    return len(present) == len(values) and len(present) > 1 and present.is_unique


def _id_like(name: str, values: pd.Series) -> bool:
    """Unique per row and text or whole numbers (an integer only with enough rows, or
    an id-like name: small tables have unique numbers by chance)."""
    if not _unique_per_row(values) or is_bool_dtype(values):
        return False
    if is_integer_dtype(values):
        return len(values) >= ID_MIN_ROWS or bool(_ID_NAME.search(name))
    return not is_numeric_dtype(values)


def _choose_id(table: pd.DataFrame, given: str | None, target: str, source: str) -> str:
    columns = ", ".join(table.columns)
    distinct = table.drop_duplicates()
    if given is not None:
        if given not in table:
            raise DraftError(f"--id: column {given!r} is not in {source} (columns: {columns})")
        if given == target:
            raise DraftError(f"--id: expected a column other than the target, got {given!r}")
        return given
    found = [c for c in table.columns if c != target and _id_like(c, distinct[c])]
    if not found:
        raise DraftError(
            f"no column of {source} is unique per row, so none can be the id; "
            f"give --id COLUMN (columns: {columns})"
        )
    named = [c for c in found if _ID_NAME.search(c)]
    return (named or found)[0]


def _bounds(lo: float, hi: float, integer: bool, name: str) -> tuple[float, float, str]:
    """Spec bounds around the observed range: a share stays in [0, 1], a percentage in
    [0, 100]; otherwise widened by the observed span, rounded up to two significant
    digits, and a side that never crosses zero keeps zero as its bound."""
    if lo >= 0 and hi <= 1 and not integer:
        return 0.0, 1.0, "0 to 1, a share"
    if lo >= 0 and hi <= 100 and _PERCENT_NAME.search(name):
        return 0.0, 100.0, "0 to 100, a percentage"
    span = (hi - lo) or max(abs(hi), 1.0)
    low = 0.0 if lo >= 0 else -_ceil_sig(span - lo)
    high = 0.0 if hi <= 0 else _ceil_sig(hi + span)
    how = "widened by the observed span"
    return low, high, how


def _numeric(col: Column, numbers: pd.Series) -> None:
    lo, hi = float(numbers.min()), float(numbers.max())
    col.integer = bool((numbers == np.floor(numbers)).all())
    low, high, how = _bounds(lo, hi, col.integer, col.name)
    col.bounds = (low, high)
    col.notes.append(
        f"{REVIEW} observed {_show(lo)} to {_show(hi)}; bounds {how}: set the real ones "
        "(a value outside is refused when scoring)"
    )
    if numbers.nunique() > 2:
        fence_lo, fence_hi = tukey_fence(numbers)
        outside = int(((numbers < fence_lo) | (numbers > fence_hi)).sum())
        if fence_lo < fence_hi and outside:
            col.notes.append(
                f"{REVIEW} {outside:,} values beyond Tukey's far-out fences "
                f"[{_show(fence_lo)}, {_show(fence_hi)}]: real, or entry errors to bound out?"
            )


def _categorical(col: Column, text: pd.Series) -> None:
    counts = text.value_counts()
    col.levels = [str(v) for v in counts.index]
    col.notes.append(
        f"{REVIEW} levels as seen, most frequent first: add valid ones missing from this file "
        "(a level not listed is refused when scoring, unless unseen: accept)"
    )
    folded = text.drop_duplicates().str.strip().str.lower()
    if folded.nunique() < len(col.levels):
        col.notes.append(
            f"{REVIEW} some levels differ only in case or spaces: clean the data or keep both"
        )


def _infer(col: Column, values: pd.Series) -> pd.Series | None:
    """Set the column's type (or why it is dropped); return the values as the model reads
    them (numbers, days or text) for the blank and leakage checks, None when dropped."""
    present = values.dropna()
    if present.empty:
        col.why_dropped = "constant: blank in every row"
        return None
    if present.nunique() == 1:
        col.why_dropped = f"constant: always {_level_text(present.iloc[0])!r}"
        return None
    zero_one = is_numeric_dtype(present) and set(present.astype(float).unique()) <= {0.0, 1.0}
    if is_bool_dtype(present) or (zero_one and not _COUNT_NAME.search(col.name)):
        col.type = FeatureType.binary
        col.notes.append(f"{REVIEW} 0/1 values: 1 means what?")
        return values.astype(float)
    if zero_one:
        col.notes.append(f"{REVIEW} only 0 and 1 seen, but the name says a count: kept a number")
    if is_numeric_dtype(present):
        col.type = FeatureType.numeric
        _numeric(col, present.astype(float))
        return values.astype(float)
    text = present.astype(str)
    numbers = pd.to_numeric(text, errors="coerce")
    if numbers.notna().mean() >= NUMBER_SHARE:
        bad = sorted(text[numbers.isna()].unique())
        col.why_dropped = (
            f"numbers mixed with text: {int(numbers.isna().sum()):,} values are not numbers "
            f"(e.g. {bad[:3]}); write them as blanks in the CSV to use it as a number"
        )
        return None
    distinct = pd.Series(text.unique(), dtype=object)
    if distinct.map(lambda v: bool(_DATE_TEXT.fullmatch(v))).mean() >= DATE_SHARE:
        stamps = pd.to_datetime(distinct, errors="coerce", format="mixed")
        if stamps.notna().mean() >= DATE_SHARE:
            col.why_dropped = (
                f"datetime: dates from {stamps.min():%Y-%m-%d} to {stamps.max():%Y-%m-%d}; a raw "
                "date drifts with time and later dates lie outside everything trained on: "
                "derive a duration from it in the CSV (e.g. days since)"
            )
            return None
    if len(distinct) <= MAX_LEVELS:
        col.type = FeatureType.categorical
        _categorical(col, text)
        return values
    col.why_dropped = (
        f"text: {len(distinct):,} distinct values, free text is not a model input "
        "(derive features from it in the CSV, or use it as a transaction description)"
    )
    return None


def _missing(col: Column, as_read: pd.Series, labeled: pd.Series, positive: pd.Series) -> None:
    blank = as_read.isna()
    count = int(blank.sum())
    if not count:
        col.missing_note = (
            f"no blanks here; {REVIEW} reject if a blank can only be a caller's mistake"
        )
        return
    share = f"blank in {count / len(blank):.1%} of rows ({count:,})"
    in_labeled = blank[labeled]
    p = missing_vs_target_test(in_labeled, positive)
    if_blank = positive[in_labeled].mean() if in_labeled.any() else float("nan")
    if_filled = positive[~in_labeled].mean() if (~in_labeled).any() else float("nan")
    rates = f"risk event {if_blank:.1%} when blank vs {if_filled:.1%} filled (p={p:.2g})"
    verdict = "informative" if p < MNAR_ALPHA else "not informative"
    test = f"by the quality report's missing-not-at-random test (p < {MNAR_ALPHA})"
    if p < MNAR_ALPHA:
        col.missing = MissingRule.native
        col.missing_note = f"{share}; {rates}: {verdict} {test}, so kept as a signal"
    else:
        col.missing_note = (
            f"{share}; {rates}: {verdict} {test}; {REVIEW} constant + fill_value if a blank "
            "means a known value"
        )


def _leak(col: Column, as_read: pd.Series, positive: pd.Series) -> None:
    """Single-column ROC-AUC (blanks as their own value) and, for a category, a level
    that is almost only risk events: a column that nearly determines the target."""
    y = positive.to_numpy(dtype=int)
    if y.min() == y.max():
        return
    if col.type is FeatureType.categorical:
        levels = as_read.astype(object).where(as_read.notna(), "(blank)")
        counts = levels.value_counts()
        pooled = levels.where(levels.map(counts) >= LEAK_MIN_ROWS, "(rare levels)")
        rates = pd.Series(y, index=levels.index).groupby(pooled).mean()
        pure = [
            f"level {lvl!r} is {rate:.0%} risk events over {counts[lvl]:,} labeled rows"
            for lvl, rate in rates.items()
            if lvl in counts and counts[lvl] >= LEAK_MIN_ROWS and rate >= LEAK_PURE
        ]
        score = pooled.map(rates).to_numpy(dtype=float)
    else:
        pure = []
        numbers = as_read.astype(float)
        if numbers.notna().sum() == 0:
            return
        score = numbers.fillna(numbers.min() - 1).to_numpy()
    auc = roc_auc_score(y, score) if np.unique(score).size > 1 else 0.5
    auc = max(auc, 1 - auc)
    if auc >= LEAK_AUC or pure:
        found = "; ".join([f"single-column ROC-AUC {auc:.3f}", *pure])
        col.leak = (
            f"{col.name} nearly determines the target ({found}): a leak if it is known only "
            "after the outcome"
        )


def _profile(
    name: str, values: pd.Series, labeled: pd.Series, positive: pd.Series, source: str
) -> Column:
    col = Column(name=name, description=f"{name} (from {source}).")
    if not _usable_name(name):
        col.why_dropped = (
            "name: not usable as a feature name (letters, digits and _, not starting with a "
            "digit); rename the column to use it"
        )
        return col
    as_read = _infer(col, values)
    if as_read is None:
        return col
    _missing(col, as_read, labeled, positive)
    _leak(col, as_read[labeled], positive)
    if _PROTECTED_NAME.match(name):
        col.notes.append(
            f"{REVIEW} looks like a protected attribute: list it under protected: (and "
            "remove it here) unless the model may read it (use_as_feature: true, why: ...)"
        )
    return col
