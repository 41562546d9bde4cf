"""`python -m riskbento features|score --engine ...` as a user runs it: bad input is one
error line with exit code 2, and a failed run never leaves a partial output behind."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from core.names import PROJECT_ROOT, USECASES_DIRNAME
from datagen.messy_transactions import write_parts
from scaleout import job

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, trained_tag, tmp_project) -> dict[str, Path]:
    trained_tag("credit_risk")
    root = tmp_path_factory.mktemp("cli")
    _, ids = write_parts(root / "tx", 3_000, parts=2, fmt="csv", seed=5)
    ids.to_frame().to_csv(root / "customers.csv", index=False)
    return {
        "spec": tmp_project / USECASES_DIRNAME / "credit_risk.yaml",
        "tx": root / "tx",
        "customers": root / "customers.csv",
        "root": root,
    }


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "riskbento", *args], cwd=PROJECT_ROOT, capture_output=True,
        text=True, timeout=300, env=env or dict(os.environ), check=False,
    )  # fmt: skip


def _refused(done: subprocess.CompletedProcess, *words: str) -> None:
    assert done.returncode == 2, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_local_score_from_the_command_line_writes_parquet_csv_and_manifest(inputs):
    out = inputs["root"] / "out"
    done = _cli(
        "score", str(inputs["spec"]), "--engine", "local", "--transactions", str(inputs["tx"]),
        "--customers", str(inputs["customers"]), "--out", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    answers = pd.read_csv(out / "answers.csv")
    customers = pd.read_csv(inputs["customers"])
    assert len(answers) == len(customers) == len(pd.read_parquet(out / "answers.parquet"))
    assert set(answers["risk_tier"]) <= {"low", "medium", "high"}
    manifest = json.loads((out / "run.json").read_text())
    assert answers["transactions_sha256"].unique().tolist() == [
        manifest["inputs"]["transactions_sha256"]
    ]
    assert answers["model"].unique().tolist() == [manifest["model"]]
    assert manifest["cleaning"]["rows_in"] == 3_000


def test_a_file_that_is_not_csv_or_parquet_is_refused(inputs, tmp_path):
    notes = tmp_path / "tx.json"
    notes.write_text("[]")
    done = _cli("features", str(inputs["spec"]), "--transactions", str(notes),
                "--customers", str(inputs["customers"]), "--out", str(tmp_path / "o"))  # fmt: skip
    _refused(done, "tx.json", "expected a .csv or .parquet file")
    assert not (tmp_path / "o").exists()


def test_a_missing_column_is_named(inputs, tmp_path):
    raw = pd.read_csv(inputs["tx"] / "part-00001.csv").drop(columns="amount")
    parts = tmp_path / "tx"
    parts.mkdir()
    pd.read_csv(inputs["tx"] / "part-00000.csv").to_csv(parts / "part-00000.csv", index=False)
    raw.to_csv(parts / "part-00001.csv", index=False)  # the second part lacks a column
    done = _cli("features", str(inputs["spec"]), "--transactions", str(parts),
                "--customers", str(inputs["customers"]), "--engine", "dask")  # fmt: skip
    _refused(done, "part-00001.csv", "lack columns ['amount']")
    table = tmp_path / "customers.csv"
    pd.DataFrame({"id": ["C1"]}).to_csv(table, index=False)
    done = _cli("features", str(inputs["spec"]), "--transactions", str(inputs["tx"]),
                "--customers", str(table))  # fmt: skip
    _refused(done, "customers.csv", "lacks columns ['customer_id']")


def test_an_unreachable_dask_scheduler_is_named(inputs, tmp_path):
    done = _cli("features", str(inputs["spec"]), "--engine", "dask",
                "--scheduler", "tcp://127.0.0.1:9", "--transactions", str(inputs["tx"]),
                "--customers", str(inputs["customers"]), "--out", str(tmp_path / "o"))  # fmt: skip
    _refused(done, "cannot reach the Dask scheduler tcp://127.0.0.1:9")
    assert not (tmp_path / "o").exists()


def test_spark_without_java_is_named(inputs, tmp_path):
    pytest.importorskip("pyspark", reason="the Spark engine needs `make install-spark`")
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    env["PATH"] = str(Path(sys.executable).parent)  # this Python, no java
    done = _cli("features", str(inputs["spec"]), "--engine", "spark",
                "--transactions", str(inputs["tx"]), "--customers", str(inputs["customers"]),
                "--out", str(tmp_path / "o"), env=env)  # fmt: skip
    _refused(done, "Spark needs Java 17")


def test_a_failed_run_keeps_the_last_complete_output(inputs, tmp_path, monkeypatch):
    out = tmp_path / "out"
    run = job.Run("score", inputs["spec"], "local", inputs["tx"], inputs["customers"], out)
    job.run(run)
    before = (out / "answers.csv").read_bytes()

    def broken(*_):
        raise OSError("disk full")

    monkeypatch.setattr(job, "_write_csv", broken)
    with pytest.raises(OSError, match="disk full"):
        job.run(run)
    assert (out / "answers.csv").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary left
