"""Retraining: the promotion rule, matured labels, new cohorts, bad input, and real
(quick) retraining runs that promote a better challenger and keep a worse one.

The runs use a copy of filing_dropoff's spec under another name, so promotions move
only that name's `latest` in this session's throwaway store, never a built-in's that
other tests score with.
"""

import json
from datetime import date
from pathlib import Path

import bentoml
import pandas as pd
import pytest
import yaml

from core.datafiles import file_sha256
from core.errors import UserError
from core.names import CHALLENGER_SUFFIX, PROJECT_ROOT, USECASES_DIRNAME
from datagen import filing_dropoff as dropoff_gen
from model import store
from model.scorer import Scorer
from riskbento.__main__ import main
from training.retrain import (
    DECISION_DATE_COLUMN,
    RETRAIN_DIRNAME,
    Maturity,
    RetrainDataError,
    matured_rows,
    new_cohort,
    retrain,
)
from training.train import QUICK, train_use_case

USE_CASE = "dropoff_retrain"  # filing_dropoff's spec under a name of its own


# ---------------------------------------------------------------- the promotion rule


def test_open_outcome_windows_and_blank_labels_are_excluded_and_counted():
    table = pd.DataFrame(
        {
            "id": ["a", "b", "c", "d"],
            "defaulted": ["1", "0", None, "0"],
            "decided_on": ["2024-01-01", "2024-05-01", "2024-01-01", "2024-03-02"],
        }
    )
    maturity = Maturity("decided_on", 90, date(2024, 6, 1))
    keep, counts = matured_rows(table, "defaulted", maturity)
    # b's window closes 2024-07-30, after the as-of date; d's closes 2024-05-31.
    assert keep.tolist() == [True, False, False, True]
    assert counts == {
        "rows": 4,
        "blank_label_excluded": 1,
        "open_window_excluded": 1,
        "matured": 2,
    }


def test_an_unreadable_decision_date_is_an_error_naming_the_column():
    table = pd.DataFrame({"defaulted": ["1", "0"], "decided_on": ["2024-01-01", "soon"]})
    with pytest.raises(RetrainDataError, match=r"decided_on: 1 labeled row.*'soon'"):
        matured_rows(table, "defaulted", Maturity("decided_on", 90, date(2024, 6, 1)))


def test_a_date_column_that_is_not_in_the_table_is_named():
    table = pd.DataFrame({"defaulted": ["1"], "opened": ["2024-01-01"]})
    with pytest.raises(RetrainDataError, match=r"'decided_on' is not a column.*opened"):
        matured_rows(table, "defaulted", Maturity("decided_on", 90, None))


# ---------------------------------------------------------------- new cohorts


def test_a_new_cohort_has_other_customers_and_leaves_the_generator_alone(generated, tmp_path):
    built_in = generated("filing_dropoff") / dropoff_gen.FILE_NAME
    (cohort,) = new_cohort("filing_dropoff", tmp_path / "cohort", seed=7)
    assert file_sha256(cohort) != file_sha256(built_in)
    again = dropoff_gen.generate(tmp_path)[0]  # the default seed is back in place
    assert file_sha256(again) == file_sha256(built_in)


def test_a_shuffled_cohort_keeps_its_label_counts_but_not_their_owners(tmp_path):
    (plain,) = new_cohort("filing_dropoff", tmp_path / "plain", seed=8)
    (shuffled,) = new_cohort(
        "filing_dropoff",
        tmp_path / "shuffled",
        seed=8,
        shuffle_labels=True,
        decided_between=(date(2024, 4, 1), date(2024, 6, 30)),
    )
    a, b = pd.read_csv(plain), pd.read_csv(shuffled)
    target = "completed_filing"
    assert b[target].sum() == a[target].sum()
    assert (a[target] != b[target]).mean() > 0.2
    assert b.drop(columns=[target, DECISION_DATE_COLUMN]).equals(a.drop(columns=[target]))
    days = pd.to_datetime(b[DECISION_DATE_COLUMN])
    assert days.min() >= pd.Timestamp("2024-04-01")
    assert days.max() <= pd.Timestamp("2024-06-30")


def test_churn_has_no_second_cohort(tmp_path):
    with pytest.raises(UserError, match="expected a synthetic built-in use case"):
        new_cohort("churn", tmp_path, seed=7)


# ---------------------------------------------------------------- bad --data


def test_a_missing_data_path_exits_2_naming_it(capsys, tmp_path):
    missing = tmp_path / "nowhere.csv"
    assert main(["retrain", "filing_dropoff", "--data", str(missing)]) == 2
    err = capsys.readouterr().err
    assert f"--data {missing} does not exist" in err
    assert "filing_dropoff.csv" in err  # what was expected
    assert "Traceback" not in err


def test_a_transaction_use_case_needs_a_folder_with_both_files(capsys, tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text("customer_id,defaulted\nCUST0001,0\n")
    assert main(["retrain", "credit_risk", "--data", str(labels)]) == 2
    err = capsys.readouterr().err
    assert "must be a folder holding labels.csv and transactions.csv" in err
    assert main(["retrain", "credit_risk", "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "missing ['transactions.csv']" in err


def test_a_table_without_the_target_column_is_refused_before_training(tmp_path):
    table = tmp_path / "new.csv"
    table.write_text("user_id,age\nU1,40\n")
    with pytest.raises(RetrainDataError, match=r"expected the target column 'completed_filing'"):
        retrain("filing_dropoff", table, tmp_path / "reports", QUICK)
    assert not (tmp_path / "reports").exists()


# ---------------------------------------------------------------- real retraining runs


def _spec_over(table: Path, folder: Path) -> Path:
    """filing_dropoff's spec, named USE_CASE, over `table`."""
    raw = yaml.safe_load((PROJECT_ROOT / USECASES_DIRNAME / "filing_dropoff.yaml").read_text())
    raw["name"] = USE_CASE
    raw["data"]["table"] = str(table)
    path = folder / f"{USE_CASE}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """A champion that learned nothing (shuffled labels); a challenger on good new data
    (promoted); then a challenger on shuffled new data against the promoted one (kept)."""
    root = tmp_path_factory.mktemp("retrain")
    (weak,) = new_cohort("filing_dropoff", root / "weak", seed=11, shuffle_labels=True)
    spec_file = _spec_over(weak, root)
    champion = train_use_case(spec_file, root / "champion", root / "champion", QUICK)
    (good,) = new_cohort("filing_dropoff", root / "good", seed=12)
    (bad,) = new_cohort("filing_dropoff", root / "bad", seed=13, shuffle_labels=True)
    reports = root / "reports"
    better = retrain(spec_file, good, reports, QUICK)
    latest_after_better = str(bentoml.models.get(f"{USE_CASE}:latest").tag)
    worse = retrain(spec_file, bad, reports, QUICK)
    return {
        "spec_file": spec_file,
        "champion": champion["model_tag"],
        "good": good,
        "better": better,
        "latest_after_better": latest_after_better,
        "worse": worse,
        "reports": reports,
    }


@pytest.mark.slow
def test_a_better_challenger_is_promoted_and_latest_points_to_it(runs):
    report = runs["better"]
    assert report["champion_tag"] == runs["champion"]
    assert report["decision"]["promote"]
    assert report["scores"]["challenger"]["roc_auc"] > 0.7 > report["scores"]["champion"]["roc_auc"]
    assert report["challenger_tag"].startswith(f"{USE_CASE}{CHALLENGER_SUFFIX}:")
    latest = bentoml.models.get(f"{USE_CASE}:latest")
    assert str(latest.tag) == report["promoted_tag"] == runs["latest_after_better"]
    card = store.card(latest)
    assert card.promoted_from == report["challenger_tag"]
    assert card.retrain["decision"]["promote"] is True
    assert card.retrain["champion_tag"] == runs["champion"]
    assert card.spec.name == card.use_case == USE_CASE  # served under the use case's own name
    # The promoted model is the challenger: the same answers for the same customers.
    customers = pd.read_csv(runs["good"], dtype={"user_id": "string"}).head(200)
    promoted = Scorer.from_store(str(latest.tag)).score_frame(customers, explain=False)
    challenger = Scorer.from_store(report["challenger_tag"]).score_frame(customers, explain=False)
    assert [a["probability"] for a in promoted] == [a["probability"] for a in challenger]
    assert {a["prediction"] for a in promoted} == {0, 1}


@pytest.mark.slow
def test_a_worse_challenger_is_not_promoted_and_latest_is_unchanged(runs):
    report = runs["worse"]
    assert report["champion_tag"] == runs["latest_after_better"]
    assert not report["decision"]["promote"]
    assert report["promoted_tag"] is None
    assert str(bentoml.models.get(f"{USE_CASE}:latest").tag) == runs["latest_after_better"]
    # The loser is kept under the challenger name, for the record, but never served.
    assert bentoml.models.get(report["challenger_tag"]).tag.name == f"{USE_CASE}{CHALLENGER_SUFFIX}"


@pytest.mark.slow
def test_the_report_holds_both_scores_the_decision_and_the_data_hash(runs):
    report = runs["worse"]
    run = runs["reports"] / USE_CASE / RETRAIN_DIRNAME / report["run"]
    saved = json.loads((run / "retrain.json").read_text())
    assert saved["decision"]["promote"] is False
    for role in ("champion", "challenger"):
        for metric in ("roc_auc", "pr_auc", "brier"):
            assert 0 <= saved["scores"][role][metric] <= 1
    # Shuffled labels: the challenger learned nothing (and the new labels cannot show
    # anything either), so it cannot beat the champion by more than the noise.
    assert saved["scores"]["challenger"]["roc_auc"] < 0.6
    assert saved["decision"]["gain"] < saved["decision"]["margin"]
    assert saved["data_sha256"]["data.table"] == file_sha256(Path(saved["data"]["data.table"]))
    assert saved["decision"]["margin"] > 0
    text = (run / "retrain.md").read_text()
    assert "**Kept.**" in text
    assert report["champion_tag"] in text and report["challenger_tag"] in text
    assert f"{saved['scores']['champion']['roc_auc']:.4f}" in text
    assert f"{saved['scores']['challenger']['roc_auc']:.4f}" in text
    assert "## Delayed labels" in text


@pytest.mark.slow
def test_the_champions_own_training_data_is_refused(runs, tmp_path):
    latest = bentoml.models.get(f"{USE_CASE}:latest")
    trained_on = Path(store.card(latest).spec.data.table)
    with pytest.raises(RetrainDataError, match="retraining needs new labeled data"):
        retrain(runs["spec_file"], trained_on, tmp_path, QUICK)
