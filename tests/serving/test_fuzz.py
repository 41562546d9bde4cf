"""Integration tier: a property-based fuzzer of the served OpenAPI (`fuzzing.py`, fixed
seed) against a real `bentoml serve` of every built-in use case, one server at a time."""

import json
import os
from collections.abc import Iterator

import hypothesis.configuration
import pytest
from fuzzing import FUZZED_CASES, fuzz

from core.names import BUILTIN_USE_CASES
from core.spec import load_spec
from loadtest.process import ServerProcess, bentoml_serve, free_port, http

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def _hypothesis_home(tmp_path_factory) -> None:
    # Hypothesis caches what it generates under ./.hypothesis: not in the repo.
    hypothesis.configuration.set_hypothesis_home_dir(tmp_path_factory.mktemp("hypothesis"))


@pytest.fixture(scope="module", params=BUILTIN_USE_CASES)
def server(request, trained_tag, tmp_path_factory) -> Iterator[tuple[str, str]]:
    """(use case, base URL) of a real server for that use case, stopped after its tests."""
    use_case = request.param
    log = tmp_path_factory.mktemp(f"fuzz-{use_case}") / "serve.log"
    env = {**os.environ, "RISKBENTO_MODEL_TAG": trained_tag(use_case)}
    process = ServerProcess("bentoml serve", bentoml_serve(free_port()), env, log)
    try:
        process.wait_ready()
        yield use_case, process.url
    finally:
        process.stop()


def test_fuzzed_requests_get_no_5xx_a_4xx_naming_the_field_or_a_documented_2xx(server):
    use_case, url = server
    run = fuzz(url)
    expected = {"POST /predict", "POST /predict_batch"}
    expected |= {f"GET {path}" for path in ("/livez", "/readyz", "/healthz", "/metrics")}
    if load_spec(use_case, check_data=False).data.transactions is not None:
        expected.add("POST /score_transactions")
    assert expected <= set(run.cases), f"not in /docs.json: {sorted(expected - set(run.cases))}"
    # Every request body got the whole fuzzing budget: the fuzzer cannot pass by not running.
    short = {op: n for op, n in run.cases.items() if op.startswith("POST") and n < FUZZED_CASES}
    assert not short, f"fewer than {FUZZED_CASES} cases: {short}"
    if run.findings:
        pytest.fail(f"{use_case}, requests sent {dict(run.cases)}:\n{run.report()}", pytrace=False)


def test_model_card_and_docs_page_not_in_the_openapi_answer_get(server, trained_tag):
    use_case, url = server
    status, card = http("GET", f"{url}/model")
    assert status == 200 and json.loads(card)["tag"] == trained_tag(use_case)
    status, page = http("GET", f"{url}/docs")
    assert status == 200 and b"<html" in page.lower()
