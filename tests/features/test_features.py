"""Feature building: text to categories, cleaning rules, aggregation, tabular transformer."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.utils.estimator_checks import parametrize_with_checks

from core.spec import FeatureType, Transactions, parse_spec
from features.tabular import DatetimeToDays, build_transformer, prepare_frame
from features.transactions import (
    DEFAULT_CATEGORIES,
    aggregate_catalogue,
    build_customer_features,
    categorise,
    clean_text,
    clean_transactions,
)
from model.rebalance import RebalancedClassifier

ROLES = Transactions.model_validate(
    {
        "path": "tx.csv",
        "columns": {
            "customer_id": "customer_id",
            "transaction_id": "transaction_id",
            "amount": "amount",
            "type": "type",
            "description": "description",
            "timestamp": "timestamp",
        },
    }
)


def tx(rows: list[tuple]) -> pd.DataFrame:
    columns = ["customer_id", "transaction_id", "amount", "type", "description", "timestamp"]
    return pd.DataFrame(rows, columns=columns)


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ("TESCO STORE 123", "tesco store"),
        ("Netflix.com*", "netflix com"),
        ("SALARY PAYMENT - ACME LTD", "salary payment acme ltd"),
        ("  ATM   WITHDRAWAL 12 ", "atm withdrawal"),
        (None, ""),
    ],
)
def test_clean_text(raw, cleaned):
    assert clean_text(pd.Series([raw])).iloc[0] == cleaned


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("TESCO STORE 123", {"groceries"}),
        ("TESC0 EXPRESS", {"groceries"}),  # digit typo: 'tesc' is one edit from 'tesco'
        ("Netflix.com*", {"subscriptions"}),
        ("NETFLX", {"subscriptions"}),
        ("SALARY PAYMENT - ACME LTD", {"salary"}),
        ("RENT - FLAT 4B", {"rent"}),
        ("TRANSFER TO J SMITH", {"transfer"}),
        ("BET365", {"gambling"}),
        ("COINBASE UK", {"crypto"}),
        ("Better Homes Furniture", set()),  # 'bet' only as a whole word
        ("Parental leave top-up", set()),  # 'rent' inside a word is not rent
        ("", set()),
    ],
)
def test_categorise_messy_descriptions(raw, expected):
    found = categorise(clean_text(pd.Series([raw])), DEFAULT_CATEGORIES).iloc[0]
    assert set(found[found].index) == expected


def test_each_cleaning_rule_is_applied_and_counted():
    raw = tx(
        [
            ("C1", "T1", -10.0, "debit", "TESCO 1", "2024-01-01 10:00:00"),
            ("C1", "T1", -10.0, "debit", "TESCO 1", "2024-01-01 10:00:00"),  # exact repeat
            ("C1", "T2", 2500.0, "credit", "SALARY", "2024-01-02 09:00:00"),
            ("C1", "T2", 99.0, "credit", "OTHER", "2024-01-03 09:00:00"),  # reused id
            ("C1", "T3", None, "debit", "NETFLIX", "2024-01-04 09:00:00"),  # null amount
            ("C1", "T4", 45.5, "Debit", "RENT", "2024-01-05 02:00:00"),  # sign contradicts type
            ("C1", "T5", -90_000.0, "DEBIT", "X", "2024-01-06"),  # beyond the cap
            ("C1", "T6", -1.0, "DEBIT", None, "not a date"),  # null text, bad timestamp
        ]
    )
    clean, counts = clean_transactions(raw, ROLES, cap=5_000.0)
    assert counts.exact_duplicates_dropped == 1
    assert counts.repeated_ids_dropped == 1
    assert counts.null_amounts_dropped == 1
    assert counts.sign_fixed_from_type == 1
    assert counts.amounts_over_cap_dropped == 1
    assert counts.null_descriptions == 1
    assert counts.bad_timestamps == 1
    assert clean["amount"].tolist() == [-10.0, 2500.0, -45.5, -1.0]


def test_aggregates_match_a_hand_computed_customer():
    raw = tx(
        [
            ("C1", "T1", -50.0, "debit", "TESCO", "2024-01-01 10:00:00"),
            ("C1", "T2", 2000.0, "credit", "SALARY ACME", "2024-01-01 09:00:00"),
            ("C1", "T3", -800.0, "debit", "RENT JAN", "2024-01-03 01:30:00"),
            ("C1", "T4", -150.0, "debit", "TRANSFER TO BOB", "2024-01-04 12:00:00"),
        ]
    )
    ids = pd.Series(["C1", "C2"])
    features, _ = build_customer_features(raw, ROLES, ids, cap=None)
    c1, c2 = features.loc["C1"], features.loc["C2"]
    assert c1["num_transactions"] == 4
    assert c1["total_debit"] == -1000.0
    assert c1["total_credit"] == 2000.0
    assert c1["avg_amount"] == 250.0
    assert c1["net_flow"] == 1000.0
    assert c1["active_days"] == 3
    assert c1["max_debit"] == 800.0
    assert c1["debit_to_credit"] == 0.5
    assert c1["late_night_share"] == 0.25
    assert (c1["has_rent"], c1["has_salary"], c1["n_transfer"]) == (1, 1, 1)
    assert c1["share_groceries"] == 0.25
    # A customer without transactions gets defined values, not NaN.
    assert (c2 == 0).all()
    assert list(features.columns) == list(aggregate_catalogue())


def test_no_transactions_at_all_gives_zeros():
    features, counts = build_customer_features(tx([]), ROLES, pd.Series(["A", "B"]), cap=None)
    assert features.shape == (2, len(aggregate_catalogue()))
    assert not features.isna().any().any()
    assert counts.rows_out == 0


SPEC = parse_spec(
    {
        "name": "toy",
        "purpose": "x",
        "data": {"table": "t.csv"},
        "id_column": "id",
        "target": {"column": "y", "positive": 1},
        "features": [
            {"name": "spend", "type": "numeric", "missing": "native", "description": "x"},
            {
                "name": "bill",
                "type": "numeric",
                "missing": "constant",
                "fill_value": 0,
                "description": "x",
            },
            {"name": "plan", "type": "categorical", "levels": ["a", "b"], "description": "x"},
        ],
        "costs": {"missed_event": 1, "false_alarm": 1},
        "tiers": {"medium": 0.3, "high": 0.6},
    },
    "toy",
    Path("."),
)
FRAME = pd.DataFrame(
    {
        "spend": [1.0, np.nan, 3.0, 5.0],
        "bill": [10.0, np.nan, 30.0, 50.0],
        "plan": ["a", "b", "a", None],
    }
)


def test_transformer_missing_rules_and_unseen_levels():
    boosting = build_transformer(SPEC, "boosting").fit(FRAME)
    out = pd.DataFrame(
        boosting.transform(pd.DataFrame({"spend": [np.nan], "bill": [np.nan], "plan": ["zzz"]})),
        columns=boosting.get_feature_names_out(),
    )
    assert np.isnan(out["spend"].iloc[0])  # native: XGBoost sees the blank
    assert out["bill"].iloc[0] == 0.0  # constant: a blank means 0
    assert out[["plan_a", "plan_b"]].to_numpy().sum() == 0  # unseen level: no column lit

    linear = build_transformer(SPEC, "linear").fit(FRAME)
    names = list(linear.get_feature_names_out())
    assert "missingindicator_spend" in names  # native, linear: the blank becomes a column
    assert not np.isnan(linear.transform(FRAME)).any()


def test_prepare_frame_reads_csv_and_json_alike():
    from_csv = pd.DataFrame({"spend": ["1.5"], "bill": [2], "plan": ["a"], "extra": [1]})
    from_json = pd.DataFrame({"spend": [1.5], "bill": [2.0], "plan": ["a"]})
    pd.testing.assert_frame_equal(prepare_frame(from_csv, SPEC), prepare_frame(from_json, SPEC))


def test_text_features_in_the_table_are_refused_with_a_reason():
    spec = SPEC.model_copy(
        update={
            "features": [
                *SPEC.features,
                SPEC.features[0].model_copy(update={"name": "memo", "type": FeatureType.text}),
            ]
        }
    )
    with pytest.raises(ValueError, match=r"\['memo'\].*not a model input"):
        build_transformer(spec, "linear")


@parametrize_with_checks(
    [DatetimeToDays(), RebalancedClassifier(LogisticRegression(), method="weights")]
)
def test_custom_estimators_follow_the_sklearn_contract(estimator, check):
    check(estimator)
