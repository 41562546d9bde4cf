"""`make soak`: serve one use case for a bounded time under 10x the briefs' traffic plus
bursts, and watch what a short load test cannot see: memory and open file descriptors
per worker creeping up, p99 drifting from minute to minute, answers that never reach
the prediction log.

- **Steady traffic**: 10x the briefs' 1,000 requests an hour (2.78 req/s), open loop
  (Poisson arrivals, each timed from when it was due), the load test's mix (90 %
  `/predict` with one record, 10 % `/predict_batch` with 10-50), each request on a
  fresh connection, as occasional callers connect.
- **Bursts**: every few minutes, closed-loop load on keep-alive connections (32 for
  15 s in a full run) with the same mix, while the steady traffic goes on.
- **Samples** every few seconds, per server process (the supervisor and each worker):
  RSS and open file descriptors; at the end, the slope of each over the run after its
  first fifth (warm-up), by least squares, per hour. With them, the CPU of the server,
  of this client and of the rest of the machine: a shared machine's noise shows there.
- **Checks**: every answer must be a 200 with one answer per record sent (anything else
  is an error, counted by kind), and the prediction log of the run (a fresh folder)
  must hold exactly one line per record answered, all naming the served model.

    python -m loadtest.soak                           # credit_risk:latest, 30 minutes
    python -m loadtest.soak --minutes 10 --use-case churn
    python -m loadtest.soak --smoke                   # ~1 minute, for the test suite

Writes `soak.json` (every sample), `soak.md` and `server.log` under `reports/soak/`
(`reports/soak/smoke/` with --smoke) and the prediction log under `predictions/` there.
The exit code is 1 only for a broken run (errors, the server or a worker died, the log
and the answers disagree), never for a slope or a latency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from core.logs import get_logger, setup
from core.machine import machine_facts, package_versions
from core.markdown import table
from core.names import DEFAULT_USE_CASE, PROJECT_ROOT
from loadtest.bench import Served
from loadtest.loadgen import DEFAULT_KEY, build_requests, nearest_rank
from loadtest.process import bentoml_serve, free_port, http
from loadtest.run import BATCH_RECORDS, BATCH_SHARE, BRIEF_RATE, build_payloads, machine_busy

STEADY_RATE = 10 * BRIEF_RATE  # req/s
TIMEOUT_S = 15.0
BODIES = 2_000  # pre-built requests, sent in turn
ERROR_SAMPLES = 5
MIB = 2**20
VERSIONS = ("bentoml", "uvicorn", "psutil", "scikit-learn", "xgboost", "pandas", "numpy")

log = get_logger("soak").info


@dataclass(frozen=True)
class Plan:
    minutes: float  # of traffic, after the server is ready
    burst_every_s: float  # the first burst starts half this after the traffic
    burst_s: float
    burst_connections: int
    sample_s: float
    window_s: float  # the latency table's rows
    warmup_share: float = 0.2  # of the run, left out of the slopes


def plan_for(minutes: float | None, smoke: bool) -> Plan:
    if smoke:
        return Plan(minutes or 0.75, 20.0, 4.0, 8, 1.0, 15.0)
    return Plan(minutes or 30.0, 180.0, 15.0, 32, 5.0, 60.0)


@dataclass(frozen=True)
class Body:
    endpoint: str
    request: bytes  # the whole HTTP/1.1 request
    rows: int


def build_bodies(url: str, records: list[dict], count: int = BODIES) -> list[Body]:
    """The load test's mix over the hold-out records, in a fixed random order."""
    draw = random.Random(0)
    bodies, at = [], 0
    for _ in range(count):
        rows = draw.randint(*BATCH_RECORDS) if draw.random() < BATCH_SHARE else 1
        chosen = [records[(at + i) % len(records)] for i in range(rows)]
        at += rows
        endpoint, body = (
            ("/predict", chosen[0]) if rows == 1 else ("/predict_batch", {"records": chosen})
        )
        payload = json.dumps(body, separators=(",", ":")).encode()
        (request,) = build_requests(url + endpoint, [payload])[2]
        bodies.append(Body(endpoint, request, rows))
    return bodies


# ---------------------------------------------------------------- traffic


@dataclass
class Tally:
    """Every request's outcome: (seconds since the traffic started, phase, ms, rows, error
    kind or "")."""

    start: float
    outcomes: list[tuple[float, str, float, int, str]]
    error_samples: list[str]

    def add(self, phase: str, sent: float, rows: int, kind: str, detail: str = "") -> None:
        now = time.monotonic()
        self.outcomes.append((sent - self.start, phase, 1000 * (now - sent), rows, kind))
        if kind and len(self.error_samples) < ERROR_SAMPLES:
            self.error_samples.append(f"{phase} {kind}: {detail[:200]}")


async def read_answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = (await reader.readuntil(b"\r\n\r\n")).lower()
    status = int(head[9:12])
    length = re.search(rb"\r\ncontent-length: *(\d+)", head)
    if length:
        return status, await reader.readexactly(int(length[1]))
    chunks = []  # chunked
    while size := int((await reader.readline()).split(b";")[0], 16):
        chunks.append(await reader.readexactly(size))
        await reader.readline()
    await reader.readline()
    return status, b"".join(chunks)


NETWORK_ERRORS = (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError)


class Connection:
    """A client connection to the server, opened when first used, dropped after an error."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def send(self, body: Body) -> tuple[str, str]:
        """(error kind or "", detail): "" for a 200 with one answer per record sent."""
        try:
            async with asyncio.timeout(TIMEOUT_S):
                if self.streams is None:
                    self.streams = await asyncio.open_connection(self.host, self.port)
                reader, writer = self.streams
                writer.write(body.request)
                status, answer = await read_answer(reader)
        except TimeoutError:
            self.close()
            return "timeout", f"no answer in {TIMEOUT_S:g}s"
        except NETWORK_ERRORS as err:
            self.close()
            return type(err).__name__, repr(err)
        if status != 200:
            return f"http_{status}", answer.decode("utf-8", "replace")
        got = answer.count(DEFAULT_KEY.encode())
        return ("", "") if got == body.rows else ("answers", f"{got} for {body.rows} records")

    def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()
            self.streams = None


async def steady(host: str, port: int, bodies: list[Body], tally: Tally, end: float) -> None:
    """Open loop: a request due every 1/rate s on average, each on a connection of its own."""

    async def one(body: Body, due: float) -> None:
        connection = Connection(host, port)
        kind, detail = await connection.send(body)
        connection.close()
        tally.add("steady", due, body.rows, kind, detail)

    draw, tasks, due = random.Random(1), set(), time.monotonic()
    for i in range(sys.maxsize):
        due += draw.expovariate(STEADY_RATE)
        if due >= end:
            break
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        task = asyncio.create_task(one(bodies[i % len(bodies)], due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    await asyncio.gather(*tasks)


async def burst(
    host: str, port: int, bodies: list[Body], tally: Tally, connections: int, until: float
) -> None:
    """Closed loop on keep-alive connections until `until`; every request sent is awaited."""
    taken = iter(range(sys.maxsize))

    async def loop() -> None:
        connection = Connection(host, port)
        while (sent := time.monotonic()) < until:
            body = bodies[next(taken) % len(bodies)]
            kind, detail = await connection.send(body)
            tally.add("burst", sent, body.rows, kind, detail)
        connection.close()

    await asyncio.gather(*(loop() for _ in range(connections)))


# ---------------------------------------------------------------- sampling


def server_processes(server: Served) -> list[tuple[str, psutil.Process]]:
    """(label, process): the supervisor and each worker, e.g. `worker 1`."""
    found = []
    procs = server.processes()
    if procs:
        found.append(("supervisor", procs[0]))
    for proc in server.worker_processes():
        if proc.pid == server.process.pid:
            continue
        try:
            line = proc.cmdline()
            label = f"worker {line[line.index('--worker-id') + 1]}"
        except (psutil.Error, ValueError, IndexError):
            label = "worker"
        found.append((f"{label} (pid {proc.pid})", proc))
    return found


def sample(server: Served, t: float) -> list[tuple[float, str, float, int]]:
    """(seconds, process label, RSS MiB, open fds) for each server process now."""
    rows = []
    for label, proc in server_processes(server):
        try:
            with proc.oneshot():
                rows.append(
                    (round(t, 2), label, round(proc.memory_info().rss / MIB, 2), proc.num_fds())
                )
        except psutil.Error:
            pass
    return rows


def cpu_point(server: Served, t: float) -> tuple[float, float, float, float]:
    """(seconds, CPU seconds so far of the machine, of the server, of this client)."""
    return (round(t, 2), machine_busy()[0], server.cpu_seconds(), time.process_time())


async def sampler(
    server: Served, plan: Plan, start: float, end: float, into: list, cpu: list
) -> bool:
    """Samples until `end`; False if the server exited first."""
    while True:
        now = time.monotonic()
        if server.process.poll() is not None:
            return False
        into += sample(server, now - start)
        cpu.append(cpu_point(server, now - start))
        if now >= end:
            return True
        await asyncio.sleep(min(plan.sample_s, max(0.0, end - now)))


async def drive(server: Served, bodies: list[Body], plan: Plan) -> dict[str, Any]:
    host, port = "127.0.0.1", server.port
    start = time.monotonic()
    end = start + 60 * plan.minutes
    tally = Tally(start, [], [])
    samples: list[tuple[float, str, float, int]] = []
    cpu: list[tuple[float, float, float, float]] = []
    bursts = []

    async def bursts_over_time() -> None:
        at = start + plan.burst_every_s / 2
        while at + plan.burst_s <= end:
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            log(f"burst: {plan.burst_connections} connections for {plan.burst_s:g}s")
            await burst(host, port, bodies, tally, plan.burst_connections, at + plan.burst_s)
            bursts.append(round(at - start, 1))
            at += plan.burst_every_s

    traffic = [
        asyncio.create_task(steady(host, port, bodies, tally, end)),
        asyncio.create_task(bursts_over_time()),
    ]
    alive = await sampler(server, plan, start, end, samples, cpu)
    if not alive:  # no use sending the rest of the run to a dead server
        for task in traffic:
            task.cancel()
    await asyncio.gather(*traffic, return_exceptions=not alive)
    samples += sample(server, time.monotonic() - start)  # after the last answer
    cpu.append(cpu_point(server, time.monotonic() - start))
    return {"tally": tally, "samples": samples, "cpu": cpu, "bursts_at_s": bursts, "alive": alive}


# ---------------------------------------------------------------- report


def slope_per_hour(points: list[tuple[float, float]]) -> float | None:
    if len(points) < 3 or points[-1][0] - points[0][0] <= 0:
        return None
    t, y = np.array(points).T
    return round(float(np.polyfit(t / 3600, y, 1)[0]), 2)


def per_process(samples: list, plan: Plan) -> list[dict[str, Any]]:
    warm = 60 * plan.minutes * plan.warmup_share
    out = []
    for label in dict.fromkeys(s[1] for s in samples):
        mine = [s for s in samples if s[1] == label]
        after = [s for s in mine if s[0] >= warm]
        rss, fds = [s[2] for s in mine], [s[3] for s in mine]
        out.append({
            "process": label, "samples": len(mine),
            "rss_mib_first": rss[0], "rss_mib_last": rss[-1], "rss_mib_max": max(rss),
            "rss_mib_per_hour": slope_per_hour([(s[0], s[2]) for s in after]),
            "fds_first": fds[0], "fds_last": fds[-1], "fds_max": max(fds),
            "fds_per_hour": slope_per_hour([(s[0], s[3]) for s in after]),
        })  # fmt: skip
    return out


def cpu_cores(points: list) -> dict[str, float] | None:
    """Cores busy on average between the first and last point: the server, this client,
    and everything else on the machine (a shared machine's noise shows up there)."""
    if len(points) < 2 or points[-1][0] <= points[0][0]:
        return None
    span = points[-1][0] - points[0][0]
    machine, server, client = ((points[-1][i] - points[0][i]) / span for i in (1, 2, 3))
    if server < 0:  # a server process exited and took its CPU seconds with it
        return None
    return {
        "server": round(server, 2),
        "client": round(client, 2),
        "other": round(max(0.0, machine - server - client), 2),
    }


def windows(outcomes: list, samples: list, cpu: list, plan: Plan) -> list[dict[str, Any]]:
    """Per window of traffic: latency by phase, records, errors, each process's last sample."""
    total = 60 * plan.minutes
    by_window: dict[int, list] = {}
    for o in outcomes:
        by_window.setdefault(int(o[0] // plan.window_s), []).append(o)
    rows = []
    for index, lo in enumerate(np.arange(0, total, plan.window_s)):
        hi = min(lo + plan.window_s, total)
        mine = by_window.get(index, [])
        row: dict[str, Any] = {"from_s": float(lo), "to_s": float(hi)}
        for phase in ("steady", "burst"):
            ms = sorted(o[2] for o in mine if o[1] == phase and not o[4])
            row[f"{phase}_requests"] = sum(1 for o in mine if o[1] == phase)
            row[f"{phase}_p50_ms"] = round(nearest_rank(ms, 0.5) or 0, 2) if ms else None
            row[f"{phase}_p99_ms"] = round(nearest_rank(ms, 0.99) or 0, 2) if ms else None
        row["records_answered"] = sum(o[3] for o in mine if not o[4])
        row["errors"] = sum(1 for o in mine if o[4])
        last = {s[1]: s for s in samples if lo <= s[0] < hi}  # each process's last sample
        row["rss_mib"] = {k: s[2] for k, s in last.items()}
        row["fds"] = {k: s[3] for k, s in last.items()}
        row["cpu_cores"] = cpu_cores([c for c in cpu if lo <= c[0] <= hi])
        rows.append(row)
    return rows


def count_log(folder: Path, use_case: str) -> dict[str, Any]:
    from serving.predlog import PredictionLogError, read_prediction_log

    try:
        frame = read_prediction_log(folder, use_case)
    except (FileNotFoundError, PredictionLogError) as err:
        return {"lines": 0, "skipped_lines": 0, "model_tags": [], "note": str(err)}
    return {
        "lines": len(frame),
        "skipped_lines": frame.attrs["skipped_lines"],
        "model_tags": sorted(frame["model_tag"].astype(str).unique()),
    }


TOTALS = (
    ("requests", "requests"), ("records answered", "records_answered"),
    ("prediction log lines", "log_lines"), ("log - answered", "log_minus_answered"),
    ("errors", "errors"),
)  # fmt: skip
PROCESS = (
    ("process", "process"), ("samples", "samples"), ("RSS MiB first", "rss_mib_first"),
    ("last", "rss_mib_last"), ("max", "rss_mib_max"), ("RSS MiB/hour", "rss_mib_per_hour"),
    ("fds first", "fds_first"), ("last", "fds_last"), ("max", "fds_max"),
    ("fds/hour", "fds_per_hour"),
)  # fmt: skip
CPU = "CPU cores (server/soak client/other)"
WINDOW = (
    ("steady req", "steady_requests"), ("steady p50 ms", "steady_p50_ms"),
    ("steady p99 ms", "steady_p99_ms"), ("burst req", "burst_requests"),
    ("burst p99 ms", "burst_p99_ms"), ("records", "records_answered"), ("errors", "errors"),
)  # fmt: skip


def render(report: dict[str, Any]) -> str:
    m, t, p = report["machine"], report["totals"], report["plan"]
    verdict = "complete" if report["ok"] else "BROKEN: " + "; ".join(report["broken"])
    workers = [x["process"] for x in report["processes"] if x["process"].startswith("worker")]
    short = "/".join(w.split(" (")[0] for w in workers)
    kinds = json.dumps(t["error_kinds"]) if t["error_kinds"] else "none"
    totals = table([*(h for h, _ in TOTALS), "error kinds"], [[*(t[k] for _, k in TOTALS), kinds]])
    processes = table(
        [h for h, _ in PROCESS], [[x[k] for _, k in PROCESS] for x in report["processes"]], ".2f"
    )
    by_window = table(
        ["window", *(h for h, _ in WINDOW), f"RSS MiB ({short})", f"fds ({short})", CPU],
        [
            [
                f"{_mmss(w['from_s'])}-{_mmss(w['to_s'])}",
                *(w[k] for _, k in WINDOW),
                "/".join(_whole(w["rss_mib"].get(x)) for x in workers),
                "/".join(_whole(w["fds"].get(x)) for x in workers),
                _cores(w["cpu_cores"]),
            ]
            for w in report["windows"]
        ],
        ".2f",
    )
    lines = [
        f"# Soak: {report['use_case']}{' (smoke)' if report['smoke'] else ''}",
        "",
        f"Model `{report['model_tag']}`, {report['server']['workers']} workers, one "
        f"`bentoml serve` on 127.0.0.1, started {report['started_at']}, "
        f"{p['minutes']:g} minutes of traffic. Run: **{verdict}**.",
        f"Machine: {m['cores']} cores ({m['cpu_model']}), {m['memory_gb']} GB, load average "
        f"at start {m['load_average_at_start']}, shared with the load generator.",
        f"Traffic: {report['traffic']['steady']}; bursts: {report['traffic']['bursts']}.",
        f"{CPU} over the run: {_cores(report['cpu_cores'])}.",
        "",
        *totals,
        "",
        f"Per process (slopes by least squares over the samples after the first "
        f"{p['warmup_share']:.0%} of the run, every {p['sample_s']:g} s):",
        "",
        *processes,
        "",
        f"Per {p['window_s']:g} s (latency of answered requests; steady from when each "
        "was due; RSS and fds: each worker's last sample in the window):",
        "",
        *by_window,
    ]
    if t["error_samples"]:
        lines += ["", "First errors:", "", *(f"- `{e}`" for e in t["error_samples"])]
    return "\n".join(lines) + "\n"


def _cores(cores: dict[str, float] | None) -> str:
    return "/".join(f"{cores[k]:.2f}" for k in ("server", "client", "other")) if cores else "n/a"


def _whole(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}"


def _mmss(seconds: float) -> str:
    return f"{int(seconds) // 60}:{int(seconds) % 60:02d}"


def describe_traffic(plan: Plan, bursts_at_s: list[float], source: str) -> dict[str, str]:
    return {
        "steady": f"{STEADY_RATE:.2f} req/s open loop (10x the briefs' {BRIEF_RATE:.3f}), "
        f"{1 - BATCH_SHARE:.0%} /predict (1 record), {BATCH_SHARE:.0%} /predict_batch "
        f"({BATCH_RECORDS[0]}-{BATCH_RECORDS[1]} records), a connection per request",
        "bursts": f"{plan.burst_connections} keep-alive connections closed loop for "
        f"{plan.burst_s:g} s every {plan.burst_every_s:g} s, same mix, at {bursts_at_s} s",
        "source": source,
    }


def totals(tally: Tally, logged: dict[str, Any]) -> dict[str, Any]:
    """Requests, records answered, errors by kind, and the prediction log against them."""
    outcomes = tally.outcomes
    kinds = Counter(o[4] for o in outcomes if o[4])
    answered = sum(o[3] for o in outcomes if not o[4])
    return {
        "requests": len(outcomes),
        "steady_requests": sum(1 for o in outcomes if o[1] == "steady"),
        "burst_requests": sum(1 for o in outcomes if o[1] == "burst"),
        "records_answered": answered,
        "errors": sum(kinds.values()),
        "error_kinds": dict(kinds),
        "error_samples": tally.error_samples,
        "log_lines": logged["lines"],
        "log_skipped_lines": logged["skipped_lines"],
        "log_minus_answered": logged["lines"] - answered,
        "log_model_tags": logged["model_tags"],
    }


def judge(report: dict[str, Any], workers: int) -> list[str]:
    """What makes the run broken (not a slope or a latency: those are for reading)."""
    t = report["totals"]
    seen = [x for x in report["processes"] if x["process"].startswith("worker")]
    return [
        reason
        for reason, bad in (
            ("the server exited during the run", not report["server"]["alive"]),
            (f"{t['errors']} errors", t["errors"] > 0),
            ("no request answered", t["records_answered"] == 0),
            (
                f"prediction log has {t['log_lines']} lines for {t['records_answered']} "
                "records answered",
                t["log_lines"] != t["records_answered"] or t["log_skipped_lines"],
            ),
            (
                f"prediction log names {t['log_model_tags']}, not only {report['model_tag']}",
                t["log_model_tags"] not in ([], [report["model_tag"]]),
            ),
            (f"{len(seen)} worker processes seen for {workers} workers", len(seen) != workers),
        )
        if bad
    ]


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest.soak", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--use-case", default=DEFAULT_USE_CASE, help="built-in name or spec path")
    parser.add_argument("--model-tag", default="", help="pin a model (default <use case>:latest)")
    parser.add_argument("--minutes", type=float, default=None, help="of traffic (default 30)")
    parser.add_argument("--smoke", action="store_true", help="45 s of traffic, small bursts")
    parser.add_argument("--out", type=Path, default=None, help="default reports/soak[/smoke]")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    setup()
    plan = plan_for(args.minutes, args.smoke)
    out = args.out or PROJECT_ROOT / "reports" / "soak" / ("smoke" if args.smoke else "")
    out.mkdir(parents=True, exist_ok=True)
    predictions = out / "predictions"
    shutil.rmtree(predictions, ignore_errors=True)

    from core.settings import get_settings
    from core.spec import load_spec
    from model.scorer import find_model

    name = load_spec(args.use_case, check_data=False).name
    tag = str(find_model(args.model_tag or f"{name}:latest").tag)
    workers = get_settings().workers
    env = {
        **os.environ, "RISKBENTO_USE_CASE": name, "RISKBENTO_MODEL_TAG": tag,
        "BENTOML_DO_NOT_TRACK": "True", "RISKBENTO_PREDICTION_LOG_DIR": str(predictions),
    }  # fmt: skip
    report: dict[str, Any] = {
        "use_case": name, "model_tag": tag, "smoke": args.smoke,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": machine_facts(),
        "versions": package_versions(VERSIONS), "plan": asdict(plan),
        "server": {"workers": workers},
    }  # fmt: skip
    server = Served("bentoml serve", bentoml_serve(free_port()), env, out / "server.log")
    try:
        payload = build_payloads(args.use_case, tag)  # while the server starts
        ready = server.wait_until(
            lambda: (
                http("GET", f"{server.url}/readyz")[0] == 200
                and len(server.worker_processes()) >= workers
            )
        )
        report["server"].update(url=server.url, ready_after_s=round(ready, 1))
        log(f"{tag} ready at {server.url} after {ready:.1f}s; {plan.minutes:g} minutes of traffic")
        bodies = build_bodies(server.url, payload["records"])
        run = asyncio.run(drive(server, bodies, plan))
        report["server"]["alive"] = run["alive"] and server.process.poll() is None
    finally:
        server.stop()

    outcomes = run["tally"].outcomes
    report["traffic"] = describe_traffic(plan, run["bursts_at_s"], payload["source"])
    report["totals"] = totals(run["tally"], count_log(predictions, name))
    report["processes"] = per_process(run["samples"], plan)
    report["windows"] = windows(outcomes, run["samples"], run["cpu"], plan)
    report["cpu_cores"] = cpu_cores(run["cpu"])
    report["samples"] = run["samples"]
    report["broken"] = judge(report, workers)
    report["ok"] = not report["broken"]
    (out / "soak.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    text = render(report)
    (out / "soak.md").write_text(text, encoding="utf-8")
    print(text, flush=True)
    log(f"wrote {out / 'soak.md'} and soak.json")
    return report


if __name__ == "__main__":
    sys.exit(0 if main()["ok"] else 1)
