"""`make loadtest`: serve one use case locally and measure it with Locust against the
100 ms objective.

Stages, each a headless Locust run of its own (`loadtest/locustfile.py`):

1. `brief`: the briefs' traffic, 1,000 requests an hour (0.28 req/s);
2. `10x`: ten times that (2.78 req/s);
3. `ramp-<rate>`: steps of rising rate, stopped at the first step that fails.

A stage passes when p99 <= 100 ms, no request failed and the rate was held
(achieved >= 90 % of target). Capacity is the highest passing ramp step; the
instances needed for 10x are ceil(10x rate x headroom / capacity).

    python -m loadtest.run --use-case credit_risk            # full run, ~5 minutes
    python -m loadtest.run --use-case credit_risk --smoke    # a few seconds a stage

Writes Locust's CSV and HTML per stage, the payloads, the server log and
`verdict.md` / `verdict.json` under `reports/loadtest/` (`reports/loadtest/smoke/`
with --smoke). The verdict is reported, never asserted: the exit code is 0
whenever the run completed.
"""

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from core.logs import get_logger, setup
from core.machine import machine_facts, package_versions
from core.markdown import table
from core.names import DEFAULT_USE_CASE, PROJECT_ROOT
from loadtest.process import ServerProcess, bentoml_serve, free_port, http

OBJECTIVE_P99_MS = 100.0
BRIEF_PER_HOUR = 1_000
BRIEF_RATE = BRIEF_PER_HOUR / 3600  # req/s
HELD_RATE = 0.9  # a stage must achieve this share of its target rate
HEADROOM = 2.0
MAX_RATE_PER_USER = 4.0  # req/s per simulated user: 250 ms between requests, > 2x the objective
BATCH_SHARE = 0.1
BATCH_RECORDS = (10, 50)
PAYLOAD_LIMIT = 1_000
WARMUP_REQUESTS = 20
LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
VERSIONS = ("bentoml", "locust", "xgboost", "scikit-learn", "pandas", "numpy", "pydantic")


@dataclass(frozen=True)
class Plan:
    stage_s: int  # brief and 10x
    steps: tuple[float, ...]  # ramp rates, req/s
    step_s: int


FULL = Plan(stage_s=60, steps=(10, 25, 50, 100, 150, 200, 300, 400, 600, 800), step_s=20)
SMOKE = Plan(stage_s=4, steps=(5, 10), step_s=3)


log = get_logger("loadtest").info  # "[loadtest] ..." on stdout once an entry point ran setup()


# ---------------------------------------------------------------- payloads


def build_payloads(use_case: str, tag: str, limit: int = PAYLOAD_LIMIT) -> dict[str, Any]:
    """Records of the inference hold-out stored with model `tag`, typed as a caller sends
    them and checked against the model's request schema (rows it would reject are left out)."""
    from pydantic import ValidationError

    from core.spec import FeatureType, load_spec
    from features.tabular import prepare_frame
    from model import store
    from model.holdout import split_rows
    from model.scorer import find_model
    from serving import schemas

    spec = load_spec(use_case)
    model = find_model(tag)
    card = store.card(model)
    model_spec, cap = card.spec, card.amount_cap
    frame = split_rows(model, spec, "inference", cap).frame
    table = prepare_frame(frame, model_spec).astype(object)
    table = table.where(table.notna(), None)
    for feature in model_spec.features:
        if feature.type is FeatureType.binary or feature.integer:
            table[feature.name] = table[feature.name].map(lambda v: v if v is None else int(v))
    table.insert(0, model_spec.id_column, frame[model_spec.id_column].astype(str))
    record_model = schemas.record_model(model_spec)
    records, rejected = [], 0
    for record in table.to_dict(orient="records"):
        try:
            record_model.model_validate(record)
        except ValidationError:
            rejected += 1
            continue
        records.append(record)
        if len(records) >= limit:
            break
    if not records:
        raise SystemExit(f"{spec.name}: no inference hold-out record passes the model's schema")
    return {
        "use_case": spec.name,
        "id_column": model_spec.id_column,
        "source": f"{spec.name} inference hold-out ({len(frame)} rows)",
        "rejected_by_schema": rejected,
        "records": records,
    }


# ---------------------------------------------------------------- server


def warm_up(url: str, records: list[dict]) -> None:
    """A few requests before measuring (first calls pay for lazy imports and caches)."""
    for i in range(WARMUP_REQUESTS):
        record = records[i % len(records)]
        status, body = http("POST", f"{url}/predict", json.dumps(record).encode())
        if status != 200:
            raise RuntimeError(f"warm-up /predict answered {status}: {body[:500]!r}")
    status, body = http(
        "POST", f"{url}/predict_batch", json.dumps({"records": records[:20]}).encode()
    )
    if status != 200:
        raise RuntimeError(f"warm-up /predict_batch answered {status}: {body[:500]!r}")


# ---------------------------------------------------------------- stages


def machine_busy() -> tuple[float, float]:
    """(busy CPU seconds over all cores, wall clock)."""
    t = psutil.cpu_times()
    busy = t.user + t.nice + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)
    return busy, time.monotonic()


def nearest_rank(sorted_ms: list[float], share: float) -> float | None:
    """The response time `share` of the requests finished within (nearest-rank)."""
    if not sorted_ms:
        return None
    return sorted_ms[max(0, math.ceil(share * len(sorted_ms)) - 1)]


def run_stage(
    name: str, rate: float, seconds: int, server: ServerProcess, out: Path, payloads: Path
) -> dict[str, Any]:
    users = max(1, math.ceil(rate / MAX_RATE_PER_USER - 1e-9))
    samples_file = out / f"{name}_samples.json"
    command = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "-H", server.url,
        "--headless", "--only-summary", "--loglevel", "WARNING",
        "-u", str(users), "-r", str(min(users, 100)), "-t", f"{seconds}s",
        "--stop-timeout", "5", "--reset-stats", "--exit-code-on-error", "0",
        "--csv", str(out / name), "--html", str(out / f"{name}.html"),
        "--payloads", str(payloads), "--rate-per-user", f"{rate / users:.6f}",
        "--batch-share", str(BATCH_SHARE),
        "--batch-min", str(BATCH_RECORDS[0]), "--batch-max", str(BATCH_RECORDS[1]),
        "--samples-file", str(samples_file),
    ]  # fmt: skip
    log(f"{name}: {rate:g} req/s ({users} users x {rate / users:.4g}) for {seconds}s")
    generator_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_before = server.cpu_seconds()
    busy_before, wall_before = machine_busy()
    with (out / f"{name}_locust.log").open("w") as locust_log:
        finished = subprocess.run(
            command, cwd=PROJECT_ROOT, stdout=locust_log, stderr=subprocess.STDOUT, check=False
        )
    busy_after, wall_after = machine_busy()
    server_cpu = server.cpu_seconds() - server_before
    generator_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    generator_cpu = (generator_after.ru_utime - generator_before.ru_utime) + (
        generator_after.ru_stime - generator_before.ru_stime
    )
    if not samples_file.exists():
        tail = (out / f"{name}_locust.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"locust exited {finished.returncode} without results:\n{tail}")
    measured = json.loads(samples_file.read_text(encoding="utf-8"))
    samples = measured["samples"]
    names = measured["names"]
    window = measured["window_s"]
    ms = sorted(s[1] for s in samples)
    errors = sum(1 for s in samples if not s[2]) + measured.get("errors_before_window", 0)
    predictions = sum(s[3] for s in samples if s[2])
    achieved = len(samples) / window if window > 0 else 0.0
    wall = wall_after - wall_before
    result: dict[str, Any] = {
        "stage": name,
        "target_rps": round(rate, 4),
        "users": users,
        "seconds": seconds,
        "window_s": round(window, 2),
        "requests": len(samples),
        "achieved_rps": round(achieved, 3),
        "predictions": predictions,
        "predictions_per_s": round(predictions / window, 2) if window > 0 else 0.0,
        "p50_ms": nearest_rank(ms, 0.50),
        "p95_ms": nearest_rank(ms, 0.95),
        "p99_ms": nearest_rank(ms, 0.99),
        "max_ms": ms[-1] if ms else None,
        "errors": errors,
        "by_endpoint": {},
        "server_cpu_cores": round(server_cpu / wall, 3),
        "server_cpu_us_per_request_incl_idle": round(1e6 * server_cpu / len(samples))
        if samples
        else None,
        "generator_cpu_cores": round(generator_cpu / wall, 3),
        "machine_cpu_busy_share": round((busy_after - busy_before) / wall / os.cpu_count(), 3),
        "locust_exit_code": finished.returncode,
    }
    for index, endpoint in enumerate(names):
        times = sorted(s[1] for s in samples if s[0] == index)
        result["by_endpoint"][endpoint] = {
            "requests": len(times),
            "errors": sum(1 for s in samples if s[0] == index and not s[2]),
            "p50_ms": nearest_rank(times, 0.50),
            "p99_ms": nearest_rank(times, 0.99),
        }
    failed = [
        reason
        for reason, bad in (
            ("no requests", not samples),
            (f"p99 > {OBJECTIVE_P99_MS:g} ms", p99_over(ms)),
            ("errors", errors > 0),
            (f"rate not held (< {HELD_RATE:.0%} of target)", achieved < HELD_RATE * rate),
        )
        if bad
    ]
    result["passed"] = not failed
    result["why_failed"] = failed
    log(
        f"{name}: {achieved:.3f} req/s, p50/p95/p99 {result['p50_ms']}/{result['p95_ms']}/"
        f"{result['p99_ms']} ms, {errors} errors -> {'PASS' if not failed else 'FAIL'}"
    )
    return result


def p99_over(sorted_ms: list[float]) -> bool:
    p99 = nearest_rank(sorted_ms, 0.99)
    return p99 is not None and p99 > OBJECTIVE_P99_MS


# ---------------------------------------------------------------- verdict


def summarize(stages: list[dict], plan: Plan, headroom: float) -> dict[str, Any]:
    by_name = {s["stage"]: s for s in stages}
    ramp = [s for s in stages if s["stage"].startswith("ramp-")]
    passing = [s for s in ramp if s["passed"]]  # a prefix: the ramp stops at the first failure
    best = passing[-1] if passing else None
    capacity = best["target_rps"] if best else None
    tenx = 10 * BRIEF_RATE
    needed = math.ceil(tenx * headroom / capacity) if capacity else None
    return {
        "capacity_rps": capacity,
        "capacity_achieved_rps": best["achieved_rps"] if best else None,
        "capacity_predictions_per_s": best["predictions_per_s"] if best else None,
        "capacity_is_lower_bound": bool(ramp) and all(s["passed"] for s in ramp),
        "capacity_vs_brief": round(capacity / BRIEF_RATE, 1) if capacity else None,
        "headroom": headroom,
        "instances_for_10x": needed,
        "targets": {
            "brief passes": by_name.get("brief", {}).get("passed", False),
            "10x passes": by_name.get("10x", {}).get("passed", False),
            "capacity >= 100x brief": bool(capacity and capacity >= 100 * BRIEF_RATE),
        },
        "ramp_steps_planned": list(plan.steps),
    }


def render(verdict: dict[str, Any]) -> str:
    m, s = verdict["machine"], verdict["summary"]
    header = [
        "stage", "target req/s", "users", "achieved req/s", "predictions/s", "requests",
        "p50 ms", "p95 ms", "p99 ms", "errors", "server CPU (cores)", "generator CPU (cores)",
        "machine busy", "verdict",
    ]  # fmt: skip
    keys = [
        "stage", "target_rps", "users", "achieved_rps", "predictions_per_s", "requests",
        "p50_ms", "p95_ms", "p99_ms", "errors", "server_cpu_cores", "generator_cpu_cores",
    ]  # fmt: skip
    rows = table(
        header,
        [
            [
                *(st[k] for k in keys),
                f"{st['machine_cpu_busy_share']:.0%}",
                "PASS" if st["passed"] else "FAIL: " + ", ".join(st["why_failed"]),
            ]
            for st in verdict["stages"]
        ],
        fmt="",  # the verdict's numbers as recorded (already rounded)
    )
    capacity = (
        f"**{s['capacity_rps']} req/s** per instance ({s['capacity_vs_brief']}x the briefs' "
        f"traffic; {s['capacity_predictions_per_s']} predictions/s with the mix)"
        + (" — every step passed, so this is a lower bound" if s["capacity_is_lower_bound"] else "")
        if s["capacity_rps"]
        else "**not found**: no ramp step passed"
    )
    needed = (
        f"**{s['instances_for_10x']}** (ceil({10 * BRIEF_RATE:.3f} req/s x headroom "
        f"{s['headroom']:g} / {s['capacity_rps']} req/s))"
        if s["instances_for_10x"]
        else "not determined (no capacity)"
    )
    targets = ", ".join(f"{k}: {'met' if v else 'NOT met'}" for k, v in s["targets"].items())
    lines = [
        f"# Load test verdict: {verdict['use_case']}{' (smoke)' if verdict['smoke'] else ''}",
        "",
        f"Objective: p99 <= {OBJECTIVE_P99_MS:g} ms with 0 errors. Model `{verdict['model_tag']}`"
        f", {verdict['server']['workers']} worker(s), one instance on 127.0.0.1, "
        f"started {verdict['started_at']}.",
        f"Machine: {m['cores']} cores ({m['cpu_model']}), {m['memory_gb']} GB, load average "
        f"at start {m['load_average_at_start']}; shared with the load generator (and "
        f"anything else running). Versions: "
        + ", ".join(f"{k} {v}" for k, v in verdict["versions"].items())
        + f", python {m['python']}.",
        f"Traffic: {verdict['traffic']['mix']}; payloads: {verdict['traffic']['source']}.",
        "",
        *rows,
        "",
        f"- Capacity (highest ramp step passing): {capacity}.",
        f"- Instances needed for 10x the briefs' traffic with headroom {s['headroom']:g}: "
        f"{needed}.",
        f"- Targets (reported, not asserted): {targets}.",
        "",
        "How to read this: the briefs' traffic is 1,000 requests an hour "
        f"({BRIEF_RATE:.4f} req/s); with the batch share each request carries "
        f"{verdict['traffic']['mean_records_per_request']:.2f} predictions on average, so "
        "the brief stage scores about that many times the briefs' 1,000 predictions an hour. "
        "A stage passes when p99 <= 100 ms, no request failed (HTTP status other than 200 or "
        "an answer without one probability per record, counted over the whole stage "
        f"including ramp-up) and at least {HELD_RATE:.0%} of the target rate was achieved. "
        "Percentiles are nearest-rank over every response after all users were running "
        "(Locust's CSV and HTML, written alongside, round response times). CPU columns: "
        "cores busy on average (server = bentoml's processes, generator = Locust); "
        "machine busy = all cores, including other work on the machine. The ramp stops at "
        "the first failing step. Each user holds a constant rate "
        f"(<= {MAX_RATE_PER_USER:g} req/s), so a slow server also lowers the achieved rate.",
    ]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- main


def clear_outputs(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for path in out.iterdir():
        if path.is_file():
            path.unlink()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest.run", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--use-case", default=DEFAULT_USE_CASE, help="built-in name or spec path")
    parser.add_argument("--model-tag", default="", help="pin a model (default <use case>:latest)")
    parser.add_argument("--smoke", action="store_true", help="a few seconds per stage")
    parser.add_argument("--out", type=Path, default=None, help="default reports/loadtest[/smoke]")
    parser.add_argument("--port", type=int, default=None, help="default: a free port")
    parser.add_argument("--headroom", type=float, default=HEADROOM)
    parser.add_argument(
        "--steps", default="", help="ramp rates in req/s, comma separated (default per mode)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    setup()
    plan = SMOKE if args.smoke else FULL
    if args.steps:
        steps = tuple(float(x) for x in args.steps.split(","))
        plan = Plan(plan.stage_s, steps, plan.step_s)
    out = args.out or PROJECT_ROOT / "reports" / "loadtest" / ("smoke" if args.smoke else "")
    clear_outputs(out)

    from core.settings import get_settings
    from core.spec import load_spec
    from model.scorer import find_model

    name = load_spec(args.use_case, check_data=False).name
    tag = args.model_tag or f"{name}:latest"
    model = find_model(tag)
    log(f"payloads from {args.use_case}'s inference hold-out")
    payload = build_payloads(args.use_case, str(model.tag))
    payload_file = out / "payloads.json"
    payload_file.write_text(json.dumps(payload), encoding="utf-8")
    mean_records = (1 - BATCH_SHARE) + BATCH_SHARE * sum(BATCH_RECORDS) / 2

    env = {
        **os.environ,
        "RISKBENTO_USE_CASE": name,
        "RISKBENTO_MODEL_TAG": str(model.tag),
        "BENTOML_DO_NOT_TRACK": "True",
        "RISKBENTO_PREDICTION_LOG_DIR": str(out / "predictions"),  # logged as in production
    }
    settings = get_settings()
    verdict: dict[str, Any] = {
        "use_case": name,
        "smoke": args.smoke,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "model_tag": str(model.tag),
        "machine": machine_facts(),
        "versions": package_versions(VERSIONS),
        "objective": {"p99_ms": OBJECTIVE_P99_MS, "errors": 0, "held_rate_share": HELD_RATE},
        "traffic": {
            "brief_requests_per_hour": BRIEF_PER_HOUR,
            "brief_rps": round(BRIEF_RATE, 4),
            "mix": f"{1 - BATCH_SHARE:.0%} /predict (1 record), {BATCH_SHARE:.0%} "
            f"/predict_batch ({BATCH_RECORDS[0]}-{BATCH_RECORDS[1]} records)",
            "mean_records_per_request": mean_records,
            "source": f"{payload['source']}, {len(payload['records'])} records "
            f"({payload['rejected_by_schema']} rejected by the schema)",
            "max_rate_per_user": MAX_RATE_PER_USER,
        },
        "plan": {"stage_s": plan.stage_s, "steps": list(plan.steps), "step_s": plan.step_s},
        "server": {
            "workers": settings.workers,
            "batch_max_size": settings.batch_max_size,
            "batch_max_latency_ms": settings.batch_max_latency_ms,
        },
        "stages": [],
    }
    port = args.port or free_port()
    server = ServerProcess("bentoml serve", bentoml_serve(port), env, out / "server.log")
    try:
        ready_s = server.wait_ready()
        verdict["server"]["ready_after_s"] = round(ready_s, 1)
        verdict["server"]["url"] = server.url
        log(f"server ready at {server.url} after {ready_s:.1f}s")
        warm_up(server.url, payload["records"])
        stages = verdict["stages"]
        stages.append(run_stage("brief", BRIEF_RATE, plan.stage_s, server, out, payload_file))
        stages.append(run_stage("10x", 10 * BRIEF_RATE, plan.stage_s, server, out, payload_file))
        for rate in plan.steps:
            step = run_stage(f"ramp-{rate:g}", rate, plan.step_s, server, out, payload_file)
            stages.append(step)
            if not step["passed"]:
                break
    finally:
        server.stop()
    verdict["summary"] = summarize(verdict["stages"], plan, args.headroom)
    (out / "verdict.json").write_text(json.dumps(verdict, indent=2), encoding="utf-8")
    text = render(verdict)
    (out / "verdict.md").write_text(text, encoding="utf-8")
    print(text, flush=True)
    log(f"wrote {out / 'verdict.md'} and verdict.json")
    return verdict


if __name__ == "__main__":
    main()
