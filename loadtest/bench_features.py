"""Benchmark: raw transactions -> one feature row per customer, at scale.

Generates N synthetic raw transactions (vectorised numpy, deterministic for a
seed) with the mess a real bank export has -- a few thousand distinct
descriptions with store numbers, card references and typos, debit/credit in
mixed case, unsigned debits, nulls, unparseable timestamps, reused ids and
exact duplicate rows; about one customer per 30 rows -- and times
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

import numpy as np
import pandas as pd

from core.machine import machine_facts, package_versions
from core.markdown import table
from core.spec import Transactions

SEED = 2024
ROWS_PER_CUSTOMER = 30
SMOKE_ROWS = 20_000
DEFAULT_SIZES = (1_000_000, 10_000_000)
REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = Path("reports/bench")
TARGET = {"rows": 10_000_000, "seconds": 60.0, "peak_gib": 8.0, "cores": 2}

WINDOW_START = np.datetime64("2024-01-01")
WINDOW_DAYS = 90
STORE_VARIANTS = 100  # distinct store numbers / references per template with a placeholder

# Shares of the injected mess (per row).
EXACT_DUPLICATE_SHARE = 0.003
REUSED_ID_SHARE = 0.001
NULL_ID_SHARE = 0.0001
NULL_AMOUNT_SHARE = 0.002
UNSIGNED_DEBIT_SHARE = 0.05
AMOUNT_TYPO_SHARE = 0.0001  # a lost decimal point: x1000
NULL_DESCRIPTION_SHARE = 0.005
NULL_TIMESTAMP_SHARE = 0.002
BAD_TIMESTAMP_SHARE = 0.0002  # text that is no date at all, or an impossible one
DATE_ONLY_SHARE = 0.0005
CREDIT_SHARE = 0.15

TYPE_SPELLINGS = {  # value -> share
    "debit": ("debit", "Debit", "DEBIT", " debit "),
    "credit": ("credit", "Credit", "CREDIT"),
}
TYPE_SPELLING_P = {"debit": (0.80, 0.09, 0.09, 0.02), "credit": (0.82, 0.09, 0.09)}
OTHER_TYPES = (None, "pending", "REFUND?")
OTHER_TYPE_SHARE = 0.002
STATUSES = ("COMPLETED", "completed", "DECLINED", "Reversed", "PENDING", None)
STATUS_P = (0.93, 0.02, 0.03, 0.01, 0.0095, 0.0005)
BAD_TIMESTAMPS = ("not a date", "2024-02-30 10:00:00", "31/31/2024", "??")

# Description templates: {n} a store or terminal number, {r} a card reference,
# {e} an employer, {p} a payee. Weight = share of transactions.
TEMPLATES: dict[str, tuple[float, tuple[str, ...]]] = {
    "groceries": (
        0.25,
        (
            "TESCO STORE {n}", "TESCO EXPRESS {n}", "Tesco Stores {n}", "TESC0 EXPRESS {n}",
            "SAINSBURYS S/MKT {n}", "Sainsbury's {n}", "SAINSBRY {n}", "ASDA SUPERSTORE {n}",
            "ALDI {n}", "LIDL GB {n}", "Lidl GB {n} LONDON", "CO-OP GROCER {n}",
        ),
    ),
    "subscriptions": (
        0.05,
        (
            "NETFLIX.COM {r}", "Netflix.com*", "NETFLX", "SPOTIFY P{r}", "SPOTFY UK",
            "DISNEY PLUS", "AMAZON PRIME VIDEO", "APPLE SUBSCRIPTION {r}",
        ),
    ),
    "salary": (0.03, ("SALARY PAYMENT - {e}", "{e} PAYROLL", "WAGES {e}", "{e} SALARY")),
    "rent": (0.03, ("RENT - FLAT {n}", "LANDLORD PAYMENT", "FOXTONS LETTINGS", "RENT PAYMENT {r}")),
    "transfer": (
        0.10,
        (
            "TRANSFER TO {p}", "TRANSFER FROM {p}", "Faster Payment FROM {p}",
            "STANDING ORDER SAVINGS", "FPS TRANSFR {r}",
        ),
    ),
    "gambling": (
        0.02,
        ("BET365", "PADDYPOWER BET {r}", "GROSVENOR CASINO {n}", "POKERSTARS", "NATIONAL LOTTERY"),
    ),
    "crypto": (0.01, ("COINBASE UK", "BINANCE.COM {r}", "KRAKEN.COM", "CRYPTO.COM {r}")),
    "cash": (0.06, ("ATM WITHDRAWAL {n}", "CASH WITHDRAWAL LINK {n}", "ATM HSBC HIGH ST")),
    "other": (
        0.45,
        (
            "COSTA COFFEE {n}", "PRET A MANGER {n}", "AMAZON MKTPLACE*{r}", "TFL TRAVEL CHARGE",
            "SHELL {n}", "BOOTS {n}", "GREGGS {n}", "McDonalds {n}", "Just Eat*{r}",
            "UBER *TRIP {r}", "BRITISH GAS", "VODAFONE UK", "COUNCIL TAX {n}", "ARGOS {n}",
            "Better Homes Furniture", "Parental leave top-up", "PRIMARK {n}", "CURRYS {n}",
            "Waterstones", "THAMES WATER DD", "OCTOPUS ENERGY", "DELIVEROO {r}",
        ),
    ),
}  # fmt: skip
EMPLOYERS = ("ACME LTD", "GLOBEX PLC", "INITECH LTD", "NHS TRUST", "CITY COUNCIL", "HOOLI UK")
PAYEES = ("J SMITH", "A PATEL", "M JONES", "S KHAN", "L BROWN", "K WILSON", "R TAYLOR")
REF_ALPHABET = "0123456789BCDFGHJKLMNPQRSTVWXZ"

ROLES = Transactions.model_validate(
    {
        "path": "synthetic.csv",
        "columns": {
            "customer_id": "customer_id",
            "transaction_id": "transaction_id",
            "amount": "amount",
            "type": "type",
            "description": "description",
            "timestamp": "timestamp",
            "status": "status",
        },
    }
)


# ---------------------------------------------------------------- synthetic data


def description_pool(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A few thousand distinct descriptions and the share of rows each one gets."""
    texts: list[str] = []
    weights: list[float] = []
    for share, templates in TEMPLATES.values():
        for template in templates:
            placeholder = "{" in template
            variants = STORE_VARIANTS if placeholder else 1
            for _ in range(variants):
                ref = "".join(rng.choice(list(REF_ALPHABET), 6))
                texts.append(
                    template.format(
                        n=int(rng.integers(1, 9999)),
                        r=ref,
                        e=EMPLOYERS[rng.integers(len(EMPLOYERS))],
                        p=PAYEES[rng.integers(len(PAYEES))],
                    )
                )
                weights.append(share / len(templates) / variants)
    # Same text from two templates' draws collapses into one entry.
    frame = pd.DataFrame({"text": texts, "weight": weights}).groupby("text", sort=True).sum()
    p = frame["weight"].to_numpy()
    return frame.index.to_numpy(dtype=object), p / p.sum()


def _text_column(chars: np.ndarray) -> np.ndarray:
    """(n, width) uint8 ASCII -> object array of str, one new str per row (as a CSV reader)."""
    width = chars.shape[1]
    return np.ascontiguousarray(chars).view(f"S{width}").ravel().astype(f"U{width}").astype(object)


def _digits(numbers: np.ndarray, width: int) -> np.ndarray:
    out = np.empty((len(numbers), width), dtype=np.uint8)
    rest = numbers.astype(np.int64)
    for k in range(width - 1, -1, -1):
        out[:, k] = 48 + rest % 10
        rest //= 10
    return out


def _pool_strings(values: list[str]) -> np.ndarray:
    return np.array(values, dtype=object)


def generate(n_rows: int, seed: int = SEED) -> tuple[pd.DataFrame, pd.Series]:
    """n_rows raw transactions (as `read_transactions` would load them) and the customer ids.

    Vectorised: the only Python loops run over the few thousand distinct
    descriptions and the customer pool, never over rows.
    """
    rng = np.random.default_rng(seed)
    n_customers = max(1, n_rows // ROWS_PER_CUSTOMER)
    n_dup = int(n_rows * EXACT_DUPLICATE_SHARE)
    n = n_rows - n_dup  # rows before the exact duplicates are added

    customers = _pool_strings([f"CUST{i:07d}" for i in range(1, n_customers + 1)])
    cust = rng.integers(0, n_customers, n)

    texts, p = description_pool(rng)
    description = texts[rng.choice(len(texts), size=n, p=p)]
    description[rng.random(n) < NULL_DESCRIPTION_SHARE] = np.nan

    credit = rng.random(n) < CREDIT_SHARE
    kind = np.empty(n, dtype=object)
    for direction, spellings in TYPE_SPELLINGS.items():
        rows = np.flatnonzero(credit if direction == "credit" else ~credit)
        pick = rng.choice(len(spellings), size=len(rows), p=TYPE_SPELLING_P[direction])
        kind[rows] = _pool_strings(list(spellings))[pick]
    other = np.flatnonzero(rng.random(n) < OTHER_TYPE_SHARE)
    kind[other] = _pool_strings(list(OTHER_TYPES))[rng.integers(len(OTHER_TYPES), size=len(other))]

    magnitude = np.round(np.exp(rng.normal(np.log(30.0), 1.1, n)), 2)
    amount = np.where(credit, magnitude, -magnitude)
    amount[~credit & (rng.random(n) < UNSIGNED_DEBIT_SHARE)] *= -1  # unsigned debits
    typo = rng.random(n) < AMOUNT_TYPO_SHARE
    amount[typo] = np.round(amount[typo] * 1000, 2)
    amount[rng.random(n) < NULL_AMOUNT_SHARE] = np.nan

    status = _pool_strings(list(STATUSES))[rng.choice(len(STATUSES), size=n, p=STATUS_P)]

    days = _pool_strings(
        [str(WINDOW_START + np.timedelta64(d, "D")) for d in range(WINDOW_DAYS)]
    ).astype("S10")
    day_chars = np.frombuffer(days.tobytes(), dtype=np.uint8).reshape(WINDOW_DAYS, 10)
    second = rng.integers(0, 86_400, n)
    stamp = np.empty((n, 19), dtype=np.uint8)
    stamp[:, :10] = day_chars[rng.integers(0, WINDOW_DAYS, n)]
    stamp[:, 10] = ord(" ")
    for start, unit, modulo in ((11, 3600, 24), (14, 60, 60), (17, 1, 60)):
        stamp[:, start : start + 2] = _digits((second // unit) % modulo, 2)
    stamp[:, 13] = stamp[:, 16] = ord(":")
    timestamp = _text_column(stamp)
    del stamp
    odd = np.flatnonzero(rng.random(n) < DATE_ONLY_SHARE)
    timestamp[odd] = [t[:10] for t in timestamp[odd]]
    bad = np.flatnonzero(rng.random(n) < BAD_TIMESTAMP_SHARE)
    garbage = _pool_strings(list(BAD_TIMESTAMPS))
    timestamp[bad] = garbage[rng.integers(len(garbage), size=len(bad))]
    timestamp[rng.random(n) < NULL_TIMESTAMP_SHARE] = np.nan

    ids = np.empty((n, 12), dtype=np.uint8)
    ids[:, :2] = np.frombuffer(b"TX", dtype=np.uint8)
    ids[:, 2:] = _digits(np.arange(1, n + 1), 10)
    transaction_id = _text_column(ids)
    del ids
    reused = np.flatnonzero(rng.random(n) < REUSED_ID_SHARE)
    reused = reused[reused > 0]
    transaction_id[reused] = transaction_id[rng.integers(0, reused)]  # an earlier row's id
    transaction_id[rng.random(n) < NULL_ID_SHARE] = None

    # Exact duplicates sit right after their original row.
    order = np.sort(np.concatenate([np.arange(n), rng.integers(0, n, n_dup)]), kind="stable")
    columns = {
        "customer_id": (customers[cust[order]], "string"),
        "transaction_id": (transaction_id[order], "string"),
        "timestamp": (timestamp[order], "str"),
        "amount": (amount[order], "float64"),
        "type": (kind[order], "str"),
        "description": (description[order], "str"),
        "status": (status[order], "str"),
    }
    raw = pd.DataFrame(
        {name: pd.array(values, dtype=dtype) for name, (values, dtype) in columns.items()}
    )
    return raw, pd.Series(customers, dtype="string", name="customer_id")


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
