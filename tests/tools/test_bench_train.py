"""The training benchmark keeps running (smoke mode: the drafted Lending Club table, QUICK
budget, this commit against itself). No timing asserts."""

import json

import pytest
import yaml

from loadtest import bench_train as bench

pytestmark = pytest.mark.slow


def test_smoke_mode_trains_the_drafted_user_table_in_both_trees(tmp_path):
    assert bench.main(["--baseline", "HEAD", "--smoke", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "train.json").read_text())
    runs = report["runs"][bench.USER_TABLE]
    assert set(runs) == set(bench.TREES)
    for run in runs.values():
        assert run["seconds"] > 0 and run["serving_us"]["single"] > 0
        assert 0.5 < run["test_roc_auc"] <= 1  # the drafted spec trains a real model
        assert run["tag"].startswith(f"{bench.USER_TABLE}:")
    # The same code on the same data: the same champion and CV score in both trees.
    assert runs["before"]["champion"] == runs["after"]["champion"]
    assert runs["before"]["cv"] == pytest.approx(runs["after"]["cv"])
    text = (tmp_path / "train.md").read_text()
    assert report["machine"]["cpu_model"] in text and "| lending_club | before |" in text
    # The worktree is gone again (git worktree list shows only the project).
    assert "baseline" not in bench._run(["git", "worktree", "list"], bench.REPO, {})


def test_the_user_table_is_a_drafted_spec_over_1000_real_loans(tmp_path):
    spec_file = bench.user_table(tmp_path)
    spec = yaml.safe_load(spec_file.read_text())
    assert spec["target"] == {**spec["target"], "column": "Class", "positive": "bad"}
    assert spec["id_column"] == "loan_id"
    assert len((tmp_path / f"{bench.USER_TABLE}.csv").read_text().splitlines()) == 1 + 1_000
