"""Integration tier: a real `bentoml serve` on a free port, spoken to with BentoML's own
client and with raw HTTP."""

import json
import os
from collections.abc import Iterator

import bentoml
import pytest

from loadtest.process import ServerProcess, bentoml_serve, free_port
from loadtest.process import http as _http
from riskbento.constants import PROJECT_ROOT

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
