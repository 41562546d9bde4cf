"""Promotion from live evidence: the outcomes report's comparison decides; --force needs a
reason, which the promoted model records."""

import json
import os
import subprocess
import sys

import bentoml
import pytest

from core.errors import UserError
from core.names import PROJECT_ROOT, USECASES_DIRNAME
from model import store
from riskbento.__main__ import main
from training.promote import NotPromoted, promote_shadow

pytestmark = pytest.mark.slow  # trains a quick model first


@pytest.fixture
def shadow(trained_tag) -> str:
    """A challenger stored beside the credit_risk champion (a copy of it)."""
    champion = bentoml.models.get(trained_tag("credit_risk"))
    return str(store.copy(champion, "credit_risk_challenger").tag)


def _report(tmp_path, trained_tag, shadow, promote: bool, use_case="credit_risk"):
    decision = {"metric": "roc_auc", "promote": promote, "why": "gain 0.03 > margin 0.01"}
    comparison = {
        "champion": trained_tag("credit_risk"), "shadow": shadow, "paired": 800,
        "decision": decision, "recommendation": f"{'promote' if promote else 'keep'}: ...",
    }  # fmt: skip
    report = {
        "use_case": use_case, "written_at": "2026-11-29T10:00:00", "labels": {"sha256": "ab"},
        "comparisons": [comparison],
    }  # fmt: skip
    path = tmp_path / "outcomes.json"
    path.write_text(json.dumps(report))
    return path


def test_the_report_promotes_the_shadow_as_the_new_latest(tmp_path, trained_tag, shadow):
    path = _report(tmp_path, trained_tag, shadow, promote=True)
    tag = promote_shadow("credit_risk", path)
    assert str(bentoml.models.get("credit_risk:latest").tag) == tag
    card = store.card(bentoml.models.get(tag))
    assert card.promoted_from == shadow
    assert card.retrain["source"] == "outcomes" and card.retrain["forced"] is False
    assert card.retrain["decision"]["promote"] is True


def test_a_keep_recommendation_refuses_unless_forced_with_a_reason(tmp_path, trained_tag, shadow):
    path = _report(tmp_path, trained_tag, shadow, promote=False)
    with pytest.raises(NotPromoted, match="is not promoted: keep"):
        promote_shadow("credit_risk", path)
    tag = promote_shadow("credit_risk", path, force_reason="the old model's data source ends")
    card = store.card(bentoml.models.get(tag))
    assert card.retrain["forced"] is True
    assert card.retrain["reason"] == "the old model's data source ends"


def test_a_report_of_another_use_case_or_without_a_comparison_is_refused(
    tmp_path, trained_tag, shadow
):
    with pytest.raises(UserError, match="outcomes report of 'churn', not of 'credit_risk'"):
        promote_shadow("credit_risk", _report(tmp_path, trained_tag, shadow, True, "churn"))
    with pytest.raises(UserError, match="expected one champion-vs-shadow comparison for x:1"):
        promote_shadow("credit_risk", _report(tmp_path, trained_tag, shadow, True), "x:1")
    with pytest.raises(UserError, match="no outcomes report at"):
        promote_shadow("credit_risk", tmp_path / "missing.json")


@pytest.mark.integration
def test_the_local_loop_shadow_traffic_outcomes_then_promote(tmp_project, trained_tag, tmp_path):
    """traffic with a shadow and outcomes -> outcomes -> promote: an equal shadow is kept,
    and promoted only with --force and a reason."""
    champion = trained_tag("credit_risk")
    twin = str(store.copy(bentoml.models.get(champion), "credit_risk_challenger").tag)
    spec_file = str(tmp_project / USECASES_DIRNAME / "credit_risk.yaml")
    log, labels, out = tmp_path / "log", tmp_path / "labels.csv", tmp_path / "report"
    # In its own process: BentoML keeps the first log path a monitor was opened with.
    traffic = [
        sys.executable,
        "-m",
        "riskbento",
        "traffic",
        spec_file,
        "--out",
        str(log),
        "--model-tag",
        champion,
        "--shadow",
        twin,
        "--outcomes",
        str(labels),
    ]
    done = subprocess.run(traffic, cwd=PROJECT_ROOT, env=dict(os.environ), capture_output=True,
                          text=True, timeout=300, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    main(["outcomes", spec_file, "--labels", str(labels), "--log", str(log), "--out", str(out)])
    (comparison,) = json.loads((out / "outcomes.json").read_text())["comparisons"]
    assert (comparison["champion"], comparison["shadow"]) == (champion, twin)
    assert comparison["paired"] > 0 and comparison["decision"]["promote"] is False
    report = str(out / "outcomes.json")
    assert main(["promote", spec_file, "--outcomes", report]) == 2  # kept: not promoted
    assert main(["promote", spec_file, "--outcomes", report, "--force",
                 "--reason", "a data-source change"]) == 0  # fmt: skip
    card = store.card(bentoml.models.get("credit_risk:latest"))
    assert card.promoted_from == twin and card.retrain["reason"] == "a data-source change"
    assert card.retrain["paired_labels"] == comparison["paired"]
