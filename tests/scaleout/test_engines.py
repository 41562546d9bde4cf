"""Dask and Spark give exactly the one-machine answer, on data holding every mess the
generator makes (exact duplicates, ids reused within and across customers, missing
amounts, sign/type disagreements, amounts over the cap, customers without transactions,
transactions of unknown customers, timestamps in mixed formats and UTC offsets).

Real engines: a Dask LocalCluster (2 worker processes) and Spark local[2], both bound to
127.0.0.1. Spark's tests are in the slow tier and need `make install-spark`."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from core.names import USECASES_DIRNAME
from datagen.messy_transactions import write_parts
from scaleout.job import Run, run

pytestmark = pytest.mark.integration

ROWS = 30_000


@pytest.fixture(scope="module")
def messy_inputs(tmp_path_factory) -> tuple[Path, Path]:
    """CSV parts of messy transactions and the customer table (ids only, as credit_risk's)."""
    root = tmp_path_factory.mktemp("messy")
    _, ids = write_parts(root / "tx", ROWS, parts=3, fmt="csv", seed=21)
    ids.to_frame().to_csv(root / "customers.csv", index=False)
    return root / "tx", root / "customers.csv"


@pytest.fixture(scope="module")
def credit_risk(trained_tag, tmp_project) -> Path:
    trained_tag("credit_risk")
    return tmp_project / USECASES_DIRNAME / "credit_risk.yaml"


def _run(command, spec, engine, out, **inputs) -> dict:
    return run(Run(command, spec, engine, out=out, workers=2, **inputs))


def _table(out: Path, name: str) -> pd.DataFrame:
    frame = pd.read_parquet(out / f"{name}.parquet")
    return frame.sort_values(frame.columns[0]).reset_index(drop=True)


def _assert_same(local: Path, other: Path, name: str) -> None:
    expected, got = _table(local, name), _table(other, name)
    assert len(expected) > 0
    pd.testing.assert_frame_equal(got, expected, check_exact=True, check_dtype=False)
    a, b = (json.loads((p / "run.json").read_text()) for p in (local, other))
    assert a["cleaning"] == b["cleaning"]
    assert a["inputs"]["transactions_sha256"] == b["inputs"]["transactions_sha256"]


def _sorted_lines(path: Path) -> list[str]:
    lines = path.read_text().splitlines()
    return [lines[0], *sorted(lines[1:])]


@pytest.fixture(scope="module")
def local_runs(credit_risk, messy_inputs, tmp_path_factory) -> dict[str, Path]:
    tx, customers = messy_inputs
    root = tmp_path_factory.mktemp("local")
    done = {}
    for command in ("features", "score"):
        done[command] = root / command
        _run(command, credit_risk, "local", done[command], transactions=tx, customers=customers)
    return done


def test_the_local_run_holds_every_mess(local_runs):
    manifest = json.loads((local_runs["features"] / "run.json").read_text())
    cleaning = manifest["cleaning"]
    assert cleaning["rows_in"] == ROWS
    for kind in (
        "exact_duplicates_dropped", "repeated_ids_dropped", "null_amounts_dropped",
        "sign_fixed_from_type", "amounts_over_cap_dropped", "bad_timestamps",
    ):  # fmt: skip
        assert cleaning[kind] > 0, kind
    features = _table(local_runs["features"], "features")
    assert (features["num_transactions"] == 0).sum() > 0  # customers without transactions


def test_dask_gives_exactly_the_local_features_and_answers(
    credit_risk, messy_inputs, local_runs, tmp_path
):
    tx, customers = messy_inputs
    for command, name in (("features", "features"), ("score", "answers")):
        out = tmp_path / command
        manifest = _run(command, credit_risk, "dask", out, transactions=tx, customers=customers)
        _assert_same(local_runs[command], out, name)
        assert set(manifest["stages_s"]) >= {"read", "id_pass", "shuffle", "features", "write"}
    assert _sorted_lines(tmp_path / "score" / "answers.csv") == _sorted_lines(
        local_runs["score"] / "answers.csv"
    )


def test_dask_reads_parquet_parts_as_local_reads_csv(credit_risk, local_runs, tmp_path):
    """The same rows as Parquet parts (typed amounts, text elsewhere) give the same features."""
    _, ids = write_parts(tmp_path / "tx", ROWS, parts=4, fmt="parquet", seed=21)
    ids.to_frame().to_csv(tmp_path / "customers.csv", index=False)
    inputs = {"transactions": tmp_path / "tx", "customers": tmp_path / "customers.csv"}
    _run("features", credit_risk, "dask", tmp_path / "dask", **inputs)
    _run("features", credit_risk, "local", tmp_path / "local", **inputs)
    _assert_same(tmp_path / "local", tmp_path / "dask", "features")


def test_dask_scores_offboarding_profiles_with_transactions(trained_tag, tmp_project, tmp_path):
    """A table with profile features plus transactions (the spec's unlabeled cohort)."""
    trained_tag("offboarding")
    spec = tmp_project / USECASES_DIRNAME / "offboarding.yaml"
    _run("score", spec, "local", tmp_path / "local")
    _run("score", spec, "dask", tmp_path / "dask")
    _assert_same(tmp_path / "local", tmp_path / "dask", "answers")


@pytest.mark.slow
def test_spark_gives_exactly_the_local_features_and_answers(
    credit_risk, messy_inputs, local_runs, tmp_path
):
    pytest.importorskip("pyspark", reason="the Spark engine needs `make install-spark`")
    if shutil.which("java") is None:
        pytest.skip("the Spark engine needs Java 17 (`make install-spark`)")
    tx, customers = messy_inputs
    for command, name in (("features", "features"), ("score", "answers")):
        out = tmp_path / command
        _run(command, credit_risk, "spark", out, transactions=tx, customers=customers)
        _assert_same(local_runs[command], out, name)
    assert _sorted_lines(tmp_path / "score" / "answers.csv") == _sorted_lines(
        local_runs["score"] / "answers.csv"
    )


@pytest.mark.slow
def test_under_spark_submit_the_platforms_master_is_kept(credit_risk, messy_inputs, tmp_path):
    """A platform (spark-submit, a notebook) names the master; riskbento must not replace
    it with its own local[workers], nor stop a session it did not start."""
    pytest.importorskip("pyspark", reason="the Spark engine needs `make install-spark`")
    if shutil.which("java") is None:
        pytest.skip("the Spark engine needs Java 17 (`make install-spark`)")
    tx, customers = messy_inputs
    script = tmp_path / "job.py"
    script.write_text(
        "import json, sys\n"
        "from scaleout.job import Run, run\n"
        f"m = run(Run('features', {str(credit_risk)!r}, 'spark', {str(tx)!r}, "
        f"{str(customers)!r}, {str(tmp_path / 'out')!r}, workers=2))\n"
        "from pyspark.sql import SparkSession\n"
        "print(json.dumps({'ran_on': m['ran_on'],\n"
        "                  'alive': SparkSession.getActiveSession() is not None}))\n"
    )
    submit = Path(sys.executable).parent / "spark-submit"
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1"}
    done = subprocess.run(
        [str(submit), "--master", "local[1]", "--conf", "spark.driver.host=127.0.0.1",
         "--conf", "spark.ui.enabled=false", str(script)],
        capture_output=True, text=True, timeout=600, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    said = json.loads(done.stdout.strip().splitlines()[-1])
    assert said == {"ran_on": "local[1]", "alive": True}
