"""`make loadtest SMOKE=1` end to end: a real `bentoml serve`, Locust headless, the verdict
files. Benchmarks are not tests: nothing here asserts a latency or a rate."""

import json

import pytest

from core.names import USECASES_DIRNAME

pytestmark = pytest.mark.slow

STAGE_NUMBERS = ("target_rps", "achieved_rps", "requests", "p50_ms", "p95_ms", "p99_ms")


def test_smoke_run_writes_a_verdict_for_every_stage(trained_tag, tmp_project, tmp_path, run_smoke):
    tag = trained_tag("credit_risk")
    spec_file = tmp_project / USECASES_DIRNAME / "credit_risk.yaml"
    out = tmp_path / "loadtest"
    run_smoke("loadtest.run", spec_file, tag, out, timeout_s=600)

    verdict = json.loads((out / "verdict.json").read_text())
    text = (out / "verdict.md").read_text()
    assert verdict["smoke"] is True and verdict["model_tag"] == tag
    assert verdict["machine"]["cores"] >= 1 and verdict["versions"]["locust"]
    names = [stage["stage"] for stage in verdict["stages"]]
    assert names[:2] == ["brief", "10x"]
    assert len(names) > 2 and all(n.startswith("ramp-") for n in names[2:])
    for stage in verdict["stages"]:
        assert all(isinstance(stage[key], int | float) for key in STAGE_NUMBERS), stage
        assert stage["requests"] > 0 and stage["errors"] == 0, stage
        assert isinstance(stage["passed"], bool)
        assert f"| {stage['stage']} |" in text
        for suffix in ("_stats.csv", "_stats_history.csv", ".html"):
            assert (out / f"{stage['stage']}{suffix}").exists()
    summary = verdict["summary"]
    assert {"capacity_rps", "instances_for_10x", "headroom", "targets"} <= summary.keys()
    assert "Capacity" in text and "Instances needed for 10x" in text
    # The payloads are the use case's own hold-out records, not a single repeated example.
    payloads = json.loads((out / "payloads.json").read_text())
    assert len({r["customer_id"] for r in payloads["records"]}) > 100
