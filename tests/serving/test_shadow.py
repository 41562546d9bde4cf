"""A shadow challenger beside the champion: every record scored by both, the caller
served by the champion alone, both answers in the prediction log."""

import json
import os
import subprocess
import sys
import threading
from types import SimpleNamespace

import bentoml
import numpy as np
import pytest

from core.names import PROJECT_ROOT
from loadtest.process import ServerProcess, bentoml_serve, free_port
from loadtest.process import http as raw_http
from model import store
from model.scorer import Scorer
from serving.predlog import read_prediction_log
from serving.shadow import Shadow, compatibility

EXAMPLE = json.loads((PROJECT_ROOT / "examples" / "credit_risk.json").read_text())
THRESHOLD_SHIFT = -0.05  # the challenger flags more customers: decisions disagree


@pytest.fixture(scope="module")
def challenger(trained_tag) -> str:
    """The champion's pipeline stored as `credit_risk_challenger` with a lower threshold."""
    champion = bentoml.models.get(trained_tag("credit_risk"))
    card = store.card(champion)
    threshold = card.threshold.model_copy(update={"value": card.threshold.value + THRESHOLD_SHIFT})
    saved = store.copy(
        champion, "credit_risk_challenger", card.model_copy(update={"threshold": threshold})
    )
    return str(saved.tag)


def _metric(metrics: str, name: str) -> float:
    lines = metrics.splitlines()
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith(name))


@pytest.mark.slow
@pytest.mark.integration
def test_every_record_is_shadow_scored_and_logged_and_the_caller_gets_the_champion(
    trained_tag, challenger, tmp_path
):
    env = {
        **os.environ,
        "RISKBENTO_MODEL_TAG": trained_tag("credit_risk"),
        "RISKBENTO_SHADOW_TAG": challenger,
        "RISKBENTO_WORKERS": "1",
        "RISKBENTO_PREDICTION_LOG_DIR": str(tmp_path / "log"),
    }
    server = ServerProcess("bentoml serve", bentoml_serve(free_port()), env, tmp_path / "s.log")
    records = [
        {**EXAMPLE, "customer_id": f"S{i}", "avg_amount": 10.0 * i, "num_transactions": i}
        for i in range(30)
    ]
    try:
        server.wait_ready()
        answers = [json.loads(raw_http("POST", f"{server.url}/predict", json.dumps(r).encode())[1])
                   for r in records[:10]]  # fmt: skip
        body = json.dumps({"records": records[10:]}).encode()
        answers += json.loads(raw_http("POST", f"{server.url}/predict_batch", body)[1])
        metrics = b""
        for _ in range(50):  # the shadow scores after the answers left
            metrics = raw_http("GET", f"{server.url}/metrics")[1]
            if _metric(metrics.decode(), "riskbento_shadow_score_difference_count") == 30:
                break
            threading.Event().wait(0.1)
    finally:
        server.stop()
    champion = Scorer.from_store(trained_tag("credit_risk"))
    expected = champion.score_records(records, explain=True)
    assert answers == expected  # the caller's answers: the champion's, untouched
    log = read_prediction_log(tmp_path / "log")
    by_role = {role: rows for role, rows in log.groupby("role")}
    assert list(by_role["champion"]["model_tag"].unique()) == [trained_tag("credit_risk")]
    assert list(by_role["shadow"]["model_tag"].unique()) == [challenger]
    assert sorted(by_role["shadow"]["customer_id"]) == sorted(r["customer_id"] for r in records)
    p = np.array([a["probability"] for a in expected])
    challenger_threshold = store.card(bentoml.models.get(challenger)).threshold.value
    differ = int(((p >= champion.card.threshold.value) != (p >= challenger_threshold)).sum())
    text = metrics.decode()
    assert _metric(text, 'riskbento_shadow_disagreement_total{kind="decision"') == differ > 0
    assert _metric(text, "riskbento_shadow_failures_total") == 0


class _Count:
    def __init__(self) -> None:
        self.n = 0

    def inc(self, k: int = 1) -> None:
        self.n += k


def _stub_metrics() -> SimpleNamespace:
    return SimpleNamespace(
        failures=_Count(), skipped=_Count(), disagree_decision=_Count(), disagree_tier=_Count(),
        score_difference=SimpleNamespace(observe=lambda value: None),
    )  # fmt: skip


def test_a_failing_challenger_is_counted_and_never_reaches_the_caller():
    class Broken:
        tag = "broken:1"

        def score_records(self, records, explain):
            raise RuntimeError("challenger bug")

    metrics = _stub_metrics()
    shadow = Shadow(Broken(), None, metrics, max_pending=8)
    answers = [{"probability": 0.1, "prediction": 0, "risk_tier": "low"}]
    shadow.submit([{"customer_id": "A"}], answers)  # returns: the caller is not kept waiting
    shadow._thread.shutdown(wait=True)
    assert metrics.failures.n == 1
    assert answers == [{"probability": 0.1, "prediction": 0, "risk_tier": "low"}]


def test_a_full_queue_skips_the_challenger_and_counts_it():
    release = threading.Event()

    class Slow:
        tag = "slow:1"

        def score_records(self, records, explain):
            release.wait(10)
            return [{"probability": 0.1, "prediction": 0, "risk_tier": "low"} for _ in records]

    metrics = _stub_metrics()
    shadow = Shadow(Slow(), None, metrics, max_pending=2)
    answer = {"probability": 0.1, "prediction": 0, "risk_tier": "low"}
    for _ in range(5):
        shadow.submit([{"customer_id": "A"}], [answer])
    release.set()
    shadow._thread.shutdown(wait=True)
    assert metrics.skipped.n == 3 and metrics.failures.n == 0


def test_a_challenger_reading_other_records_is_named(trained_tag):
    credit = store.card(bentoml.models.get(trained_tag("credit_risk")))
    filing = store.card(bentoml.models.get(trained_tag("filing_dropoff")))
    assert compatibility(credit, credit) is None
    assert "id column 'user_id'" in compatibility(credit, filing)
    spec = credit.spec.model_copy(update={"features": credit.spec.features[1:]})
    fewer = credit.model_copy(update={"spec": spec})
    assert "lacks ['num_transactions']" in compatibility(credit, fewer)


@pytest.mark.parametrize(
    ("shadow_tag", "message"),
    [
        ("nope:abc", "error: shadow challenger (RISKBENTO_SHADOW_TAG): no model 'nope:abc'"),
        ("filing", "cannot read"),
    ],
)
def test_the_service_refuses_to_start_with_a_shadow_it_cannot_use(trained_tag, shadow_tag, message):
    if shadow_tag == "filing":
        shadow_tag = trained_tag("filing_dropoff")
    env = {**os.environ, "RISKBENTO_MODEL_TAG": trained_tag("credit_risk")}
    env["RISKBENTO_SHADOW_TAG"] = shadow_tag
    done = subprocess.run([sys.executable, "-c", "import service"], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]
