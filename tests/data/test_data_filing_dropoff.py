"""Data tests for the filing_dropoff use case (brief 000): synthetic, clean, 5,000 users."""

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from core.spec import FeatureType
from datagen import filing_dropoff as gen

USE_CASE = "filing_dropoff"
BRIEF_COLUMNS = [
    "age",
    "income",
    "employment_type",
    "marital_status",
    "time_spent_on_platform",
    "number_of_sessions",
    "fields_filled_percentage",
    "previous_year_filing",
    "device_type",
    "referral_source",
    "completed_filing",
]
DROPOFF_RATE, RATE_TOLERANCE = 0.30, 0.03
AUC_RANGE = (0.75, 0.90)


@pytest.fixture(scope="module")
def table(generated) -> pd.DataFrame:
    return pd.read_csv(generated(USE_CASE) / gen.FILE_NAME)


def test_brief_columns_in_brief_order_after_the_id(table):
    assert list(table.columns) == ["user_id", *BRIEF_COLUMNS]


def test_size_and_unique_ids(table):
    assert len(table) == 5_000
    assert table["user_id"].is_unique
    assert table["user_id"].str.fullmatch(r"U\d{5}").all()


def test_dataset_is_clean_as_the_brief_promises(table):
    assert gen.INJECTED_PROBLEMS == {}
    assert not table.isna().any().any()
    assert not table.drop(columns="user_id").duplicated().any()


def test_dropoff_rate(table):
    rate = (table["completed_filing"] == 0).mean()
    assert abs(rate - DROPOFF_RATE) <= RATE_TOLERANCE, rate


def test_values_are_plausible(table):
    assert table["age"].between(18, 85).all()
    assert (table["income"] > 0).all()
    assert table["fields_filled_percentage"].between(0, 100).all()
    assert (table["number_of_sessions"] >= 1).all()
    assert (table["time_spent_on_platform"] > 0).all()
    assert set(table["previous_year_filing"]) == {0, 1}
    assert set(table["completed_filing"]) == {0, 1}
    # Skewed like real behaviour data: mean above median.
    assert table["income"].mean() > table["income"].median()


def test_dropoff_follows_engagement(table):
    dropped = table["completed_filing"] == 0
    quartile = pd.qcut(table["fields_filled_percentage"], 4, labels=False)
    by_quartile = dropped.groupby(quartile).mean()
    assert by_quartile.is_monotonic_decreasing, by_quartile.to_dict()
    by_previous = dropped.groupby(table["previous_year_filing"]).mean()
    assert by_previous[1] < by_previous[0]


def test_shipped_spec_matches_the_data(builtin_spec, table):
    spec = builtin_spec(USE_CASE)
    assert spec.id_column == "user_id"
    assert spec.target.column == "completed_filing"
    assert (
        spec.target.is_positive(table["completed_filing"]).sum()
        == (table["completed_filing"] == 0).sum()
    )
    assert set(spec.feature_names) == set(BRIEF_COLUMNS) - {"completed_filing"}
    for feat in spec.features:
        values = table[feat.name]
        if feat.type is FeatureType.categorical:
            assert set(values) <= set(feat.levels), feat.name
        elif feat.type is FeatureType.binary:
            assert set(values) <= {0, 1}, feat.name
        else:
            assert values.between(feat.min, feat.max).all(), feat.name
            if feat.integer:
                assert (values == np.floor(values)).all(), feat.name


def test_a_simple_model_learns_dropoff_but_not_perfectly(table):
    y = (table["completed_filing"] == 0).astype(int)
    features = pd.get_dummies(table.drop(columns=["user_id", "completed_filing"]), dtype=float)
    x_train, x_test, y_train, y_test = train_test_split(
        features, y, test_size=0.3, stratify=y, random_state=0
    )
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(x_train, y_train)
    auc = roc_auc_score(y_test, model.predict_proba(x_test)[:, 1])
    assert AUC_RANGE[0] <= auc <= AUC_RANGE[1], auc
