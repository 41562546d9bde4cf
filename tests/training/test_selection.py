"""Which model is stored: the simplest good enough, refitted on train + test on small
data, with its calibrator, and the report saying so."""

import json

import numpy as np
import pytest

from features.tabular import prepare_frame
from model import store
from model.scorer import find_model
from training.candidates import Candidate
from training.selection import RULE, choose
from training.train import CVResult, EncodedFolds, assemble, cross_validate, refit_rule

COSTS = {"fast": 20.0, "middling": 150.0, "slow": 400.0, "fastest": 5.0}


def _result(name: str, mean: float, std: float = 0.02) -> CVResult:
    scores = [mean - std, mean + std, mean - std, mean + std, mean]  # mean, ~std, 5 folds
    return CVResult(Candidate(name, {}), scores, oof=np.zeros(1))


def _costs(results):
    return {r.candidate.label: {"single": COSTS[r.candidate.family], "batch_1000": 1.0}
            for r in results}  # fmt: skip


def test_the_cheapest_within_one_standard_error_of_the_best_wins(builtin_spec):
    spec = builtin_spec("credit_risk")  # roc_auc: higher is better
    best, close, far = _result("slow", 0.820), _result("fast", 0.814), _result("fastest", 0.790)
    results = [best, close, far]
    champion, challenger, record = choose(spec, results, _costs(results), results)
    assert champion is close and challenger is best
    assert record["rule"] == RULE and record["best_by_score"] == best.candidate.label
    assert record["within"] == [best.candidate.label, close.candidate.label]
    assert record["standard_error"] == pytest.approx(best.std / np.sqrt(5))


def test_a_lower_is_better_metric_flips_the_margin(builtin_spec):
    spec = builtin_spec("credit_risk").model_copy(update={"selection_metric": "log_loss"})
    best, close = _result("slow", 0.300), _result("fast", 0.306)
    worse = _result("fastest", 0.340)
    results = [worse, close, best]
    champion, _, record = choose(spec, results, _costs(results), results)
    assert champion is close and record["best_by_score"] == best.candidate.label


def test_with_one_family_the_challenger_is_its_next_best_configuration(builtin_spec):
    spec = builtin_spec("credit_risk")
    winner, runner = _result("fast", 0.82), _result("middling", 0.81)
    champion, challenger, _ = choose(spec, [winner], _costs([winner]), [winner, runner])
    assert champion is winner and challenger is runner


def test_refit_applies_below_the_small_data_rows_unless_turned_off(builtin_spec):
    spec = builtin_spec("credit_risk")
    assert refit_rule(spec, 4_999)["applied"]
    assert not refit_rule(spec, 5_000)["applied"]
    off = spec.model_copy(
        update={"training": spec.training.model_copy(update={"refit_with_test": False})}
    )
    assert not refit_rule(off, 100)["applied"]
    assert "turned off in the spec" in refit_rule(off, 100)["why"]


def test_a_small_use_case_is_refitted_on_train_and_test_only(trained_tag, builtin_spec):
    model = find_model(trained_tag("credit_risk"))  # 3,000 labeled rows
    card = store.card(model)
    splits = store.read_csv(model, store.SPLITS_FILE)["split"].value_counts()
    assert card.refit["applied"] is True
    assert card.refit["rows"] == splits["train"] + splits["test"] < splits.sum()
    # The stored test scores are what the stored model says (served answers match them).
    assert len(store.test_scores(model)) == splits["test"]


def test_the_report_states_rule_calibration_and_refit(trained_tag, trained_reports):
    tag = trained_tag("credit_risk")
    report = json.loads((trained_reports / "credit_risk" / "training.json").read_text())
    assert report["model_tag"] == tag
    text = (trained_reports / "credit_risk" / "training.md").read_text()
    assert RULE in text and report["selection"]["chosen"] in text
    assert f"Chosen: **{report['calibration']['method']}**" in text
    ece = report["calibration"]["test_ece"]
    assert f"ECE before calibration {ece['before']:.4f}, after {ece['after']:.4f}" in text
    assert "refitted on train + test" in text
    # every family winner carries a measured serving cost; the champion is one of them
    costs = report["selection"]["serving_us"]
    assert report["champion"]["candidate"] in costs
    assert all(c["single"] > 0 and c["batch_1000"] > 0 for c in costs.values())


def test_the_constraints_reached_the_built_in_specs(builtin_spec):
    for name in ("credit_risk", "default", "offboarding"):
        assert any(f.monotone for f in builtin_spec(name).features), name


@pytest.mark.parametrize(
    "candidate",
    [
        Candidate("logistic_regression", {"C": 1.0}, "weights"),
        Candidate("random_forest", {"max_depth": 6}),
        Candidate("xgboost", {"n_estimators": 30}, "undersample"),
    ],
    ids=lambda c: c.family,
)
def test_folds_encoded_once_score_exactly_as_whole_pipelines(builtin_spec, candidate):
    spec = builtin_spec("filing_dropoff")
    data = assemble(spec)
    X, y = prepare_frame(data.frame, spec).iloc[:1500], data.y[:1500]
    alone = cross_validate(spec, candidate, X, y, seed=0, folds=3)
    shared = cross_validate(spec, candidate, X, y, 0, 3, EncodedFolds(X, y, 0, 3))
    np.testing.assert_array_equal(shared.oof, alone.oof)
    assert shared.fold_scores == alone.fold_scores
