"""`make bench SMOKE=1` end to end: in-process timings, riskbento and the FastAPI peers
served for real and loaded by `loadtest.loadgen`, the report files. Benchmarks are not
tests: nothing here asserts a latency, a rate or a ratio."""

import json

import pytest

from core.names import USECASES_DIRNAME

pytestmark = pytest.mark.slow

USE_CASE = "credit_risk"  # trained once a session, shared with the other server tests
SERVED_NUMBERS = ("rps", "rows_per_s", "p50_ms", "p95_ms", "p99_ms", "server_cores",
                  "client_cores", "other_cores")  # fmt: skip
SCENARIOS = {
    "riskbento /predict",
    "riskbento /predict_batch 1-record bodies",
    "riskbento /predict_batch 1,000-record bodies",
    "plain peer /predict (FastAPI + pandas pipeline)",
    "tuned peer /predict (FastAPI + fast path)",
    "tuned peer, riskbento's full answer /predict",
}


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value


@pytest.fixture(scope="module")
def smoke(trained_tag, tmp_project, tmp_path_factory, run_smoke):
    tag = trained_tag(USE_CASE)
    spec_file = tmp_project / USECASES_DIRNAME / f"{USE_CASE}.yaml"
    out = tmp_path_factory.mktemp("bench")
    return tag, out, run_smoke("loadtest.bench", spec_file, tag, out, timeout_s=900)


def test_report_files_name_the_machine_and_versions(smoke):
    tag, out, _ = smoke
    report = json.loads((out / f"serving_{USE_CASE}.json").read_text())
    assert report["smoke"] is True and report["model_tag"] == tag
    machine = report["machine"]
    assert machine["cores"] >= 1 and machine["cpu_model"]
    assert report["versions"]["bentoml"] and report["versions"]["fastapi"]
    png = (out / f"serving_{USE_CASE}.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    text = (out / f"serving_{USE_CASE}.md").read_text()
    assert f"{machine['cores']} cores" in text and "bentoml" in text
    for scenario in SCENARIOS:
        assert f"| {scenario} |" in text


def test_in_process_has_every_path_and_batch_size(smoke):
    _, out, _ = smoke
    inproc = json.loads((out / f"serving_{USE_CASE}.json").read_text())["in_process"]
    assert {"scoring function", "full pipeline", "model alone"} <= inproc["paths"].keys()
    for path in inproc["paths"]:
        per_record = inproc["per_record"][path]
        assert per_record["calls"] > 0
        assert _number(per_record["p50_us"]) and _number(per_record["p99_us"])
        for size in ("1", "10", "100", "1000", "10000"):
            assert inproc["batches"][path][size]["rows_per_s"] > 0


def test_every_served_scenario_ran_at_every_concurrency_without_errors(smoke):
    _, out, _ = smoke
    report = json.loads((out / f"serving_{USE_CASE}.json").read_text())
    concurrency = report["plan"]["concurrency"]
    served = report["served"]
    assert {(r["scenario"], r["concurrency"]) for r in served} == {
        (s, c) for s in SCENARIOS for c in concurrency
    }
    for run in served:
        assert run["ok"] > 0 and run["errors"] == 0, run
        assert all(_number(run[key]) for key in SERVED_NUMBERS), run
        assert run["server_processes"] and all(_number(p["cores"]) for p in run["server_processes"])
    # every server answered with the in-process probabilities
    assert all(s["max_abs_diff_probability"] < 1e-6 for s in report["servers"].values())


def test_ratios_targets_and_sweep_are_reported(smoke):
    _, out, stdout = smoke
    report = json.loads((out / f"serving_{USE_CASE}.json").read_text())
    ratios = report["ratios"]["by_concurrency"]
    assert [r["concurrency"] for r in ratios] == report["plan"]["concurrency"]
    for row in ratios:
        for key in ("predict_vs_plain", "predict_vs_tuned", "batch_1000_vs_inprocess_full_1000"):
            assert _number(row[key]), row
    assert len(report["targets"]) == 4
    assert all(isinstance(t["met"], bool | None) for t in report["targets"])
    assert report["sweep"] and all(
        r["errors"] == 0 and r["ok"] > 0 for entry in report["sweep"] for r in entry["results"]
    )
    assert "## c. Ratios" in stdout  # the tables are printed too
