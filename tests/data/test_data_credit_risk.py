"""Data tests for the credit_risk use case (brief 004): raw transactions + 90-day default labels."""

import re

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from datagen import credit_risk as gen
from features.transactions import DEFAULT_CATEGORIES

USE_CASE = "credit_risk"
CONTRACT_FEATURES = [
    "num_transactions",
    "total_debit",
    "total_credit",
    "avg_amount",
    "has_rent",
    "has_salary",
]
RATE_TOLERANCE = 0.015
AUC_RANGE = (0.72, 0.93)


@pytest.fixture(scope="module")
def folder(generated):
    return generated(USE_CASE)


@pytest.fixture(scope="module")
def tx(folder) -> pd.DataFrame:
    return pd.read_csv(folder / gen.TRANSACTIONS_FILE)


@pytest.fixture(scope="module")
def labels(folder) -> pd.DataFrame:
    return pd.read_csv(folder / gen.LABELS_FILE)


def _clean_text(text: pd.Series) -> pd.Series:
    """The brief's cleaning: lowercase, punctuation and digits removed."""
    words = text.fillna("").str.lower().str.replace(r"[^a-z\s]", " ", regex=True)
    return words.str.replace(r"\s+", " ", regex=True).str.strip()


def _mentions(clean: pd.Series, category: str) -> pd.Series:
    return clean.str.contains("|".join(DEFAULT_CATEGORIES[category]), regex=True)


def _customer_table(tx: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """The brief's six features per labeled customer from minimally cleaned transactions."""
    tx = tx.drop_duplicates().dropna(subset=["amount"])
    debit = tx["type"].str.lower() == "debit"
    amount = np.where(debit, -tx["amount"].abs(), tx["amount"].abs())
    clean = _clean_text(tx["description"])
    rows = pd.DataFrame(
        {
            "customer_id": tx["customer_id"],
            "amount": amount,
            "debit": np.minimum(amount, 0),
            "credit": np.maximum(amount, 0),
            "rent": _mentions(clean, "rent"),
            "salary": _mentions(clean, "salary"),
        }
    )
    per = rows.groupby("customer_id").agg(
        num_transactions=("amount", "size"),
        total_debit=("debit", "sum"),
        total_credit=("credit", "sum"),
        avg_amount=("amount", "mean"),
        has_rent=("rent", "max"),
        has_salary=("salary", "max"),
    )
    table = labels.drop_duplicates().set_index("customer_id").join(per)
    return table.fillna(0).astype({"has_rent": int, "has_salary": int})


@pytest.fixture(scope="module")
def customers(tx, labels) -> pd.DataFrame:
    return _customer_table(tx, labels)


def test_files_have_exactly_the_briefs_columns(tx, labels):
    assert list(tx.columns) == [
        "customer_id",
        "transaction_id",
        "amount",
        "type",
        "description",
        "timestamp",
    ]
    # The brief's two label columns, then the protected attribute the fairness report uses.
    assert list(labels.columns) == ["customer_id", "defaulted", "age_band"]


def test_ids_and_timestamps_follow_the_briefs_format(tx, labels):
    assert tx["customer_id"].str.fullmatch(r"CUST\d{4}").all()
    assert labels["customer_id"].str.fullmatch(r"CUST\d{4}").all()
    assert tx["transaction_id"].str.fullmatch(r"TXN\d{7}").all()
    stamps = pd.to_datetime(tx["timestamp"], format="%Y-%m-%d %H:%M:%S")
    assert stamps.min() >= pd.Timestamp("2024-01-01")
    assert stamps.max() < pd.Timestamp("2024-01-01") + pd.Timedelta(days=gen.WINDOW_DAYS + 4)


def test_sizes(labels, customers):
    assert labels["customer_id"].nunique() == gen.N_CUSTOMERS
    active = customers[customers["num_transactions"] > 0]
    assert len(active) == gen.N_CUSTOMERS - gen.N_CUSTOMERS_WITHOUT_TRANSACTIONS
    # Re-posted transactions (duplicate ids) may add one or two rows to a customer.
    assert active["num_transactions"].min() >= gen.MIN_TRANSACTIONS
    assert active["num_transactions"].max() <= gen.MAX_TRANSACTIONS + 2
    assert 25 <= active["num_transactions"].median() <= 35


def test_default_rate_is_the_clients_12_percent(labels):
    assert set(labels["defaulted"].unique()) == {0, 1}
    rate = labels.drop_duplicates()["defaulted"].mean()
    assert abs(rate - gen.DEFAULT_RATE) <= RATE_TOLERANCE, f"default rate {rate:.3f}"


def test_debits_are_negative_and_credits_positive(tx):
    kind = tx["type"].str.lower()
    assert set(kind.unique()) == {"debit", "credit"}
    agrees = ((kind == "debit") & (tx["amount"] < 0)) | ((kind == "credit") & (tx["amount"] > 0))
    assert agrees[tx["amount"].notna()].mean() > 0.98


def test_salary_rent_and_every_merchant_category_appear_in_the_text(tx, customers):
    clean = _clean_text(tx["description"])
    for category in DEFAULT_CATEGORIES:
        assert _mentions(clean, category).sum() >= 100, f"too few {category} transactions"
    assert 0.6 <= customers["has_salary"].mean() <= 0.9
    assert 0.4 <= customers["has_rent"].mean() <= 0.7
    salary = tx[_mentions(clean, "salary")]
    assert (salary["amount"].dropna().abs() > 500).mean() > 0.95


def test_injected_problems_are_each_tested():
    assert set(gen.INJECTED_PROBLEMS) == {
        "null_values",
        "exact_duplicate_rows",
        "duplicate_ids",
        "outliers",
        "sign_type_disagreement",
        "messy_text",
        "customers_without_transactions",
        "unknown_customers",
    }


def test_null_values(tx, labels):
    assert tx["amount"].isna().sum() == gen.N_NULL_AMOUNTS
    assert tx["description"].isna().sum() == gen.N_NULL_DESCRIPTIONS
    assert tx[["customer_id", "transaction_id", "type", "timestamp"]].notna().all().all()
    assert labels.notna().all().all()


def test_exact_duplicate_rows(tx, labels):
    assert tx.duplicated().sum() == gen.N_EXACT_DUPLICATES
    assert labels.duplicated().sum() == gen.N_LABEL_DUPLICATES
    assert labels.drop_duplicates()["customer_id"].is_unique, "a customer with two labels"


def test_duplicate_ids_carry_different_content(tx):
    distinct = tx.drop_duplicates()
    repeated = distinct[distinct["transaction_id"].duplicated(keep=False)]
    assert repeated["transaction_id"].nunique() == gen.N_DUPLICATE_IDS
    customers_per_id = repeated.groupby("transaction_id")["customer_id"].nunique()
    assert (customers_per_id > 1).sum() == gen.N_COLLIDING_IDS
    assert (customers_per_id == 1).sum() == gen.N_REPOSTED_IDS


def test_outliers_are_lost_decimal_points(tx):
    size = tx["amount"].abs()
    assert (size >= gen.OUTLIER_THRESHOLD).sum() == gen.N_OUTLIERS
    assert size[size < gen.OUTLIER_THRESHOLD].max() <= gen.MAX_LEGIT_AMOUNT
    assert (tx.loc[size >= gen.OUTLIER_THRESHOLD, "type"].str.lower() == "debit").all()


def test_sign_type_disagreement(tx):
    kind = tx["type"].str.lower()
    wrong = ((kind == "debit") & (tx["amount"] > 0)) | ((kind == "credit") & (tx["amount"] < 0))
    assert wrong.sum() == gen.N_SIGN_FLIPS
    assert (wrong & (kind == "debit")).sum() > gen.N_SIGN_FLIPS / 2  # mostly unsigned debits


def test_messy_text(tx):
    typo = tx["description"].str.contains("|".join(gen.TYPOS.values()), regex=True, na=False)
    assert typo.sum() == gen.N_DESCRIPTION_TYPOS
    misspelt = _clean_text(tx.loc[typo, "description"])
    exact_match = _mentions(misspelt, "groceries") | _mentions(misspelt, "subscriptions")
    assert not exact_match.any(), "a typo that exact keyword matching still finds"
    odd_case = ~tx["type"].isin(["debit", "credit"])
    assert odd_case.sum() == gen.N_TYPE_CASING
    assert set(tx.loc[odd_case, "type"]) == {"Debit", "DEBIT", "Credit", "CREDIT"}
    text = tx["description"].dropna()
    assert text.str.contains(r"\d").mean() > 0.2, "store numbers and references"
    assert text.str.contains(r"\*").any()
    assert (text != text.str.upper()).any(), "mixed casing"


def test_age_band_is_a_protected_attribute_mildly_tied_to_income(labels, customers):
    once = labels.drop_duplicates()
    assert set(once["age_band"]) == set(gen.AGE_BANDS)
    shares = once["age_band"].value_counts(normalize=True)
    assert shares.min() >= 0.05, shares  # every band big enough to judge on the test split
    active = customers[customers["total_credit"] > 0]
    income = active.groupby("age_band")["total_credit"].median()
    assert income["18-24"] < income["40-61"] < 1.5 * income["18-24"], income


def test_customers_without_transactions(tx, labels):
    silent = set(labels["customer_id"]) - set(tx["customer_id"])
    assert len(silent) == gen.N_CUSTOMERS_WITHOUT_TRANSACTIONS


def test_unknown_customers(tx, labels):
    orphans = set(tx["customer_id"]) - set(labels["customer_id"])
    assert len(orphans) == gen.N_UNKNOWN_CUSTOMERS


def test_shipped_spec_loads_and_matches_the_predict_contract(builtin_spec):
    spec = builtin_spec(USE_CASE)
    assert spec.feature_names == CONTRACT_FEATURES
    assert spec.id_column == "customer_id"
    assert spec.target.column == "defaulted"
    tx_spec = spec.data.transactions
    assert tx_spec is not None
    assert set(tx_spec.columns.present()) == {
        "customer_id",
        "transaction_id",
        "amount",
        "type",
        "description",
        "timestamp",
    }
    assert spec.costs.unit == "GBP"
    assert spec.costs.missed_event > spec.costs.false_alarm


def test_spec_ranges_admit_real_customers_and_reject_most_typos(builtin_spec, tx, customers):
    spec = builtin_spec(USE_CASE)
    typo_customers = tx.loc[tx["amount"].abs() >= gen.OUTLIER_THRESHOLD, "customer_id"]
    has_typo = customers.index.isin(typo_customers)
    outside = pd.Series(False, index=customers.index)
    for feature in spec.features:
        if feature.min is None:
            continue
        values = customers[feature.name]
        outside |= (values < feature.min) | (values > feature.max)
    assert not outside[~has_typo].any(), outside[~has_typo].idxmax()
    assert outside[has_typo].mean() >= 0.5


@pytest.mark.parametrize("flag", ["has_salary", "has_rent"])
def test_text_flags_carry_the_documented_signal(customers, flag):
    rates = customers.groupby(flag)["defaulted"].mean()
    if flag == "has_salary":
        assert rates[0] > 1.5 * rates[1], "no salary should mean more defaults"
    else:
        assert rates[1] > 1.2 * rates[0], "renters should default more than the rest"


def test_spending_beyond_income_means_more_defaults(customers):
    active = customers[customers["total_credit"] > 0]
    ratio = -active["total_debit"] / active["total_credit"]
    quartile = pd.qcut(ratio, 4, labels=False)
    rates = active.groupby(quartile)["defaulted"].mean()
    assert rates.iloc[-1] > 2 * rates.iloc[0]


def test_a_model_on_the_six_contract_features_learns_but_is_not_perfect(customers):
    x, y = customers[CONTRACT_FEATURES], customers["defaulted"]
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.3, stratify=y, random_state=0
    )
    model = HistGradientBoostingClassifier(max_iter=150, learning_rate=0.05, max_depth=3)
    model.fit(x_train, y_train)
    auc = roc_auc_score(y_test, model.predict_proba(x_test)[:, 1])
    assert AUC_RANGE[0] <= auc <= AUC_RANGE[1], f"holdout ROC-AUC {auc:.3f}"


def test_injected_counts_are_stated_in_the_problem_descriptions():
    text = " ".join(gen.INJECTED_PROBLEMS.values())
    for count in [
        gen.N_NULL_AMOUNTS,
        gen.N_EXACT_DUPLICATES,
        gen.N_DUPLICATE_IDS,
        gen.N_OUTLIERS,
        gen.N_SIGN_FLIPS,
        gen.N_DESCRIPTION_TYPOS,
        gen.N_CUSTOMERS_WITHOUT_TRANSACTIONS,
        gen.N_UNKNOWN_CUSTOMERS,
    ]:
        assert re.search(rf"\b{count:,}\b|\b{count}\b", text), count
