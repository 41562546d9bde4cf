"""The scale-out benchmark keeps running (smoke mode, local and Dask) and its report holds
what it promises: every stage per engine, memory per process, shuffle bytes, a fitted cost
model and a projection labelled as one. No timing asserts."""

import json

import pytest

from loadtest import bench_scaleout as bench


@pytest.mark.integration
@pytest.mark.slow
def test_smoke_mode_writes_stages_memory_model_and_projection(trained_tag, tmp_path):
    trained_tag("credit_risk")  # the benchmark scores with credit_risk:latest
    argv = ["--smoke", "--engines", "local", "dask", "--out", str(tmp_path / "out"),
            "--data", str(tmp_path / "data")]  # fmt: skip
    assert bench.main(argv) == 0
    report = json.loads((tmp_path / "out" / "scaleout.json").read_text())
    runs = {(r["rows"], r["label"]): r["result"] for r in report["results"]}
    assert set(runs) == {
        (rows, label)
        for rows in (bench.SMOKE_ROWS, 2 * bench.SMOKE_ROWS)
        for label in ("local 1 process", "dask 1 worker", "dask 2 workers")
    }
    for (rows, label), result in runs.items():
        assert result["rows_in"] == rows, label
        assert result["peak_gib"]["driver"] > 0
        if label.startswith("dask"):
            assert set(result["stages_s"]) == set(bench.STAGES), label
            assert result["shuffle_bytes"] > 0 and result["peak_gib"]["dask worker"] > 0
    model = report["models"]["dask"]
    assert model is not None and model["shuffled_bytes_per_row"] > 0
    assert report["models"]["spark"] is None  # not run: no points, no model
    text = (tmp_path / "out" / "scaleout.md").read_text()
    assert "## Projection (not measured)" in text and report["machine"]["cpu_model"] in text
    assert f"| dask | {1_000_000_000:,} | 32 |" in text
