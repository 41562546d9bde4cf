"""The messy transaction generator holds every kind of mess it promises, and on it the
vectorised feature building agrees with a plain row-by-row reference."""

import math
import re
from collections import defaultdict
from datetime import datetime

import numpy as np
import pandas as pd

from datagen import messy_transactions as messy
from datagen.messy_transactions import ROLES, generate, write_parts
from features.transactions import amount_cap, build_customer_features


def test_generator_is_deterministic_and_messy():
    raw, ids = generate(5_000, seed=3)
    again, _ = generate(5_000, seed=3)
    pd.testing.assert_frame_equal(raw, again)
    assert len(raw) == 5_000 and len(ids) == 5_000 // messy.ROWS_PER_CUSTOMER
    assert raw.duplicated().sum() > 0  # exact repeats
    assert raw["transaction_id"].dropna().duplicated().sum() > raw.duplicated().sum()  # reused
    assert raw[["amount", "description", "timestamp", "type"]].isna().any().all()
    assert {"debit", "Debit", "DEBIT", "credit"} <= set(raw["type"].dropna())
    assert raw["description"].nunique() > 500


# ---------------------------------------------------------------- a plain reference


def _clean(text) -> str:
    if not isinstance(text, str):
        return ""
    return " ".join(re.sub(r"[^a-z\s]+", " ", text.lower()).split())


def _one_edit(a: str, b: str) -> bool:
    """Levenshtein distance exactly 1."""
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1] == 1


def _mentions(text: str, keyword: str) -> bool:
    words = text.split()
    if f" {keyword} " in f" {text} ":
        return True
    if len(keyword) < 5 or " " in keyword:
        return False
    return any(w.startswith(keyword) or _one_edit(w, keyword) for w in words)


def _timestamp(text):
    """The wall-clock time the text states; a UTC offset after the time is ignored."""
    if isinstance(text, str):
        text = re.sub(r"(Z|[+-]\d{2}:?\d{2})$", "", text.replace("T", " "))
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d", "%d %b %Y %H:%M"):
        try:
            return datetime.strptime(text, fmt)
        except (TypeError, ValueError):
            continue
    return None


def _reference(raw: pd.DataFrame, cap: float) -> tuple[dict, dict]:
    """The cleaning rules and aggregates, one row at a time."""
    counts = defaultdict(int)
    seen_rows, seen_ids, kept = set(), set(), []
    for row in raw.astype(object).itertuples(index=False):
        values = tuple(None if pd.isna(v) else v for v in row)
        if values in seen_rows:
            counts["exact"] += 1
            continue
        seen_rows.add(values)
        if not pd.isna(row.transaction_id):
            if row.transaction_id in seen_ids:
                counts["ids"] += 1
                continue
            seen_ids.add(row.transaction_id)
        if pd.isna(row.amount):
            continue
        kind = row.type.strip().lower() if isinstance(row.type, str) else None
        amount = {"debit": -abs(row.amount), "credit": abs(row.amount)}.get(kind, row.amount)
        if abs(amount) > cap:
            continue
        status = row.status.strip().lower() if isinstance(row.status, str) else None
        kept.append((row.customer_id, amount, _clean(row.description), row.timestamp, status))

    acc = defaultdict(lambda: defaultdict(float))
    days = defaultdict(set)
    for customer, amount, text, stamp, status in kept:
        a = acc[customer]
        money = 0.0 if status in ROLES.declined_values else amount
        a["n"] += 1
        a["sum"] += money
        a["debit"] += min(money, 0.0)
        a["credit"] += max(money, 0.0)
        a["min_debit"] = min(a.get("min_debit", 0.0), money)
        a["declined"] += status in ROLES.declined_values
        when = _timestamp(stamp)
        if when is not None:
            a["timed"] += 1
            a["late"] += when.hour < 5
            days[customer].add(when.date())
        for name, keywords in ROLES.categories.items():
            a[f"n_{name}"] += any(_mentions(text, k) for k in keywords)

    features = {}
    for customer, a in acc.items():
        f = {
            "num_transactions": a["n"],
            "total_debit": a["debit"],
            "total_credit": a["credit"],
            "avg_amount": a["sum"] / a["n"],
            "net_flow": a["credit"] + a["debit"],
            "active_days": len(days[customer]),
            "max_debit": -a["min_debit"],
            "debit_to_credit": -a["debit"] / max(a["credit"], 1.0),
            "late_night_share": a["late"] / a["timed"] if a["timed"] else 0.0,
            "declined_share": a["declined"] / a["n"],
        }
        for name in ROLES.categories:
            f[f"n_{name}"] = a[f"n_{name}"]
            f[f"has_{name}"] = float(a[f"n_{name}"] > 0)
            f[f"share_{name}"] = a[f"n_{name}"] / a["n"]
        features[customer] = f
    return features, counts


def test_features_match_a_row_by_row_reference():
    raw, ids = generate(4_000, seed=11)
    cap = amount_cap(raw["amount"])
    features, counts = build_customer_features(raw, ROLES, ids, cap)
    expected, expected_counts = _reference(raw, cap)

    assert counts.exact_duplicates_dropped == expected_counts["exact"] > 0
    assert counts.repeated_ids_dropped == expected_counts["ids"] > 0
    assert counts.rows_out == sum(f["num_transactions"] for f in expected.values())
    assert list(features.index) == list(ids)
    for customer, row in features.iterrows():
        want = expected.get(customer)
        if want is None:  # no transactions: zeros
            assert (row == 0).all(), customer
            continue
        for name, value in want.items():
            assert math.isclose(row[name], value, rel_tol=1e-9, abs_tol=1e-6), (customer, name)
    assert np.isfinite(features.to_numpy()).all()


def test_generator_holds_the_mess_scale_out_must_survive(tmp_path):
    raw, ids = generate(30_000, seed=5)
    known = set(ids)
    assert (~raw["customer_id"].isin(known)).sum() > 0  # transactions of unknown customers
    assert len(known - set(raw["customer_id"])) > 0  # customers without transactions
    firsts = raw.drop_duplicates().dropna(subset=["transaction_id"])
    owners = firsts.groupby("transaction_id")["customer_id"].nunique()
    assert (owners > 1).sum() > 0  # ids reused across customers
    stamps = raw["timestamp"].dropna()
    assert stamps.str.contains(r"T\d\d:\d\d:\d\d(?:Z|[+-])").sum() > 0  # UTC offsets
    assert stamps.str.contains(r"^\d\d [A-Z][a-z]{2} \d{4}").sum() > 0  # day-first, month name
    # Chunks compose: the parts of a set are its rows, ids continue, customers are shared.
    files, part_ids = write_parts(tmp_path, 9_000, parts=3, fmt="parquet", seed=5)
    parts = [pd.read_parquet(f) for f in files]
    assert [len(p) for p in parts] == [3_000, 3_000, 3_000]
    assert parts[1]["transaction_id"].dropna().min() > parts[0]["transaction_id"].dropna().min()
    assert len(part_ids) == 9_000 // messy.ROWS_PER_CUSTOMER
