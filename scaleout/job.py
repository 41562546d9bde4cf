"""`python -m riskbento features|score <use case> --engine local|dask|spark`.

Raw transactions (a CSV/Parquet file or a folder of parts) and the customer
table -> per-customer features (`features.parquet/`) or one answer per customer
(`answers.parquet/` + `answers.csv`), with `run.json` naming the inputs' sha256,
the model, the cleaning counts and the seconds per stage. Everything is written
under a temporary name and renamed into place at the end: a failed run never
leaves a partial output where a complete one is expected.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from core.catalogue import aggregate_catalogue
from core.datafiles import transaction_id_columns
from core.logs import get_logger
from core.machine import machine_facts, package_versions
from core.rawfiles import BadInput, plan_blocks, raw_columns, raw_parts
from core.settings import get_settings
from core.spec import Spec, load_spec
from core.stats import files_sha256
from model.scorer import ModelNotFound, Scorer
from scaleout import ENGINES
from scaleout.buckets import table_order
from scaleout.plan import Plan, Result, Stopwatch

__all__ = ["ENGINES", "Run", "run"]

COMMANDS = ("features", "score")
BLOCK_BYTES = 64 * 2**20
BUCKETS_PER_WORKER = 4
VERSIONS = ("pandas", "numpy", "pyarrow", "dask", "distributed", "pyspark", "scikit-learn")

log = get_logger("scaleout").info


@dataclass
class Run:
    """What to do: the command line's choices."""

    command: str  # features | score
    use_case: str | Path
    engine: str = "local"
    transactions: Path | str | None = None  # default: the spec's (unlabeled first)
    customers: Path | str | None = None  # default: the spec's (unlabeled first)
    out: Path | str | None = None  # default: outputs/<name>/<command>-<engine>
    workers: int = 2  # Dask LocalCluster workers / Spark local cores
    buckets: int | None = None  # default: BUCKETS_PER_WORKER per worker, more for big inputs
    scheduler: str | None = None  # Dask: tcp://host:port of a running scheduler
    master: str | None = None  # Spark: a master URL (default local[workers])
    block_bytes: int = BLOCK_BYTES
    measure_shuffle: bool = False  # benchmarks: count the bytes shuffled


def _inputs(spec: Spec, job: Run) -> tuple[Path | None, Path]:
    tx = spec.data.transactions
    transactions = Path(job.transactions) if job.transactions else None
    if transactions is None and tx is not None:
        transactions = spec.resolve(tx.unlabeled_path or tx.path)
    customers = Path(job.customers or spec.resolve(spec.data.unlabeled_table or spec.data.table))
    if job.command == "features" and tx is None:
        raise BadInput(f"{spec.name} declares no transactions: there are no features to build")
    if tx is None and job.transactions is not None:
        raise BadInput(f"{spec.name} declares no transactions; drop --transactions")
    return transactions, customers


def read_customers(path: Path, spec: Spec, needed: list[str]) -> pd.DataFrame:
    """The customer table (CSV or Parquet, one file) as `read_table` reads it, checked."""
    parts = raw_parts(path)
    if len(parts) != 1:
        raise BadInput(f"{path}: the customer table must be one CSV or Parquet file")
    part = parts[0]
    if part.suffix.lower() == ".csv":
        try:
            table = pd.read_csv(part, dtype={spec.id_column: "string"})
        except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as err:
            raise BadInput(f"{part}: not a readable CSV file ({err})") from None
    else:
        table = pd.read_parquet(part)
    missing = [c for c in [spec.id_column, *needed] if c not in table.columns]
    if missing:
        raise BadInput(f"{part}: the customer table lacks columns {missing}")
    table[spec.id_column] = table[spec.id_column].astype("string")
    if table[spec.id_column].isna().any():
        raise BadInput(f"{part}: {int(table[spec.id_column].isna().sum())} rows without an id")
    return table


def _check_transactions(path: Path, spec: Spec) -> None:
    """Every part holds every column the spec's transaction roles name."""
    wanted = [c for c in spec.data.transactions.columns.model_dump().values() if c]
    for part, columns in raw_columns(path).items():
        missing = [c for c in wanted if c not in columns]
        if missing:
            raise BadInput(f"{part}: the transactions lack columns {missing} (spec {spec.name})")


def _table_features(spec: Spec) -> list[str]:
    """The spec's features that come from the customer table, not from transactions."""
    roles = spec.data.transactions
    if roles is None:
        return list(spec.feature_names)
    built = set(aggregate_catalogue(roles.categories, has_status=roles.columns.status is not None))
    return [f for f in spec.feature_names if f not in built]


def _cap(spec: Spec, scorer: Scorer | None) -> float | None:
    if scorer is not None:
        return scorer.amount_cap
    try:
        return Scorer.from_store(f"{spec.name}:latest").amount_cap
    except ModelNotFound:
        roles = spec.data.transactions
        if roles is not None and roles.max_amount is not None:
            return roles.max_amount
        raise BadInput(
            f"{spec.name}: no model in the store to take the amount cap from and no "
            "data.transactions.max_amount in the spec; train first or set max_amount"
        ) from None


def _engine_run(job: Run, plan: Plan, watch: Stopwatch) -> Result:
    if job.engine == "local":
        from scaleout import local_engine

        return local_engine.run(plan, watch)
    if job.engine == "dask":
        from scaleout import dask_engine

        with dask_engine.client(job.scheduler, job.workers):
            return dask_engine.run(plan, watch)
    from scaleout import spark_engine

    with spark_engine.session(job.master, job.workers, ui=job.measure_shuffle) as spark:
        return spark_engine.run(plan, watch, spark)


def _write_csv(parts_dir: Path, path: Path) -> None:
    """One CSV from the Parquet parts, a part at a time (header once)."""
    first = True
    for part in sorted(parts_dir.glob("*.parquet")):
        pd.read_parquet(part).to_csv(path, mode="w" if first else "a", header=first, index=False)
        first = False


def _replace(tmp: Path, out: Path) -> None:
    """Move the finished `tmp` to `out`; an older `out` goes only once the new one is there."""
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)


def run(job: Run) -> dict[str, Any]:
    """Run one job; returns the manifest written as run.json."""
    if job.engine not in ENGINES:
        raise BadInput(f"--engine: expected one of {ENGINES}, got {job.engine!r}")
    if job.command not in COMMANDS:
        raise BadInput(f"expected one of {COMMANDS}, got {job.command!r}")
    spec = load_spec(job.use_case, check_data=False)
    transactions, customers_path = _inputs(spec, job)
    scorer = Scorer.from_store(f"{spec.name}:latest") if job.command == "score" else None
    needed = _table_features(spec) if scorer is not None else []
    table = read_customers(customers_path, spec, needed)
    blocks = []
    if transactions is not None:
        _check_transactions(transactions, spec)
        blocks = plan_blocks(transactions, job.block_bytes)
    input_bytes = sum(p.stat().st_size for p in raw_parts(transactions)) if transactions else 0
    buckets = job.buckets or max(
        BUCKETS_PER_WORKER * job.workers, math.ceil(input_bytes / job.block_bytes)
    )
    hashes = {"customers_sha256": files_sha256(raw_parts(customers_path))}
    if transactions is not None:
        hashes["transactions_sha256"] = files_sha256(raw_parts(transactions))

    out = Path(job.out or get_settings().outputs_dir / spec.name / f"{job.command}-{job.engine}")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    name = "answers" if scorer is not None else "features"
    plan = Plan(
        spec=spec,
        blocks=blocks,
        transactions=transactions,
        customers=table_order(table),
        cap=_cap(spec, scorer) if transactions is not None else None,
        id_columns=transaction_id_columns(spec.data.transactions) if transactions else (),
        buckets=buckets,
        parts_dir=tmp / f"{name}.parquet",
        scorer=scorer,
        extra=hashes if scorer is not None else {},
        measure_shuffle=job.measure_shuffle,
    )
    watch = Stopwatch()
    log(
        f"{spec.name}: {job.command} on {job.engine} ({job.workers} workers, {buckets} buckets, "
        f"{len(blocks)} blocks, {len(table):,} customers)"
    )
    try:
        result = _engine_run(job, plan, watch)
        if scorer is not None:
            _write_csv(plan.parts_dir, tmp / "answers.csv")
        manifest = {
            "command": job.command,
            "use_case": spec.name,
            "engine": job.engine,
            "workers": job.workers,
            "ran_on": result.ran_on,
            "buckets": buckets,
            "blocks": len(blocks),
            "inputs": {
                "transactions": str(transactions) if transactions else None,
                "customers": str(customers_path),
                **hashes,
                "transactions_bytes": input_bytes,
            },
            "model": scorer.tag if scorer else None,
            "amount_cap": plan.cap,
            "customers": result.rows,
            "cleaning": result.counts.as_dict() if result.counts else None,
            "stages_s": {k: round(v, 3) for k, v in watch.seconds.items()},
            "shuffle_bytes": result.shuffle_bytes,
            "written": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": machine_facts(),
            "versions": package_versions(VERSIONS),
        }
        (tmp / "run.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        _replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if result.counts is not None:
        log(
            f"{spec.name}: cleaning "
            + ", ".join(f"{k} {v:,}" for k, v in manifest["cleaning"].items())
        )
    log(f"{spec.name}: {result.rows:,} customers -> {out} ({_seconds(watch)})")
    return manifest


def _seconds(watch: Stopwatch) -> str:
    return ", ".join(f"{k} {v:.1f}s" for k, v in watch.seconds.items())
