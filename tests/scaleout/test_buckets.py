"""The worker functions give the one-machine answer on buckets of shuffled rows, and each
of the two known traps (row order, ids reused across customers) really is one.

An in-process stand-in for an engine: rows are shuffled (no engine keeps order), split
by bucket, and handed to the same functions Dask and Spark call."""

import numpy as np
import pandas as pd
import pytest

from core.rawfiles import POSITION
from datagen.messy_transactions import ROLES, generate
from features.transactions import CleaningCounts, build_customer_features
from scaleout.buckets import (
    BUCKET,
    COUNT_COLUMNS,
    KIND,
    ORDER,
    ROWS,
    bucket_features,
    bucket_of,
    counts_of,
    first_of_each_id,
    table_order,
)

IDS = ("customer_id", "transaction_id")
CAP = 5_000.0
BUCKETS = 7


class _Spec:  # the two things customer_features reads from a spec
    id_column = "customer_id"

    class data:
        transactions = ROLES


def _engine(raw, ids, *, id_pass=True, positions=None, seed=0):
    """Features per customer via buckets: shuffled rows, optional global id pass."""
    raw = raw.assign(**{POSITION: np.arange(len(raw)) if positions is None else positions})
    raw = raw.sample(frac=1.0, random_state=seed)  # what a shuffle does to row order
    counts = CleaningCounts()
    if id_pass:
        has = raw["transaction_id"].notna()
        with_id = raw[has]
        passed = pd.concat(
            first_of_each_id(rows, "transaction_id")
            for _, rows in with_id.groupby(bucket_of(with_id["transaction_id"], BUCKETS))
        )
        counts += counts_of(passed)
        kept = passed[passed[KIND] == ROWS].drop(columns=[KIND, *COUNT_COLUMNS])
        raw = pd.concat([kept, raw[~has]])
    table = table_order(ids.to_frame())
    tx_bucket = bucket_of(raw["customer_id"], BUCKETS)
    table_bucket = bucket_of(table["customer_id"], BUCKETS)
    out = pd.concat(
        bucket_features(raw[tx_bucket == b], table[table_bucket == b], _Spec, CAP, IDS)
        for b in range(BUCKETS)
    )
    counts += counts_of(out)
    rows = out[out[KIND] == ROWS].sort_values(ORDER).drop(columns=[ORDER, KIND, *COUNT_COLUMNS])
    return rows.set_index("customer_id"), counts


@pytest.fixture(scope="module")
def messy():
    raw, ids = generate(40_000, seed=9)
    expected, counts = build_customer_features(raw, ROLES, ids, CAP)
    return raw, ids, expected, counts


def test_buckets_give_exactly_the_one_machine_features_and_counts(messy):
    raw, ids, expected, counts = messy
    got, got_counts = _engine(raw, ids)
    pd.testing.assert_frame_equal(got, expected, check_exact=True, check_index_type=False)
    assert got_counts == counts
    assert counts.repeated_ids_dropped > 0 and counts.exact_duplicates_dropped > 0


def test_without_the_global_id_pass_customers_differ(messy):
    """Ids reused across customers: bucket-local dedup keeps a row the one-machine run drops."""
    raw, ids, expected, counts = messy
    got, got_counts = _engine(raw, ids, id_pass=False)
    differing = (got != expected).any(axis=1).sum()
    assert differing > 0
    assert got_counts.repeated_ids_dropped < counts.repeated_ids_dropped


def test_without_file_order_customers_differ(messy):
    """Dedup keeps the first row and sums run in order: positions that lie change answers."""
    raw, ids, expected, _ = messy
    lies = np.random.default_rng(4).permutation(len(raw))
    got, _ = _engine(raw, ids, positions=lies)
    assert (got != expected).any(axis=1).sum() > 0


def test_bucket_of_is_a_stable_hash_of_the_id():
    ids = pd.Series(["C1", "C2", None, "C1"], dtype="string")
    got = bucket_of(ids, 16)
    assert got[0] == got[3] and ((got >= 0) & (got < 16)).all()
    # The same in every process and machine (pandas' SipHash with its fixed key): pinned,
    # so a pandas that hashed otherwise shows here before it splits a customer in two.
    pinned = pd.Series(["CUST0000001", "CUST0000002", None], dtype="string")
    assert bucket_of(pinned, 1000).tolist() == [872, 238, 615]


def test_every_bucket_reports_its_counts_even_without_customers(messy):
    """A bucket holding only unknown customers' rows still counts them."""
    raw, ids, _, _ = messy
    ghosts = raw[~raw["customer_id"].isin(set(ids))].assign(**{POSITION: 0, BUCKET: 0})
    out = bucket_features(ghosts, table_order(ids.iloc[:0].to_frame()), _Spec, CAP, IDS)
    assert (out[KIND] == ROWS).sum() == 0
    assert counts_of(out).rows_in == len(ghosts) > 0
