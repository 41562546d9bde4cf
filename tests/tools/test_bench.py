"""`make bench SMOKE=1` end to end: in-process timings, riskbento and the FastAPI peers
served for real and loaded by `loadtest.loadgen`, the report files; two use cases in one
run and the cross-use-case table built from their reports. Benchmarks are not tests:
nothing here asserts a latency, a rate or a ratio."""

import json
import os
import subprocess
import sys

import pytest

from core.names import BUILTIN_USE_CASES, PROJECT_ROOT, USECASES_DIRNAME
from loadtest import bench

slow = pytest.mark.slow

USE_CASE = "credit_risk"  # trained once a session, shared with the other server tests
TWO = ("credit_risk", "filing_dropoff")  # both trained by other tests of a full session
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


@slow
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


@slow
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


@slow
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


@slow
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


# ---- several use cases, the cross-use-case table


@pytest.fixture(scope="module")
def two(trained_tag, tmp_project, tmp_path_factory):
    """`--use-case a,b` in one smoke run, cut to what the table reads: /predict and
    1,000-record bodies at c=8 and 32, the plain peer only (the tuned ones stay missing)."""
    for name in TWO:
        trained_tag(name)  # each runs its <name>:latest: this session's store holds it
    specs = ",".join(str(tmp_project / USECASES_DIRNAME / f"{name}.yaml") for name in TWO)
    out = tmp_path_factory.mktemp("bench_two")
    command = [
        sys.executable, "-m", "loadtest.bench", "--use-case", specs, "--smoke",
        "--only", "single,batch_big", "--peers", "plain", "--concurrency", "8,32",
        "--out", str(out),
    ]  # fmt: skip
    finished = subprocess.run(
        command, cwd=PROJECT_ROOT, env=dict(os.environ), capture_output=True, text=True,
        timeout=600, check=False,
    )  # fmt: skip
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    return out, finished.stdout


def _reports(out):
    return {name: json.loads((out / f"serving_{name}.json").read_text()) for name in TWO}


@slow
@pytest.mark.integration
def test_several_use_cases_run_in_turn_without_the_sweep(two):
    out, stdout = two
    for name, report in _reports(out).items():
        assert report["use_case"] == name and report["model_tag"].startswith(f"{name}:")
        assert report["sweep"] == []  # several use cases: no sweep unless --sweep
        assert (out / f"serving_{name}.md").exists() and (out / f"serving_{name}.png").exists()
        assert (out / "serving_logs" / name / "server_riskbento.log").exists()
    assert "# Serving benchmark across use cases" in stdout  # the table is printed too


@slow
@pytest.mark.integration
def test_cross_table_has_one_row_per_use_case_with_its_champion(two):
    from model import store
    from model.scorer import find_model

    out, _ = two
    table = json.loads((out / "serving_all.json").read_text())
    assert table["use_cases"] == list(TWO)
    assert table["machine"]["cores"] >= 1 and table["versions"]["bentoml"]
    text = (out / "serving_all.md").read_text()
    for row in table["rows"]:
        champion = store.card(find_model(row["model_tag"])).champion
        assert (row["champion_family"], row["champion_candidate"]) == (
            champion.family, champion.candidate,
        )  # fmt: skip
        lines = [line for line in text.splitlines() if line.startswith(f"| {row['use_case']} |")]
        assert len(lines) == 1 and f"`{row['model_tag']}`" in lines[0]
        assert f"| {champion.family} |" in lines[0]


@slow
@pytest.mark.integration
def test_cross_table_ratios_are_the_reports_own(two):
    out, _ = two
    reports = _reports(out)
    for row in json.loads((out / "serving_all.json").read_text())["rows"]:
        report = reports[row["use_case"]]
        at_32 = next(r for r in report["ratios"]["by_concurrency"] if r["concurrency"] == 32)
        assert _number(row["vs_plain"]) and row["vs_plain"] == at_32["predict_vs_plain"]
        targets = {t["key"]: t for t in report["targets"]}
        assert set(row["targets"]) == set(targets) == {
            "vs_plain", "vs_tuned_full", "p99", "batch_share",
        }  # fmt: skip
        for key, target in row["targets"].items():
            assert (target["value"], target["met"]) == (targets[key]["value"], targets[key]["met"])
        assert row["batch_vs_inprocess_full"] == targets["batch_share"]["value"]
        assert _number(row["batch_vs_inprocess_full"])
        predict_32 = next(p for p in row["predict"] if p["concurrency"] == 32)
        assert predict_32["p99_ms"] == targets["p99"]["value"]
        inproc = report["in_process"]
        assert (
            row["us_per_record"]["full pipeline"] == inproc["per_record"]["full pipeline"]["p50_us"]
        )


@slow
@pytest.mark.integration
def test_a_missing_peer_or_concurrency_is_na_not_a_crash(two):
    out, _ = two
    text = (out / "serving_all.md").read_text()
    for row in json.loads((out / "serving_all.json").read_text())["rows"]:
        # the tuned peers did not run, nor c=64
        assert row["vs_tuned_full"] is None and row["vs_tuned"] is None
        assert row["targets"]["vs_tuned_full"]["met"] is None
        assert next(p for p in row["predict"] if p["concurrency"] == 64)["rps"] is None
    assert "n/a (not measured)" in text


@slow
@pytest.mark.integration
def test_table_only_rebuilds_the_table_from_saved_reports(two):
    out, _ = two
    written = json.loads((out / "serving_all.json").read_text())
    (out / "serving_all.json").unlink()
    bench.main(["--table-only", "--out", str(out)])  # every serving_<name>.json found there
    rebuilt = json.loads((out / "serving_all.json").read_text())
    by_name = {row["use_case"]: row for row in rebuilt["rows"]}
    assert by_name == {row["use_case"]: row for row in written["rows"]}


def test_model_tag_with_several_use_cases_is_refused(capsys):
    with pytest.raises(SystemExit) as refused:
        bench.main(["--use-case", "credit_risk,filing_dropoff", "--model-tag", "credit_risk:x"])
    assert refused.value.code == 2
    error = capsys.readouterr().err
    assert "--model-tag names one model" in error and "credit_risk, filing_dropoff" in error


def test_use_cases_default_all_and_the_sweep():
    assert bench.parse([]).use_cases == ["credit_risk", "filing_dropoff"]
    assert bench.parse(["--use-case", "all"]).use_cases == list(BUILTIN_USE_CASES)
    assert bench.plan_of(bench.parse(["--use-case", "churn"])).sweep is True
    assert bench.plan_of(bench.parse(["--use-case", "churn", "--no-sweep"])).sweep is False
    assert bench.plan_of(bench.parse(["--use-case", "churn,default"])).sweep is False
    assert bench.plan_of(bench.parse(["--use-case", "churn,default", "--sweep"])).sweep is True
