"""The feature-building benchmark keeps running (smoke mode). No timing asserts."""

import json

import pandas as pd

from loadtest import bench_features as bench
from loadtest.bench_features import SMOKE_ROWS


def test_smoke_mode_writes_the_report(tmp_path):
    assert bench.main(["--smoke", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "features.json").read_text())
    (result,) = report["results"]
    assert result["rows"] == SMOKE_ROWS
    assert result["total_s"] > 0 and result["rows_per_s"] > 0
    assert set(result["stages_s"]) == {"clean", "categorise", "aggregate"}
    assert result["counts"]["rows_in"] == SMOKE_ROWS
    assert report["machine"]["cores"] >= 1 and report["versions"]["pandas"] == pd.__version__
    table = (tmp_path / "features.md").read_text()
    assert f"| {SMOKE_ROWS:,} |" in table and report["machine"]["cpu_model"] in table
