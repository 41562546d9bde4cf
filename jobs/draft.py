"""A draft spec from a user's own CSV: `python -m riskbento init data.csv --target c --positive v`.

Every choice is read off the data: each column's type, levels and observed range, its
blank share and missing rule (`native` where the quality report's missing-not-at-random
test says blanks are informative), id-like, constant and free-text columns moved to `drop`,
and columns that nearly give the target away flagged. With raw transactions, the roles of
their columns are guessed from headers and values, and the aggregates the training code
builds are listed as features. Costs and tiers are placeholders. Each line a person must
check carries `# REVIEW:`; the draft is validated by the spec loader before it is written.
"""

from __future__ import annotations

import json
import math
import os
import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from pandas.api.types import is_bool_dtype, is_integer_dtype, is_numeric_dtype
from pydantic import ValidationError
from sklearn.metrics import roc_auc_score

from core.catalogue import aggregate_catalogue
from core.errors import UserError
from core.names import BUILTIN_USE_CASES, SPEC_SUFFIXES
from core.rawfiles import read_raw
from core.spec import (
    SLUG,
    Feature,
    FeatureType,
    MissingRule,
    Target,
    TransactionColumns,
    Transactions,
    check_against_data,
    parse_spec,
)
from core.stats import tukey_fence
from features.transactions import amount_cap, build_customer_features
from jobs.quality import MNAR_ALPHA, missing_vs_target_test

MAX_LEVELS = 50  # a text column with more distinct values is free text, not a category
ID_MIN_ROWS = 100  # an integer column unique per row is an id from this many rows (or by name)
NUMBER_SHARE = 0.95  # a text column whose values are numbers at least this often is numeric
DATE_SHARE = 0.95  # ... dates at least this often: a datetime
LEAK_AUC = 0.95  # single-column ROC-AUC from which a column nearly determines the target
LEAK_PURE = 0.95  # ... or a level this pure in the risk event
LEAK_MIN_ROWS = 30  # levels with fewer labeled rows are pooled for the leakage check
CUSTOMER_OVERLAP = 0.5  # the transactions' customer id: this share of its ids is in the table
ROLE_MAX_VALUES = 20  # a debit/credit or status column has at most this many distinct values
MIN_EVENTS = 30  # fewer labeled risk events: warned that a model cannot be trained and tested
SHOWN = 8  # values listed in a comment or an error
LINE = 100  # comments are wrapped to this width

REVIEW = "REVIEW:"
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
_YAML_WORDS = {"true", "false", "null", "yes", "no", "on", "off", "y", "n", "~"}

# Transaction roles: header patterns (on the lowercased header, spaces and dashes as _).
_ROLE_HEADERS = {
    "transaction_id": r"^(transaction|trans|txn|tx)_?(id|no|number|ref|reference)$|^id$",
    "amount": r"amount|^amt$|^value$|^sum$",
    "type": r"^(type|direction|transaction_type|txn_type|tx_type|trans_type|dc|debit_credit|"
    r"credit_debit|cr_dr|dr_cr|side|sign)$",
    "description": r"description|^desc$|narrative|memo|details|^text$|payee|merchant_name",
    "timestamp": r"timestamp|datetime|date|^time$|posted|booked",
    "status": r"status|^state$",
}
DEBIT_WORDS = {"debit", "dr", "d", "db", "out", "outgoing", "outflow", "withdrawal", "charge"}
CREDIT_WORDS = {"credit", "cr", "c", "in", "incoming", "inflow", "deposit", "refund"}
DECLINED_WORDS = {
    "declined", "reversed", "failed", "rejected", "cancelled", "canceled", "returned",
    "refused", "void", "voided", "bounced",
}  # fmt: skip


class DraftError(UserError, ValueError):
    """Input the drafter cannot use: says what was expected and what arrived."""


@dataclass
class Column:
    """What the data says about one column, and what the draft does with it."""

    name: str
    type: FeatureType | None = None  # None: dropped
    why_dropped: str = ""
    integer: bool = False
    levels: list[str] | None = None
    bounds: tuple[float, float] | None = None
    missing: MissingRule = MissingRule.impute
    missing_note: str = ""
    leak: str = ""
    notes: list[str] = field(default_factory=list)
    description: str = ""
    from_table: bool = True  # a table column (its description is a placeholder)


@dataclass
class TransactionsDraft:
    roles: Transactions
    rows: int
    role_notes: dict[str, str]
    unused: list[str]
    type_values: list[str]
    unclassified: list[str]
    cap: float
    largest: float  # largest |amount|
    p999: float  # 99.9th percentile of |amount|
    columns: list[Column]
    omitted: dict[str, str]


@dataclass
class Draft:
    """A validated draft: the YAML text and what it found, ready to be written."""

    path: Path
    text: str
    name: str
    rows: int
    labeled: int
    positive_rate: float
    features: list[str]
    from_transactions: list[str]
    dropped: dict[str, str]
    native: list[str]
    warnings: list[str]

    @property
    def review_lines(self) -> int:
        return sum(REVIEW in line for line in self.text.splitlines())

    def summary(self) -> list[str]:
        """A few console lines: what was drafted and what to review."""
        table = len(self.features) - len(self.from_transactions)
        tx = f" + {len(self.from_transactions)} from transactions" if self.from_transactions else ""
        dropped = ", ".join(f"{k} ({v.split(':')[0]})" for k, v in self.dropped.items())
        lines = [
            f"wrote {self.path}: spec {self.name!r}, features: {table} from the table{tx}; "
            f"{self.labeled:,} labeled rows of {self.rows:,}, risk event in "
            f"{self.positive_rate:.1%}",
            f"dropped: {dropped or 'nothing'}",
            f"missing: native (blanks informative) for: {', '.join(self.native) or 'none'}",
            f"review the {self.review_lines} lines marked REVIEW (descriptions, bounds, levels, "
            "costs and tiers are guesses or placeholders)",
            f"then: make quality USE_CASE={self.path} && make train USE_CASE={self.path}",
        ]
        return lines


# ---------------------------------------------------------------- small helpers


def _q(text: str) -> str:
    """A YAML double-quoted string (JSON's escapes are YAML's)."""
    return json.dumps(str(text), ensure_ascii=False)


def _key(text: str) -> str:
    plain = re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", text) and text.lower() not in _YAML_WORDS
    return text if plain else _q(text)


def _num(x: float) -> str:
    """A number as YAML reads it back exactly (whole numbers without a decimal point)."""
    if float(x).is_integer() and abs(x) < 1e15:
        return str(int(x))
    return np.format_float_positional(float(x), trim="-")


def _show(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 1e5 else f"{x:,.6g}"


def _comment(indent: int, text: str) -> list[str]:
    """`# text` wrapped to the line length, at the given indent."""
    pad = " " * indent + "# "
    return textwrap.wrap(text, width=LINE - len(pad), initial_indent=pad, subsequent_indent=pad)


def _ceil_sig(x: float, digits: int = 2) -> float:
    """x rounded up to `digits` significant digits (x > 0)."""
    scale = 10 ** (math.floor(math.log10(x)) - digits + 1)
    return float(f"{math.ceil(x / scale - 1e-9) * scale:.12g}")


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


def _read_csv(path: Path, what: str) -> pd.DataFrame:
    if not path.is_file():
        raise DraftError(f"{what}: expected a CSV file, got {str(path)!r} (no such file)")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DraftError(f"{what}: expected a CSV file, could not read {path}: {err}") from None
    if frame.empty:
        raise DraftError(f"{what}: expected rows of data, {path} has a header only")
    return frame


def _out_path(data: Path, out: Path | None) -> Path:
    path = out if out is not None else data.parent / f"{data.stem}.yaml"
    if path.suffix not in SPEC_SUFFIXES:
        raise DraftError(f"--out: expected a .yaml or .yml file, got {str(path)!r}")
    if path.exists():
        raise DraftError(
            f"{path} already exists; not overwriting a spec (remove it, or pass --out)"
        )
    return path


# ---------------------------------------------------------------- target and id


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


# ---------------------------------------------------------------- one column


def _bounds(lo: float, hi: float, integer: bool, name: str) -> tuple[float, float, str]:
    """Spec bounds around the observed range: a share stays in [0, 1], a percentage in
    [0, 100]; otherwise widened by the observed span, rounded up to two significant
    digits, and a side that never crosses zero keeps zero as its bound."""
    if lo >= 0 and hi <= 1 and not integer:
        return 0.0, 1.0, "a share: bounds 0 to 1"
    if lo >= 0 and hi <= 100 and _PERCENT_NAME.search(name):
        return 0.0, 100.0, "a percentage: bounds 0 to 100"
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


# ---------------------------------------------------------------- transactions


def _norm(header: str) -> str:
    return re.sub(r"[\s\-]+", "_", header.strip().lower())


def _lowered_values(values: pd.Series) -> list[str]:
    return sorted(values.dropna().astype(str).str.strip().str.lower().unique())


def _guess_roles(
    raw: pd.DataFrame, table_ids: pd.Series, id_column: str, source: str
) -> tuple[dict[str, str], dict[str, str]]:
    """Which column plays which role, and why each was chosen."""
    header = list(raw.columns)
    shown = ", ".join(header)
    ids = set(table_ids.astype(str))
    overlap = {}
    for c in header:
        distinct = raw[c].dropna().astype(str).drop_duplicates()
        overlap[c] = float(distinct.isin(ids).mean()) if len(distinct) else 0.0
    best = max(header, key=lambda c: (overlap[c], c == id_column))
    if overlap[best] < CUSTOMER_OVERLAP:
        example = next(iter(sorted(ids)), "")
        raise DraftError(
            f"{source}: expected a column holding the table's {id_column} values "
            f"(like {example!r}); none does (columns: {shown})"
        )
    roles = {"customer_id": best}
    why = {"customer_id": f"{overlap[best]:.0%} of its values are in the table's {id_column}"}

    def free(pattern: str) -> list[str]:
        return [c for c in header if c not in roles.values() and re.search(pattern, _norm(c))]

    numeric = {c: float(pd.to_numeric(raw[c], errors="coerce").notna().mean()) for c in header}
    amounts = [c for c in free(_ROLE_HEADERS["amount"]) if numeric[c] >= NUMBER_SHARE]
    if not amounts:
        raise DraftError(
            f"{source}: expected an amount column (a header like 'amount' holding numbers); "
            f"none found (columns: {shown})"
        )
    roles["amount"], why["amount"] = amounts[0], "header, holds numbers"

    small = [c for c in header if c not in roles.values() and raw[c].nunique() <= ROLE_MAX_VALUES]
    words = {c: set(_lowered_values(raw[c])) for c in small}
    by_value = [c for c in small if words[c] & DEBIT_WORDS and words[c] & CREDIT_WORDS]
    by_name = [c for c in free(_ROLE_HEADERS["type"]) if c in small]
    if by_value or by_name:
        roles["type"] = (by_value or by_name)[0]
        why["type"] = "values name debits and credits" if by_value else "header"

    ids_like = free(_ROLE_HEADERS["transaction_id"])
    if ids_like:
        roles["transaction_id"], why["transaction_id"] = ids_like[0], "header"

    for c in free(_ROLE_HEADERS["timestamp"]):
        sample = raw[c].dropna().astype(str).head(2_000)
        parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
        if len(sample) and parsed.notna().mean() >= DATE_SHARE:
            roles["timestamp"], why["timestamp"] = c, "header, holds dates and times"
            break

    descriptions = [c for c in free(_ROLE_HEADERS["description"]) if numeric[c] < NUMBER_SHARE]
    if descriptions:
        roles["description"], why["description"] = descriptions[0], "header, holds text"

    statuses = [c for c in free(_ROLE_HEADERS["status"]) if raw[c].nunique() <= ROLE_MAX_VALUES]
    if statuses:
        roles["status"], why["status"] = statuses[0], "header"
    return roles, why


def _aggregate_column(
    name: str, description: str, values: pd.Series, labeled: pd.Series, positive: pd.Series
) -> Column:
    """A catalogue aggregate: its type follows from what it counts, its range from the data."""
    col = Column(name=name, description=description, from_table=False)
    col.missing = MissingRule.reject
    if name.startswith("has_"):
        col.type = FeatureType.binary
    else:
        col.type = FeatureType.numeric
        if "share" in name.split("_"):
            lo, hi = float(values.min()), float(values.max())
            col.bounds = (0.0, 1.0)
            col.notes.append(f"observed {_show(lo)} to {_show(hi)}; a share: bounds 0 to 1")
        else:
            _numeric(col, values.astype(float))
    _leak(col, values[labeled], positive)
    return col


def _transactions(
    path: Path,
    spec_dir: Path,
    table: pd.DataFrame,
    id_column: str,
    labeled: pd.Series,
    positive: pd.Series,
) -> TransactionsDraft:
    if not path.is_file() or path.suffix.lower() != ".csv":
        why = "no such file" if not path.is_file() else "not a .csv"
        raise DraftError(f"--transactions: expected a CSV file, got {str(path)!r} ({why})")
    raw = read_raw(path)
    if raw.empty:
        raise DraftError(f"--transactions: expected rows of data, {path} has a header only")
    table_ids = table[id_column].astype("string")
    roles, why = _guess_roles(raw, table_ids, id_column, path.name)
    kwargs: dict = {}
    type_values: list[str] = []
    unclassified: list[str] = []
    if "type" in roles:
        type_values = _lowered_values(raw[roles["type"]])
        debit = [v for v in type_values if v in DEBIT_WORDS]
        credit = [v for v in type_values if v in CREDIT_WORDS]
        unclassified = [v for v in type_values if v not in DEBIT_WORDS | CREDIT_WORDS]
        kwargs |= {"debit_values": debit or ["debit"], "credit_values": credit or ["credit"]}
    if "status" in roles:
        declined = [v for v in _lowered_values(raw[roles["status"]]) if v in DECLINED_WORDS]
        if declined:
            kwargs["declined_values"] = declined
    rel = Path(os.path.relpath(path.resolve(), spec_dir.resolve())).as_posix()
    tx = Transactions(path=rel, columns=TransactionColumns(**roles), **kwargs)
    amounts = pd.to_numeric(raw[roles["amount"]], errors="coerce")
    cap = amount_cap(amounts)
    aggregates, _ = build_customer_features(raw, tx, table_ids, cap)
    catalogue = aggregate_catalogue(tx.categories, has_status=tx.columns.status is not None)
    columns, omitted = [], {}
    for name, description in catalogue.items():
        if name in table.columns:
            omitted[name] = "the table has a column of that name, which wins"
            continue
        values = pd.Series(aggregates[name].to_numpy(), index=table.index)
        if values.nunique() <= 1:
            omitted[name] = f"always {_show(float(values.iloc[0]))} in this data"
            continue
        columns.append(_aggregate_column(name, description, values, labeled, positive))
    return TransactionsDraft(
        roles=tx,
        rows=len(raw),
        role_notes=why,
        unused=[c for c in raw.columns if c not in roles.values()],
        type_values=type_values,
        unclassified=unclassified,
        cap=cap,
        largest=float(amounts.abs().max()),
        p999=float(amounts.abs().quantile(0.999)),
        columns=columns,
        omitted=omitted,
    )


# ---------------------------------------------------------------- the YAML text


def _slug(stem: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", stem.lower()).strip("_")
    if not re.match(SLUG, slug):
        slug = f"use_case_{slug}".rstrip("_")
    return f"my_{slug}" if slug in BUILTIN_USE_CASES else slug


def _feature_lines(col: Column) -> list[str]:
    assert col.type is not None
    out = []
    if col.leak:
        out += _comment(2, f"WARNING: {col.leak}. {REVIEW} drop it unless it is known at scoring")
    out += [f"  - name: {_key(col.name)}", f"    type: {col.type.value}"]
    for note in col.notes:
        out += _comment(4, note)
    if col.integer:
        out.append("    integer: true")
    if col.bounds is not None:
        out += [f"    min: {_num(col.bounds[0])}", f"    max: {_num(col.bounds[1])}"]
    if col.levels is not None:
        flow = f"    levels: [{', '.join(_q(v) for v in col.levels)}]"
        out += (
            [flow]
            if len(flow) <= LINE
            else ["    levels:", *(f"      - {_q(v)}" for v in col.levels)]
        )
    if col.missing_note:
        out += _comment(4, col.missing_note)
    out.append(f"    missing: {col.missing.value}")
    review = f"  # {REVIEW} what it means, with its unit" if col.from_table else ""
    out.append(f"    description: {_q(col.description)}{review}")
    return out


def _transaction_lines(tx: TransactionsDraft, header: str) -> list[str]:
    roles = tx.roles
    out = [
        "  transactions:",
        f"    path: {_q(roles.path)}  # {tx.rows:,} rows",
        "    columns:",
    ]
    for role, column in roles.columns.present().items():
        out.append(f"      {role}: {_q(column)}  # {REVIEW} guessed: {tx.role_notes[role]}")
    if tx.unused:
        out += _comment(4, f"Not read by the aggregation: {', '.join(tx.unused)}.")
    if roles.columns.type is not None:
        seen = ", ".join(tx.type_values[:SHOWN])
        out += _comment(4, f"{roles.columns.type} values seen (compared lowercased): {seen}.")
        if tx.unclassified:
            out += _comment(
                4,
                f"{REVIEW} neither debit nor credit: {', '.join(tx.unclassified)} (the "
                "amount's own sign is kept for them)",
            )
        out += [
            f"    debit_values: [{', '.join(_q(v) for v in roles.debit_values)}]"
            f"  # {REVIEW} money out",
            f"    credit_values: [{', '.join(_q(v) for v in roles.credit_values)}]"
            f"  # {REVIEW} money in",
        ]
    else:
        out += _comment(
            4,
            f"{REVIEW} no debit/credit column found: the amount's sign says the direction "
            "(negative = money out)",
        )
    if roles.columns.status is not None:
        declined = ", ".join(_q(v) for v in roles.declined_values)
        out.append(f"    declined_values: [{declined}]  # {REVIEW} count, but move no money")
    out += _comment(
        4,
        f"{REVIEW} max_amount: no genuine transaction is larger; a larger one is an entry "
        "error, dropped and counted. Unset, training learns a fence from the data (here "
        f"about {_show(tx.cap)}); the largest |amount| is {_show(tx.largest)}, 99.9 % are at "
        f"most {_show(tx.p999)}"
        + (": the largest are likely entry errors." if tx.largest > 10 * tx.p999 else "."),
    )
    out += _comment(
        4,
        f"{REVIEW} merchant categories: the default keyword map (core/catalogue.py) applies; "
        f"write categories: {{name: [keywords]}} to match {header}'s description text.",
    )
    return out


def _render(
    *,
    name: str,
    source: str,
    rel_table: str,
    id_column: str,
    id_note: str,
    target: str,
    positive: str | int | float | bool,
    rows: int,
    labeled: int,
    rate: float,
    columns: list[Column],
    tx: TransactionsDraft | None,
    tx_name: str,
) -> str:
    features = [c for c in columns if c.type is not None]
    dropped = [c for c in columns if c.type is None]
    leaks = [c for c in [*features, *(tx.columns if tx else [])] if c.leak]
    if isinstance(positive, bool):
        shown_positive = "true" if positive else "false"
    elif isinstance(positive, str):
        shown_positive = _q(positive)
    else:
        shown_positive = _num(positive)
    lines = _comment(
        0,
        f"Draft spec for {source}, written by `python -m riskbento init`. The data chose "
        "every value below; what it cannot know (what the columns mean, what a mistake "
        f"costs) is a guess or a placeholder, on the lines marked `{REVIEW}`. Check them, then "
        "run `make quality USE_CASE=<this file>` and `make train USE_CASE=<this file>`.",
    )
    for c in leaks:
        lines += _comment(0, f"WARNING: {c.leak}.")
    lines += [
        f"name: {name}  # {REVIEW} the model's name in the store and its folder under reports/",
        f"purpose: {_q(f'Probability that {target} == {positive}.')}  # {REVIEW} in one sentence",
        "",
        "data:",
        f"  table: {_q(rel_table)}  # {rows:,} rows; relative to this file",
    ]
    if tx is not None:
        lines += _transaction_lines(tx, tx_name)
    lines += [
        "",
        *_comment(0, id_note),
        f"id_column: {_key(id_column)}",
        "",
        "target:",
        f"  column: {_key(target)}",
        f"  # {labeled:,} labeled rows, {rate:.1%} of them the risk event; "
        f"{rows - labeled:,} blank (unlabeled: scored, not trained on).",
        f"  positive: {shown_positive}",
        f"  description: {_q(f'{target} == {positive}')}  # {REVIEW} the risk event in words",
        "",
        "features:",
    ]
    if features:
        lines.append(f"  # From {source}.")
    for col in features:
        lines += _feature_lines(col)
    if tx is not None:
        lines += [""]
        lines += _comment(
            2,
            f"Per-customer aggregates of {tx_name} (features/transactions.py), computed by "
            "training and by /score_transactions; remove the ones the model should not use. "
            "missing: reject, because the aggregation writes 0 for a customer without "
            "transactions: a blank can only be a caller's mistake.",
        )
        by_reason: dict[str, list[str]] = {}
        for name_, why in tx.omitted.items():
            by_reason.setdefault(why, []).append(name_)
        for why, names in by_reason.items():
            lines += _comment(2, f"Not listed, {why}: {', '.join(names)}.")
        for col in tx.columns:
            lines += _feature_lines(col)
    lines += [""]
    if dropped:
        lines += ["drop:"]
        for c in dropped:
            lines += _comment(2, f"{REVIEW} {c.why_dropped}")
            lines.append(f"  - {_key(c.name)}")
    else:
        lines += ["drop: []  # no id-like, constant or free-text column besides the id"]
    missed = _ceil_sig((1 - rate) / rate)
    medium = min(0.8, max(0.01, round(rate, 2)))
    high = min(0.9, max(0.5, round(3 * rate, 2), medium + 0.1))
    metric = "pr_auc" if rate < 0.10 else "roc_auc"
    lines += [
        "",
        f"# {REVIEW} placeholders, not your numbers: a missed event costs (1 - rate) / rate times",
        f"# a false alarm, which puts the break-even probability at the base rate ({rate:.1%}):",
        "# anyone riskier than average is flagged. Write what each mistake really costs.",
        "costs:",
        f"  missed_event: {_num(missed)}  # {REVIEW} cost of a risk event the model missed",
        f"  false_alarm: 1  # {REVIEW} cost of flagging a customer who was fine",
        f"  unit: EUR  # {REVIEW} currency of both costs",
        "",
        f"# {REVIEW} placeholders: medium from the base rate, high where the event is more likely",
        "# than not (or three times the base rate, if higher).",
        "tiers:",
        f"  medium: {_num(medium)}  # {REVIEW} from here up: medium",
        f"  high: {_num(round(high, 2))}  # {REVIEW} from here up: high",
        "",
        f"# {REVIEW} pr_auc when the risk event is rare (under 10 %) and the top of the ranking",
        "# matters most; roc_auc otherwise.",
        f"selection_metric: {metric}",
    ]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- entry points


def draft_spec(
    data: Path,
    target: str,
    positive: str,
    id_column: str | None = None,
    transactions: Path | None = None,
    out: Path | None = None,
) -> Draft:
    """Read the data, draft the spec and validate it against the data; nothing is written."""
    data = Path(data)
    path = _out_path(data, Path(out) if out is not None else None)
    table = _read_csv(data, "data")
    if target not in table:
        raise DraftError(
            f"--target: column {target!r} is not in {data.name} "
            f"(columns: {', '.join(table.columns)})"
        )
    values = table[target]
    if values.notna().sum() == 0:
        raise DraftError(f"--target: expected labels in column {target!r}, every row is blank")
    value = _positive(values, positive, target)
    labeled = values.notna()
    is_positive = Target(column=target, positive=value).is_positive(values)
    positive_rows = is_positive[labeled]
    if positive_rows.all():
        raise DraftError(
            f"--positive: every labeled row of {target!r} is {positive!r}; expected a value "
            f"that marks the risk event against others (values seen: {_values_seen(values)})"
        )
    chosen_id = _choose_id(table, id_column, target, data.name)
    distinct = table.drop_duplicates()
    repeats = len(table) - len(distinct)
    warnings: list[str] = []
    if _unique_per_row(distinct[chosen_id]):
        id_note = f"The id: unique per row ({distinct[chosen_id].nunique():,} values)"
    else:
        id_note = (
            f"{REVIEW} not unique per row: training drops every row of an id whose rows disagree"
        )
        warnings.append(f"id column {chosen_id!r} is not unique per row")
    if repeats:
        id_note += f"; {repeats:,} rows repeat another verbatim (training keeps one)"
    if positive_rows.sum() < MIN_EVENTS:
        warnings.append(
            f"only {int(positive_rows.sum())} labeled rows are the risk event: too few to train "
            f"and test a model on (expected at least {MIN_EVENTS})"
        )
    if positive_rows.mean() > 0.5:
        warnings.append(
            f"the risk event {target} == {value!r} is the majority of labeled rows "
            f"({positive_rows.mean():.1%}): is --positive the risk event?"
        )

    columns = []
    for name in table.columns:
        if name in (target, chosen_id):
            continue
        if _id_like(name, distinct[name]):
            columns.append(Column(name=name, why_dropped="id-like: unique per row"))
            continue
        columns.append(_profile(name, table[name], labeled, positive_rows, data.name))

    tx = None
    if transactions is not None:
        tx = _transactions(
            Path(transactions), path.parent, table, chosen_id, labeled, positive_rows
        )
    features = [c for c in columns if c.type is not None] + (tx.columns if tx else [])
    if not features:
        raise DraftError(
            f"{data.name}: expected at least one usable feature column besides the id and "
            f"the target; all were dropped ({', '.join(c.name for c in columns) or 'none left'})"
        )
    warnings += [c.leak for c in features if c.leak]

    rel_table = Path(os.path.relpath(data.resolve(), path.parent.resolve())).as_posix()
    rate = float(positive_rows.mean())
    text = _render(
        name=_slug(path.stem),
        source=data.name,
        rel_table=rel_table,
        id_column=chosen_id,
        id_note=id_note,
        target=target,
        positive=value,
        rows=len(table),
        labeled=int(labeled.sum()),
        rate=rate,
        columns=columns,
        tx=tx,
        tx_name=Path(transactions).name if transactions is not None else "",
    )
    spec = parse_spec(yaml.safe_load(text), str(path), path.parent.resolve())
    check_against_data(spec, str(path))
    return Draft(
        path=path,
        text=text,
        name=spec.name,
        rows=len(table),
        labeled=int(labeled.sum()),
        positive_rate=rate,
        features=spec.feature_names,
        from_transactions=[c.name for c in tx.columns] if tx else [],
        dropped={c.name: c.why_dropped for c in columns if c.type is None},
        native=[f.name for f in spec.features if f.missing is MissingRule.native],
        warnings=warnings,
    )


def write_draft(draft: Draft) -> Path:
    """Write the draft; an existing file is never overwritten."""
    draft.path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(draft.path, "x", encoding="utf-8") as handle:
            handle.write(draft.text)
    except FileExistsError:
        raise DraftError(
            f"{draft.path} already exists; not overwriting a spec (remove it, or pass --out)"
        ) from None
    return draft.path
