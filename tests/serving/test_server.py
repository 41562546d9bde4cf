"""Integration tier: a real `bentoml serve` on a free port, spoken to with BentoML's own
client and with raw HTTP."""

import json
import os
from collections.abc import Iterator

import bentoml
import pytest

from core.names import PROJECT_ROOT
from loadtest.process import ServerProcess, bentoml_serve, free_port
from loadtest.process import http as _http

pytestmark = pytest.mark.slow


CONTRACT = json.loads((PROJECT_ROOT / "examples" / "credit_risk.json").read_text())


def http(method: str, url: str, body: bytes | None = None, content_type: str = "application/json"):
    """(status, text) of one request."""
    status, answer = _http(method, url, body, content_type)
    return status, answer.decode()


@pytest.fixture(scope="module")
def server(trained_tag, tmp_path_factory) -> Iterator[str]:
    """A real server for credit_risk; yields its base URL and stops it afterwards."""
    log = tmp_path_factory.mktemp("server") / "serve.log"
    env = {**os.environ, "RISKBENTO_MODEL_TAG": trained_tag("credit_risk")}
    server = ServerProcess("bentoml serve", bentoml_serve(free_port()), env, log)
    try:
        server.wait_ready()
        yield server.url
    finally:
        server.stop()


def test_contract_over_raw_http(server, trained_tag):
    status, text = http("POST", f"{server}/predict", json.dumps(CONTRACT).encode())
    assert status == 200
    answer = json.loads(text)
    assert answer["customer_id"] == "CUST001"
    assert isinstance(answer["probability"], float) and answer["prediction"] in (0, 1)
    assert answer["model"] == trained_tag("credit_risk")


def test_bentoml_client_gets_the_same_answer_single_and_batched(server):
    with bentoml.SyncHTTPClient(server) as client:
        single = client.predict(**CONTRACT)
        batch = client.predict_batch(records=[CONTRACT, {**CONTRACT, "customer_id": "B"}])
    _, raw = http("POST", f"{server}/predict", json.dumps(CONTRACT).encode())
    assert single["probability"] == json.loads(raw)["probability"]
    assert [a["customer_id"] for a in batch] == ["CUST001", "B"]
    assert batch[0]["probability"] == pytest.approx(single["probability"], abs=1e-12)


def test_user_mistakes_get_4xx_not_500(server):
    bad = {**CONTRACT, "has_rent": "yes"}
    status, text = http("POST", f"{server}/predict", json.dumps(bad).encode())
    assert status == 400 and "has_rent" in text and "got 'yes'" in text
    status, text = http("POST", f"{server}/predict", b"{not json")
    assert status == 400
    status, text = http("POST", f"{server}/predict", json.dumps(CONTRACT).encode(), "text/csv")
    assert status == 415 and "application/json" in text


def test_probes_metrics_docs_and_model_card(server, trained_tag):
    for probe in ("/healthz", "/livez", "/readyz"):
        assert http("GET", f"{server}{probe}")[0] == 200
    http("POST", f"{server}/predict", json.dumps(CONTRACT).encode())
    status, metrics = http("GET", f"{server}/metrics")
    assert status == 200 and 'endpoint="/predict"' in metrics
    status, page = http("GET", f"{server}/docs")
    assert status == 200 and "<html" in page.lower()
    status, card = http("GET", f"{server}/model")
    assert status == 200 and json.loads(card)["tag"] == trained_tag("credit_risk")


def _samples(metrics: str, name: str) -> dict[str, float]:
    """{label text: value} of one metric's samples in Prometheus text format."""
    out = {}
    for line in metrics.splitlines():
        if line.startswith(name + "{"):
            labels, value = line[len(name) :].rsplit(" ", 1)
            out[labels] = float(value)
    return out


def test_own_metrics_count_what_was_answered(server, trained_tag):
    """The tier counter and the warnings counter move by what the answers said."""
    before = http("GET", f"{server}/metrics")[1]
    odd = {**CONTRACT, "customer_id": "ODD", "num_transactions": 999}  # above the training max
    answers = [
        json.loads(http("POST", f"{server}/predict", json.dumps(record).encode())[1])
        for record in (CONTRACT, odd, odd)
    ]
    after = http("GET", f"{server}/metrics")[1]
    tiers = _samples(after, "riskbento_predictions_total")
    moved = {
        k: v - _samples(before, "riskbento_predictions_total").get(k, 0) for k, v in tiers.items()
    }
    for tier in {a["risk_tier"] for a in answers}:
        key = next(k for k in moved if f'tier="{tier}"' in k)
        assert moved[key] == sum(a["risk_tier"] == tier for a in answers)
    assert sum(moved.values()) == 3
    assert any("num_transactions" in w for w in answers[1]["warnings"])
    warned = _samples(after, "riskbento_warnings_total")
    key = next(k for k in warned if 'field="num_transactions"' in k and "out_of_range" in k)
    assert warned[key] - _samples(before, "riskbento_warnings_total").get(key, 0) == 2
    info = _samples(after, "riskbento_model_info")
    assert any(f'model_tag="{trained_tag("credit_risk")}"' in k for k in info)
    assert sum(_samples(after, "riskbento_reference_tier_share").values()) == pytest.approx(1.0)


def test_every_answer_is_logged_with_its_inputs_for_drift_checks(server, trained_tag):
    from serving.predlog import read_prediction_log

    record = {**CONTRACT, "customer_id": "LOGGED-1", "total_credit": 4321.0}
    answer = json.loads(http("POST", f"{server}/predict", json.dumps(record).encode())[1])
    log = read_prediction_log(os.environ["RISKBENTO_PREDICTION_LOG_DIR"], "credit_risk")
    row = log[log["customer_id"] == "LOGGED-1"].iloc[-1]
    assert row["total_credit"] == 4321.0
    assert row["probability"] == answer["probability"]
    assert row["risk_tier"] == answer["risk_tier"]
    assert row["model_tag"] == trained_tag("credit_risk")
