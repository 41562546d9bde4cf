"""Integration tier: the risk dashboard in a real browser (Debian's chromium, driven by
Playwright) against a real `bentoml serve` with 2 workers, a bearer token, and a
prediction log written by the real PredictionLog, aggregated by the real job.

It fails on any request to a host other than 127.0.0.1 and on any console error (the
400s and 401s the page provokes on purpose aside), and saves the screenshots the README
shows under reports/dashboard/."""

import csv
import io
import json
import os
import secrets
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from core.names import PROJECT_ROOT, USECASES_DIRNAME
from loadtest.process import ServerProcess, bentoml_serve, free_port
from serving.predlog import read_prediction_log

pytestmark = [pytest.mark.integration, pytest.mark.slow]

USE_CASE = "credit_risk"
TOKEN = secrets.token_urlsafe(24)
BATCH_LIMIT = 4  # the server's RISKBENTO_MAX_BATCH_RECORDS: the CSV goes in several chunks
TRAFFIC_ROWS = 240  # at least the spec's drift.min_rows (200)
DAYS = 3
SCREENSHOTS = PROJECT_ROOT / "reports" / "dashboard"
CONTRACT = json.loads((PROJECT_ROOT / "examples" / f"{USE_CASE}.json").read_text())

# Run in a fresh process (BentoML keeps one prediction-log path per monitor and process):
# log the hold-out as traffic, add rows the dashboard must not count (what-ifs, CSV
# uploads, a shadow's answers), spread the rows over DAYS days, then run the drift job
# and the dashboard job on that log.
_PREPARE = """
import json, sys
from datetime import datetime, timedelta
from pathlib import Path
from core.spec import load_spec
from jobs.traffic import make_traffic
from riskbento.__main__ import main
from serving.predlog import SHADOW, PredictionLog, log_files

spec_file, log, tag = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
rows, days = int(sys.argv[4]), int(sys.argv[5])
make_traffic(spec_file, log, rows=rows, model_tag=tag)
spec = load_spec(spec_file, check_data=False)
names = [spec.id_column, *spec.feature_names]
(file,) = log_files(log, spec.name)
logged = [json.loads(line) for line in file.read_text().splitlines()[:12]]
records = [{n: row[n] for n in names} for row in logged]
answers = [{k: row[k] for k in ("probability", "prediction", "risk_tier")} for row in logged]
extra = PredictionLog(spec, tag, log)
extra.log(records[:4], answers[:4], source="dashboard-whatif")
extra.log(records[4:8], answers[4:8], source="dashboard-csv")
extra.log(records[8:], answers[8:], "other:model", SHADOW)
lines = [json.loads(line) for line in file.read_text().splitlines()]
today = datetime.now().replace(hour=12, minute=0, second=0, microsecond=0)
for i, row in enumerate(lines):
    row["timestamp"] = (today - timedelta(days=i % days, seconds=i)).isoformat()
file.write_text("".join(json.dumps(row) + "\\n" for row in lines))
drift = main(["drift", spec_file, "--log", str(log), "--model-tag", tag])
assert drift in (0, 1), drift
assert main(["dashboard-data", spec_file, "--log", str(log), "--model-tag", tag]) == 0
"""


@pytest.fixture(scope="module")
def dashboard(trained_tag, tmp_project, tmp_path_factory) -> Iterator[dict]:
    """The served dashboard: base URL, the fixture log and the server's own log."""
    tag = trained_tag(USE_CASE)
    root = tmp_path_factory.mktemp("dashboard")
    log, served_log, reports = root / "log", root / "served-log", root / "reports"
    env = {
        **os.environ,
        "RISKBENTO_MODEL_TAG": tag,
        "RISKBENTO_WORKERS": "2",
        "RISKBENTO_REPORTS_DIR": str(reports),
        "RISKBENTO_PREDICTION_LOG_DIR": str(served_log),
        "RISKBENTO_MAX_BATCH_RECORDS": str(BATCH_LIMIT),
        "RISKBENTO_AUTH_TOKEN": TOKEN,
    }
    server = ServerProcess("bentoml serve", bentoml_serve(free_port()), env, root / "serve.log")
    try:
        spec_file = tmp_project / USECASES_DIRNAME / f"{USE_CASE}.yaml"
        args = [str(spec_file), str(log), tag, str(TRAFFIC_ROWS), str(DAYS)]
        done = subprocess.run(
            [sys.executable, "-c", _PREPARE, *args], cwd=PROJECT_ROOT, env=env,
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
        server.wait_ready()  # started first: it loads while the log is prepared
        yield {"url": server.url, "tag": tag, "log": log, "served_log": served_log}
    finally:
        server.stop()


def request(method: str, url: str, body: dict | None = None, token: str | None = TOKEN):
    """(status, parsed JSON or text) of one request to the server."""
    import urllib.error
    import urllib.request

    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as answer:
            status, text = answer.status, answer.read().decode()
    except urllib.error.HTTPError as err:
        status, text = err.code, err.read().decode()
    try:
        return status, json.loads(text)
    except json.JSONDecodeError:
        return status, text


def expected_tier_table(log: Path) -> dict[str, dict[str, int]]:
    """Per day, production answers of the champion per tier, counted from the log here."""
    frame = read_prediction_log(log, USE_CASE)
    counted = frame[(frame["role"] == "champion") & (frame["source"] == "production")]
    counts: dict[str, Counter] = {}
    for stamp, tier in zip(counted["timestamp"], counted["risk_tier"], strict=True):
        counts.setdefault(stamp[:10], Counter())[tier] += 1
    return {day: {t: c[t] for t in ("low", "medium", "high")} for day, c in counts.items()}


def csv_upload() -> tuple[bytes, list[dict], str]:
    """The example record and variations of it, and one row the API refuses."""
    rows, good = [], []
    for i in range(9):
        row = {
            **CONTRACT,
            "customer_id": f"CSV{i:02d}",
            "num_transactions": CONTRACT["num_transactions"] + 3 * i,
            "avg_amount": round(CONTRACT["avg_amount"] - 25.0 * i, 2),
            "has_salary": i % 2,
        }
        rows.append(row)
        good.append(row)
    bad_id = "CSV-BAD"
    rows.insert(5, {**CONTRACT, "customer_id": bad_id, "num_transactions": -3})
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[*CONTRACT, "note"], lineterminator="\n")
    writer.writeheader()
    writer.writerows({**row, "note": "a column the API does not take"} for row in rows)
    return out.getvalue().encode(), good, bad_id


def read_download(download) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(Path(download.path()).read_text())))


def test_the_dashboard_in_a_real_browser(chromium, dashboard):
    url = dashboard["url"]
    host = urlsplit(url).hostname
    # The token flow, as a client sees it: shell and assets open, data needs the token.
    for path in ("/dashboard/", "/dashboard/assets/app.js", "/dashboard/assets/app.css"):
        assert request("GET", url + path, token=None)[0] == 200, path
    for path in ("/dashboard/api/data", "/dashboard/api/form"):
        assert request("GET", url + path, token=None)[0] == 401, path
        assert request("GET", url + path)[0] == 200, path
    status, page = request("GET", url + "/docs", token=None)
    assert status == 200 and "swagger-ui" in page and "googletagmanager" not in page

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    outside: list[str] = []
    errors: list[str] = []
    allowed = {401: "/dashboard/api/form", 400: "/predict_batch"}  # provoked below

    def route(route):
        parts = urlsplit(route.request.url)
        if parts.scheme in ("http", "https", "ws", "wss") and parts.hostname != host:
            outside.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    def console(message):
        if message.type != "error":
            return
        where = message.location.get("url", "")
        expected = [
            s for s, p in allowed.items() if f"status of {s}" in message.text and where.endswith(p)
        ]
        if not expected:
            errors.append(f"{message.text} ({where})")

    with chromium(viewport={"width": 1280, "height": 800}, accept_downloads=True) as context:
        context.route("**/*", route)
        page = context.new_page()
        page.on("console", console)
        page.on("pageerror", lambda err: errors.append(f"page error: {err}"))
        page.goto(url + "/dashboard/")

        # No token yet: the page asks; a wrong one is refused, the right one opens it.
        page.wait_for_selector("#token-gate:not([hidden])")
        page.fill("#token-input", "x" * 20)
        page.click("#token-form button")
        page.wait_for_function("document.querySelector('#token-error').textContent !== ''")
        assert "refused" in page.inner_text("#token-error")
        page.fill("#token-input", TOKEN)
        page.click("#token-form button")
        page.wait_for_selector("#main:not([hidden])")
        assert page.evaluate("sessionStorage.getItem('riskbento-token')") == TOKEN
        assert page.evaluate("localStorage.length") == 0

        # Header from the model card; tier table = the log's production counts.
        page.wait_for_selector("#tier-table tbody tr[data-day]")
        assert dashboard["tag"] in page.inner_text("#card-facts")
        shown = page.eval_on_selector_all(
            "#tier-table tbody tr[data-day]",
            "rows => rows.map(r => [r.dataset.day, +r.dataset.low, +r.dataset.medium,"
            " +r.dataset.high])",
        )
        table = {day: {"low": lo, "medium": me, "high": hi} for day, lo, me, hi in shown}
        assert table == expected_tier_table(dashboard["log"])
        assert len(table) == DAYS

        # Drift table, largest PSI first.
        psi = page.eval_on_selector_all(
            "#drift-table tbody tr", "rows => rows.map(r => +r.dataset.psi)"
        )
        assert len(psi) >= 7 and psi == sorted(psi, reverse=True)

        # Action list: download what is shown.
        listed = page.eval_on_selector_all(
            "#action-table tbody tr", "rows => rows.map(r => r.dataset.id)"
        )
        assert listed
        with page.expect_download() as action_download:
            page.click("#action-download")
        assert [r["customer_id"] for r in read_download(action_download.value)] == listed

        # What-if: the same probability as a direct /predict of the record it sent,
        # then the move after one field changes.
        page.click("#whatif-score")
        page.wait_for_selector("#whatif-result[data-probability]")
        sent = json.loads(page.text_content("#whatif-request"))
        status, direct = request("POST", url + "/predict", sent)
        assert status == 200, direct
        assert (
            float(page.get_attribute("#whatif-result", "data-probability"))
            == (direct["probability"])
        )
        page.fill("#whatif-avg_amount", "-400")
        page.click("#whatif-score")
        page.wait_for_selector("#whatif-move")
        assert "avg_amount" in page.inner_text("#whatif-move")

        # A CSV with one bad row: the good rows scored and downloadable, the bad listed.
        body, good, bad_id = csv_upload()
        page.set_input_files(
            "#csv-file", {"name": "customers.csv", "mimeType": "text/csv", "buffer": body}
        )
        page.wait_for_selector("#csv-status[data-scored]", timeout=60_000)
        assert page.get_attribute("#csv-status", "data-scored") == str(len(good))
        assert page.get_attribute("#csv-status", "data-refused") == "1"
        bad = page.inner_text("#csv-bad-table tbody")
        assert bad_id in bad and "num_transactions" in bad
        assert "greater than or equal to 0" in bad
        with page.expect_download() as scored_download:
            page.click("#csv-download")
        scored = read_download(scored_download.value)
        assert [r["customer_id"] for r in scored] == [r["customer_id"] for r in good]
        _, direct = request("POST", url + "/predict", good[-1])
        assert float(scored[-1]["probability"]) == direct["probability"]

        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(SCREENSHOTS / "desktop.png"), full_page=True)

        # Phone width: nothing wider than the screen.
        page.set_viewport_size({"width": 390, "height": 844})
        page.wait_for_timeout(200)  # Chart.js redraws on resize
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the page is {width}px wide at 390px"
        page.evaluate("document.querySelector('#traffic').scrollIntoView()")
        page.screenshot(path=str(SCREENSHOTS / "phone.png"))

    assert not outside, f"requests to other hosts: {outside}"
    assert not errors, "console errors:\n" + "\n".join(errors)
    # The page's calls are logged with their source, never as production traffic.
    served = read_prediction_log(dashboard["served_log"], USE_CASE)
    sources = Counter(served.loc[served["role"] == "champion", "source"])
    assert sources["dashboard-whatif"] == 2
    assert sources["dashboard-csv"] == len(good)
    assert sources["production"] == 2  # this test's own direct /predict calls
