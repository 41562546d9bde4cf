"""`--engine dask`: a LocalCluster on 127.0.0.1, or any scheduler (`--scheduler tcp://...`).

Blocks are read by `core.rawfiles.read_block` (one task each); the global id pass
shuffles rows with a transaction id by a hash of it; the customer buckets come
from `set_index` on the bucket number with one partition per bucket, for the
transactions and the customer table alike, so partition i of both holds bucket
i and `map_partitions` hands `bucket_features` matching pairs.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from core.rawfiles import read_block
from scaleout.buckets import (
    BUCKET,
    COUNT_COLUMNS,
    HELPERS,
    KIND,
    ROWS,
    answers_meta,
    bucket_features,
    bucket_of,
    counts_of,
    features_meta,
    first_of_each_id,
    id_pass_meta,
    score_features,
)
from scaleout.plan import EngineUnavailable, Plan, Result, Stopwatch

__all__ = ["client", "run"]


@contextlib.contextmanager
def client(scheduler: str | None, workers: int, threads: int = 1) -> Iterator[object]:
    """A distributed Client: to `scheduler`, or to a LocalCluster bound to 127.0.0.1
    (`workers` processes of `threads` threads each)."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise EngineUnavailable(
            "dask is not installed: pip install 'dask[distributed]' (requirements.txt has it)"
        ) from None
    logging.getLogger("distributed.shuffle").setLevel(logging.ERROR)  # per-shuffle chatter
    if scheduler:
        try:
            with Client(scheduler, timeout="10s") as c:
                yield c
        except OSError as err:
            raise EngineUnavailable(f"cannot reach the Dask scheduler {scheduler}: {err}") from None
        return
    with (
        LocalCluster(
            host="127.0.0.1",
            silence_logs=logging.ERROR,
            n_workers=workers,
            threads_per_worker=threads,
            dashboard_address=None,
            processes=True,
        ) as cluster,
        Client(cluster) as c,
    ):
        yield c


def _bucketed(frame, column: str, buckets: int):
    """One partition per bucket of `column`'s hash (set_index on known divisions)."""
    with_bucket = frame.map_partitions(
        lambda part: part.assign(**{BUCKET: bucket_of(part[column], buckets)})
    )
    divisions = [*range(buckets), buckets - 1]
    return with_bucket.set_index(BUCKET, divisions=divisions, drop=False, sorted=False)


def run(plan: Plan, watch: Stopwatch) -> Result:
    import dask

    # Keep pandas' own dtypes: Dask would turn text columns into Arrow strings with pd.NA
    # for a blank, which the one-machine code never sees.
    with dask.config.set({"dataframe.convert-string": False}):
        return _run(plan, watch)


def _run(plan: Plan, watch: Stopwatch) -> Result:
    import dask
    import dask.dataframe as dd
    from distributed import wait

    spec, counts, shuffled = plan.spec, None, 0
    customers = dd.from_pandas(plan.customers, npartitions=max(1, min(plan.buckets, 32)))
    customers = _bucketed(customers, spec.id_column, plan.buckets)
    if plan.blocks:
        roles = spec.data.transactions
        meta = read_block(plan.blocks[0], plan.id_columns).iloc[:0]
        with watch.stage("read"):
            raw = dd.from_map(read_block, plan.blocks, id_columns=plan.id_columns, meta=meta)
            raw = raw.persist()
            wait(raw)
        with watch.stage("id_pass"):
            tx_id = roles.columns.transaction_id
            if tx_id is not None:
                has_id = raw[~raw[tx_id].isna()]
                shuffled += _deep_bytes(has_id) if plan.measure_shuffle else 0
                passed = _bucketed(has_id, tx_id, plan.buckets).map_partitions(
                    first_of_each_id, tx_id, meta=id_pass_meta(meta, tx_id)
                )
                passed = passed.reset_index(drop=True).persist()
                wait(passed)
                first = counts_of(passed[passed[KIND] != ROWS].compute())
                kept = passed[passed[KIND] == ROWS].drop(columns=[KIND, *COUNT_COLUMNS])
                raw = dd.concat([kept, raw[raw[tx_id].isna()]])
        shuffled += _deep_bytes(raw) if plan.measure_shuffle else 0
        with watch.stage("shuffle"):
            by_customer = _bucketed(raw, roles.columns.customer_id, plan.buckets).persist()
            wait(by_customer)
        with watch.stage("features"):
            empty = features_meta(meta, plan.customers.iloc[:0], spec, plan.cap, plan.id_columns)
            frame = dd.map_partitions(
                bucket_features,
                by_customer,
                customers,
                spec,
                plan.cap,
                plan.id_columns,
                meta=empty,
                align_dataframes=False,
            ).persist()
            wait(frame)
            second = counts_of(frame[frame[KIND] != ROWS].compute())
            counts = first + second if tx_id is not None else second
            frame = frame[frame[KIND] == ROWS]
    else:
        frame = customers
    out = frame
    if plan.scorer is not None:
        with watch.stage("scoring"):
            scorer = dask.delayed(plan.scorer)  # shipped once, not once per task
            out = frame.map_partitions(
                score_features, scorer, plan.extra, meta=answers_meta(plan.spec, plan.extra)
            ).persist()
            wait(out)
    with watch.stage("write"):
        out = out.drop(columns=[c for c in HELPERS if c in out.columns])
        out.to_parquet(plan.parts_dir, write_index=False)
        rows = int(out.map_partitions(len).sum().compute())
    from distributed import get_client

    address = get_client().scheduler.address
    return Result(counts=counts, rows=rows, shuffle_bytes=shuffled or None, ran_on=address)


def _deep_bytes(frame) -> int:
    """In-memory size of a Dask frame's rows (pandas deep), computed (outside the timers)."""
    return int(frame.map_partitions(lambda p: p.memory_usage(deep=True).sum()).sum().compute())
