"""Prediction logging and the drift command: PSI math by hand, the log format as BentoML
writes it, and `drift` on unshifted vs shifted traffic logged through PredictionLog."""

import json
import math
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

from core.names import PROJECT_ROOT, USECASES_DIRNAME
from core.settings import get_settings
from core.spec import SpecError, load_spec, parse_spec
from core.stats import PSI_EPSILON, psi
from jobs.drift import (
    DRIFT_DETECTED,
    DRIFT_LAST_RUN,
    DRIFT_METRICS,
    DRIFT_PSI,
    EXIT_DRIFT,
    EXIT_OK,
    EXIT_TOO_FEW_ROWS,
    EXIT_USER_ERROR,
    MISSING_BIN,
    PROM_FILE,
    SCORE,
    bin_binary,
    bin_categorical,
    bin_numeric,
)
from riskbento.__main__ import main
from serving.predlog import MODEL_COLUMN, read_prediction_log
from training.reference import numeric_reference

USE_CASE = "filing_dropoff"  # small, and has numeric, categorical and binary features
MONITOR = f"riskbento_{USE_CASE}"


# ---------------------------------------------------------------- PSI by hand


def test_psi_of_identical_shares_is_zero():
    shares = np.array([0.1, 0.2, 0.3, 0.4])
    assert psi(shares, shares) == pytest.approx(0.0, abs=1e-12)


def test_psi_matches_a_hand_computed_case():
    # (0.9 - 0.5) ln(0.9 / 0.5) + (0.1 - 0.5) ln(0.1 / 0.5)
    expected = 0.4 * math.log(1.8) + 0.4 * math.log(5.0)
    assert psi([0.5, 0.5], [0.9, 0.1]) == pytest.approx(expected, rel=1e-12)
    assert psi([0.5, 0.5], [0.9, 0.1]) == pytest.approx(0.878890, abs=1e-6)


def test_psi_gives_an_empty_bin_epsilon_so_it_stays_finite():
    value = psi([1.0, 0.0], [0.5, 0.5])
    by_hand = (0.5 - 1.0) * math.log(0.5) + (0.5 - PSI_EPSILON) * math.log(0.5 / PSI_EPSILON)
    assert math.isfinite(value)
    assert value == pytest.approx(by_hand, rel=1e-12)
    assert psi([0.5, 0.5, 0.0], [0.5, 0.5, 0.0]) == pytest.approx(0.0, abs=1e-12)


def test_numeric_values_fall_in_the_reference_bins_with_blank_as_its_own_bin():
    reference = {"edges": [1.0, 2.0], "shares": [0.5, 0.25, 0.25], "missing": 0.0}
    binned = bin_numeric(reference, pd.Series([0.5, 1.0, 1.5, 3.0, None]))
    # bins (-inf, 1], (1, 2], (2, inf): 0.5 and 1.0 | 1.5 | 3.0; one blank in five rows
    assert binned.labels == ["≤ 1", "(1, 2]", "> 2", MISSING_BIN]
    np.testing.assert_allclose(binned.actual, [0.4, 0.2, 0.2, 0.2])
    np.testing.assert_allclose(binned.expected, [0.5, 0.25, 0.25, 0.0])
    assert binned.ks == pytest.approx(0.0)  # same shares among present values
    blank_only = (0.2 - PSI_EPSILON) * math.log(0.2 / PSI_EPSILON)
    moved = sum((a - e) * math.log(a / e) for a, e in [(0.4, 0.5), (0.2, 0.25), (0.2, 0.25)])
    assert psi(binned.expected, binned.actual) == pytest.approx(blank_only + moved, rel=1e-9)


def test_binary_features_are_compared_by_their_share_of_ones():
    # The stored reference's quantile bins cannot split a 0/1 column: one bin, PSI 0.
    reference = numeric_reference(pd.Series([0, 1, 1, 1] * 50, dtype=float))
    assert reference["edges"] == []
    flipped = pd.Series([0, 0, 0, 1] * 50)
    assert psi(*_pair(bin_numeric(reference, flipped))) == pytest.approx(0.0, abs=1e-12)
    binned = bin_binary(reference, flipped)
    np.testing.assert_allclose(binned.expected, [0.25, 0.75, 0.0])
    np.testing.assert_allclose(binned.actual, [0.75, 0.25, 0.0])
    assert psi(binned.expected, binned.actual) == pytest.approx(2 * 0.5 * math.log(3), rel=1e-9)


def test_an_unknown_level_gets_its_own_bin():
    reference = {"shares": {"a": 0.5, "b": 0.5}, "missing": 0.0}
    binned = bin_categorical(reference, pd.Series(["a", "a", "c", None]), levels=["a", "b"])
    assert binned.labels == ["a", "b", "c", MISSING_BIN]
    np.testing.assert_allclose(binned.expected, [0.5, 0.5, 0.0, 0.0])
    np.testing.assert_allclose(binned.actual, [0.5, 0.0, 0.25, 0.25])


def _pair(binned):
    return binned.expected, binned.actual


# ---------------------------------------------------------------- the spec's drift section


def _raw_spec() -> dict:
    import yaml

    path = PROJECT_ROOT / USECASES_DIRNAME / f"{USE_CASE}.yaml"
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def test_spec_drift_thresholds_default_and_are_checked():
    spec = load_spec(USE_CASE, check_data=False)
    assert (spec.drift.psi_warn, spec.drift.psi_alert, spec.drift.min_rows) == (0.1, 0.25, 200)

    raw = _raw_spec() | {"drift": {"psi_warn": 0.3, "psi_alert": 0.2}}
    with pytest.raises(SpecError) as err:
        parse_spec(raw, "my.yaml", PROJECT_ROOT)
    assert "drift: Value error, psi_warn (0.3) must be below psi_alert (0.2)" in str(err.value)

    raw = _raw_spec() | {"drift": {"min_rows": 0, "psi_alrt": 0.5}}
    with pytest.raises(SpecError) as err:
        parse_spec(raw, "my.yaml", PROJECT_ROOT)
    assert "drift.min_rows: Input should be greater than or equal to 1 (got 0)" in str(err.value)
    assert "drift.psi_alrt: unknown key (got 0.5)" in str(err.value)


# ---------------------------------------------------------------- the log, as BentoML writes it

_LOG_RECORDS = """
for n in (3, 1, 2):
    records = [dict(record, user_id=f"U{n}{i}") for i in range(n)]
    log.log(records, [answer] * n)
# Text that looks like a row boundary in JSON stays inside its row.
log.log([dict(record, user_id='Q},{"1\\\\'), dict(record, user_id="Q2")], [answer] * 2)
sampled = PredictionLog(spec, "filing_dropoff:sampled", sys.argv[2], sample_rate=0.5)
for start in range(0, 200, 20):
    records = [dict(record, user_id=f"S{start + i}") for i in range(20)]
    sampled.log(records, [answer] * 20)
"""


@pytest.fixture(scope="module")
def small_log(tmp_path_factory: pytest.TempPathFactory, log_in_fresh_process) -> tuple[Path, str]:
    """Six records logged by PredictionLog in a fresh process, plus that process's stderr."""
    root = tmp_path_factory.mktemp("small_log")
    return root, log_in_fresh_process(root, _LOG_RECORDS)


def test_prediction_log_writes_one_json_row_per_record_with_a_schema(small_log):
    root, stderr = small_log
    data = root / MONITOR / "data" / "data.0.log"
    logged = [json.loads(line) for line in data.read_text(encoding="utf-8").splitlines()]
    rows = [r for r in logged if r[MODEL_COLUMN] == "filing_dropoff:abc"]
    ids = ["U30", "U31", "U32", "U10", "U20", "U21", 'Q},{"1\\', "Q2"]
    assert [r["user_id"] for r in rows] == ids
    sampled = [r for r in logged if r[MODEL_COLUMN] == "filing_dropoff:sampled"]
    assert 60 < len(sampled) < 140  # about half of 200
    assert len(rows) + len(sampled) == len(logged)
    first = rows[0]
    assert first["age"] == 30 and first["marital_status"] is None
    assert (first["probability"], first["prediction"], first["risk_tier"]) == (0.25, 1, "medium")
    assert first[MODEL_COLUMN] == "filing_dropoff:abc"
    assert {"timestamp", "request_id", "trace_id"} <= set(first)
    assert "reasons" not in first and "warnings" not in first
    schema = json.loads((root / MONITOR / "schema" / "schema.0.log").read_text().splitlines()[0])
    roles = {c["name"]: (c["role"], c["type"]) for c in schema["columns"]}
    assert roles["age"] == ("feature", "numerical")
    assert roles["employment_type"] == ("feature", "categorical")
    assert roles["probability"] == ("prediction", "numerical")
    assert roles["risk_tier"] == ("prediction", "categorical")
    # BentoML warns on every value of a multi-record first block; PredictionLog avoids it.
    assert "duplicated" not in stderr and "not officially supported" not in stderr


def test_read_prediction_log_takes_the_root_the_monitor_the_data_folder_or_a_file(small_log):
    root, _ = small_log
    data = root / MONITOR / "data"
    expected = (data / "data.0.log").read_text(encoding="utf-8").count("\n")
    for where in (root, root / MONITOR, data, data / "data.0.log"):
        frame = read_prediction_log(where, USE_CASE)
        assert len(frame) == expected
        assert (frame[MODEL_COLUMN] == "filing_dropoff:abc").sum() == 8
        assert frame.attrs["skipped_lines"] == 0
        assert frame.attrs["files"] == [str(data / "data.0.log")]


def test_read_prediction_log_skips_a_line_cut_short(small_log, tmp_path):
    root, _ = small_log
    lines = (root / MONITOR / "data" / "data.0.log").read_text(encoding="utf-8").splitlines()
    cut = tmp_path / "data.1.log"
    cut.write_text("\n".join(lines) + "\n" + lines[0][:40], encoding="utf-8")
    frame = read_prediction_log(cut)
    assert len(frame) == len(lines)
    assert frame.attrs["skipped_lines"] == 1


def test_a_bad_log_path_is_a_user_error(tmp_path, capsys):
    missing = tmp_path / "no_such_log"
    assert main(["drift", USE_CASE, "--log", str(missing)]) == EXIT_USER_ERROR
    assert f"prediction log {missing} does not exist" in capsys.readouterr().err

    (tmp_path / "empty").mkdir()
    assert main(["drift", USE_CASE, "--log", str(tmp_path / "empty")]) == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert f"no prediction log files for {MONITOR}" in err
    assert "expected data.*.log* files" in err


# ---------------------------------------------------------------- drift on logged traffic


def _traffic(spec_file: Path, tag: str, out: Path, *flags: str) -> str:
    """`python -m riskbento traffic` in its own process (one monitor path per process)."""
    command = [sys.executable, "-m", "riskbento", "traffic", str(spec_file), "--out", str(out),
               "--model-tag", tag, *flags]  # fmt: skip
    done = subprocess.run(
        command, cwd=PROJECT_ROOT, env=dict(os.environ), capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def traffic(
    trained_tag: Callable[[str], str], tmp_project: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict:
    """Unshifted and shifted hold-out traffic of a quick model, logged by PredictionLog."""
    tag = trained_tag(USE_CASE)
    spec_file = tmp_project / USECASES_DIRNAME / f"{USE_CASE}.yaml"
    root = tmp_path_factory.mktemp("traffic")
    _traffic(spec_file, tag, root / "plain")
    printed = _traffic(spec_file, tag, root / "shifted", "--shift")
    moved = printed.split("(shifted: ")[1].rsplit(")", 1)[0]
    shifted = {part.split()[0] for part in moved.split("; ")}
    return {"tag": tag, "spec": spec_file, "root": root, "shifted": shifted}


def _drift(traffic: dict, log: Path, out: Path, *flags: str) -> int:
    return main(["drift", str(traffic["spec"]), "--log", str(log), "--out", str(out), *flags])


@pytest.mark.slow
def test_unshifted_traffic_is_no_drift(traffic, tmp_path, capsys, no_pushgateway):
    assert _drift(traffic, traffic["root"] / "plain", tmp_path) == EXIT_OK
    assert "no drift" in capsys.readouterr().out
    report = json.loads((tmp_path / "drift.json").read_text(encoding="utf-8"))
    assert report["drift_detected"] is False and report["drifted"] == []
    assert report["model_tag"] == traffic["tag"]
    assert report["rows"] == 1000  # the 20 % inference hold-out of 5,000 users
    spec = load_spec(traffic["spec"], check_data=False)
    assert {c["column"] for c in report["columns"]} == {*spec.feature_names, SCORE}
    assert all(c["psi"] < 0.1 for c in report["columns"])
    md = (tmp_path / "drift.md").read_text(encoding="utf-8")
    for fact in (traffic["tag"], report["log"]["sha256"][:16], "1,000 rows", "server local time"):
        assert fact in md
    assert (tmp_path / "drift_psi.png").stat().st_size > 0
    assert (tmp_path / "drift_distributions.png").stat().st_size > 0


@pytest.mark.slow
def test_shifted_traffic_is_drift_naming_the_shifted_features(
    traffic, tmp_path, capsys, no_pushgateway
):
    assert len(traffic["shifted"]) == 3  # two numeric features moved, one categorical mix
    assert _drift(traffic, traffic["root"] / "shifted", tmp_path) == EXIT_DRIFT
    printed = capsys.readouterr().out
    assert "drift detected" in printed
    for name in traffic["shifted"]:
        assert name in printed
    report = json.loads((tmp_path / "drift.json").read_text(encoding="utf-8"))
    assert report["drift_detected"] is True
    # Only what was moved drifts: every other feature was logged unchanged.
    assert set(report["drifted"]) - {SCORE} == traffic["shifted"]

    metrics = {
        family.name: family
        for family in text_string_to_metric_families((tmp_path / PROM_FILE).read_text())
    }
    assert set(metrics) == set(DRIFT_METRICS)
    psi_by_feature = {s.labels["feature"]: s.value for s in metrics[DRIFT_PSI].samples}
    assert set(psi_by_feature) == {c["column"] for c in report["columns"]}
    assert all(psi_by_feature[name] >= 0.25 for name in traffic["shifted"])
    assert [s.value for s in metrics[DRIFT_DETECTED].samples] == [1.0]
    assert metrics[DRIFT_LAST_RUN].samples[0].labels == {"use_case": USE_CASE}


@pytest.mark.slow
def test_too_few_rows_is_not_judged(traffic, tmp_path, capsys, no_pushgateway):
    source = traffic["root"] / "plain" / MONITOR / "data" / "data.0.log"
    few = tmp_path / "log" / MONITOR / "data"
    few.mkdir(parents=True)
    lines = source.read_text(encoding="utf-8").splitlines()[:50]
    (few / "data.0.log").write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert _drift(traffic, tmp_path / "log", tmp_path / "report") == EXIT_TOO_FEW_ROWS
    err = capsys.readouterr().err
    assert "50 logged row(s)" in err
    assert "fewer than drift.min_rows = 200: not enough traffic to judge drift" in err
    assert not (tmp_path / "report").exists()


@pytest.mark.slow
def test_a_log_of_another_use_case_is_a_user_error(traffic, tmp_path, capsys, no_pushgateway):
    data = traffic["root"] / "plain" / MONITOR / "data" / "data.0.log"
    assert main(["drift", "churn", "--log", str(data), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"the log's rows come from model '{traffic['tag']}', not from use case 'churn'" in err


class _Gateway(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, bytes]]] = []

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        self.received.append((self.path, body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.slow
def test_metrics_go_to_the_pushgateway_only_when_one_is_set(traffic, tmp_path, capsys, monkeypatch):
    server = HTTPServer(("127.0.0.1", 0), _Gateway)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Gateway.received.clear()
    try:
        monkeypatch.setenv("RISKBENTO_PUSHGATEWAY_URL", f"http://127.0.0.1:{server.server_port}")
        get_settings.cache_clear()
        assert _drift(traffic, traffic["root"] / "shifted", tmp_path) == EXIT_DRIFT
    finally:
        server.shutdown()
        server.server_close()
        get_settings.cache_clear()
    assert "metrics pushed to" in capsys.readouterr().out
    [(path, body)] = _Gateway.received
    assert path == f"/metrics/job/riskbento_drift/use_case/{USE_CASE}"
    for name in DRIFT_METRICS:
        assert name.encode() in body

    # A gateway that is down: the run still reports drift by its exit code, and says so.
    monkeypatch.setenv("RISKBENTO_PUSHGATEWAY_URL", f"http://127.0.0.1:{server.server_port}")
    get_settings.cache_clear()
    try:
        assert _drift(traffic, traffic["root"] / "shifted", tmp_path) == EXIT_DRIFT
    finally:
        get_settings.cache_clear()
    assert "could not push the metrics to" in capsys.readouterr().err


@pytest.mark.slow
def test_rows_of_an_older_model_are_left_out(traffic, tmp_path, capsys, no_pushgateway):
    plain = traffic["root"] / "plain" / MONITOR / "data" / "data.0.log"
    log = tmp_path / "log"
    log.mkdir()
    shutil.copy(plain, log / "data.0.log")
    old = [json.loads(line) for line in plain.read_text(encoding="utf-8").splitlines()[:30]]
    for row in old:
        row[MODEL_COLUMN] = f"{USE_CASE}:older"
        row["timestamp"] = "2000-01-01T00:00:00"
    (log / "data.0.log.2000-01-01").write_text("".join(json.dumps(r) + "\n" for r in old))
    assert _drift(traffic, log, tmp_path / "report") == EXIT_OK
    report = json.loads((tmp_path / "report" / "drift.json").read_text(encoding="utf-8"))
    assert report["model_tag"] == traffic["tag"]
    assert report["rows"] == 1000
    assert report["log"]["rows_from_other_models"] == {f"{USE_CASE}:older": 30}
