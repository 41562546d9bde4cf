"""What runs on a worker: the one-machine functions, unchanged, on a bucket of customers.

An engine splits the input into buckets by a hash of the customer id, so every
row of a customer lands in one bucket and a bucket holds many customers (one
Python call per bucket, never per customer). Two facts make the answer exactly
the one-machine answer:

- Row order. No engine keeps it through a shuffle, and the cleaning keeps the
  first of repeated rows and sums money in file order; each bucket is sorted on
  the rows' POSITION in the input before the function sees it.
- Ids reused across customers. The first row with a transaction id wins, whoever
  it belongs to; that needs every row of an id in one place, so a global pass
  (`first_of_each_id`, on buckets of transaction ids) runs before the customer
  buckets, by the same `drop_repeats` the one-machine cleaning uses.

Each function returns its rows plus one counts row (KIND == COUNTS, zeros or
blanks in the other columns) holding the bucket's cleaning counts in COUNT_*
columns, so the counts of all buckets are summed by the engine, whatever it is.
"""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pandas as pd

from core.rawfiles import POSITION
from core.spec import Spec
from features.customers import customer_features
from features.transactions import CleaningCounts, drop_repeats
from model.scorer import Scorer

__all__ = [
    "BUCKET",
    "COUNTS",
    "COUNT_COLUMNS",
    "KIND",
    "ROWS",
    "answers_meta",
    "bucket_features",
    "bucket_of",
    "counts_of",
    "features_meta",
    "first_of_each_id",
    "id_pass_meta",
    "score_features",
    "table_order",
]

BUCKET = "_bucket"
KIND = "_kind"
ROWS, COUNTS = 0, 1  # KIND of a data row / of the one counts row per bucket
ORDER = "_order"  # a customer's row number in the customer table
COUNT_COLUMNS = tuple(f"_count_{f.name}" for f in fields(CleaningCounts))
HELPERS = (POSITION, BUCKET, KIND, ORDER, *COUNT_COLUMNS)


def bucket_of(ids: pd.Series, buckets: int) -> np.ndarray:
    """Bucket number of each id: a hash of its text (pandas' fixed-key SipHash, the same in
    every process and on every machine), modulo `buckets`. A missing id has one bucket."""
    hashed = pd.util.hash_pandas_object(ids.astype("string"), index=False).to_numpy()
    return (hashed % np.uint64(buckets)).astype(np.int64)


def table_order(table: pd.DataFrame) -> pd.DataFrame:
    """The customer table with each row's number, so buckets can be put back in table order."""
    return table.assign(**{ORDER: np.arange(len(table), dtype=np.int64)})


def _zero(dtype: object) -> object:
    if pd.api.types.is_bool_dtype(dtype):
        return False
    if pd.api.types.is_numeric_dtype(dtype):
        return 0
    return ""


def _with_counts(rows: pd.DataFrame, counts: CleaningCounts) -> pd.DataFrame:
    """`rows` (KIND ROWS) plus one counts row; every column keeps its dtype."""
    rows = rows.assign(**{KIND: np.int8(ROWS)}, **{c: np.int64(0) for c in COUNT_COLUMNS})
    extra = {c: [_zero(rows[c].dtype)] for c in rows.columns}
    extra[KIND] = [np.int8(COUNTS)]
    for column, value in zip(COUNT_COLUMNS, counts.as_dict().values(), strict=True):
        extra[column] = [value]
    extra_row = pd.DataFrame(extra).astype(rows.dtypes.to_dict())
    return pd.concat([rows, extra_row], ignore_index=True)


def counts_of(frame: pd.DataFrame) -> CleaningCounts:
    """The summed counts rows of a (collected) output: the whole input's cleaning counts."""
    counts = frame.loc[frame[KIND] == COUNTS, list(COUNT_COLUMNS)].sum()
    return CleaningCounts(*(int(counts[c]) for c in COUNT_COLUMNS))


def _in_file_order(rows: pd.DataFrame) -> pd.DataFrame:
    rows = rows[rows[KIND] == ROWS] if KIND in rows else rows
    return rows.sort_values(POSITION, kind="stable").reset_index(drop=True)


def first_of_each_id(rows: pd.DataFrame, id_column: str) -> pd.DataFrame:
    """The global id pass on a bucket of transaction ids (all rows of an id are here):
    exact repeats and reused ids dropped by the one-machine rule; counts row appended.

    The dropped rows count as consumed (rows_in) so that summing these counts with the
    customer buckets' gives the input's row count."""
    rows = _in_file_order(rows)
    data = rows.drop(columns=[c for c in HELPERS if c in rows])
    keep, exact, reused = drop_repeats(data, id_column)
    counts = CleaningCounts(
        rows_in=exact + reused, exact_duplicates_dropped=exact, repeated_ids_dropped=reused
    )
    return _with_counts(rows.iloc[keep].drop(columns=KIND, errors="ignore"), counts)


def bucket_features(
    transactions: pd.DataFrame,
    customers: pd.DataFrame,
    spec: Spec,
    cap: float | None,
    id_columns: tuple[str, ...],
) -> pd.DataFrame:
    """The model's input rows for one bucket of customers: `customer_features` (the training
    code) on the bucket's transactions in file order; customer table order kept; counts row."""
    raw = _in_file_order(transactions)
    raw = raw.drop(columns=[c for c in HELPERS if c in raw])
    for c in id_columns:  # an engine may hand text back as another string dtype
        raw[c] = raw[c].astype("string")
    table = customers.sort_values(ORDER, kind="stable").reset_index(drop=True)
    order = table[ORDER].to_numpy()
    table = table.drop(columns=[c for c in HELPERS if c in table])
    table[spec.id_column] = table[spec.id_column].astype("string")
    frame, counts = customer_features(spec, table, raw, cap)
    return _with_counts(frame.assign(**{ORDER: order}), counts or CleaningCounts())


def score_features(frame: pd.DataFrame, scorer: Scorer, extra: dict[str, str]) -> pd.DataFrame:
    """One answer per customer row of a bucket (the Scorer's answer table), in table order,
    with `extra` constant columns (data hashes); the counts row is not scored."""
    rows = frame[frame[KIND] == ROWS] if KIND in frame else frame
    rows = rows.sort_values(ORDER, kind="stable").reset_index(drop=True)
    answers = scorer.answer_table(rows.drop(columns=[c for c in HELPERS if c in rows]))
    return answers.assign(**extra, **{ORDER: rows[ORDER].to_numpy()})


def _bucketed_meta(raw_meta: pd.DataFrame) -> pd.DataFrame:
    return raw_meta.assign(**{BUCKET: pd.Series(dtype="int64")})


def id_pass_meta(raw_meta: pd.DataFrame, id_column: str) -> pd.DataFrame:
    """What `first_of_each_id` returns on an empty bucket (its columns and types)."""
    return first_of_each_id(_bucketed_meta(raw_meta), id_column)


def features_meta(
    raw_meta: pd.DataFrame,
    table_meta: pd.DataFrame,
    spec: Spec,
    cap: float | None,
    id_columns: tuple[str, ...],
) -> pd.DataFrame:
    """What `bucket_features` returns on an empty bucket (its columns and types)."""
    return bucket_features(_bucketed_meta(raw_meta), table_meta, spec, cap, id_columns)


def answers_meta(spec: Spec, extra: dict[str, str]) -> pd.DataFrame:
    """The empty answer table `score_features` returns (its columns and types)."""
    columns = {spec.id_column: "str", "probability": "float64", "prediction": "int64"}
    columns |= {
        c: "str" for c in ("risk_tier", "reasons", "adverse_reasons", "model", "warnings", *extra)
    }
    columns[ORDER] = "int64"
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in columns.items()})
