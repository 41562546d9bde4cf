"""Training: metrics and threshold on hand-made cases, prior correction, and a real (quick)
training run into a temporary model store, reloaded and checked for behaviour."""

from pathlib import Path

import bentoml
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from core import metrics
from core.spec import Costs, load_spec
from features.tabular import prepare_frame
from model import store
from model.rebalance import RebalancedClassifier
from training.train import QUICK, assemble, train_use_case


def test_threshold_minimises_cost_on_a_hand_made_case():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.4, 0.35, 0.8])
    # flag >= 0.8: 1 miss (10); >= 0.4: 1 miss + 1 alarm (11); >= 0.35: 1 alarm (1);
    # >= 0.1: 2 alarms (2); nobody: 2 misses (20)
    threshold, cost = metrics.best_threshold(y, p, Costs(missed_event=10, false_alarm=1))
    assert threshold == 0.35
    assert cost == pytest.approx(1 / 4)


def test_threshold_flags_nobody_when_alarms_cost_more_than_any_miss():
    y = np.array([0, 0, 0, 1])
    p = np.array([0.9, 0.8, 0.7, 0.6])
    threshold, cost = metrics.best_threshold(y, p, Costs(missed_event=1, false_alarm=100))
    assert threshold == 1.0
    assert cost == pytest.approx(1 / 4)


def test_expected_calibration_error():
    y = np.array([0, 1] * 50)
    assert metrics.expected_calibration_error(y, np.full(100, 0.5)) == pytest.approx(0.0)
    assert metrics.expected_calibration_error(np.zeros(10), np.ones(10)) == pytest.approx(1.0)


@pytest.mark.parametrize("method", ["weights", "undersample"])
def test_rebalanced_probabilities_are_mapped_back_to_the_true_prior(method):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20_000, 2))
    y = (rng.random(20_000) < 1 / (1 + np.exp(-(X[:, 0] - 3.5)))).astype(int)
    model = RebalancedClassifier(LogisticRegression(), method=method).fit(X, y)
    corrected = model.predict_proba(X)[:, 1]
    seen = model.estimator_.predict_proba(X)[:, 1]
    assert seen.mean() > 5 * y.mean()  # what the rebalanced model alone would claim
    assert corrected.mean() == pytest.approx(y.mean(), rel=0.15)


# ---------------------------------------------------------------- a real training run


@pytest.fixture(scope="module")
def trained(builtin_spec, tmp_path_factory) -> dict:
    """filing_dropoff trained with the quick budget into this session's model store."""
    spec = builtin_spec("filing_dropoff")
    spec_file = Path(spec.resolve("filing_dropoff.yaml"))
    out = tmp_path_factory.mktemp("train")
    report = train_use_case(spec_file, out / "reports", out / "outputs", QUICK)
    return {"report": report, "spec_file": spec_file, "reports": out / "reports"}


@pytest.mark.slow
def test_training_writes_report_and_tagged_model(trained):
    report = trained["report"]
    model = bentoml.models.get(report["model_tag"])
    card = store.card(model)
    assert str(model.tag).startswith("filing_dropoff:")
    assert card.threshold.value == report["threshold"]["value"]
    assert (card.tiers.medium, card.tiers.high) == (0.3, 0.6)
    assert [f.name for f in card.features][:2] == ["age", "income"]
    assert set(card.reference.features) == {f.name for f in card.features}
    assert len(card.data_sha256["data.table"]) == 64
    folder = trained["reports"] / "filing_dropoff"
    for name in ["training.md", "training.json", "roc.png", "pr.png", "calibration.png"]:
        assert (folder / name).stat().st_size > 0
    assert report["model_tag"] in (folder / "training.md").read_text()


@pytest.mark.slow
def test_champion_beats_both_baselines_on_the_test_split(trained):
    report = trained["report"]
    metric = report["selection_metric"]
    champion = report["test"][metric]
    assert champion > report["baselines"]["majority_class"][metric] + 0.1
    assert champion > report["baselines"]["best_single_feature"][metric]


@pytest.mark.slow
def test_reloaded_model_reproduces_the_test_scores_exactly(trained):
    model = bentoml.models.get(trained["report"]["model_tag"])
    spec = load_spec(trained["spec_file"])
    data = assemble(spec)
    test = (data.split == "test").to_numpy()
    again = store.load_pipeline(model).predict_proba(prepare_frame(data.frame[test], spec))[:, 1]
    saved = store.read_csv(model, store.TEST_SCORES_FILE)
    assert saved["id"].tolist() == data.frame.loc[test, spec.id_column].tolist()
    np.testing.assert_array_equal(again, saved["probability"].to_numpy())


@pytest.fixture(scope="module")
def filing_model(trained):
    model = bentoml.models.get(trained["report"]["model_tag"])
    spec = load_spec(trained["spec_file"])
    test = assemble(spec).frame
    return store.load_pipeline(model), spec, test.sample(100, random_state=0)


def risk(filing_model, frame: pd.DataFrame) -> np.ndarray:
    pipeline, spec, _ = filing_model
    return pipeline.predict_proba(prepare_frame(frame, spec))[:, 1]


@pytest.mark.slow
def test_filling_more_tax_fields_never_raises_drop_off_risk(filing_model):
    _, _, customers = filing_model
    sweep = [
        risk(filing_model, customers.assign(fields_filled_percentage=v)) for v in range(0, 101, 10)
    ]
    steps = np.diff(np.vstack(sweep), axis=0)
    assert (steps <= 1e-12).all()


@pytest.mark.slow
def test_the_user_id_never_changes_the_score(filing_model):
    _, _, customers = filing_model
    renamed = customers.assign(user_id=[f"X{i}" for i in range(len(customers))])
    np.testing.assert_array_equal(risk(filing_model, customers), risk(filing_model, renamed))


@pytest.mark.slow
def test_an_obviously_engaged_user_lands_in_the_low_tier(filing_model):
    _, spec, customers = filing_model
    engaged = customers.head(1).assign(
        fields_filled_percentage=100,
        number_of_sessions=12,
        time_spent_on_platform=240,
        previous_year_filing=1,
        employment_type="full_time",
    )
    assert risk(filing_model, engaged)[0] < spec.tiers.medium


@pytest.mark.slow
def test_a_users_own_spec_over_raw_transactions_trains_with_no_code_change(generated, tmp_path):
    """A spec written by a user (own name, own features and keywords) over their files."""
    source = generated("credit_risk")
    labels = pd.read_csv(source / "labels.csv").drop_duplicates().head(1_200)
    labels.to_csv(tmp_path / "my_labels.csv", index=False)
    transactions = pd.read_csv(source / "transactions.csv")
    transactions[transactions["customer_id"].isin(labels["customer_id"])].to_csv(
        tmp_path / "my_transactions.csv", index=False
    )
    spec_file = tmp_path / "lender.yaml"
    spec_file.write_text(
        """
name: my_lender
purpose: Default risk from a lender's own bank-feed export.
data:
  table: my_labels.csv
  transactions:
    path: my_transactions.csv
    columns: {customer_id: customer_id, amount: amount, type: type, description: description}
    categories:
      payday: ["wonga", "quickquid", "payday"]
      salary: ["salary", "payroll"]
id_column: customer_id
target: {column: defaulted, positive: 1}
features:
  - {name: debit_to_credit, type: numeric, min: 0, description: Outgoing over incoming.}
  - {name: net_flow, type: numeric, description: Money kept over the period.}
  - {name: has_salary, type: binary, description: A salary was paid in.}
  - {name: has_payday, type: binary, description: A payday lender appears.}
costs: {missed_event: 1000, false_alarm: 100, unit: GBP}
tiers: {medium: 0.1, high: 0.3}
selection_metric: roc_auc
""",
        encoding="utf-8",
    )
    report = train_use_case(spec_file, tmp_path / "reports", tmp_path / "outputs", QUICK)
    assert report["model_tag"].startswith("my_lender:")
    assert report["test"]["roc_auc"] > 0.65
    training_set = pd.read_csv(tmp_path / "outputs" / "my_lender" / "training_set.csv")
    assert {"has_payday", "n_payday", "debit_to_credit", "defaulted"} <= set(training_set.columns)
    assert len(training_set) == len(labels)
