"""The prediction log leaves the pod: `ship-log` against an OTLP/HTTP receiver each test
starts itself (127.0.0.1, a free port), which records every body it is sent.

What is checked is the guarantee in jobs/logship.py's docstring: every line arrives,
byte-identical, with the (file id, offset) that makes a resent copy recognisable; a
receiver that fails, a shipper killed mid-way, a rotation, a truncation, a line still
being written lose nothing. Then the Kubernetes side: the component's patch lands on the
base's containers, the sidecar's command line is one the CLI accepts, and the collector's
pipeline is wired."""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pathspec
import pytest
import yaml

from core.names import PROJECT_ROOT
from jobs.logship import (
    FILE_ID,
    FILE_NAME,
    OFFSET,
    OTLP_LOGS_PATH,
    POD_NAME,
    RECORD_UID,
    STATE_FILE,
    USE_CASE,
    LogShipError,
    Options,
    file_id,
    logs_url,
    otlp_logs,
    ship,
)
from riskbento.__main__ import main

LOG_USE_CASE = "filing_dropoff"
FAST = Options(backoff_s=0.02, max_backoff_s=0.1, interval_s=0.02, drain_timeout_s=5.0)
K8S = PROJECT_ROOT / "deploy" / "k8s"
COMPONENT = K8S / "components" / "log-shipping"
COLLECTOR = K8S / "otel-collector"


# ---------------------------------------------------------------- a receiver of our own


class Receiver:
    """An OTLP/HTTP logs endpoint in a thread. It records a body before it answers, so
    a shipper killed while waiting for the answer has delivered what it will resend.
    `fail` answers the first requests with those statuses; `too_large` answers 413 to a
    batch of more log records than that; `delay` holds each answer."""

    def __init__(self, fail: tuple[int, ...] = (), delay: float = 0.0, too_large: int = 0):
        self.fail, self.delay, self.too_large = list(fail), delay, too_large
        self.bodies: list[dict] = []
        self.requests: list[tuple[str, str]] = []  # (path, content type)
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = receiver._answer(self.path, self.headers["Content-Type"], body)
                answer = b"{}" if status == 200 else b'{"message": "test receiver says no"}'
                if status == 200 and receiver.delay:
                    time.sleep(receiver.delay)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def _answer(self, path: str, content_type: str, body: bytes) -> int:
        with self._lock:
            self.requests.append((path, content_type))
            if self.fail:
                return self.fail.pop(0)
            payload = json.loads(body)
            if self.too_large and len(_records([payload])) > self.too_large:
                return 413
            self.bodies.append(payload)
            return 200

    def records(self) -> list[dict]:
        with self._lock:
            return _records(self.bodies)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _records(bodies: list[dict]) -> list[dict]:
    """Every log record received, flattened: its attributes, body and resource."""
    out = []
    for body in bodies:
        for resource_logs in body["resourceLogs"]:
            resource = _attributes(resource_logs["resource"]["attributes"])
            for scope_logs in resource_logs["scopeLogs"]:
                for record in scope_logs["logRecords"]:
                    flat = _attributes(record["attributes"])
                    flat["body"] = record["body"]["stringValue"]
                    flat["resource"] = resource
                    out.append(flat)
    return out


def _attributes(pairs: list[dict]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        ((kind, value),) = pair["value"].items()
        out[pair["key"]] = int(value) if kind == "intValue" else value
    return out


@pytest.fixture
def receiver() -> Iterator[Callable[..., Receiver]]:
    started: list[Receiver] = []

    def start(**kwargs: Any) -> Receiver:
        started.append(Receiver(**kwargs))
        return started[-1]

    yield start
    for one in started:
        one.close()


# ---------------------------------------------------------------- logs to ship


def _data_folder(root: Path) -> Path:
    folder = root / f"riskbento_{LOG_USE_CASE}" / "data"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _lines(tag: str, n: int, start: int = 0) -> list[str]:
    """JSON lines shaped like the log's (each file's first line differs, as a real log's
    timestamps make it)."""
    return [
        json.dumps({"customer_id": f"{tag}-{i}", "probability": i / 1000, "risk_tier": "low"})
        for i in range(start, start + n)
    ]


def _append(path: Path, lines: list[str], newline_last: bool = True) -> None:
    text = "\n".join(lines) + ("\n" if newline_last else "")
    with path.open("a", encoding="utf-8") as out:
        out.write(text)


def _file_lines(path: Path) -> list[tuple[int, str]]:
    """(offset, line) of every complete line, as the receiver should hold them."""
    out, offset = [], 0
    for raw in path.read_bytes().splitlines(keepends=True):
        if raw.endswith(b"\n"):
            out.append((offset, raw[:-1].decode("utf-8")))
        offset += len(raw)
    return out


def _id(path: Path) -> str | None:
    with path.open("rb") as handle:
        return file_id(handle)


def _held(records: list[dict], name: str | None = None) -> list[tuple[int, str]]:
    return sorted((r[OFFSET], r["body"]) for r in records if name is None or r[FILE_NAME] == name)


_LOG_RECORDS = """
for n in (1, 7, 30, 2, 60, 20):
    records = [dict(record, user_id=f"U{n}-{i}", age=20 + i) for i in range(n)]
    log.log(records, [answer] * n)
log.log([dict(record, user_id='Q},{"1\\\\ é'), dict(record, user_id="Q2")], [answer] * 2)
"""


@pytest.fixture(scope="module")
def real_log(tmp_path_factory: pytest.TempPathFactory, log_in_fresh_process) -> Path:
    """122 records logged by the real PredictionLog, in a fresh process."""
    root = tmp_path_factory.mktemp("real_log")
    log_in_fresh_process(root, _LOG_RECORDS)
    return root


def _copy(real_log: Path, tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "log"
    shutil.copytree(real_log, root)
    (data,) = _data_folder(root).glob("data.*.log")
    return root, data


# ---------------------------------------------------------------- (a) once, exactly


@pytest.mark.integration
def test_a_real_log_is_shipped_once_byte_identical_with_file_and_offset(
    real_log, tmp_path, receiver, monkeypatch
):
    monkeypatch.setenv("HOSTNAME", "riskbento-7d9f-abcde")
    root, data = _copy(real_log, tmp_path)
    expected = _file_lines(data)
    assert len(expected) == 122
    got = receiver()

    done, counts = ship(root, got.url, options=Options(batch_lines=50))

    assert done and counts.lines == 122 and counts.batches == 3 and counts.retries == 0
    assert counts.per_file == {data.name: 122}
    records = got.records()
    assert _held(records) == expected  # every line once, byte for byte, at its offset
    raw = data.read_bytes()
    for record in records:
        offset = record[OFFSET]
        assert raw[offset : offset + len(record["body"].encode())] == record["body"].encode()
    fid = _id(data)
    assert {r[FILE_ID] for r in records} == {fid}
    assert {r[FILE_NAME] for r in records} == {data.name}
    assert {r[USE_CASE] for r in records} == {LOG_USE_CASE}
    assert [r[RECORD_UID] for r in records] == [f"{fid}:{r[OFFSET]}" for r in records]
    assert records[0]["resource"] == {
        "service.name": "riskbento",
        POD_NAME: "riskbento-7d9f-abcde",
    }
    assert set(got.requests) == {(OTLP_LOGS_PATH, "application/json")}
    # The checkpoint: written whole, at the end of the file; a second run sends nothing.
    state = json.loads((root / STATE_FILE).read_text())
    assert state["files"][fid]["offset"] == len(raw)
    assert not list(root.glob(f".{STATE_FILE}*"))
    assert ship(root, got.url)[1].lines == 0
    assert len(got.bodies) == 3


# ---------------------------------------------------------------- (b) a receiver that fails


def test_a_receiver_that_fails_first_is_retried_and_nothing_is_lost(tmp_path, receiver):
    data = _data_folder(tmp_path) / "data.0.log"
    _append(data, _lines("a", 25))
    got = receiver(fail=(503, 502, 429, 500))

    done, counts = ship(tmp_path, got.url, options=FAST)

    assert done and counts.retries == 4 and counts.lines == 25
    assert _held(got.records()) == _file_lines(data)
    assert len(got.requests) == 4 + 1


def test_a_refusal_is_logged_with_the_answer_and_the_batch_is_held(tmp_path, receiver, caplog):
    data = _data_folder(tmp_path) / "data.0.log"
    _append(data, _lines("a", 5))
    got = receiver(fail=(400,))

    done, counts = ship(tmp_path, got.url, options=FAST)

    assert done and counts.retries == 1
    assert _held(got.records()) == _file_lines(data)
    refused = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(refused) == 1
    assert "refused with 400" in refused[0].message
    assert "test receiver says no" in refused[0].message
    assert "batch held" in refused[0].message


def test_a_receiver_that_is_down_keeps_the_checkpoint_and_once_reports_lines_left(
    tmp_path, receiver
):
    data = _data_folder(tmp_path) / "data.0.log"
    _append(data, _lines("a", 10))
    closed = receiver()
    closed.close()  # nothing listens on its port any more

    options = Options(backoff_s=0.02, max_backoff_s=0.05, drain_timeout_s=0.3)
    done, counts = ship(tmp_path, closed.url, options=options)

    assert not done and counts.lines == 0 and counts.retries >= 2
    assert not (tmp_path / STATE_FILE).exists()
    got = receiver()
    assert ship(tmp_path, got.url)[0]
    assert _held(got.records()) == _file_lines(data)


def test_a_413_halves_the_batch_and_loses_nothing(tmp_path, receiver):
    data = _data_folder(tmp_path) / "data.0.log"
    _append(data, _lines("a", 40))
    got = receiver(too_large=10)

    done, counts = ship(tmp_path, got.url, options=Options(batch_lines=40))

    assert done and counts.lines == 40
    assert _held(got.records()) == _file_lines(data)
    assert max(len(_records([b])) for b in got.bodies) <= 10


# ---------------------------------------------------------------- (c) killed mid-way


@pytest.mark.integration
@pytest.mark.slow
def test_killed_mid_way_then_restarted_every_line_arrives_and_twins_share_their_uid(
    real_log, tmp_path, receiver
):
    root, data = _copy(real_log, tmp_path)
    slow = receiver(delay=0.15)
    command = [
        sys.executable, "-m", "riskbento", "ship-log", "--log", str(root),
        "--endpoint", slow.url, "--follow", "--batch-lines", "5", "--interval", "0.05",
    ]  # fmt: skip
    shipper = subprocess.Popen(
        command, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        _wait_for(lambda: len(slow.bodies) >= 6, shipper, timeout=60)
        shipper.send_signal(signal.SIGKILL)
    finally:
        shipper.kill()
        shipper.communicate(timeout=10)
    assert len(slow.bodies) < 122 / 5  # killed before the end
    slow.delay = 0

    assert ship(root, slow.url, options=Options(batch_lines=5))[0]

    records = slow.records()
    expected = _file_lines(data)
    by_uid: dict[str, set[tuple[int, str]]] = {}
    for r in records:
        by_uid.setdefault(r[RECORD_UID], set()).add((r[OFFSET], r["body"]))
    # De-duplicating on the uid gives exactly the log; twins are the same line.
    assert sorted(next(iter(v)) for v in by_uid.values()) == expected
    assert all(len(v) == 1 for v in by_uid.values())
    # At least once, and at most the batch in flight twice.
    assert len(records) - len(expected) in (0, 5)


def _wait_for(done: Callable[[], bool], process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if process.poll() is not None:
            raise AssertionError(f"shipper exited {process.returncode}: {process.stderr.read()}")
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.mark.integration
@pytest.mark.slow
def test_sigterm_ships_what_the_server_wrote_last_and_exits_0(tmp_path, receiver):
    data = _data_folder(tmp_path) / "data.0.log"
    _append(data, _lines("a", 3))
    got = receiver()
    command = [
        sys.executable, "-m", "riskbento", "ship-log", "--log", str(tmp_path),
        "--endpoint", got.url, "--interval", "60",
    ]  # fmt: skip
    shipper = subprocess.Popen(
        command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        _wait_for(lambda: len(got.records()) == 3, shipper, timeout=60)
        _append(data, _lines("a", 4, start=3))  # the server's last answers, while draining
        shipper.send_signal(signal.SIGTERM)
        out, err = shipper.communicate(timeout=30)
    finally:
        shipper.kill()
    assert shipper.returncode == 0, err
    assert _held(got.records()) == _file_lines(data)
    assert "[ship-log] done: 7 lines in 2 batches" in out


# ---------------------------------------------------------------- (d) rotation, truncation


def test_rotation_finishes_the_renamed_file_then_ships_the_new_one(tmp_path, receiver):
    folder = _data_folder(tmp_path)
    live = folder / "data.0.log"
    _append(live, _lines("day1", 4))
    got = receiver()
    ship(tmp_path, got.url)
    _append(live, _lines("day1", 3, start=4))  # written before the rotation, not yet shipped
    rotated = live.rename(folder / "data.0.log.2026-11-28")
    _append(live, _lines("day2", 5))

    done, counts = ship(tmp_path, got.url)

    assert done and counts.lines == 3 + 5
    records = got.records()
    day1 = [r for r in records if r["body"].startswith('{"customer_id": "day1')]
    assert _held(day1) == _file_lines(rotated)  # each once, offsets kept across the rename
    assert len({r[FILE_ID] for r in day1}) == 1
    assert {r[FILE_NAME] for r in day1[4:]} == {rotated.name}
    day2 = [r for r in records if r[FILE_ID] == _id(live)]
    assert _held(day2) == _file_lines(live) and {r[FILE_NAME] for r in day2} == {live.name}
    assert len(records) == 4 + 3 + 5


def test_delete_shipped_removes_a_rotated_file_once_every_line_is_shipped(tmp_path, receiver):
    folder = _data_folder(tmp_path)
    rotated = folder / "data.1.log.2026-11-28"
    _append(rotated, _lines("old", 3))
    live = folder / "data.1.log"
    _append(live, _lines("new", 2))
    got = receiver()

    done, counts = ship(tmp_path, got.url, options=Options(delete_shipped=True))

    assert done and counts.deleted == 1 and counts.lines == 5
    assert not rotated.exists() and live.exists()
    state = json.loads((tmp_path / STATE_FILE).read_text())
    assert [s["name"] for s in state["files"].values()] == [live.name]


def test_a_truncated_file_is_shipped_again_from_its_start_and_counted(tmp_path, receiver):
    data = _data_folder(tmp_path) / "data.0.log"
    _append(data, _lines("a", 6))
    got = receiver()
    ship(tmp_path, got.url)
    data.write_bytes(data.read_bytes()[: sum(len(line) + 1 for line in _lines("a", 2))])

    done, counts = ship(tmp_path, got.url)

    assert done and counts.truncations == 1 and counts.lines == 2
    records = got.records()
    assert len(records) == 8
    assert {r[RECORD_UID] for r in records[6:]} <= {r[RECORD_UID] for r in records[:6]}

    data.write_text("\n".join(_lines("b", 3)) + "\n")  # emptied, then written anew
    done, counts = ship(tmp_path, got.url)
    assert done and counts.truncations == 1 and counts.lines == 3
    assert [r["body"] for r in got.records()[8:]] == _lines("b", 3)


# ---------------------------------------------------------------- (e), (f) following


def test_lines_appended_while_following_arrive(tmp_path, receiver):
    data = _data_folder(tmp_path) / "data.0.log"
    _append(data, _lines("a", 2))
    got = receiver()
    stop = threading.Event()
    result: list[tuple] = []
    follower = threading.Thread(
        target=lambda: result.append(ship(tmp_path, got.url, follow=True, options=FAST, stop=stop))
    )
    follower.start()
    try:
        for block in range(5):
            _append(data, _lines("a", 10, start=2 + 10 * block))
            time.sleep(0.03)
        second = _data_folder(tmp_path) / "data.1.log"  # another worker's first line
        _append(second, _lines("b", 4))
        deadline = time.monotonic() + 10
        while len(got.records()) < 56 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        stop.set()
        follower.join(timeout=10)
    (done, counts) = result[0]
    assert done and counts.lines == 56
    assert _held(got.records(), data.name) == _file_lines(data)
    assert _held(got.records(), second.name) == _file_lines(second)


def test_a_line_without_its_newline_waits_until_it_is_complete(tmp_path, receiver):
    data = _data_folder(tmp_path) / "data.0.log"
    whole, partial = _lines("a", 3), _lines("a", 1, start=3)[0]
    _append(data, whole)
    with data.open("a") as out:
        out.write(partial[:20])  # the writer is half-way through the line
    got = receiver()

    assert ship(tmp_path, got.url)[1].lines == 3
    assert [r["body"] for r in got.records()] == whole

    with data.open("a") as out:
        out.write(partial[20:] + "\n")
    assert ship(tmp_path, got.url)[1].lines == 1
    assert [r["body"] for r in got.records()] == [*whole, partial]


def test_an_empty_log_folder_is_waited_on_not_an_error(tmp_path, receiver):
    got = receiver()
    done, counts = ship(tmp_path, got.url)
    assert done and counts.lines == 0 and got.requests == []


# ---------------------------------------------------------------- the request and the CLI


def test_the_body_is_otlp_json_with_an_unchanged_line_and_bytes_kept_when_not_utf8():
    from jobs.logship import Line

    line = '{"id": "é\\"x", "p": 0.5}'.encode()
    body = json.loads(
        otlp_logs([Line(7, line), Line(40, b"\xff\xfe")], "data.0.log", "f1", "u", [])
    )
    (record, raw) = body["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
    assert record["body"] == {"stringValue": line.decode()}
    assert {"key": OFFSET, "value": {"intValue": "7"}} in record["attributes"]
    assert {"key": RECORD_UID, "value": {"stringValue": "f1:7"}} in record["attributes"]
    assert int(record["observedTimeUnixNano"]) > 0
    assert raw["body"] == {"bytesValue": "//4="}


def test_endpoint_is_a_base_or_the_logs_url():
    assert logs_url("http://collector:4318") == "http://collector:4318/v1/logs"
    assert logs_url("https://c.example/otlp/") == "https://c.example/otlp/v1/logs"
    assert logs_url("http://c:4318/v1/logs") == "http://c:4318/v1/logs"
    for bad in ("collector:4318", "ftp://c", "http://", "http://c:port"):
        with pytest.raises(LogShipError, match="--endpoint"):
            logs_url(bad)


def test_the_command_line_ships_once_and_says_what_is_wrong_in_one_line(tmp_path, receiver, capsys):
    data = _data_folder(tmp_path) / "data.0.log"
    _append(data, _lines("a", 3))
    got = receiver()
    state = tmp_path / "elsewhere" / "state.json"
    state.parent.mkdir()
    argv = ["ship-log", "--log", str(tmp_path), "--endpoint", got.url, "--once"]

    assert main([*argv, "--state", str(state)]) == 0
    assert "done: 3 lines in 1 batches" in capsys.readouterr().out
    assert state.exists() and _held(got.records()) == _file_lines(data)

    missing = tmp_path / "nowhere"
    assert main(["ship-log", "--log", str(missing), "--endpoint", got.url, "--once"]) == 2
    err = capsys.readouterr().err
    assert err == f"error: prediction log folder {missing} does not exist\n"
    assert main(["ship-log", "--log", str(tmp_path), "--endpoint", "localhost:4318"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --endpoint: expected the http(s)://host[:port]")
    assert err.count("\n") == 1


def test_a_folder_logging_several_use_cases_needs_one_named(tmp_path, receiver):
    _append(_data_folder(tmp_path) / "data.0.log", _lines("a", 2))
    other = tmp_path / "riskbento_churn" / "data"
    other.mkdir(parents=True)
    _append(other / "data.0.log", _lines("c", 3))
    got = receiver()
    with pytest.raises(LogShipError, match=r"several use cases .* --use-case"):
        ship(tmp_path, got.url)
    done, counts = ship(tmp_path, got.url, use_case="churn")
    assert done and counts.lines == 3
    assert {r[USE_CASE] for r in got.records()} == {"churn"}


# ---------------------------------------------------------------- Kubernetes


def _docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def _component_patch() -> dict:
    kustomization = _docs(COMPONENT / "kustomization.yaml")[0]
    assert kustomization["kind"] == "Component"
    (patch,) = [_docs(COMPONENT / p["path"])[0] for p in kustomization["patches"]]
    return patch


def _base_deployment() -> dict:
    (deployment,) = [
        d for d in _docs(K8S / "base" / "deployment.yaml") if d["kind"] == "Deployment"
    ]
    return deployment


def _sidecar(pod_spec: dict) -> dict:
    (sidecar,) = [c for c in pod_spec.get("initContainers", []) if c["name"] == "log-shipper"]
    return sidecar


def _flag(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def test_the_component_patches_the_base_server_and_adds_the_shipper_on_one_volume():
    patch, base = _component_patch(), _base_deployment()
    assert patch["metadata"]["name"] == base["metadata"]["name"]
    pod, base_pod = patch["spec"]["template"]["spec"], base["spec"]["template"]["spec"]
    (server,) = pod["containers"]
    assert server["name"] in [c["name"] for c in base_pod["containers"]]
    log_dir = {e["name"]: e.get("value") for e in server["env"]}["RISKBENTO_PREDICTION_LOG_DIR"]
    volumes = {v["name"] for v in pod["volumes"]}
    (mount,) = [m for m in server["volumeMounts"] if m["mountPath"] == log_dir]
    assert mount["name"] in volumes

    sidecar = _sidecar(pod)
    assert sidecar["restartPolicy"] == "Always"  # a native sidecar: stopped after the server
    assert sidecar["image"] == server.get("image", "riskbento") == "riskbento"
    args = sidecar["args"]
    assert args[:4] == ["python", "-m", "riskbento", "ship-log"] and "--follow" in args
    assert _flag(args, "--log") == log_dir
    assert Path(_flag(args, "--state")).parent == Path(log_dir)  # the checkpoint lives on
    assert {m["name"]: m["mountPath"] for m in sidecar["volumeMounts"]} == {mount["name"]: log_dir}
    assert sidecar["securityContext"]["allowPrivilegeEscalation"] is False
    # The collector's Service and port, as the collector's manifests define them.
    service = _one(_docs(COLLECTOR / "service.yaml"), "Service")
    (port,) = service["spec"]["ports"]
    assert _flag(args, "--endpoint") == f"http://{service['metadata']['name']}:{port['port']}"


def test_the_sidecar_command_line_is_one_the_cli_accepts(tmp_path, receiver, capsys):
    args = _sidecar(_component_patch()["spec"]["template"]["spec"])["args"][3:]
    data = _data_folder(tmp_path) / "data.0.log"
    _append(data, _lines("a", 2))
    got = receiver()
    local = {"--log": str(tmp_path), "--state": str(tmp_path / "s.json"), "--endpoint": got.url}
    argv = [local.get(args[i - 1], a) if i else a for i, a in enumerate(args)]
    argv = [a for a in argv if a != "--follow"] + ["--once"]
    assert main(argv) == 0
    assert len(got.records()) == 2


def _one(objects: list[dict], kind: str) -> dict:
    (found,) = [o for o in objects if o["kind"] == kind]
    return found


def test_the_collector_receives_otlp_http_and_exports_the_logs():
    objects = [d for p in sorted(COLLECTOR.glob("*.yaml")) for d in _docs(p)]
    kustomization = _one(objects, "Kustomization")
    assert sorted(kustomization["resources"]) == sorted(
        p.name for p in COLLECTOR.glob("*.yaml") if p.name != "kustomization.yaml"
    )
    deployment, service = _one(objects, "Deployment"), _one(objects, "Service")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    image, _, tag = container["image"].partition(":")
    assert image == "otel/opentelemetry-collector-contrib" and tag[0].isdigit()  # pinned
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    (port,) = service["spec"]["ports"]
    assert ports[port["targetPort"]] == 4318 == port["port"]
    selector = service["spec"]["selector"]
    assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()

    config_map = _one(objects, "ConfigMap")
    config = yaml.safe_load(config_map["data"]["config.yaml"])
    assert config["receivers"]["otlp"]["protocols"]["http"]["endpoint"] == "0.0.0.0:4318"
    logs = config["service"]["pipelines"]["logs"]
    assert logs["receivers"] == ["otlp"]
    for kind in ("processors", "exporters"):
        assert set(logs[kind]) <= set(config[kind]), kind
    assert set(config["service"]["extensions"]) <= set(config["extensions"])
    # The file exporter writes to the volume mounted where its path points.
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    for name in logs["exporters"]:
        if name.split("/")[0] == "file":
            path = Path(config["exporters"][name]["path"])
            (volume,) = [v for v, m in mounts.items() if path.is_relative_to(m)]
            claim = volumes[volume]["persistentVolumeClaim"]["claimName"]
            assert claim == _one(objects, "PersistentVolumeClaim")["metadata"]["name"]
    config_volume = [v for v in volumes.values() if "configMap" in v]
    assert config_volume[0]["configMap"]["name"] == config_map["metadata"]["name"]


def _kubectl_kustomize(path: Path) -> list[dict]:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed")
    done = subprocess.run(
        ["kubectl", "kustomize", str(path)], capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d is not None]


@pytest.mark.integration
@pytest.mark.parametrize("overlay", ["staging", "production"])
def test_rendered_overlay_runs_the_shipper_beside_the_server(overlay):
    objects = _kubectl_kustomize(K8S / "overlays" / overlay)
    pod = _one(objects, "Deployment")["spec"]["template"]["spec"]
    (server,) = pod["containers"]
    sidecar = _sidecar(pod)
    assert sidecar["image"] == server["image"]  # the image CI sets, digest and all
    env = {e["name"]: e.get("value") for e in server["env"]}
    assert _flag(sidecar["args"], "--log") == env["RISKBENTO_PREDICTION_LOG_DIR"]
    # Base settings the lead sizes stay as they are.
    base_server = _base_deployment()["spec"]["template"]["spec"]["containers"][0]
    for key in ("lifecycle", "startupProbe", "readinessProbe", "livenessProbe"):
        assert server[key] == base_server[key], key
    collector = _kubectl_kustomize(COLLECTOR)
    assert {o["kind"] for o in collector} >= {"Deployment", "Service", "ConfigMap"}


# `python -m riskbento` run from the working directory alone: this checkout is installed in
# editable mode, whose import finder would otherwise find what the bento leaves out.
_FROM_THE_BENTO_ONLY = """
import runpy, sys
sys.meta_path[:] = [
    f for f in sys.meta_path if not getattr(f, "__module__", "").startswith("__editable__")
]
sys.argv[0] = "riskbento"
runpy.run_module("riskbento", run_name="__main__", alter_sys=True)
"""


@pytest.mark.integration
def test_the_sidecar_command_runs_from_the_code_the_serving_image_packs(tmp_path, receiver):
    """The sidecar runs in the serving image, whose code is what bentofile.yaml includes
    (under /home/bentoml/bento/src, its working directory): that code alone must run it."""
    config = yaml.safe_load((PROJECT_ROOT / "bentofile.yaml").read_text())
    included = pathspec.PathSpec.from_lines("gitwildmatch", config["include"])
    src = tmp_path / "src"
    tops = [p for p in PROJECT_ROOT.iterdir() if not p.name.startswith(".") and p.name != "tests"]
    for path in (f for top in tops for f in ([top] if top.is_file() else top.rglob("*.py"))):
        rel = path.relative_to(PROJECT_ROOT).as_posix()
        if path.suffix == ".py" and included.match_file(rel):
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, src / rel)
    log = tmp_path / "log"
    _append(_data_folder(log) / "data.0.log", _lines("a", 2))
    got = receiver()
    args = _sidecar(_component_patch()["spec"]["template"]["spec"])["args"]
    local = {"--log": str(log), "--state": str(tmp_path / "s.json"), "--endpoint": got.url}
    argv = [local.get(args[i - 1], a) if i else a for i, a in enumerate(args)]
    argv = [a for a in argv[3:] if a != "--follow"] + ["--once"]  # after `python -m riskbento`
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    argv = [sys.executable, "-c", _FROM_THE_BENTO_ONLY, *argv]
    done = subprocess.run(argv, cwd=src, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, (
        "the sidecar's command failed from the bento's code: bentofile.yaml must include "
        f"riskbento/ and jobs/logship.py (and jobs/__init__.py)\n{done.stderr[-2000:]}"
    )
    assert len(got.records()) == 2
