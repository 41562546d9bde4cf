"""Data tests for the default use case (brief 002): 100k pay-later orders, blanks not at random."""

import itertools

import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from core.spec import MissingRule
from datagen import default as gen

USE_CASE = "default"
RATE_TOLERANCE = 0.002  # 1.5 % +- 0.2 pp
AUC_RANGE = (0.78, 0.92)
UUID4 = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
CATEGORICAL = ["merchant_category", "merchant_group", "name_in_email"]


@pytest.fixture(scope="module")
def table(generated) -> pd.DataFrame:
    return pd.read_csv(generated(USE_CASE) / gen.FILE_NAME)


@pytest.fixture(scope="module")
def labeled(table) -> pd.DataFrame:
    return table[table["default"].notna()]


def test_columns_and_size(table):
    assert list(table.columns) == gen.COLUMNS
    assert len(gen.COLUMNS) == 43
    assert len(table) == gen.N_ORDERS == 100_000
    assert table["uuid"].is_unique
    assert table["uuid"].str.fullmatch(UUID4).all()


def test_unlabeled_rows_and_default_rate(table, labeled):
    assert table["default"].isna().sum() == round(gen.N_ORDERS * gen.UNLABELED_SHARE)
    assert set(labeled["default"]) == {0, 1}
    rate = labeled["default"].mean()
    assert abs(rate - gen.DEFAULT_RATE) <= RATE_TOLERANCE, rate


def test_blanks_are_in_exactly_the_documented_columns(table):
    features = table.drop(columns="default")
    with_blanks = features.columns[features.isna().any()].tolist()
    assert with_blanks == gen.COLUMNS_WITH_BLANKS
    assert "null_values" in gen.INJECTED_PROBLEMS


def test_blanks_follow_other_columns(table):
    """Each blank means "no such history", and the rest of the row agrees."""
    no_account = table["account_status"].isna()
    assert no_account.equals(table["account_worst_status_0_3m"].isna())
    assert (table.loc[no_account, "sum_capital_paid_account_0_12m"] == 0).all()
    assert (table.loc[no_account, "account_amount_added_12_24m"] == 0).all()
    assert table.loc[no_account, "account_incoming_debt_vs_paid_0_24m"].isna().all()
    # Older windows can only be filled if the newer ones are (the account existed then).
    windows = ["0_3m", "3_6m", "6_12m", "12_24m"]
    for newer, older in itertools.pairwise(windows):
        filled_older = table[f"account_worst_status_{older}"].notna()
        assert table.loc[filled_older, f"account_worst_status_{newer}"].notna().all()

    nothing_paid = (table["num_arch_ok_0_12m"] + table["num_arch_rem_0_12m"]) == 0
    assert table["avg_payment_span_0_12m"].isna().equals(nothing_paid)
    assert table["num_active_div_by_paid_inv_0_12m"].isna().equals(nothing_paid)
    assert table.loc[nothing_paid, "avg_payment_span_0_3m"].isna().all()

    nothing_closed = table["status_last_archived_0_24m"] == 0
    assert table["num_arch_written_off_0_12m"].isna().equals(nothing_closed)
    assert table["num_arch_written_off_12_24m"].isna().equals(nothing_closed)
    assert table["worst_status_active_inv"].isna().equals(table["num_active_inv"] == 0)

    no_old_record = table["account_days_in_dc_12_24m"].isna()
    assert (table.loc[no_old_record, ["num_arch_ok_12_24m", "num_arch_dc_12_24m"]] == 0).all().all()


def test_blanks_carry_default_signal(labeled):
    assert "missing_not_at_random" in gen.INJECTED_PROBLEMS
    default = labeled["default"]
    # Structural: thin files (no closed invoice) default more than customers with a record.
    no_record = labeled["num_arch_written_off_0_12m"].isna()
    assert default[no_record].mean() > 1.4 * default[~no_record].mean()
    # Through the target: paid in the year but not in the last 3 months, defaulters more often.
    paid_in_year = labeled["avg_payment_span_0_12m"].notna()
    recent_blank = labeled["avg_payment_span_0_3m"].isna()
    rate_blank = default[paid_in_year & recent_blank].mean()
    rate_filled = default[paid_in_year & ~recent_blank].mean()
    assert rate_blank > 2.0 * rate_filled, (rate_blank, rate_filled)


def test_history_columns_agree_with_each_other(table):
    assert (table["max_paid_inv_0_24m"] >= table["max_paid_inv_0_12m"]).all()
    assert (
        table["status_max_archived_0_24_months"] >= table["status_max_archived_0_12_months"]
    ).all()
    assert (
        table["status_max_archived_0_12_months"] >= table["status_max_archived_0_6_months"]
    ).all()
    assert (table["status_max_archived_0_24_months"] >= table["status_last_archived_0_24m"]).all()
    assert (table["num_unpaid_bills"] <= table["num_active_inv"]).all()
    never_paid = table["has_paid"] == 0
    assert (table.loc[never_paid, ["sum_paid_inv_0_12m", "num_arch_ok_0_12m"]] == 0).all().all()


def test_shipped_spec_matches_the_data(builtin_spec, table):
    spec = builtin_spec(USE_CASE)
    assert spec.id_column == "uuid"
    assert spec.selection_metric == "pr_auc"
    assert set(spec.feature_names) == set(gen.COLUMNS) - {"uuid", "default"}
    for name in gen.COLUMNS_WITH_BLANKS:
        assert spec.feature(name).missing is MissingRule.native, name


@pytest.mark.slow
def test_gradient_boosting_on_raw_blanks_learns_default(labeled):
    y = labeled["default"].astype(int)
    features = labeled.drop(columns=["uuid", "default"]).astype(
        {c: "category" for c in CATEGORICAL}
    )
    # Half the rows in the holdout: ~700 defaults, enough for a stable AUC at 1.5 %.
    x_train, x_test, y_train, y_test = train_test_split(
        features, y, test_size=0.5, stratify=y, random_state=0
    )
    model = HistGradientBoostingClassifier(
        categorical_features="from_dtype",
        max_iter=60,
        max_leaf_nodes=15,
        min_samples_leaf=100,
        early_stopping=False,
        random_state=0,
    )
    model.fit(x_train, y_train)
    auc = roc_auc_score(y_test, model.predict_proba(x_test)[:, 1])
    assert AUC_RANGE[0] <= auc <= AUC_RANGE[1], auc
