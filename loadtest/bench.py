"""`make bench`: how fast riskbento scores, in process and served, against two FastAPI peers.

One run on one machine, every number from the same model:

a. **In process** (one thread): per record, the time of riskbento's scoring function
   (`Scorer.score_records`, reasons and warnings included), the full pipeline
   (`pd.DataFrame` -> `prepare_frame` -> fitted `Pipeline.predict_proba`), the fast
   path (`columns_from_records` -> `FastPath.probabilities`) and the model alone (on
   an already encoded matrix), p50/p99 in µs; then rows/s of each for batches of
   1 ... 10,000 records.
b. **Served**, each server started here on 127.0.0.1 with the same worker count and
   driven by `loadtest.loadgen` (closed loop, keep-alive) at each concurrency for a
   bounded time: riskbento `/predict`, `/predict_batch` with one-record bodies
   (adaptive batching merges them) and with 1,000-record bodies; the plain FastAPI
   peer (pandas pipeline per request), the tuned FastAPI peer (fast path) and the
   tuned peer giving riskbento's full answer (`loadtest/peers.py`). req/s, rows/s,
   p50/p95/p99, errors, CPU of every server process, of the load generator and of the
   rest of the machine.
c. **Settings sweep**: riskbento restarted with other worker counts and batching
   settings, a few scenarios each, to show which settings win on this machine.

Ratios (riskbento ÷ plain peer, ÷ tuned peer; served rows/s ÷ in-process rows/s) and
the targets are reported, never asserted. Writes `serving_<use case>.json`, `.md` and
`.png` under `reports/bench/` (`reports/bench/smoke/` with --smoke), with the servers'
logs in `serving_logs/<use case>/`, and prints the tables.

Several use cases (`--use-case credit_risk,filing_dropoff`, the default, or `all` for
every built-in) run one after the other, each as above with its model `<name>:latest`,
and the settings sweep is skipped for all of them unless `--sweep` is given (a single
use case sweeps unless `--no-sweep`). After them, `serving_all.md` and `.json` (also
printed) put one row per use case side by side (`loadtest/bench_table.py`), every number
read from that use case's report; `--table-only` rebuilds them from the
`serving_<name>.json` files already in the output folder without measuring anything.

    python -m loadtest.bench                                # credit_risk + filing_dropoff
    python -m loadtest.bench --use-case all --concurrency 8,32,64 --duration 6
    python -m loadtest.bench --use-case credit_risk --duration 5   # + the settings sweep
    python -m loadtest.bench --smoke                        # every step, a second each
    python -m loadtest.bench --table-only                   # serving_all from saved reports
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil

from core.logs import get_logger, setup
from core.machine import machine_facts, package_versions
from core.markdown import table
from core.names import BUILTIN_USE_CASES, PROJECT_ROOT, SPEC_SUFFIXES
from loadtest import bench_table, peers
from loadtest.loadgen import nearest_rank
from loadtest.process import ServerProcess, bentoml_serve, free_port, http
from loadtest.run import build_payloads
from model import store
from model.scorer import ModelNotFound, find_model

DEFAULT_USE_CASES = ("credit_risk", "filing_dropoff")
ALL_USE_CASES = "all"  # --use-case all: every built-in
BATCH_SIZES = (1, 10, 100, 1_000, 10_000)
BIG_BODY = 1_000  # records per /predict_batch body (the service's limit)
REQUEST_TIMEOUT_S = 15.0  # the load generator's; riskbento's own is shorter (settings)
AGREEMENT = 1e-6  # every server must give the in-process probability to this
VERSIONS = (
    "bentoml", "fastapi", "starlette", "uvicorn", "uvloop", "httptools", "pydantic",
    "pydantic-core", "scikit-learn", "xgboost", "pandas", "numpy", "psutil",
)  # fmt: skip

# Targets of the performance issue: reported as met / not met, never asserted.
TARGET_VS_PLAIN = 10.0  # /predict req/s at c=32 over the plain peer
TARGET_VS_TUNED = 1.0  # ... over the tuned peer giving the same (full) answer
TARGET_P99_MS = 30.0  # /predict p99 at c=32
TARGET_BATCH_SHARE = 0.5  # served rows/s with 1,000-record bodies / in-process full pipeline
TARGET_CONCURRENCY = 32


@dataclass(frozen=True)
class Settings:
    """How riskbento is served (RISKBENTO_* environment of `bentoml serve`)."""

    workers: int
    batch_max_size: int
    batch_max_latency_ms: int
    prediction_log: bool = True  # every answer logged for drift checks (the default)
    gc_full_every: int = 100  # young collections between full ones (Python's default: 10)
    reasons: bool = True  # reason codes in every answer (the default)
    shadow_tag: str | None = None  # a shadow challenger scoring every record too

    def env(self) -> dict[str, str]:
        shadow = {"RISKBENTO_SHADOW_TAG": self.shadow_tag} if self.shadow_tag else {}
        return shadow | {
            "RISKBENTO_WORKERS": str(self.workers),
            "RISKBENTO_BATCH_MAX_SIZE": str(self.batch_max_size),
            "RISKBENTO_BATCH_MAX_LATENCY_MS": str(self.batch_max_latency_ms),
            "RISKBENTO_PREDICTION_LOG": str(self.prediction_log).lower(),
            "RISKBENTO_GC_FULL_EVERY": str(self.gc_full_every),
            "RISKBENTO_REASONS": str(self.reasons).lower(),
        }

    def label(self) -> str:
        return (
            f"workers={self.workers}, batch_max_size={self.batch_max_size}, "
            f"batch_max_latency_ms={self.batch_max_latency_ms}, "
            f"prediction_log={'on' if self.prediction_log else 'off'}, "
            f"gc_full_every={self.gc_full_every}, reasons={'on' if self.reasons else 'off'}"
            + (", shadow=on" if self.shadow_tag else "")
        )


# The settings the run serves riskbento with unless told otherwise: the sweep's winners
# on 2 cores (see loadtest/README.md, "bench"). One worker per core; a batch as large as
# the largest body (a 1,000-record body is otherwise cut into sequential model calls);
# the batching deadline as long as the request timeout, so adaptive batching never
# sheds (503) a request the timeout would still have let through.
DEFAULT_SETTINGS = Settings(workers=2, batch_max_size=1_000, batch_max_latency_ms=10_000)
SHIPPED_SETTINGS = Settings(workers=1, batch_max_size=64, batch_max_latency_ms=1_000)


@dataclass(frozen=True)
class Plan:
    duration_s: float  # measured seconds per scenario
    warmup_s: float  # unmeasured seconds before each
    concurrency: tuple[int, ...]
    record_calls: int  # per-record timings per path (at most)
    record_budget_s: float  # ... or this long
    batch_budget_s: float  # per path and batch size
    sweep_duration_s: float
    sweep: bool


FULL = Plan(10.0, 1.0, (1, 8, 32, 64), 3_000, 4.0, 1.0, 5.0, True)
SMOKE = Plan(1.0, 0.3, (1, 8), 50, 0.3, 0.05, 1.0, True)


log = get_logger("bench").info  # "[bench] ..." on stdout once an entry point ran setup()


# ---------------------------------------------------------------- machine


def busy_seconds() -> tuple[float, float]:
    """CPU seconds the whole machine spent busy (all cores), and stolen by the hypervisor."""
    t = psutil.cpu_times()
    busy = t.user + t.nice + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)
    return busy, getattr(t, "steal", 0.0)


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# ---------------------------------------------------------------- records


def load_records(use_case: str, tag: str, spec: Any, limit: int) -> tuple[list[dict], str]:
    """Records a caller would send: the use case's inference hold-out, else the example
    file with varied ids."""
    try:
        payloads = build_payloads(use_case, tag, limit=limit)
        return payloads["records"], payloads["source"]
    except (Exception, SystemExit) as err:  # no data on this machine: the example still works
        example = PROJECT_ROOT / "examples" / f"{spec.name}.json"
        if not example.exists():
            raise SystemExit(f"no hold-out records ({err}) and no {example}") from None
        record = json.loads(example.read_text())
        records = [{**record, spec.id_column: f"{record[spec.id_column]}-{i}"} for i in range(100)]
        return records, f"{example.name} with 100 ids (hold-out unavailable: {err})"


def tile(records: list[dict], n: int, start: int = 0) -> list[dict]:
    return [records[(start + i) % len(records)] for i in range(n)]


def write_bodies(path: Path, bodies: list[tuple[Any, int]]) -> Path:
    with path.open("w") as out:
        for body, rows in bodies:
            out.write(json.dumps({"body": body, "rows": rows}) + "\n")
    return path


# ---------------------------------------------------------------- a. in process


def in_process(
    scorer: Any, records: list[dict], plan: Plan, sizes: tuple[int, ...] = BATCH_SIZES,
    per_record_timings: bool = True,
) -> dict[str, Any]:  # fmt: skip
    """Per-record latency and batch throughput of each scoring path, one thread."""
    from features.tabular import columns_from_records, prepare_frame

    spec, pipeline, fast = scorer.spec, scorer.pipeline, scorer.fast
    pool = tile(records, max(sizes))

    def full(batch: list[dict]) -> Any:
        frame = prepare_frame(pd.DataFrame.from_records(batch), spec)
        return pipeline.predict_proba(frame)[:, 1]

    encoded: dict[int, Any] = {}

    def encode(batch: list[dict]) -> Any:
        if fast is not None:
            return fast.encode(columns_from_records(batch, spec))
        return pipeline.steps[0][1].transform(prepare_frame(pd.DataFrame.from_records(batch), spec))

    def model_alone(batch: list[dict]) -> Any:
        X = encoded[id(batch)]
        if fast is not None:
            return fast.seen_probability(X)
        return pipeline.steps[-1][1].predict_proba(X)[:, 1]

    paths: dict[str, Callable[[list[dict]], Any]] = {
        "scoring function": lambda batch: scorer.score_records(batch, explain=True),
        "full pipeline": full,
    }
    if fast is not None:
        paths["fast path"] = lambda batch: fast.probabilities(columns_from_records(batch, spec))
    paths["model alone"] = model_alone
    described = {
        "scoring function": "Scorer.score_records(records, explain=True): riskbento's answer",
        "full pipeline": "pd.DataFrame.from_records -> prepare_frame -> Pipeline.predict_proba",
        "fast path": "columns_from_records -> FastPath.probabilities (numpy, from the fitted "
        "pipeline)",
        "model alone": "the model on an already encoded matrix"
        + (" (FastPath's model call)" if fast is not None else " (predict_proba)"),
    }

    per_record: dict[str, Any] = {}
    singles = [[r] for r in records] if per_record_timings else []
    for batch in singles:
        encoded[id(batch)] = encode(batch)
    for name, fn in paths.items() if per_record_timings else ():
        for batch in singles[:20]:  # warm caches and lazy imports
            fn(batch)
        gc.collect()
        times: list[float] = []
        deadline = time.perf_counter() + plan.record_budget_s
        i = 0
        while len(times) < plan.record_calls and (time.perf_counter() < deadline or len(times) < 5):
            batch = singles[i % len(singles)]
            t0 = time.perf_counter_ns()
            fn(batch)
            times.append((time.perf_counter_ns() - t0) / 1000.0)
            i += 1
        times.sort()
        per_record[name] = {
            "calls": len(times),
            "p50_us": round(nearest_rank(times, 0.50), 1),
            "p99_us": round(nearest_rank(times, 0.99), 1),
            "mean_us": round(statistics.fmean(times), 1),
        }
        log(f"in process, per record, {name}: p50 {per_record[name]['p50_us']} µs, "
            f"p99 {per_record[name]['p99_us']} µs ({len(times)} calls)")  # fmt: skip

    batches: dict[str, dict[str, Any]] = {name: {} for name in paths}
    for size in sizes:
        batch = pool[:size]
        encoded[id(batch)] = encode(batch)
        for name, fn in paths.items():
            fn(batch)
            gc.collect()
            times = []
            deadline = time.perf_counter() + plan.batch_budget_s
            while len(times) < 3 or (time.perf_counter() < deadline and len(times) < 500):
                t0 = time.perf_counter()
                fn(batch)
                times.append(time.perf_counter() - t0)
            median = statistics.median(times)
            batches[name][str(size)] = {
                "calls": len(times),
                "ms_per_call": round(median * 1000, 4),
                "rows_per_s": round(size / median, 1),
            }
        log(f"in process, batch {size}: " + ", ".join(
            f"{n} {batches[n][str(size)]['rows_per_s']:,.0f} rows/s" for n in paths))  # fmt: skip
    return {
        "threads": 1,
        "paths": {name: described[name] for name in paths},
        "fast_path_unavailable": scorer.fast_unavailable,
        "per_record": per_record,
        "batches": batches,
    }


def keep_faster(inproc: dict[str, Any], again: dict[str, Any]) -> None:
    """The in-process batches measured again after the servers: each rate becomes the
    faster of the two (both kept), so a slow spell of this shared machine during one of
    them cannot flatter the served ÷ in-process ratios."""
    for name, by_size in again["batches"].items():
        for size, second in by_size.items():
            first = inproc["batches"][name][size]
            first["rows_per_s_start"], first["rows_per_s_end"] = (
                first["rows_per_s"], second["rows_per_s"],
            )  # fmt: skip
            first["rows_per_s"] = max(first["rows_per_s"], second["rows_per_s"])


# ---------------------------------------------------------------- servers


class Served(ServerProcess):
    """A server this run started, with its worker processes told apart."""

    def wait_ready(self, probe: bytes, workers: int) -> float:  # type: ignore[override]
        """Until /predict answers 200 and every worker process is up; seconds taken."""
        return self.wait_until(
            lambda: (
                http("POST", f"{self.url}/predict", probe)[0] == 200
                and len(self.worker_processes()) >= workers
            ),
            poll_s=0.3,
        )

    def worker_processes(self) -> list[psutil.Process]:
        """The processes that serve requests (a single-process server serves them itself)."""
        procs = self.processes()
        workers = [p for p in procs if _role(p, procs[0].pid) == "worker"]
        return workers or procs[:1]

    def cpu(self) -> dict[int, tuple[str, float]]:
        """pid -> (role, CPU seconds so far) for the server and every process under it."""
        out = {}
        procs = self.processes()
        serving = {p.pid for p in self.worker_processes()}
        for proc in procs:
            try:
                times = proc.cpu_times()
                role = "worker" if proc.pid in serving else _role(proc, procs[0].pid)
                out[proc.pid] = (role, times.user + times.system)
            except psutil.NoSuchProcess:
                pass
        return out


def _role(proc: psutil.Process, root_pid: int) -> str:
    try:
        cmdline = " ".join(proc.cmdline())
    except psutil.Error:
        return "gone"
    if "_bentoml_impl.worker" in cmdline or "multiprocessing.spawn" in cmdline:
        return "worker"
    if "resource_tracker" in cmdline:
        return "resource tracker"
    if proc.pid == root_pid:
        return "main"
    return "other"


def start_riskbento(
    settings: Settings, tag: str, out: Path, label: str, service: str, service_dir: Path
) -> Served:
    port = free_port()
    command = bentoml_serve(port, service)
    pythonpath = os.pathsep.join(dict.fromkeys([str(service_dir), str(PROJECT_ROOT)]))
    env = {
        **os.environ, **settings.env(), "RISKBENTO_MODEL_TAG": tag,
        "BENTOML_DO_NOT_TRACK": "True", "PYTHONPATH": pythonpath,
        "RISKBENTO_PREDICTION_LOG_DIR": str(out / f"predictions_{label}"),
    }  # fmt: skip
    return Served(label, command, env, out / f"server_{label}.log", service_dir)


def start_peer(name: str, workers: int, tag: str, out: Path) -> Served:
    port = free_port()
    env = {
        **os.environ, peers.TAG_ENV: tag, "BENTOML_DO_NOT_TRACK": "True",
        "PYTHONPATH": str(PROJECT_ROOT),
    }  # fmt: skip
    return Served(
        f"{name} peer", peers.command(name, port, workers), env, out / f"server_{name}.log",
        PROJECT_ROOT,
    )  # fmt: skip


def probabilities_of(url: str, body: dict, endpoint: str = "/predict") -> list[float]:
    status, text = http("POST", url + endpoint, json.dumps(body).encode())
    if status != 200:
        raise RuntimeError(f"{url}{endpoint} answered {status}: {text[:500]!r}")
    answer = json.loads(text)
    answers = answer if isinstance(answer, list) else [answer]
    return [a["probability"] for a in answers]


# ---------------------------------------------------------------- b. load


def run_scenario(
    server: Served, scenario: str, endpoint: str, bodies: Path, concurrency: int, plan: Plan,
    duration_s: float | None = None,
) -> dict[str, Any]:  # fmt: skip
    """One closed-loop run of the load generator, with every process's CPU over its window."""
    duration = duration_s or plan.duration_s
    command = [
        sys.executable,
        "-m",
        "loadtest.loadgen",
        "--url",
        server.url + endpoint,
        "--bodies",
        str(bodies),
        "--concurrency",
        str(concurrency),
        "--duration",
        str(duration),
        "--warmup",
        str(plan.warmup_s),
        "--timeout",
        str(REQUEST_TIMEOUT_S),
        "--server-pids",
        ",".join(str(p.pid) for p in server.worker_processes()),
    ]
    errors_path = bodies.parent / "loadgen.stderr"
    with errors_path.open("w") as errors:
        proc = subprocess.Popen(
            command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=errors, text=True
        )
        assert proc.stdout is not None
        marks: dict[str, tuple] = {}
        last = ""
        for line in proc.stdout:
            line = line.strip()
            if line in ("MEASURE_START", "MEASURE_END"):
                marks[line] = (
                    time.perf_counter(), server.cpu(), busy_seconds(), own_cpu(),
                    _pid_cpu(proc.pid),
                )  # fmt: skip
            elif line:
                last = line
        proc.wait()
    if proc.returncode != 0 or "MEASURE_END" not in marks:
        raise RuntimeError(
            f"load generator failed ({proc.returncode}): {errors_path.read_text()[-2000:]}"
        )
    result = json.loads(last)
    (t0, cpu0, busy0, own0, gen0), (t1, cpu1, busy1, own1, gen1) = (
        marks["MEASURE_START"], marks["MEASURE_END"],
    )  # fmt: skip
    wall = t1 - t0
    per_process = []
    for pid, (role, seconds) in sorted(cpu1.items()):
        before = cpu0.get(pid, (role, 0.0))[1]
        per_process.append({"pid": pid, "role": role, "cores": round((seconds - before) / wall, 3)})
    server_cores = sum(p["cores"] for p in per_process)
    client_cores = result["client"]["cores"]
    machine_cores = (busy1[0] - busy0[0]) / wall
    steal_cores = (busy1[1] - busy0[1]) / wall
    bench_cores = (own1 - own0) / wall
    result.update(
        scenario=scenario,
        server=server.name,
        endpoint=endpoint,
        server_cores=round(server_cores, 3),
        server_processes=per_process,
        worker_cores=[p["cores"] for p in per_process if p["role"] == "worker"],
        client_cores=round(client_cores, 3),
        client_cores_psutil=round((gen1 - gen0) / wall, 3) if gen0 is not None else None,
        bench_cores=round(bench_cores, 3),
        machine_busy_cores=round(machine_cores, 3),
        steal_cores=round(steal_cores, 3),
        other_cores=round(max(0.0, machine_cores - server_cores - client_cores - bench_cores), 3),
        server_cpu_us_per_request=(
            round(1e6 * server_cores / result["rps"]) if result["rps"] else None
        ),
    )
    for key in ("p50_ms", "p95_ms", "p99_ms", "max_ms", "mean_ms"):
        if result[key] is not None:
            result[key] = round(result[key], 3)
    result["rps"] = round(result["rps"], 1)
    result["rows_per_s"] = round(result["rows_per_s"], 1)
    log(
        f"{scenario} c={concurrency}: {result['rps']:,.1f} req/s, {result['rows_per_s']:,.1f} "
        f"rows/s, p50/p95/p99 {result['p50_ms']}/{result['p95_ms']}/{result['p99_ms']} ms, "
        f"{result['errors']} errors; CPU server {server_cores:.2f} "
        f"(workers {result['worker_cores']}), client {client_cores:.2f}, "
        f"other {result['other_cores']:.2f}, stolen {result['steal_cores']:.2f} cores"
    )
    return result


def _pid_cpu(pid: int) -> float | None:
    try:
        times = psutil.Process(pid).cpu_times()
        return times.user + times.system
    except psutil.Error:
        return None


@dataclass
class Bodies:
    single: Path  # /predict and the peers: one record each
    batch_one: Path  # /predict_batch: {"records": [one]}
    batch_big: Path  # /predict_batch: {"records": [1,000]}
    probe: bytes = b""
    big_rows: int = BIG_BODY


def make_bodies(records: list[dict], out: Path) -> Bodies:
    n = min(len(records), 1_000)
    offsets = range(0, len(records), max(1, len(records) // 4))
    return Bodies(
        single=write_bodies(out / "bodies_single.jsonl", [(r, 1) for r in records[:n]]),
        batch_one=write_bodies(
            out / "bodies_batch_one.jsonl", [({"records": [r]}, 1) for r in records[:n]]
        ),
        batch_big=write_bodies(
            out / "bodies_batch_1000.jsonl",
            [({"records": tile(records, BIG_BODY, o)}, BIG_BODY) for o in list(offsets)[:4]],
        ),
        probe=json.dumps(records[0]).encode(),
    )


RISKBENTO_SCENARIOS = (
    ("riskbento /predict", "/predict", "single"),
    ("riskbento /predict_batch 1-record bodies", "/predict_batch", "batch_one"),
    ("riskbento /predict_batch 1,000-record bodies", "/predict_batch", "batch_big"),
)
PEER_SCENARIO = {
    "plain": "plain peer /predict (FastAPI + pandas pipeline)",
    "tuned": "tuned peer /predict (FastAPI + fast path)",
    "tuned_full": "tuned peer, riskbento's full answer /predict",
}


def check_agreement(
    server: Served, records: list[dict], expected: np.ndarray, batch: bool
) -> float:
    """Max |probability - in-process| over a few records; raises above AGREEMENT."""
    got = [probabilities_of(server.url, r)[0] for r in records]
    if batch:
        got_batch = probabilities_of(server.url, {"records": records}, "/predict_batch")
        got = got + got_batch
        expected = np.concatenate([expected, expected])
    diff = float(np.max(np.abs(np.asarray(got) - expected)))
    if diff > AGREEMENT:
        raise RuntimeError(f"{server.name} disagrees with the in-process scorer by {diff}")
    return diff


def serve_and_load(
    start: Callable[[], Served], workers: int, bodies: Bodies,
    scenarios: list[tuple[str, str, Path, int]], plan: Plan, check: Callable[[Served], float],
    duration_s: float | None = None,
) -> tuple[list[dict], dict[str, Any]]:  # fmt: skip
    server = start()
    try:
        ready_s = server.wait_ready(bodies.probe, workers)
        agreement = check(server)
        log(f"{server.name} ready in {ready_s:.1f}s on {server.url} (max |Δp| {agreement:.2g})")
        results = [
            run_scenario(server, name, endpoint, path, c, plan, duration_s)
            for name, endpoint, path, c in scenarios
        ]
        facts = {"ready_s": round(ready_s, 2), "max_abs_diff_probability": agreement}
        return results, facts
    except Exception:
        log(f"{server.name} log tail:\n{server.tail()}")
        raise
    finally:
        server.stop()


# ---------------------------------------------------------------- c. report


def _get(served: list[dict], scenario: str, c: int) -> dict | None:
    return next((r for r in served if r["scenario"] == scenario and r["concurrency"] == c), None)


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def ratios(served: list[dict], inproc: dict, concurrency: tuple[int, ...]) -> dict[str, Any]:
    predict = RISKBENTO_SCENARIOS[0][0]
    one, big = RISKBENTO_SCENARIOS[1][0], RISKBENTO_SCENARIOS[2][0]
    full_1000 = inproc["batches"]["full pipeline"][str(BIG_BODY)]["rows_per_s"]
    scoring_1000 = inproc["batches"]["scoring function"][str(BIG_BODY)]["rows_per_s"]
    scoring_1 = inproc["batches"]["scoring function"]["1"]["rows_per_s"]
    rows = []
    for c in concurrency:
        rb = _get(served, predict, c) or {}
        row: dict[str, Any] = {"concurrency": c}
        for peer, scenario in PEER_SCENARIO.items():
            other = _get(served, scenario, c)
            row[f"predict_vs_{peer}"] = _ratio(rb.get("rps"), other and other["rps"])
        batch_one = _get(served, one, c) or {}
        batch_big = _get(served, big, c) or {}
        row["batch_one_vs_predict"] = _ratio(batch_one.get("rps"), rb.get("rps"))
        row["batch_one_vs_inprocess_scoring_1"] = _ratio(batch_one.get("rows_per_s"), scoring_1)
        row["batch_1000_vs_inprocess_full_1000"] = _ratio(batch_big.get("rows_per_s"), full_1000)
        row["batch_1000_vs_inprocess_scoring_1000"] = _ratio(
            batch_big.get("rows_per_s"), scoring_1000
        )
        rows.append(row)
    return {
        "inprocess_full_pipeline_rows_per_s_at_1000": full_1000,
        "inprocess_scoring_function_rows_per_s_at_1000": scoring_1000,
        "inprocess_scoring_function_rows_per_s_at_1": scoring_1,
        "by_concurrency": rows,
    }


def targets(served: list[dict], ratio: dict[str, Any]) -> list[dict[str, Any]]:
    c = TARGET_CONCURRENCY
    row = next((r for r in ratio["by_concurrency"] if r["concurrency"] == c), None)
    predict = _get(served, RISKBENTO_SCENARIOS[0][0], c)
    big = [r for r in served if r["scenario"] == RISKBENTO_SCENARIOS[2][0]]
    best_big = max(big, key=lambda r: r["rows_per_s"]) if big else None
    full_1000 = ratio["inprocess_full_pipeline_rows_per_s_at_1000"]
    # Like for like: the tuned peer that answers what /predict answers (reasons, warnings,
    # log); the probability-only tuned peer stays in the ratios as context.
    checks = [
        (
            "vs_plain",
            f"/predict req/s at c={c} >= {TARGET_VS_PLAIN:g}x the plain peer",
            row and row["predict_vs_plain"],
            TARGET_VS_PLAIN,
        ),
        (
            "vs_tuned_full",
            f"/predict req/s at c={c} >= {TARGET_VS_TUNED:g}x the tuned peer giving the same "
            f"full answer",
            row and row["predict_vs_tuned_full"],
            TARGET_VS_TUNED,
        ),
        (
            "p99",
            f"/predict p99 at c={c} <= {TARGET_P99_MS:g} ms",
            predict and predict["p99_ms"],
            -TARGET_P99_MS,
        ),
        (
            "batch_share",
            f"/predict_batch 1,000-record bodies: served rows/s >= {TARGET_BATCH_SHARE:.0%} of "
            f"in-process full pipeline at 1,000 (best concurrency: "
            f"{best_big['concurrency'] if best_big else '–'})",
            _ratio(best_big and best_big["rows_per_s"], full_1000),
            TARGET_BATCH_SHARE,
        ),
    ]
    out = []
    for key, name, value, bound in checks:
        if value is None:
            met = None
        elif bound < 0:
            met = value <= -bound
        else:
            met = value >= bound
        out.append({"key": key, "target": name, "value": value, "bound": abs(bound), "met": met})
    return out


CROSS_CONCURRENCY = (8, TARGET_CONCURRENCY, 64)  # /predict columns of the cross table


def cross_row(report: dict[str, Any], path: Path) -> bench_table.Row:
    """A use case's report (saved at `path`) as its row of the cross-use-case table: its
    own numbers, ratios and targets, read, not recomputed (a missing run or peer: None)."""
    inproc, served = report["in_process"], report["served"]
    c = TARGET_CONCURRENCY
    ratio = next((r for r in report["ratios"]["by_concurrency"] if r["concurrency"] == c), {})
    predict = RISKBENTO_SCENARIOS[0][0]
    big = [r for r in served if r["scenario"] == RISKBENTO_SCENARIOS[2][0]]
    best_big = max(big, key=lambda r: r["rows_per_s"]) if big else None
    big_ratio = best_big and next(
        (r for r in report["ratios"]["by_concurrency"]
         if r["concurrency"] == best_big["concurrency"]),
        None,
    )  # fmt: skip
    at_c = _get(served, predict, c) or {}
    champion = report.get("champion") or {}  # a report from before the card was read here
    return bench_table.Row(
        use_case=report["use_case"],
        model_tag=report["model_tag"],
        champion_family=champion.get("family"),
        champion_candidate=champion.get("candidate"),
        report=str(path),
        smoke=report["smoke"],
        workers=report["workers"],
        settings=report["riskbento_settings"]["label"],
        duration_s=report["plan"]["duration_s"],
        elapsed_s=report.get("elapsed_s"),
        load_average_at_start=report["machine"]["load_average_at_start"],
        us_per_record={p: inproc["per_record"].get(p, {}).get("p50_us") for p in bench_table.PATHS},
        rows_per_s_at_1000={
            p: inproc["batches"].get(p, {}).get(str(BIG_BODY), {}).get("rows_per_s")
            for p in bench_table.PATHS
        },
        predict=[
            bench_table.PredictAt(n, run["rps"], run["p50_ms"], run["p99_ms"])
            if (run := _get(served, predict, n))
            else bench_table.PredictAt(n)
            for n in CROSS_CONCURRENCY
        ],
        at_concurrency=c,
        vs_plain=ratio.get("predict_vs_plain"),
        vs_tuned_full=ratio.get("predict_vs_tuned_full"),
        vs_tuned=ratio.get("predict_vs_tuned"),
        server_cpu_us_per_request=at_c.get("server_cpu_us_per_request"),
        batch_concurrency=best_big and best_big["concurrency"],
        batch_rows_per_s=best_big and best_big["rows_per_s"],
        batch_vs_inprocess_full=big_ratio and big_ratio["batch_1000_vs_inprocess_full_1000"],
        targets={
            t["key"]: bench_table.Target(t["target"], t["value"], t["bound"], t["met"])
            for t in report["targets"]
            if "key" in t  # reports from before the keys: their targets are not these
        },
        machine=report["machine"],
        versions=report["versions"],
    )


RATIO_KEYS = (
    "predict_vs_plain",
    "predict_vs_tuned",
    "predict_vs_tuned_full",
    "batch_one_vs_predict",
    "batch_one_vs_inprocess_scoring_1",
    "batch_1000_vs_inprocess_full_1000",
    "batch_1000_vs_inprocess_scoring_1000",
)


def _run_cells(run: dict[str, Any], p95: bool) -> list[Any]:
    """Scenario, c, req/s, rows/s, p50 [, p95], p99 ms, errors, server cores (per worker)."""
    latencies = ("p50_ms", "p95_ms", "p99_ms") if p95 else ("p50_ms", "p99_ms")
    workers = "/".join(f"{x:.2f}" for x in run["worker_cores"])
    return [
        run["scenario"],
        run["concurrency"],
        _f(run["rps"]),
        _f(run["rows_per_s"]),
        *(_f(run[key], 2) for key in latencies),
        run["errors"],
        f"{run['server_cores']:.2f} ({workers})",
    ]


def _f(value: Any, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def render(report: dict[str, Any]) -> str:
    m, v, inproc = report["machine"], report["versions"], report["in_process"]
    lines = [
        f"# Serving benchmark: {report['use_case']} ({report['model_tag']})",
        "",
        f"Machine: {m['cores']} cores ({m['cpu_model']}), {m['memory_gb']} GB, load average "
        f"at start {m['load_average_at_start']}; {m['platform']}.",
        "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()) + ".",
        f"Run: {'SMOKE, ' if report['smoke'] else ''}{report['plan']['duration_s']:g} s measured "
        f"(+{report['plan']['warmup_s']:g} s warm-up) per scenario and concurrency; every "
        f"server with {report['workers']} worker(s) on 127.0.0.1; load generator "
        f"`loadtest.loadgen` (closed loop, keep-alive, one process). Records: "
        f"{report['records_source']}. Total {report['elapsed_s']:.0f} s.",
        f"riskbento served with {report['riskbento_settings']['label']}.",
        "",
        "## a. In process (one thread)",
        "",
        *table(
            ["path", "what", "p50 µs / record", "p99 µs / record"],
            [
                [name, what, *(_f(inproc["per_record"][name][k]) for k in ("p50_us", "p99_us"))]
                for name, what in inproc["paths"].items()
            ],
        ),
        "",
        "rows/s by batch size:",
        "",
        *table(
            ["path", *(f"{s:,}" for s in BATCH_SIZES)],
            [
                [name, *(_f(inproc["batches"][name][str(s)]["rows_per_s"], 0) for s in BATCH_SIZES)]
                for name in inproc["paths"]
            ],
        ),
    ]
    again = [
        f"{name} @{int(size):,} {_f(r['rows_per_s_start'], 0)} / {_f(r['rows_per_s_end'], 0)}"
        for name, by_size in inproc["batches"].items()
        for size, r in by_size.items()
        if "rows_per_s_end" in r
    ]
    if again:
        lines += ["", "Measured before / after the servers (the table and the ratios use the "
                  "faster): " + "; ".join(again) + "."]  # fmt: skip
    lines += [
        "",
        "## b. Served",
        "",
        *table(
            [
                "scenario",
                "c",
                "req/s",
                "rows/s",
                "p50 ms",
                "p95 ms",
                "p99 ms",
                "errors",
                "server cores (per worker)",
                "server µs CPU / req",
                "client cores",
                "other cores",
            ],
            [
                [
                    *_run_cells(r, p95=True),
                    _f(r["server_cpu_us_per_request"]),
                    f"{r['client_cores']:.2f}",
                    f"{r['other_cores']:.2f}",
                ]
                for r in report["served"]
            ],
        ),
    ]
    ratio = report["ratios"]
    lines += [
        "",
        "## c. Ratios",
        "",
        f"In-process rows/s at batch 1,000: full pipeline "
        f"{_f(ratio['inprocess_full_pipeline_rows_per_s_at_1000'], 0)}, scoring function "
        f"{_f(ratio['inprocess_scoring_function_rows_per_s_at_1000'], 0)}; scoring function at "
        f"batch 1: {_f(ratio['inprocess_scoring_function_rows_per_s_at_1'], 0)}.",
        "",
        *table(
            [
                "c",
                "/predict ÷ plain peer",
                "÷ tuned peer",
                "÷ tuned peer (full answer)",
                "batch 1-record ÷ /predict (req/s)",
                "batch 1-record rows/s ÷ in-process scoring @1",
                "batch 1,000 rows/s ÷ in-process full pipeline @1,000",
                "÷ in-process scoring @1,000",
            ],
            [
                [r["concurrency"], *(_f(r[k], 2) for k in RATIO_KEYS)]
                for r in ratio["by_concurrency"]
            ],
        ),
    ]
    lines += ["", "Targets (reported, not asserted):", ""]
    for t in report["targets"]:
        met = {True: "met", False: "NOT met", None: "not measured"}[t["met"]]
        lines.append(f"- {t['target']}: {_f(t['value'], 3)} -> **{met}**")
    if report["sweep"]:
        lines += [
            "",
            "## Settings sweep (riskbento restarted per setting)",
            "",
            *table(
                [
                    "settings",
                    "scenario",
                    "c",
                    "req/s",
                    "rows/s",
                    "p50 ms",
                    "p99 ms",
                    "errors",
                    "server cores (per worker)",
                ],
                [
                    [entry["label"], *_run_cells(r, p95=False)]
                    for entry in report["sweep"]
                    for r in entry["results"]
                ],
            ),
        ]
        lines += _floor_line(report)
    lines += ["", f"Plot: `{report['files']['png']}`.", ""]
    return "\n".join(lines)


def _floor_line(report: dict[str, Any]) -> list[str]:
    """riskbento doing the tuned peer's work (no reasons, no log) against the tuned peer."""
    entry = next(
        (e for e in report["sweep"] if not e["settings"].get("reasons", True)
         and not e["settings"].get("prediction_log", True)),
        None,
    )  # fmt: skip
    predict = entry and next(
        (r for r in entry["results"] if r["scenario"] == RISKBENTO_SCENARIOS[0][0]), None
    )
    peer = predict and _get(report["served"], PEER_SCENARIO["tuned"], predict["concurrency"])
    if not (predict and peer):
        return []
    return [
        "",
        f"Without reasons and without the prediction log (the tuned peer's work), riskbento "
        f"`/predict` at c={predict['concurrency']} ran {_f(predict['rps'])} req/s: "
        f"{_f(_ratio(predict['rps'], peer['rps']), 3)}x the tuned peer ({_f(peer['rps'])} req/s "
        f"in the main run).",
    ]


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    served = report["served"]
    names = [s[0] for s in RISKBENTO_SCENARIOS[:2]] + [PEER_SCENARIO[p] for p in PEER_SCENARIO]
    fig, axes = plt.subplots(1, 3, figsize=(18, 5.2))
    for name in names:
        runs = sorted((r for r in served if r["scenario"] == name), key=lambda r: r["concurrency"])
        if not runs:
            continue
        cs = [r["concurrency"] for r in runs]
        axes[0].plot(cs, [r["rps"] for r in runs], marker="o", label=name)
        axes[1].plot(cs, [r["p99_ms"] or float("nan") for r in runs], marker="o", label=name)
    axes[0].set(xscale="log", xlabel="concurrent connections", ylabel="requests/s",
                title="one record per request: throughput")  # fmt: skip
    axes[1].set(xscale="log", yscale="log", xlabel="concurrent connections", ylabel="p99 ms",
                title="one record per request: p99 latency")  # fmt: skip
    axes[1].axhline(TARGET_P99_MS, color="grey", linestyle="--", linewidth=1)
    for ax in axes[:2]:
        ax.set_xticks(list(report["plan"]["concurrency"]))
        ax.set_xticklabels([str(c) for c in report["plan"]["concurrency"]])
        ax.minorticks_off()
    axes[0].legend(fontsize=7)
    inproc = report["in_process"]["batches"]
    labels = [f"in process\n{name}" for name in inproc]
    values = [inproc[name][str(BIG_BODY)]["rows_per_s"] for name in inproc]
    for r in served:
        if r["scenario"] == RISKBENTO_SCENARIOS[2][0]:
            labels.append(f"served\nc={r['concurrency']}")
            values.append(r["rows_per_s"])
    colors = ["#888"] * len(inproc) + ["#2a7"] * (len(values) - len(inproc))
    axes[2].bar(range(len(values)), values, color=colors)
    axes[2].set_xticks(range(len(values)), labels, fontsize=7)
    axes[2].set(yscale="log", ylabel="rows/s (log)", title="1,000 records per call: rows/s")
    for i, value in enumerate(values):
        axes[2].annotate(f"{value:,.0f}", (i, value), ha="center", va="bottom", fontsize=7)
    m = report["machine"]
    fig.suptitle(
        f"riskbento {report['use_case']} ({report['model_tag']}), {report['workers']} workers; "
        f"{m['cores']} cores {m['cpu_model']}; bentoml {report['versions']['bentoml']}",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------- main


def sweep_configs(chosen: Settings, smoke: bool, shadow_tag: str) -> list[Settings]:
    """Other settings to compare with the chosen ones (which the main run measures)."""
    # What a shadow challenger costs: a copy of the champion, so the same family.
    shadow = replace(chosen, shadow_tag=shadow_tag)
    if smoke:
        return [replace(chosen, batch_max_size=64), shadow]
    candidates = [
        shadow,
        SHIPPED_SETTINGS,  # the old defaults (1 worker, batch 64, 1 s deadline)
        replace(chosen, workers=1),
        replace(chosen, workers=3),
        replace(chosen, batch_max_size=64),
        replace(chosen, batch_max_latency_ms=1_000),
        replace(chosen, prediction_log=False),  # what logging every answer costs
        replace(chosen, gc_full_every=10),  # Python's garbage collector defaults
        # The tuned peer's work: no reasons, nothing logged; what is left is the framework.
        replace(chosen, reasons=False, prediction_log=False),
    ]
    return [c for c in dict.fromkeys(candidates) if c != chosen]


def use_case_list(value: str | None) -> list[str]:
    """--use-case as a list: comma-separated names or spec paths, `all` for every built-in."""
    if value is None:
        return list(DEFAULT_USE_CASES)
    items = [item.strip() for item in value.split(",") if item.strip()]
    every = [n for item in items for n in (BUILTIN_USE_CASES if item == ALL_USE_CASES else [item])]
    return list(dict.fromkeys(every))


def use_case_name(use_case: str) -> str:
    """A built-in name as given, a spec path by its file name."""
    return Path(use_case).stem if use_case.endswith(SPEC_SUFFIXES) else use_case


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Several use cases run one after the other, each with its model <name>:latest, "
        "and then serving_all.md/.json put them side by side; the settings sweep runs for a "
        "single use case unless --no-sweep, for several only with --sweep.",
    )
    parser.add_argument(
        "--use-case", default=None,
        help=f"built-in name or spec path; several comma-separated, or {ALL_USE_CASES!r} "
        f"({', '.join(BUILTIN_USE_CASES)}); default: {','.join(DEFAULT_USE_CASES)}",
    )  # fmt: skip
    parser.add_argument(
        "--model-tag", default=None, help="default <use case>:latest; only with one use case"
    )
    parser.add_argument("--smoke", action="store_true", help="every step, a second each")
    parser.add_argument("--duration", type=float, default=None, help="measured s per scenario")
    parser.add_argument("--workers", type=int, default=DEFAULT_SETTINGS.workers)
    parser.add_argument("--batch-max-size", type=int, default=DEFAULT_SETTINGS.batch_max_size)
    parser.add_argument(
        "--batch-max-latency-ms", type=int, default=DEFAULT_SETTINGS.batch_max_latency_ms
    )
    parser.add_argument("--concurrency", default=None, help="comma-separated, e.g. 1,8,32,64")
    parser.add_argument("--peers", default=",".join(peers.PEERS), help="which peers to run")
    sweep = parser.add_mutually_exclusive_group()
    sweep.add_argument(
        "--no-sweep", action="store_true", help="skip the settings sweep (one use case)"
    )
    sweep.add_argument(
        "--sweep", action="store_true",
        help="run the settings sweep for every use case (several use cases skip it otherwise)",
    )  # fmt: skip
    parser.add_argument(
        "--only", default="single,batch_one,batch_big",
        help="riskbento scenarios to run: single (/predict), batch_one, batch_big",
    )  # fmt: skip
    parser.add_argument("--service", default="service:RiskService", help="bentoml serve target")
    parser.add_argument(
        "--service-dir", type=Path, default=PROJECT_ROOT,
        help="folder holding --service's module (default: the project)",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--table-only", action="store_true",
        help=f"measure nothing: build {bench_table.STEM}.md/.json from the serving_<name>.json "
        "files in the output folder (those of --use-case if given, else every one)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    args.use_cases = use_case_list(args.use_case)
    if not args.use_cases:
        parser.error(f"--use-case names no use case: {args.use_case!r}")
    if args.model_tag and len(args.use_cases) > 1:
        parser.error(
            f"--model-tag names one model, but --use-case names {len(args.use_cases)} use "
            f"cases ({', '.join(args.use_cases)}): give one use case with --model-tag, or drop "
            f"--model-tag to run each with its <name>:latest"
        )
    return args


def plan_of(args: argparse.Namespace) -> Plan:
    plan = SMOKE if args.smoke else FULL
    if args.duration:
        plan = replace(plan, duration_s=args.duration, sweep_duration_s=args.duration / 2)
    if args.concurrency:
        plan = replace(plan, concurrency=tuple(int(c) for c in args.concurrency.split(",")))
    if args.no_sweep or (len(args.use_cases) > 1 and not args.sweep):
        plan = replace(plan, sweep=False)
    return plan


def run_use_case(
    use_case: str, tag: str, args: argparse.Namespace, plan: Plan, out: Path
) -> dict[str, Any]:
    """One use case, every step; writes serving_<name>.json, .md and .png, returns the report."""
    from model.scorer import Scorer

    started = time.monotonic()
    scorer = Scorer.from_store(tag)
    tag, spec = scorer.tag, scorer.spec
    work = out / "serving_logs" / spec.name
    work.mkdir(parents=True, exist_ok=True)
    chosen = Settings(args.workers, args.batch_max_size, args.batch_max_latency_ms)
    chosen_peers = [p for p in args.peers.split(",") if p]
    only = set(args.only.split(","))
    machine = machine_facts()
    log(f"{spec.name} ({tag}) on {machine['cores']} cores ({machine['cpu_model']}), "
        f"load average {machine['load_average_at_start']}")  # fmt: skip
    records, source = load_records(use_case, scorer.tag, spec, limit=1_000)
    log(f"{len(records)} records from {source}")

    inproc = in_process(scorer, records, plan)

    bodies = make_bodies(records, work)
    paths = {"single": bodies.single, "batch_one": bodies.batch_one, "batch_big": bodies.batch_big}
    check_records = records[:5]
    expected = np.array([a["probability"] for a in scorer.score_records(check_records)])

    def riskbento_scenarios(concurrency: tuple[int, ...]) -> list[tuple[str, str, Path, int]]:
        return [
            (name, endpoint, paths[kind], c)
            for name, endpoint, kind in RISKBENTO_SCENARIOS
            for c in concurrency
            if kind in only
        ]

    served: list[dict] = []
    facts: dict[str, Any] = {}
    results, facts["riskbento"] = serve_and_load(
        lambda: start_riskbento(chosen, tag, work, "riskbento", args.service, args.service_dir),
        chosen.workers, bodies, riskbento_scenarios(plan.concurrency), plan,
        lambda s: check_agreement(s, check_records, expected, batch=True),
    )  # fmt: skip
    served += results
    for peer in chosen_peers:
        scenario = PEER_SCENARIO[peer]
        results, facts[peer] = serve_and_load(
            lambda peer=peer: start_peer(peer, chosen.workers, tag, work),
            chosen.workers, bodies,
            [(scenario, "/predict", bodies.single, c) for c in plan.concurrency], plan,
            lambda s: check_agreement(s, check_records, expected, batch=False),
        )  # fmt: skip
        served += results

    sweep = []
    if plan.sweep:
        sweep_c = (
            TARGET_CONCURRENCY if TARGET_CONCURRENCY in plan.concurrency else plan.concurrency[-1]
        )
        big_c = 8 if 8 in plan.concurrency else plan.concurrency[-1]
        challenger = store.copy(find_model(tag), f"{tag.split(':')[0]}_bench_shadow")
        for settings in sweep_configs(chosen, args.smoke, str(challenger.tag)):
            label = settings.label()
            scenarios = [
                (RISKBENTO_SCENARIOS[0][0], "/predict", paths["single"], sweep_c),
                (RISKBENTO_SCENARIOS[1][0], "/predict_batch", paths["batch_one"], sweep_c),
                (RISKBENTO_SCENARIOS[2][0], "/predict_batch", paths["batch_big"], big_c),
            ]
            log(f"sweep: {label}")
            results, fact = serve_and_load(
                lambda settings=settings: start_riskbento(
                    settings, tag, work, "sweep", args.service, args.service_dir),
                settings.workers, bodies, scenarios, plan,
                lambda s: check_agreement(s, check_records, expected, batch=True),
                plan.sweep_duration_s,
            )  # fmt: skip
            sweep.append(
                {"label": label, "settings": settings.__dict__, "results": results, **fact}
            )
        # the main run's settings, same scenarios, for the comparison
        main_rows = [
            r
            for r in served
            if (r["scenario"], r["concurrency"])
            in {
                (RISKBENTO_SCENARIOS[0][0], sweep_c),
                (RISKBENTO_SCENARIOS[1][0], sweep_c),
                (RISKBENTO_SCENARIOS[2][0], big_c),
            }
        ]
        sweep.insert(0, {"label": chosen.label() + " (main run)", "settings": chosen.__dict__,
                         "results": main_rows})  # fmt: skip

    log("in process again, batches of 1 and 1,000 (the faster of both measurements counts)")
    keep_faster(inproc, in_process(scorer, records, plan, (1, BIG_BODY), False))
    ratio = ratios(served, inproc, plan.concurrency)
    stem = f"serving_{spec.name}"
    report: dict[str, Any] = {
        "use_case": spec.name,
        "model_tag": tag,
        "champion": {
            "family": scorer.card.champion.family,
            "candidate": scorer.card.champion.candidate,
        },
        "smoke": args.smoke,
        "machine": machine,
        "versions": package_versions(VERSIONS),
        "workers": chosen.workers,
        "riskbento_settings": {
            **chosen.__dict__,
            "label": chosen.label(),
            "service": args.service,
            "threads": "1 (BentoML default)",
        },
        "plan": plan.__dict__,
        "records_source": source,
        "load_generator": "loadtest.loadgen: asyncio (uvloop) raw-socket HTTP/1.1 keep-alive, "
        "closed loop, one process",
        "in_process": inproc,
        "served": served,
        "servers": facts,
        "ratios": ratio,
        "targets": targets(served, ratio),
        "sweep": sweep,
        "files": {k: str(out / f"{stem}.{k}") for k in ("json", "md", "png")},
    }
    report["elapsed_s"] = round(time.monotonic() - started, 1)
    plot(report, out / f"{stem}.png")
    text = render(report)
    (out / f"{stem}.md").write_text(text)
    (out / f"{stem}.json").write_text(json.dumps(report, indent=2, default=str))
    print(text, flush=True)
    log(f"wrote {out / stem}.json, .md, .png in {report['elapsed_s']:.0f} s")
    return report


def _named(report: Path) -> str:
    return report.stem.removeprefix("serving_")


def saved_reports(out: Path, names: list[str] | None) -> list[tuple[dict[str, Any], Path]]:
    """The serving_<name>.json files in `out`: those named (in that order), else every one."""
    if names is None:
        found = [p for p in out.glob("serving_*.json") if p.stem != bench_table.STEM]
        order = {name: i for i, name in enumerate(BUILTIN_USE_CASES)}
        paths = sorted(found, key=lambda p: (order.get(_named(p), len(order)), _named(p)))
    else:
        paths = [out / f"serving_{name}.json" for name in names]
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            raise SystemExit(f"no report {', '.join(missing)}: run `make bench` for it first")
    if not paths:
        raise SystemExit(f"no serving_<use case>.json in {out}: run `make bench` first")
    return [(json.loads(p.read_text()), p) for p in paths]


def write_table(reports: list[tuple[dict[str, Any], Path]], out: Path) -> Path:
    path, text = bench_table.write([cross_row(r, p) for r, p in reports], out)
    print(text, flush=True)
    log(f"wrote {path} and {path.with_suffix('.md')}")
    return path


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Every use case asked for, one after the other, then the cross-use-case table."""
    args = parse(argv)
    setup()
    out = args.out or PROJECT_ROOT / "reports" / "bench" / ("smoke" if args.smoke else "")
    names = [use_case_name(u) for u in args.use_cases]
    if args.table_only:
        reports = saved_reports(out, names if args.use_case else None)
        write_table(reports, out)
        return [report for report, _ in reports]

    tags = [args.model_tag or f"{name}:latest" for name in names]
    missing = []
    for tag in tags:  # every one before anything runs, not after the first use case's run
        try:
            find_model(tag)
        except ModelNotFound as err:
            missing.append(str(err))
    if missing:
        raise SystemExit("\n".join(missing))
    plan = plan_of(args)
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")
    reports = []
    for i, (use_case, tag) in enumerate(zip(args.use_cases, tags, strict=True), 1):
        log(f"use case {i} of {len(tags)}: {use_case} ({tag})")
        report = run_use_case(use_case, tag, args, plan, out)
        reports.append((report, Path(report["files"]["json"])))
    if len(reports) > 1:
        write_table(reports, out)
    else:
        log(f"one use case: {bench_table.STEM}.md left as it was (--table-only rebuilds it)")
    return [report for report, _ in reports]


if __name__ == "__main__":
    main()
