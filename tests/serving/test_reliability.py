"""Faults a production server meets, on a real `bentoml serve`: a worker killed under load,
a graceful stop under load, a prediction log that cannot be written. What is counted is
what a lender audits: every answered record in the decision log exactly once."""

import http.client
import json
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from core.names import PROJECT_ROOT
from loadtest.process import ServerProcess, bentoml_serve, free_port
from loadtest.process import http as raw_http
from serving.predlog import read_prediction_log

pytestmark = [pytest.mark.slow, pytest.mark.integration]

EXAMPLE = json.loads((PROJECT_ROOT / "examples" / "credit_risk.json").read_text())
CLIENTS = 8
BATCH_RECORDS = 200


def _start(tag: str, folder: Path, **settings: str) -> ServerProcess:
    env = {
        **os.environ,
        "RISKBENTO_MODEL_TAG": tag,
        "RISKBENTO_PREDICTION_LOG_DIR": str(folder / "log"),
        **{f"RISKBENTO_{k.upper()}": v for k, v in settings.items()},
    }
    server = ServerProcess("bentoml serve", bentoml_serve(free_port()), env, folder / "serve.log")
    server.wait_ready()
    return server


class Load:
    """`CLIENTS` keep-alive connections sending /predict and /predict_batch with ids never
    sent before, until stopped. Each request is kept as (sent at, ids, status or error)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.requests: list[tuple[float, list[str], int | str]] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, args=(n,)) for n in range(CLIENTS)]

    def __enter__(self) -> "Load":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _client(self, n: int) -> None:
        connection, sent = None, 0
        while not self._stop.is_set():
            sent += 1
            ids = [f"c{n}-{sent}-{i}" for i in range(BATCH_RECORDS if sent % 2 else 1)]
            path, body = (
                ("/predict_batch", {"records": [{**EXAMPLE, "customer_id": i} for i in ids]})
                if len(ids) > 1
                else ("/predict", {**EXAMPLE, "customer_id": ids[0]})
            )
            at = time.monotonic()
            try:
                connection = connection or http.client.HTTPConnection(
                    "127.0.0.1", self.port, timeout=30
                )
                connection.request(
                    "POST", path, json.dumps(body), {"Content-Type": "application/json"}
                )
                response = connection.getresponse()
                answer = response.read()
                status: int | str = response.status
                if status == 200:  # the answer must name every id sent, in order
                    got = json.loads(answer)
                    got = got if isinstance(got, list) else [got]
                    assert [a["customer_id"] for a in got] == ids
            except (OSError, http.client.HTTPException) as err:
                status, connection = type(err).__name__, None
                time.sleep(0.05)
            self.requests.append((at, ids, status))

    def answered(self) -> list[str]:
        return [i for _, ids, status in self.requests if status == 200 for i in ids]


def _logged(folder: Path) -> Counter:
    frame = read_prediction_log(folder / "log")
    assert frame.attrs["skipped_lines"] == 0
    return Counter(frame["customer_id"].astype(str))


def _workers(server: ServerProcess) -> list[psutil.Process]:
    return [p for p in server.processes()[1:] if "worker" in " ".join(p.cmdline())]


@pytest.fixture
def served(trained_tag, tmp_path) -> Iterator:
    """`served(**settings)` -> a running credit_risk server; stopped after the test."""
    started: list[ServerProcess] = []

    def _serve(**settings: str) -> ServerProcess:
        started.append(_start(trained_tag("credit_risk"), tmp_path, **settings))
        return started[-1]

    yield _serve
    for server in started:
        server.stop()


def test_a_worker_killed_under_load_loses_no_logged_answer(served, tmp_path):
    server = served(workers="2")
    workers = _workers(server)
    assert len(workers) == 2, [p.cmdline() for p in server.processes()]
    with Load(server.port) as load:
        time.sleep(3)
        workers[0].send_signal(signal.SIGKILL)
        time.sleep(4)  # BentoML's supervisor starts a new worker; the other one serves
    server.stop()
    answered, logged = load.answered(), _logged(tmp_path)
    lost = [i for i in answered if i not in logged]
    twice = [i for i, n in logged.items() if n > 1]
    failed = Counter(str(s) for _, _, s in load.requests if s != 200)
    print(f"\n[worker kill] {len(load.requests)} requests, {len(answered)} records answered, "
          f"{sum(logged.values())} logged, lost {len(lost)}, duplicated {len(twice)}, "
          f"failed requests {dict(failed)}")  # fmt: skip
    assert len(answered) > 1000  # the kill happened under real load
    assert lost == [] and twice == []


def test_sigterm_says_not_ready_then_drains_without_failing_accepted_requests(served, tmp_path):
    server = served(workers="2", drain_delay_s="2")
    with Load(server.port) as load:
        time.sleep(2)
        stopped_at = time.monotonic()
        os.kill(server.process.pid, signal.SIGTERM)
        time.sleep(0.5)
        ready = raw_http("GET", f"{server.url}/readyz")[0]
        still_served = raw_http("POST", f"{server.url}/predict", json.dumps(EXAMPLE).encode())[0]
        server.process.wait(timeout=60)
        stopped_in = time.monotonic() - stopped_at
    before = [(ids, status) for at, ids, status in load.requests if at < stopped_at]
    failed = [status for _, status in before if status != 200]
    print(f"\n[SIGTERM] {len(before)} requests sent before SIGTERM, {len(failed)} failed; "
          f"exit code {server.process.returncode} after {stopped_in:.1f} s "
          "(2.0 s of them the drain delay)")  # fmt: skip
    assert (ready, still_served) == (503, 200)  # not ready, yet still serving, then the drain
    assert len(before) > 10 and failed == []
    assert server.process.returncode == 0
    logged = _logged(tmp_path)
    assert all(logged[i] == 1 for i in load.answered())


def _log_on_a_full_disk(folder: Path) -> None:
    """Every worker's data file is /dev/full: each write fails with ENOSPC."""
    data = folder / "log" / "riskbento_credit_risk" / "data"
    data.mkdir(parents=True)
    for worker in range(3):
        (data / f"data.{worker}.log").symlink_to("/dev/full")


def _failures_counted(url: str) -> float:
    metrics = raw_http("GET", f"{url}/metrics")[1].decode()
    lines = [
        x for x in metrics.splitlines() if x.startswith("riskbento_prediction_log_failures_total")
    ]
    return sum(float(x.rsplit(" ", 1)[1]) for x in lines)


def test_an_unwritable_log_refuses_with_503_by_default(served, tmp_path):
    _log_on_a_full_disk(tmp_path)
    server = served(workers="1")
    assert raw_http("POST", f"{server.url}/predict", json.dumps(EXAMPLE).encode())[0] == 503
    body = json.dumps({"records": [EXAMPLE] * 3}).encode()
    assert raw_http("POST", f"{server.url}/predict_batch", body)[0] == 503
    assert _failures_counted(server.url) == 4
    # A 5xx body says nothing of the server (BentoML's rule); its log names the cause.
    assert "No space left on device; refused" in server.log_path.read_text()


def test_an_unwritable_log_can_be_set_to_answer_and_count(served, tmp_path):
    _log_on_a_full_disk(tmp_path)
    server = served(workers="1", prediction_log_on_failure="answer")
    status, answer = raw_http("POST", f"{server.url}/predict", json.dumps(EXAMPLE).encode())
    assert status == 200 and json.loads(answer)["customer_id"] == EXAMPLE["customer_id"]
    assert _failures_counted(server.url) == 1
