"""The feature-building benchmark keeps running (smoke mode), and on its synthetic data the
vectorised feature building agrees with a plain row-by-row reference. No timing asserts."""

import json
import math
import re
from collections import defaultdict
from datetime import datetime

import numpy as np
import pandas as pd

from features.transactions import amount_cap, build_customer_features
from loadtest import bench_features as bench
from loadtest.bench_features import ROLES, SMOKE_ROWS, generate


def test_smoke_mode_writes_the_report(tmp_path):
    assert bench.main(["--smoke", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "features.json").read_text())
    (result,) = report["results"]
    assert result["rows"] == SMOKE_ROWS
    assert result["total_s"] > 0 and result["rows_per_s"] > 0
    assert set(result["stages_s"]) == {"clean", "categorise", "aggregate"}
    assert result["counts"]["rows_in"] == SMOKE_ROWS
    assert report["machine"]["cores"] >= 1 and report["versions"]["pandas"] == pd.__version__
    table = (tmp_path / "features.md").read_text()
    assert f"| {SMOKE_ROWS:,} |" in table and report["machine"]["cpu_model"] in table


def test_generator_is_deterministic_and_messy():
    raw, ids = generate(5_000, seed=3)
    again, _ = generate(5_000, seed=3)
    pd.testing.assert_frame_equal(raw, again)
    assert len(raw) == 5_000 and len(ids) == 5_000 // bench.ROWS_PER_CUSTOMER
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
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d"):
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
