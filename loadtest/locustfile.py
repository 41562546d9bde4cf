"""Locust traffic for a riskbento deployment: a mix of `/predict` and `/predict_batch`.

Works against any deployment:

    .venv/bin/locust -f loadtest/locustfile.py -H http://127.0.0.1:3000 -u 10 -r 10 -t 60s \\
        --headless --rate-per-user 1

Every user sends `--rate-per-user` requests per second (constant throughput, so
`-u N` holds N x that rate as long as answers come back in time). A share
`--batch-share` of the requests go to `/predict_batch` with 10 to 50 records; the
rest go to `/predict` with one record.

Payloads: `--payloads FILE` (or `RISKBENTO_LOADTEST_PAYLOADS`), a JSON file
`{"use_case": ..., "records": [...]}` such as the one `python -m loadtest.run`
writes from the use case's inference hold-out. Without it, the record in
`examples/<use case>.json` is used (ids varied), the use case taken from
`--use-case` / `RISKBENTO_USE_CASE` or, failing that, from the deployment's
`GET /model`.

A deployment with auth on (README "Security"): `--token` or
`RISKBENTO_LOADTEST_TOKEN` sends `Authorization: Bearer <token>` with every request.

An answer counts as a success only when it is HTTP 200 and carries one
probability per record sent. `--samples-file FILE` writes every response time
(ms), its outcome and its record count, measured after spawning completes, for
exact percentiles (Locust's own CSV rounds response times).
"""

import json
import random
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gevent
from locust import events, task
from locust.contrib.fasthttp import FastHttpUser

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"
HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
BATCH_BODIES = 256  # distinct /predict_batch bodies, serialized once
SEED = 20240611


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    group = parser.add_argument_group("riskbento")
    group.add_argument(
        "--payloads",
        default="",
        env_var="RISKBENTO_LOADTEST_PAYLOADS",
        help="JSON file with {'records': [...]}; default examples/<use case>.json",
    )
    group.add_argument(
        "--use-case",
        default="",
        env_var="RISKBENTO_USE_CASE",
        help="use case of the example record when no payload file is given",
    )
    group.add_argument(
        "--rate-per-user", type=float, default=1.0, help="requests per second per user"
    )
    group.add_argument(
        "--batch-share", type=float, default=0.1, help="share of requests to /predict_batch"
    )
    group.add_argument("--batch-min", type=int, default=10, help="fewest records per batch")
    group.add_argument("--batch-max", type=int, default=50, help="most records per batch")
    group.add_argument(
        "--samples-file", default="", help="write every response time (ms) here at the end"
    )
    group.add_argument(
        "--token",
        default="",
        env_var="RISKBENTO_LOADTEST_TOKEN",
        help="bearer token for a deployment that requires one (sent, never printed)",
    )


@dataclass
class State:
    """This process's traffic and measurements."""

    # Bodies serialized once (the load generator's CPU is part of the measurement).
    singles: list[bytes] = field(default_factory=list)
    batches: list[tuple[bytes, int]] = field(default_factory=list)  # (body, records)
    source: str = ""
    rows: list[tuple[str, float, bool, int]] = field(default_factory=list)  # name, ms, ok, records
    failed_total: int = 0  # failures from the start, ramp-up included
    started: float = 0.0  # measuring window: every user running ...
    stopped: float = 0.0  # ... until the test stops


STATE = State()


def _use_case_of(host: str) -> str:
    with urllib.request.urlopen(f"{host.rstrip('/')}/model", timeout=10) as response:
        return json.load(response)["tag"].split(":")[0]


def _load_records(options: Any, host: str) -> tuple[list[dict], str, str]:
    """(records, id column, where they came from)."""
    if options.payloads:
        payload = json.loads(Path(options.payloads).read_text(encoding="utf-8"))
        return payload["records"], payload["id_column"], options.payloads
    use_case = options.use_case or _use_case_of(host)
    path = EXAMPLES_DIR / f"{use_case}.json"
    record = json.loads(path.read_text(encoding="utf-8"))
    id_column = next(iter(record))  # examples start with the id
    records = [{**record, id_column: f"{record[id_column]}-{i}"} for i in range(100)]
    return records, id_column, str(path)


@events.test_start.add_listener
def _prepare(environment: Any, **_: Any) -> None:
    options = environment.parsed_options
    records, id_column, source = _load_records(options, environment.host or "")
    rng = random.Random(SEED)
    STATE.singles = [json.dumps(r).encode() for r in records]
    low, high = options.batch_min, min(options.batch_max, len(records))
    STATE.batches = []
    for _ in range(BATCH_BODIES):
        picked = rng.sample(records, rng.randint(min(low, high), high))
        STATE.batches.append((json.dumps({"records": picked}).encode(), len(picked)))
    STATE.source = source
    STATE.rows, STATE.failed_total, STATE.started = [], 0, time.time()
    print(f"riskbento locustfile: {len(records)} records ({id_column}) from {source}")


@events.spawning_complete.add_listener
def _reset(**_: Any) -> None:
    """Mirror `--reset-stats`: measure from the moment every user is running."""
    STATE.rows, STATE.started = [], time.time()


@events.request.add_listener
def _record(name: str, response_time: float, exception: Any, context: dict, **_: Any) -> None:
    STATE.rows.append((name, response_time, exception is None, context.get("records", 0)))
    STATE.failed_total += exception is not None


@events.test_stop.add_listener
def _write_samples(environment: Any, **_: Any) -> None:
    STATE.stopped = time.time()
    path = environment.parsed_options.samples_file
    if not path:
        return
    names = sorted({row[0] for row in STATE.rows})
    summary = {
        "window_s": STATE.stopped - STATE.started,
        "errors_before_window": STATE.failed_total - sum(not row[2] for row in STATE.rows),
        "source": STATE.source,
        "names": names,
        "samples": [[names.index(n), round(ms, 3), ok, k] for n, ms, ok, k in STATE.rows],
    }
    Path(path).write_text(json.dumps(summary), encoding="utf-8")


class RiskClient(FastHttpUser):
    """One caller of the service holding a constant request rate."""

    def wait_time(self) -> float:
        interval = 1.0 / self.environment.parsed_options.rate_per_user
        run_time = time.perf_counter() - self._cp_last_run - self._cp_last_wait_time
        self._cp_last_wait_time = max(0.0, interval - run_time)
        self._cp_last_run = time.perf_counter()
        return self._cp_last_wait_time

    def on_start(self) -> None:
        # Spread the users over one interval so they do not fire in lockstep.
        options = self.environment.parsed_options
        if (options.num_users or 1) > 1:
            gevent.sleep(random.uniform(0, 1.0 / options.rate_per_user))
        self._cp_last_run, self._cp_last_wait_time = time.perf_counter(), 0.0
        token = options.token.strip()
        self.headers = {**HEADERS, "Authorization": f"Bearer {token}"} if token else HEADERS

    @task
    def score(self) -> None:
        if random.random() < self.environment.parsed_options.batch_share:
            body, count = random.choice(STATE.batches)
            self._post("/predict_batch", body, count)
        else:
            self._post("/predict", random.choice(STATE.singles), 1)

    def _post(self, route: str, body: bytes, count: int) -> None:
        with self.client.post(
            route, data=body, headers=self.headers, catch_response=True, context={"records": count}
        ) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}: {(response.text or '')[:200]}")
                return
            try:
                answer = response.json()
            except ValueError:
                response.failure("answer is not JSON")
                return
            answers = answer if isinstance(answer, list) else [answer]
            if len(answers) != count or not all("probability" in a for a in answers):
                response.failure(f"expected {count} answers with a probability")
