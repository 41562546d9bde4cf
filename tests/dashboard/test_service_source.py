"""HTTP tier: what the service adds for the dashboard, in process: the source header of the
page's calls reaches the prediction log (and only then is read), an unknown source is a
400, `/` and `/docs` show the API page with no outside request, `/dashboard/` is served."""

import json
from types import ModuleType
from typing import Any

import pytest
from starlette.testclient import TestClient

from core.names import PROJECT_ROOT
from serving.predlog import PRODUCTION, PredictionLog

pytestmark = pytest.mark.slow  # trains a quick model first

CONTRACT = json.loads((PROJECT_ROOT / "examples" / "credit_risk.json").read_text())
HEADER = "X-Riskbento-Source"


@pytest.fixture(scope="module")
def client(serve) -> tuple[TestClient, ModuleType]:
    return serve("credit_risk")


@pytest.fixture
def logged(monkeypatch) -> list[tuple[int, str]]:
    """(records, source) of every block the service logs during the test."""
    calls: list[tuple[int, str]] = []
    real = PredictionLog.log

    def spy(self, records, answers, model_tag=None, role="champion", source=PRODUCTION) -> Any:
        calls.append((len(records), source))
        return real(self, records, answers, model_tag, role, source)

    monkeypatch.setattr(PredictionLog, "log", spy)
    return calls


def test_a_marked_predict_is_logged_with_its_source_and_scored_the_same(client, logged):
    test_client, _ = client
    plain = test_client.post("/predict", json=CONTRACT).json()
    marked = test_client.post("/predict", json=CONTRACT, headers={HEADER: "dashboard-whatif"})
    assert marked.status_code == 200 and marked.json() == plain
    assert logged == [(1, PRODUCTION), (1, "dashboard-whatif")]


def test_a_marked_batch_is_logged_with_its_source(client, logged):
    test_client, module = client
    records = [{**CONTRACT, "customer_id": f"B{i}"} for i in range(3)]
    plain = test_client.post("/predict_batch", json={"records": records}).json()
    marked = test_client.post(
        "/predict_batch", json={"records": records}, headers={HEADER: "dashboard-csv"}
    )
    assert marked.status_code == 200 and marked.json() == plain
    assert logged == [(3, PRODUCTION), (3, "dashboard-csv")]
    assert module.MARKED.waiting == 0  # every stamp taken off again
    assert all(module.SOURCE_KEY not in a for a in marked.json())


def test_records_of_several_sources_in_one_batch_are_logged_apart(client):
    """Adaptive batching may merge a marked request with production ones: each run of one
    source is logged as such (None: production)."""
    _, module = client
    calls: list[tuple[list[str], str | None]] = []

    class Service:
        def answers(self, rows):
            return [{"customer_id": r["customer_id"]} for r in rows]

        def log(self, records, answers, source=None):
            calls.append(([r["customer_id"] for r in records], source))

    rows = [{**CONTRACT, "customer_id": f"M{i}"} for i in range(4)]
    rows[1][module.SOURCE_KEY] = rows[2][module.SOURCE_KEY] = "dashboard-csv"
    module.MARKED.waiting += 2
    answers = module.RiskService.inner._score_marked(Service(), rows)
    assert [a["customer_id"] for a in answers] == ["M0", "M1", "M2", "M3"]
    assert calls == [(["M0"], None), (["M1", "M2"], "dashboard-csv"), (["M3"], None)]
    assert module.MARKED.waiting == 0 and all(module.SOURCE_KEY not in r for r in rows)


def test_an_unknown_source_is_a_400_naming_the_known_ones(client, logged):
    test_client, _ = client
    answer = test_client.post("/predict", json=CONTRACT, headers={HEADER: "nightly-job"})
    assert answer.status_code == 400
    assert "dashboard-whatif" in answer.json()["error"] and "nightly-job" in answer.json()["error"]
    assert logged == []
    same = test_client.post("/predict", json=CONTRACT, headers={HEADER: PRODUCTION})
    assert same.status_code == 200 and logged == [(1, PRODUCTION)]


def test_the_api_page_loads_nothing_from_another_host(client):
    test_client, _ = client
    answer = test_client.get("/", follow_redirects=False)
    assert answer.status_code in (302, 307) and answer.headers["location"] == "/docs"
    page = test_client.get("/docs").text
    assert "swagger-ui-bundle.js" in page and "googletagmanager" not in page
    assert "validatorUrl: null" in page and "http" not in page.replace("/docs.json", "")
    assert test_client.get("/static_content/swagger-ui-bundle.js").status_code == 200


def test_the_dashboard_shell_and_its_form_data(client):
    test_client, _ = client
    shell = test_client.get("/dashboard/")
    assert shell.status_code == 200 and 'data-token-required="false"' in shell.text
    form = test_client.get("/dashboard/api/form").json()
    assert form["id_column"] == "customer_id" and set(form["typical"]) >= {"num_transactions"}
    assert test_client.get("/dashboard/assets/vendor/chart.umd.min.js").status_code == 200
    assert test_client.get("/dashboard/assets/vendor/chart.js-LICENSE.md").status_code == 200


def test_marked_raw_transactions_are_logged_with_their_source(client, logged):
    test_client, _ = client
    body = json.loads((PROJECT_ROOT / "examples" / "credit_risk_transactions.json").read_text())
    answer = test_client.post("/score_transactions", json=body, headers={HEADER: "dashboard-csv"})
    assert answer.status_code == 200, answer.text
    assert logged == [(len(answer.json()["customers"]), "dashboard-csv")]
