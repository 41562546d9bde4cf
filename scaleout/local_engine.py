"""`--engine local`: today's one-machine path (read everything, the functions once)."""

from __future__ import annotations

from core.rawfiles import read_raw
from features.customers import customer_features
from scaleout.buckets import ORDER
from scaleout.plan import Plan, Result, Stopwatch


def run(plan: Plan, watch: Stopwatch) -> Result:
    table = plan.customers.drop(columns=ORDER)
    counts = None
    frame = table
    if plan.transactions is not None:
        with watch.stage("read"):
            raw = read_raw(plan.transactions, plan.id_columns)
        with watch.stage("features"):
            frame, counts = customer_features(plan.spec, table, raw, plan.cap)
        del raw
    out = frame
    if plan.scorer is not None:
        with watch.stage("scoring"):
            out = plan.scorer.answer_table(frame).assign(**plan.extra)
    with watch.stage("write"):
        plan.parts_dir.mkdir(parents=True, exist_ok=True)
        out.to_parquet(plan.parts_dir / "part-00000.parquet", index=False)
    return Result(counts=counts, rows=len(out))
