"""Benchmark: raw transactions -> one feature row per customer, at scale.

Generates N synthetic raw transactions with the mess a real bank export has
(`datagen.messy_transactions`: deterministic for a seed) and times
`features.transactions.build_customer_features` on them: end to end, then per
stage (clean, categorise, aggregate). Each size runs in a fresh subprocess so
its peak memory (VmHWM, reset after the data is generated) is its own.

    python -m loadtest.bench_features --sizes 1000000 10000000
    python -m loadtest.bench_features --smoke          # 20,000 rows, a few seconds

Writes `features.json` and `features.md` under --out (default reports/bench;
reports/bench/smoke for --smoke) and prints the same table. `--impl` points at
another version of the module (a dotted name or a .py file) to compare.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import importlib
import importlib.util
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from core.machine import machine_facts, package_versions
from core.markdown import table
from datagen.messy_transactions import ROLES, SEED, generate

SMOKE_ROWS = 20_000
DEFAULT_SIZES = (1_000_000, 10_000_000)
REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = Path("reports/bench")
TARGET = {"rows": 10_000_000, "seconds": 60.0, "peak_gib": 8.0, "cores": 2}

# ---------------------------------------------------------------- measuring


def load_impl(impl: str) -> ModuleType:
    """The module under test: a dotted name, or a .py file (e.g. an older version)."""
    if impl.endswith(".py"):
        spec = importlib.util.spec_from_file_location("bench_impl", impl)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up
        spec.loader.exec_module(module)
        return module
    return importlib.import_module(impl)


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def _release_free_memory() -> None:
    """Hand memory freed by the generator back to the OS, so RSS counts live data only."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _reset_peak() -> bool:
    """Reset VmHWM (peak RSS) to the current RSS; False where the kernel does not allow it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _fresh_caches(module: ModuleType) -> None:
    """Forget per-description results cached by an earlier run (the module's lru_cache)."""
    cached = getattr(module, "_categories_of", None)
    if hasattr(cached, "cache_clear"):
        cached.cache_clear()


def measure(n_rows: int, seed: int = SEED, impl: str = "features.transactions") -> dict[str, Any]:
    """Time a stage-by-stage run, then one end-to-end run with its peak memory.

    Each run gets freshly generated data (so no string hash is cached from the run
    before) and empty per-description caches: both runs are cold.
    """
    module = load_impl(impl)
    raw, ids = generate(n_rows, seed)
    cap = module.amount_cap(raw["amount"])
    stages = {}
    started = time.perf_counter()
    clean, _ = module.clean_transactions(raw, ROLES, cap)
    stages["clean"] = time.perf_counter() - started
    started = time.perf_counter()
    module.categorise(clean["description"], ROLES.categories)
    stages["categorise"] = time.perf_counter() - started
    started = time.perf_counter()
    module.aggregate(clean, ids, ROLES)  # categorises again, inside
    stages["aggregate"] = time.perf_counter() - started
    del raw, ids, clean
    _fresh_caches(module)

    started = time.perf_counter()
    raw, ids = generate(n_rows, seed)
    generate_s = time.perf_counter() - started
    gc.collect()
    _release_free_memory()
    rss_data = _status_kib("VmRSS")
    peak_resettable = _reset_peak()

    started = time.perf_counter()
    cap = module.amount_cap(raw["amount"])
    cap_s = time.perf_counter() - started
    started = time.perf_counter()
    features, counts = module.build_customer_features(raw, ROLES, ids, cap)
    total_s = time.perf_counter() - started
    peak = _status_kib("VmHWM")

    gib = 1024**2
    return {
        "rows": n_rows,
        "customers": len(ids),
        "features": list(features.shape),
        "seed": seed,
        "impl": impl,
        "generate_s": round(generate_s, 2),
        "amount_cap_s": round(cap_s, 3),
        "total_s": round(total_s, 3),
        "rows_per_s": round(n_rows / total_s),
        "stages_s": {k: round(v, 3) for k, v in stages.items()},
        "rss_input_gib": round(rss_data / gib, 3),
        "peak_rss_gib": round(peak / gib, 3) if peak_resettable else None,
        "ru_maxrss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / gib, 3),
        "counts": counts.as_dict(),
    }


def _table(results: list[dict[str, Any]]) -> str:
    header = [
        "rows",
        "customers",
        "end to end (s)",
        "rows/s",
        "clean (s)",
        "categorise (s)",
        "aggregate (s)",
        "input RSS (GiB)",
        "peak RSS (GiB)",
    ]
    rows = []
    for r in results:
        st = r["stages_s"]
        peak = r["peak_rss_gib"] if r["peak_rss_gib"] is not None else r["ru_maxrss_gib"]
        rows.append(
            [
                f"{r['rows']:,}",
                f"{r['customers']:,}",
                r["total_s"],
                f"{r['rows_per_s']:,}",
                st["clean"],
                st["categorise"],
                st["aggregate"],
                r["rss_input_gib"],
                peak,
            ]
        )
    return "\n".join(table(header, rows, fmt=".2f"))


def render(report: dict[str, Any]) -> str:
    m, v = report["machine"], report["versions"]
    lines = [
        "# Feature building benchmark",
        "",
        f"`build_customer_features` ({report['impl']}) on synthetic raw transactions "
        f"(`python -m loadtest.bench_features`, seed {report['seed']}).",
        "",
        f"Machine: {m['cores']} cores, {m['cpu_model']}, {m['memory_gb']} GiB; load average "
        f"at start {m['load_average_at_start']} (shared machine: timings vary). "
        f"Python {v['python']}, numpy {v['numpy']}, pandas {v['pandas']}.",
        "",
        _table(report["results"]),
        "",
        "End to end: one `build_customer_features` call (clean + categorise + aggregate), "
        "`amount_cap` not included. The stage columns come from a separate stage-by-stage run "
        "(`clean_transactions`, `categorise`, `aggregate`; `aggregate` categorises again "
        "inside). Each run gets freshly generated data and empty caches. Input RSS: the "
        "process holding the raw frame, before feature building. Peak RSS: the process's "
        "high-water mark during the end-to-end call, input included. Each size runs in a "
        "fresh process.",
        "",
        f"Target: {TARGET['rows']:,} transactions in <= {TARGET['seconds']:.0f} s with "
        f"<= {TARGET['peak_gib']:.0f} GiB peak on {TARGET['cores']} cores.",
        "",
    ]
    return "\n".join(lines)


def run(sizes: list[int], out: Path, seed: int, impl: str) -> dict[str, Any]:
    """Each size in a fresh subprocess; write features.json and features.md under out."""
    report: dict[str, Any] = {
        "machine": machine_facts(),
        "versions": package_versions(("numpy", "pandas")),
        "seed": seed,
        "impl": impl,
        "results": [],
    }
    for size in sizes:
        cmd = [sys.executable, "-m", "loadtest.bench_features", "--child", str(size)]
        cmd += ["--seed", str(seed), "--impl", impl]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=REPO)
        if done.returncode != 0:
            raise RuntimeError(f"benchmark of {size:,} rows failed:\n{done.stderr}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
        report["results"].append(result)
        print(
            f"{size:>12,} rows: {result['total_s']:.2f} s end to end, "
            f"peak {result['peak_rss_gib']} GiB",
            file=sys.stderr,
        )
    out.mkdir(parents=True, exist_ok=True)
    (out / "features.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "features.md").write_text(render(report))
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES))
    parser.add_argument("--smoke", action="store_true", help=f"{SMOKE_ROWS:,} rows only")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--impl", default="features.transactions")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        print(json.dumps(measure(args.child, args.seed, args.impl)))
        return 0
    sizes = [SMOKE_ROWS] if args.smoke else args.sizes
    out = args.out or (DEFAULT_OUT / "smoke" if args.smoke else DEFAULT_OUT)
    report = run(sizes, out, args.seed, args.impl)
    print(render(report))
    print(f"wrote {out / 'features.json'} and {out / 'features.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
