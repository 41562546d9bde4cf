"""Benchmark: `score --engine local|dask|spark` on large raw transaction sets.

One run times each stage (read, global id pass, shuffle, feature function,
scoring, write) of `python -m riskbento score <use case> --engine ...` for
`local`, Dask with 1 and 2 workers and Spark with 1 and 2 cores, at each size,
with the peak memory of every process of the run (driver, Dask workers, Spark's
JVM and Python workers, sampled) and the bytes shuffled. Then it fits a cost
model per engine, seconds = fixed + per_row x rows / workers + per_byte x
shuffled bytes, and prints what it projects for 100M and 1B transactions on 8
and 32 workers: a projection from this machine, not a measurement.

    python -m loadtest.bench_scaleout                 # 10M and 50M transactions
    python -m loadtest.bench_scaleout --smoke         # 20,000 rows, seconds per engine

The data (messy CSV parts, `datagen.messy_transactions`) is generated once
under --data (default data/bench/scaleout) and reused. The model is the
use case's latest in the store (`make bench-scaleout` trains one if missing).
Writes scaleout.json and scaleout.md under --out (default reports/bench).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from core.machine import machine_facts, package_versions
from core.markdown import table
from datagen.messy_transactions import write_parts
from scaleout.job import VERSIONS
from scaleout.plan import STAGES

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SIZES = (10_000_000, 50_000_000)
SMOKE_ROWS = 20_000
ROWS_PER_PART = 1_000_000
LOCAL_MAX_ROWS = 10_000_000  # one machine, everything in memory: beyond, it is the engines' job
PROJECT_ROWS = (100_000_000, 1_000_000_000)
PROJECT_WORKERS = (8, 32)
SAMPLE_S = 0.25
SPARK_DRIVER_MEMORY = "8g"  # local mode: the driver JVM is the executor too
GIB = 2**30


@dataclass(frozen=True)
class Config:
    engine: str
    workers: int

    @property
    def label(self) -> str:
        unit = {"local": "process", "dask": "worker", "spark": "core"}[self.engine]
        return f"{self.engine} {self.workers} {unit}{'s' if self.workers > 1 else ''}"


# Two workers first: a run cut short (--resume continues it) has the likeliest setups.
CONFIGS = (Config("local", 1), Config("dask", 2), Config("spark", 2), Config("dask", 1),
           Config("spark", 1))  # fmt: skip


# ---------------------------------------------------------------- data


def dataset(root: Path, rows: int) -> tuple[Path, Path]:
    """CSV parts of `rows` messy transactions and the customer table, made once."""
    folder = root / f"{rows}"
    done = folder / "done.json"
    if not done.exists():
        shutil.rmtree(folder, ignore_errors=True)
        parts = max(1, rows // ROWS_PER_PART)
        started = time.perf_counter()
        _, ids = write_parts(folder / "transactions", rows, parts=parts, fmt="csv")
        ids.to_frame().to_csv(folder / "customers.csv", index=False)
        took = time.perf_counter() - started
        done.write_text(json.dumps({"rows": rows, "parts": parts, "generate_s": round(took, 1)}))
        print(f"generated {rows:,} transactions in {took:.0f} s", file=sys.stderr)
    return folder / "transactions", folder / "customers.csv"


# ---------------------------------------------------------------- measuring


def _role(proc: psutil.Process, root_pid: int) -> str:
    """What a process of the run is: the command itself, a Dask worker (spawned by
    multiprocessing), Spark's JVM or one of its Python workers (pyspark.daemon)."""
    if proc.pid == root_pid:
        return "driver"
    try:
        name, cmd = proc.name(), " ".join(proc.cmdline())
    except psutil.Error:
        return "other"
    if name.startswith("java"):
        return "spark JVM"
    if "pyspark" in cmd:
        return "spark python worker"
    if "multiprocessing" in cmd:
        return "dask worker"
    return "other"


class PeakMemory:
    """Samples the RSS of a process and all its descendants; keeps each role's peak
    (the largest single process of that role) and the peak of their sum."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peaks: dict[str, float] = {}
        self.total_peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            root = psutil.Process(self.pid)
        except psutil.Error:
            return
        while not self._stop.is_set():
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.Error:
                break
            total = 0.0
            for proc in procs:
                try:
                    rss = proc.memory_info().rss / GIB
                except psutil.Error:
                    continue
                total += rss
                role = _role(proc, self.pid)
                self.peaks[role] = max(self.peaks.get(role, 0.0), rss)
            self.total_peak = max(self.total_peak, total)
            self._stop.wait(SAMPLE_S)


def measure(config: Config, use_case: str, tx: Path, customers: Path, out: Path) -> dict:
    """One `python -m riskbento score ... --engine` run in its own process tree."""
    shutil.rmtree(out, ignore_errors=True)
    command = [
        sys.executable, "-m", "riskbento", "score", use_case, "--engine", config.engine,
        "--workers", str(config.workers), "--transactions", str(tx),
        "--customers", str(customers), "--out", str(out), "--measure-shuffle",
    ]  # fmt: skip
    started = time.perf_counter()
    env = {"RISKBENTO_SPARK_DRIVER_MEMORY": SPARK_DRIVER_MEMORY, **os.environ}
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)  # fmt: skip
    with PeakMemory(proc.pid) as memory:
        stdout, stderr = proc.communicate()
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        return {"failed": (stderr or stdout).strip().splitlines()[-1:]}
    manifest = json.loads((out / "run.json").read_text())
    shutil.rmtree(out, ignore_errors=True)
    return {
        "wall_s": round(wall, 2),
        "stages_s": manifest["stages_s"],
        "shuffle_bytes": manifest["shuffle_bytes"],
        "customers": manifest["customers"],
        "rows_in": manifest["cleaning"]["rows_in"],
        "buckets": manifest["buckets"],
        "peak_gib": {k: round(v, 2) for k, v in sorted(memory.peaks.items())},
        "peak_total_gib": round(memory.total_peak, 2),
    }


# ---------------------------------------------------------------- cost model

COMPUTE_STAGES = ("read", "features", "scoring", "write")
SHUFFLE_STAGES = ("id_pass", "shuffle")


def _line(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """y = a + b x, both non-negative (least squares)."""
    from scipy.optimize import nnls

    scale = max(float(x.max()), 1e-12)
    (a, b), _ = nnls(np.column_stack([np.ones_like(x), x / scale]), y)
    return float(a), float(b / scale)


def fit(points: list[dict]) -> dict[str, float] | None:
    """seconds = fixed + per_row x rows / workers + per_byte x shuffled bytes / workers.

    Each term is fitted to the stages it stands for, over one engine's runs (sizes x
    worker counts): per_row to read + features + scoring + write, per_byte to the id pass
    + shuffle; fixed is what the whole command took beyond its stages (start-up) plus the
    two fits' intercepts."""
    if len(points) < 3:
        return None
    per_worker_rows = np.array([p["rows"] / p["workers"] for p in points], dtype=float)
    per_worker_bytes = np.array([(p["shuffle_bytes"] or 0) / p["workers"] for p in points])
    compute = np.array([sum(p["stages_s"].get(s, 0.0) for s in COMPUTE_STAGES) for p in points])
    shuffle = np.array([sum(p["stages_s"].get(s, 0.0) for s in SHUFFLE_STAGES) for p in points])
    startup = np.array([p["wall_s"] for p in points]) - compute - shuffle
    a1, per_row = _line(per_worker_rows, compute)
    a2, per_byte = _line(per_worker_bytes, shuffle)
    model = {
        "fixed_s": float(startup.mean()) + a1 + a2,
        "per_row_s": per_row,
        "per_shuffled_byte_s": per_byte,
        "shuffled_bytes_per_row": float(
            np.mean([(p["shuffle_bytes"] or 0) / p["rows"] for p in points])
        ),
    }
    predicted = np.array([project(model, p["rows"], p["workers"]) for p in points])
    model["worst_residual_s"] = float(np.max(np.abs(predicted - [p["wall_s"] for p in points])))
    return model


def project(model: dict[str, float], rows: int, workers: int) -> float:
    shuffled = model["shuffled_bytes_per_row"] * rows
    return (
        model["fixed_s"]
        + model["per_row_s"] * rows / workers
        + model["per_shuffled_byte_s"] * shuffled / workers
    )


# ---------------------------------------------------------------- report


def _gib(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def render(report: dict[str, Any]) -> str:
    m, v = report["machine"], report["versions"]
    stage_rows = []
    for r in report["results"]:
        res = r["result"]
        if "failed" in res:
            stage_rows.append([f"{r['rows']:,}", r["label"], "failed: " + " ".join(res["failed"])]
                              + [""] * (len(STAGES) + 4))  # fmt: skip
            continue
        if "skipped" in res:
            stage_rows.append([f"{r['rows']:,}", r["label"], "not run: " + res["skipped"]]
                              + [""] * (len(STAGES) + 4))  # fmt: skip
            continue
        st = res["stages_s"]
        peaks = ", ".join(f"{k} {val:.2f}" for k, val in res["peak_gib"].items() if k != "other")
        shuffled = res["shuffle_bytes"]
        stage_rows.append([
            f"{r['rows']:,}", r["label"], res["wall_s"],
            *(st.get(s, "") for s in STAGES),
            f"{r['rows'] / res['wall_s']:,.0f}",
            "" if shuffled is None else f"{shuffled / GIB:.2f}",
            peaks, res["peak_total_gib"],
        ])  # fmt: skip
    header = ["rows", "engine", "wall (s)", *(f"{s} (s)" for s in STAGES), "rows/s",
              "shuffled (GiB)", "peak RSS per process (GiB)", "peak RSS all (GiB)"]  # fmt: skip
    model_rows = [
        [engine, f"{mod['fixed_s']:.1f}", f"{mod['per_row_s'] * 1e6:.2f}",
         f"{mod['per_shuffled_byte_s'] * 1e9:.3f}", f"{mod['shuffled_bytes_per_row']:.0f}",
         f"{mod['worst_residual_s']:.1f}"]
        for engine, mod in report["models"].items() if mod
    ]  # fmt: skip
    projection_rows = [
        [p["engine"], f"{p['rows']:,}", p["workers"], f"{p['minutes']:,.1f}"]
        for p in report["projections"]
    ]
    lines = [
        "# Scale-out benchmark: features and scoring on local, Dask and Spark",
        "",
        f"`python -m riskbento score {report['use_case']} --engine ...` on messy synthetic raw "
        f"transactions (`datagen.messy_transactions`, CSV parts of {ROWS_PER_PART:,} rows; "
        f"`python -m loadtest.bench_scaleout`); model `{report['model']}`.",
        "",
        f"Machine: {m['cores']} cores, {m['cpu_model']}, {m['memory_gb']} GiB; load average "
        f"at start {m['load_average_at_start']} (shared machine: timings vary). "
        + ", ".join(f"{k} {val}" for k, val in v.items())
        + ".",
        "",
        "## Measured",
        "",
        *table(header, stage_rows, fmt=".2f"),
        "",
        "Stages are materialised one after the other (persist / cache) so each has its own "
        "time; `id_pass` and `shuffle` include their data movement, `features` is the "
        "one-machine feature function on every bucket, `scoring` the Scorer. Wall: the whole "
        "command, engine start-up included. Shuffled: Dask, the in-memory (pandas deep) size "
        "of the rows entering its two shuffles; Spark, its own shuffle write bytes "
        "(serialised). Peak RSS: sampled every "
        f"{SAMPLE_S:g} s per process of the run (the largest of each kind) and summed. "
        f"`local` reads everything into one process and is run up to {LOCAL_MAX_ROWS:,} rows.",
        "",
        "## Cost model (fitted to the rows above, per engine)",
        "",
        *table(
            [
                "engine",
                "fixed (s)",
                "per row per worker (µs)",
                "per shuffled byte (ns)",
                "shuffled bytes per row",
                "worst residual (s)",
            ],
            model_rows,
        ),
        "",
        "seconds = fixed + per_row x rows / workers + per_byte x shuffled bytes / workers: "
        "per_row fitted to the read, features, scoring and write stages, per_byte to the id "
        "pass and shuffle stages (non-negative least squares over this run's sizes and "
        "worker counts), fixed = start-up beyond the stages plus both intercepts.",
        "",
        "## Projection (not measured)",
        "",
        "What the model above projects, in minutes, for workers like this machine's cores. "
        "It assumes both per-row work and shuffle divide evenly over workers (each worker "
        "sends and receives its share) at the cost they had here: a loopback is faster than "
        "a real network, and spilling, skew and stragglers are not in it. Use it to size a "
        "first cluster, then measure on it.",
        "",
        *table(["engine", "transactions", "workers", "projected minutes"], projection_rows),
        "",
    ]
    return "\n".join(lines)


def _spark_available() -> str | None:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark not installed (make install-spark)"
    if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
        return "no Java (make install-spark)"
    return None


def run(
    sizes: list[int],
    use_case: str,
    data: Path,
    out: Path,
    engines: tuple[str, ...],
    resume: bool = False,
) -> dict[str, Any]:
    """Every size x setup; the report is rewritten after each run, and with `resume` the
    runs an earlier report (same model) already holds are kept, not repeated (its runs at
    other sizes stay in the report)."""
    from core.spec import load_spec
    from model.scorer import Scorer

    model = Scorer.from_store(f"{load_spec(use_case, check_data=False).name}:latest").tag
    report: dict[str, Any] = {
        "use_case": use_case,
        "model": model,
        "machine": machine_facts(),
        "versions": package_versions(VERSIONS),
        "sizes": sizes,
        "results": [],
    }
    done: dict[tuple[int, str], dict] = {}
    if resume and (out / "scaleout.json").exists():
        earlier = json.loads((out / "scaleout.json").read_text())
        if earlier["model"] == model:
            done = {(r["rows"], r["label"]): r for r in earlier["results"]}
            report["results"] = [r for r in earlier["results"] if r["rows"] not in sizes]
            report["sizes"] = sorted({*sizes, *(r["rows"] for r in report["results"])})
    spark_missing = _spark_available()
    for rows in sizes:
        tx, customers = dataset(data, rows)
        for config in (c for c in CONFIGS if c.engine in engines):
            if (rows, config.label) in done and "wall_s" in done[rows, config.label]["result"]:
                report["results"].append(done[rows, config.label])
                continue
            if config.engine == "local" and rows > LOCAL_MAX_ROWS:
                result = {"skipped": f"above {LOCAL_MAX_ROWS:,} rows (one process holds all)"}
            elif config.engine == "spark" and spark_missing:
                result = {"skipped": spark_missing}
            else:
                result = measure(config, use_case, tx, customers, out / "scaleout-run")
            report["results"].append(
                {
                    "rows": rows,
                    "engine": config.engine,
                    "workers": config.workers,
                    "label": config.label,
                    "result": result,
                }
            )
            shown = result.get("wall_s", result.get("skipped", result.get("failed")))
            print(f"{rows:>12,} {config.label:<16} {shown}", file=sys.stderr)
            _write(report, out)
    _write(report, out)
    return report


def _write(report: dict[str, Any], out: Path) -> None:
    report["results"].sort(key=lambda r: r["rows"])  # stable: setups keep their order
    report["models"] = fit_models(report)
    report["projections"] = projections(report)
    out.mkdir(parents=True, exist_ok=True)
    (out / "scaleout.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "scaleout.md").write_text(render(report))


def projections(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Projected minutes per engine, size and worker count (from report["models"])."""
    return [
        {"engine": engine, "rows": rows, "workers": workers,
         "minutes": round(project(model, rows, workers) / 60, 1)}
        for engine, model in report["models"].items() if model
        for rows in PROJECT_ROWS for workers in PROJECT_WORKERS
    ]  # fmt: skip


def fit_models(report: dict[str, Any]) -> dict[str, dict[str, float] | None]:
    return {
        engine: fit(
            [
                {"rows": r["rows"], "workers": r["workers"], **r["result"]}
                for r in report["results"]
                if r["engine"] == engine and "wall_s" in r["result"]
            ]
        )
        for engine in ("dask", "spark")
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES))
    parser.add_argument("--smoke", action="store_true", help=f"{SMOKE_ROWS:,} rows only")
    parser.add_argument("--use-case", default="credit_risk")
    parser.add_argument("--data", type=Path, default=Path("data/bench/scaleout"))
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--engines", nargs="+", default=["local", "dask", "spark"])
    parser.add_argument("--render", type=Path, help="refit and rewrite from a scaleout.json")
    parser.add_argument("--resume", action="store_true", help="keep the runs --out holds")
    args = parser.parse_args(argv)
    if args.render:
        report = json.loads(args.render.read_text())
        report["models"] = fit_models(report)
        report["projections"] = projections(report)
        args.render.write_text(json.dumps(report, indent=2) + "\n")
        args.render.with_suffix(".md").write_text(render(report))
        print(render(report))
        return 0
    sizes = [SMOKE_ROWS, 2 * SMOKE_ROWS] if args.smoke else args.sizes
    out = args.out or (Path("reports/bench/smoke") if args.smoke else Path("reports/bench"))
    report = run(sizes, args.use_case, args.data, out, tuple(args.engines), args.resume)
    print(render(report))
    print(f"wrote {out / 'scaleout.json'} and {out / 'scaleout.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
