"""`make soak SMOKE=1` end to end: a real `bentoml serve` under steady traffic and bursts,
sampled per worker, every answer checked against the prediction log. A soak is not a
benchmark: nothing here asserts a latency, a rate or a slope."""

import json

import pytest

from core.names import USECASES_DIRNAME

pytestmark = pytest.mark.slow

USE_CASE = "credit_risk"  # trained once a session, shared with the other server tests
WORKERS = 2  # the default setting


@pytest.fixture(scope="module")
def smoke(trained_tag, tmp_project, tmp_path_factory, run_smoke):
    tag = trained_tag(USE_CASE)
    spec_file = tmp_project / USECASES_DIRNAME / f"{USE_CASE}.yaml"
    out = tmp_path_factory.mktemp("soak")
    stdout = run_smoke("loadtest.soak", spec_file, tag, out, timeout_s=300)
    return tag, out, json.loads((out / "soak.json").read_text()), stdout


def test_every_request_answered_and_every_answer_logged(smoke):
    tag, _, report, _ = smoke
    totals = report["totals"]
    assert report["ok"] and report["broken"] == [], report["broken"]
    assert totals["errors"] == 0 and totals["error_kinds"] == {}, totals["error_samples"]
    assert totals["steady_requests"] > 0 and totals["burst_requests"] > 0
    assert totals["records_answered"] > totals["requests"]  # some bodies were batches
    assert totals["log_lines"] == totals["records_answered"]
    assert totals["log_minus_answered"] == 0 and totals["log_skipped_lines"] == 0
    assert totals["log_model_tags"] == [tag]


def test_each_worker_is_sampled_with_plausible_memory_and_descriptors(smoke):
    _, _, report, _ = smoke
    processes = {p["process"]: p for p in report["processes"]}
    workers = [name for name in processes if name.startswith("worker")]
    assert len(workers) == WORKERS and "supervisor" in processes
    for name in [*workers, "supervisor"]:
        sampled = [s for s in report["samples"] if s[1] == name]
        assert len(sampled) >= 10 and processes[name]["samples"] == len(sampled)
        for _, _, rss_mib, fds in sampled:
            assert 20 < rss_mib < 4096, (name, rss_mib)  # a loaded model, not a leak
            assert 3 <= fds < 1000, (name, fds)
        assert isinstance(processes[name]["rss_mib_per_hour"], float)


def test_windows_cover_the_run_with_both_phases(smoke):
    _, _, report, _ = smoke
    rows = report["windows"]
    assert len(rows) >= 2 and rows[0]["from_s"] == 0
    assert all(row["steady_requests"] > 0 and row["errors"] == 0 for row in rows)
    assert any(row["burst_requests"] > 0 for row in rows)
    assert sum(row["records_answered"] for row in rows) == report["totals"]["records_answered"]
    workers = {p["process"] for p in report["processes"] if p["process"].startswith("worker")}
    assert all(workers <= set(row["rss_mib"]) for row in rows)


def test_report_files_name_the_model_machine_and_result(smoke):
    tag, out, report, stdout = smoke
    text = (out / "soak.md").read_text()
    assert report["smoke"] is True and report["model_tag"] == tag and tag in text
    assert report["use_case"] == USE_CASE and report["machine"]["cores"] >= 1
    assert "Run: **complete**" in text and "| 0:00-0:15 |" in text
    assert (out / "server.log").exists() and (out / "predictions").is_dir()
    assert "# Soak: credit_risk" in stdout  # the report is printed too
