"""Batch outputs (`make score`) from a stored model: files, numbers, and honest reasons."""

import re

import bentoml
import pandas as pd
import pytest

from jobs.batch import score_use_case, unlabeled_frame
from model import store
from model.scorer import Scorer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def scored(trained_tag, tmp_project, tmp_path_factory):
    """`scored("offboarding")` -> (outputs folder, spec file) after `score_use_case`."""
    out = tmp_path_factory.mktemp("outputs")

    def _run(use_case: str):
        trained_tag(use_case)
        spec_file = tmp_project / "usecases" / f"{use_case}.yaml"
        score_use_case(spec_file, out)
        return out / use_case, spec_file

    return _run


def test_default_results_cover_every_unlabeled_row(scored, builtin_spec, trained_tag):
    folder, _ = scored("default")
    spec = builtin_spec("default")
    results = pd.read_csv(folder / "results.csv")
    table = pd.read_csv(spec.resolve(spec.data.table), usecols=["uuid", "default"])
    assert list(results.columns[:3]) == ["uuid", "probability", "prediction"]
    assert sorted(results["uuid"]) == sorted(table.loc[table["default"].isna(), "uuid"])
    threshold = store.card(bentoml.models.get(trained_tag("default"))).threshold.value
    assert results["probability"].between(0, 1).all()
    assert (results["prediction"] == (results["probability"] >= threshold)).all()


def test_filing_holdout_is_scored_with_its_metrics(scored):
    folder, _ = scored("filing_dropoff")
    holdout = pd.read_csv(folder / "holdout_scores.csv")
    assert len(holdout) == 1_000 and set(holdout["label"]) == {0, 1}
    text = (folder / "holdout_metrics.md").read_text()
    roc_auc = float(re.search(r"\| roc_auc \| ([0-9.]+) \|", text).group(1))
    assert roc_auc > 0.7
    assert "never used in training" in text and "filing_dropoff:" in text


def test_offboarding_reasons_state_only_true_facts(scored, builtin_spec, trained_tag):
    folder, _ = scored("offboarding")
    spec = builtin_spec("offboarding")
    scorer = Scorer.from_store(trained_tag("offboarding"))
    features = unlabeled_frame(spec, scorer.amount_cap).set_index(spec.id_column)
    listed = pd.read_csv(folder / "offboarding_list.csv", keep_default_na=False)
    criteria = spec.action_list
    assert len(listed) > 0
    header = (folder / "offboarding_list.md").read_text()
    assert all(rule.describe() in header for rule in criteria.rules)
    for _, row in listed.iterrows():
        customer = features.loc[row["customer_id"]]
        assert row["probability"] >= criteria.min_probability
        stated = row["facts"]
        holding = 0
        for rule in criteria.rules:
            holds = bool(rule.holds(pd.Series([customer[rule.feature]])).iloc[0])
            assert (rule.label in stated) == holds, (row["customer_id"], rule.feature)
            if holds:
                holding += 1
                assert f"{rule.feature} = {customer[rule.feature]:,.4g}" in stated
        assert holding >= criteria.min_rules


def test_segments_profile_every_tier_present(scored):
    folder, _ = scored("offboarding")
    text = (folder / "segments.md").read_text()
    results = pd.read_csv(folder / "results.csv")
    counts = results["risk_tier"].value_counts()
    row = next(line for line in text.splitlines() if line.startswith("| customers |"))
    shown = [int(c) for c in row.strip("|").split("|")[1:]]
    tiers = [t for t in ("low", "medium", "high") if t in counts]
    assert shown == [int(counts[t]) for t in tiers]


def test_score_file_carries_protected_attributes_and_reports_a_missing_one(
    trained_tag, tmp_project, tmp_path, capsys
):
    """credit_risk declares `age_band` (not a feature): a file with it gets it back beside
    each answer; a file without it is scored, and the missing column is reported."""
    from core.logs import setup
    from jobs.batch import score_file

    setup()  # the command's log lines on stdout, as `riskbento score-file` prints them
    trained_tag("credit_risk")
    spec_file = tmp_project / "usecases" / "credit_risk.yaml"
    data = tmp_project / "data" / "credit_risk"
    labels = pd.read_csv(data / "labels.csv", dtype={"customer_id": "string"}).head(50)
    with_band = tmp_path / "with.csv"
    labels.to_csv(with_band, index=False)
    out = score_file(spec_file, with_band, tmp_path / "a.csv", data / "transactions.csv")
    answers = pd.read_csv(out, dtype={"customer_id": "string"})
    assert answers["age_band"].tolist() == labels["age_band"].tolist()
    assert "not in" not in capsys.readouterr().out

    without = tmp_path / "without.csv"
    labels.drop(columns=["age_band"]).to_csv(without, index=False)
    out = score_file(spec_file, without, tmp_path / "b.csv", data / "transactions.csv")
    assert "age_band" not in pd.read_csv(out).columns
    assert "protected attribute(s) ['age_band'] are not in" in capsys.readouterr().out
