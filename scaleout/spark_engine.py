"""`--engine spark`: `local[*]` by default, any master (`--master`), or a session you have.

The raw blocks are read by `core.rawfiles.read_block` inside `mapInPandas` (so
Spark's own CSV reader, which treats blanks, quotes and NA differently from
pandas, never decides a value). The global id pass and the customer buckets
are `groupBy(...).applyInPandas` / `cogroup(...).applyInPandas` on a Spark hash of
the id; scoring is `mapInPandas` over the buckets' rows.

`features_frame(spark, transactions, customers, ...)` takes and returns Spark
DataFrames, for a notebook (Databricks) that already holds its data as tables.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import warnings
from collections.abc import Iterator

import pandas as pd

from core.rawfiles import POSITION, read_block
from scaleout.buckets import (
    BUCKET,
    COUNT_COLUMNS,
    HELPERS,
    KIND,
    ROWS,
    answers_meta,
    bucket_features,
    counts_of,
    features_meta,
    first_of_each_id,
    id_pass_meta,
    score_features,
)
from scaleout.plan import EngineUnavailable, Plan, Result, Stopwatch

__all__ = ["features_frame", "run", "session", "spark_schema"]


def _java_missing() -> str | None:
    if os.environ.get("JAVA_HOME") or shutil.which("java"):
        return None
    return "Spark needs Java 17 (Debian: apt-get install openjdk-17-jre-headless; or set JAVA_HOME)"


@contextlib.contextmanager
def session(master: str | None, cores: int, ui: bool = False) -> Iterator[object]:
    """The SparkSession to run on.

    Under `spark-submit` or in a notebook (a session or a launcher's gateway exists) and
    without `--master`: that session, on the master the platform gave it, left running.
    Otherwise a new one on `master` (default local[cores], bound to 127.0.0.1), its Python
    workers running this Python so they import the installed riskbento packages; stopped
    at the end."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise EngineUnavailable(
            "pyspark is not installed: pip install -r requirements-spark.txt"
        ) from None
    # pyspark 4.3 warns on every conversion that pandas 3 is not fully supported yet; the
    # exactness tests are what says whether it works here.
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")
    warnings.filterwarnings("ignore", message="The copy keyword is deprecated")
    hosted = SparkSession.getActiveSession() is not None or "PYSPARK_GATEWAY_PORT" in os.environ
    if hosted and not master:
        yield _start(SparkSession.builder.appName("riskbento-scaleout"))
        return
    missing = _java_missing()
    if missing:
        raise EngineUnavailable(missing)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    if not master:
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = (
        SparkSession.builder.master(master or f"local[{cores}]")
        .appName("riskbento-scaleout")
        .config("spark.ui.enabled", str(ui).lower())  # on: benchmarks read shuffle bytes
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.memory", os.environ.get("RISKBENTO_SPARK_DRIVER_MEMORY", "4g"))
    )
    if not master:
        builder = builder.config("spark.driver.host", "127.0.0.1").config(
            "spark.driver.bindAddress", "127.0.0.1"
        )
    spark = _start(builder)
    try:
        yield spark
    finally:
        spark.stop()


def _start(builder) -> object:
    try:
        spark = builder.config("spark.sql.execution.arrow.pyspark.enabled", "true").getOrCreate()
    except Exception as err:  # py4j / JVM start-up failures have no common base class
        raise EngineUnavailable(f"Spark did not start: {str(err).splitlines()[0]}") from None
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def spark_schema(frame: pd.DataFrame):
    """The Spark schema of a pandas frame's columns (what a pandas UDF returns)."""
    from pyspark.sql import types as T

    def kind(dtype) -> object:
        if pd.api.types.is_bool_dtype(dtype):
            return T.BooleanType()
        if pd.api.types.is_integer_dtype(dtype):
            return T.LongType()
        if pd.api.types.is_float_dtype(dtype):
            return T.DoubleType()
        return T.StringType()

    return T.StructType([T.StructField(c, kind(frame[c].dtype), True) for c in frame.columns])


def _to_spark(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns as Python objects: PySpark's Arrow path cannot take pandas 3's
    Arrow-backed string columns (ChunkedArray) yet; the values are the same."""
    text = [c for c in frame.columns if isinstance(frame[c].dtype, pd.StringDtype)]
    return frame.astype({c: object for c in text}) if text else frame


def _read(spark, plan: Plan, meta: pd.DataFrame):
    blocks, id_columns = plan.blocks, plan.id_columns

    def read(batches):
        for batch in batches:
            for i in batch["block"]:
                yield _to_spark(read_block(blocks[int(i)], id_columns))

    index = spark.createDataFrame(pd.DataFrame({"block": range(len(blocks))}))
    index = index.repartition(len(blocks), "block")
    return index.mapInPandas(read, spark_schema(meta))


def _bucket(column: str, buckets: int):
    from pyspark.sql import functions as F

    return F.pmod(F.xxhash64(F.col(column)), F.lit(buckets))


def features_frame(spark, raw, customers, plan: Plan, watch: Stopwatch | None = None):
    """Spark DataFrames in, Spark DataFrame out: the model's input rows per customer, plus
    the counts rows (KIND) of every bucket. `raw` carries POSITION (file order; a notebook
    can add `monotonically_increasing_id()` where the table's order is its file order) and
    `customers` the table's ORDER."""
    watch = watch or Stopwatch()
    spark.conf.set("spark.sql.shuffle.partitions", str(plan.buckets))
    roles = plan.spec.data.transactions
    meta = raw.limit(0).toPandas()
    tx_id, first = roles.columns.transaction_id, None
    with watch.stage("id_pass"):
        if tx_id is not None:
            from pyspark.sql import functions as F

            passed_schema = spark_schema(id_pass_meta(meta, tx_id))
            passed = (
                raw.filter(F.col(tx_id).isNotNull())
                .withColumn(BUCKET, _bucket(tx_id, plan.buckets))
                .groupBy(BUCKET)
                .applyInPandas(lambda rows: _to_spark(first_of_each_id(rows, tx_id)), passed_schema)
                .cache()
            )
            first = counts_of(passed.filter(F.col(KIND) != ROWS).toPandas())
            kept = passed.filter(F.col(KIND) == ROWS).drop(KIND, BUCKET, *COUNT_COLUMNS)
            raw = kept.unionByName(raw.filter(F.col(tx_id).isNull()))
    try:
        return _customer_buckets(raw, meta, customers, plan, watch), first
    finally:
        if tx_id is not None:
            passed.unpersist()


def _customer_buckets(raw, meta: pd.DataFrame, customers, plan: Plan, watch: Stopwatch):
    roles = plan.spec.data.transactions
    with watch.stage("shuffle"):
        by_customer = (
            raw.withColumn(BUCKET, _bucket(roles.columns.customer_id, plan.buckets))
            .repartition(plan.buckets, BUCKET)
            .cache()
        )
        by_customer.count()
    with watch.stage("features"):
        table = customers.withColumn(BUCKET, _bucket(plan.spec.id_column, plan.buckets))
        out_meta = features_meta(
            meta, table.limit(0).toPandas(), plan.spec, plan.cap, plan.id_columns
        )
        spec, cap, id_columns = plan.spec, plan.cap, plan.id_columns
        frame = (
            by_customer.groupBy(BUCKET)
            .cogroup(table.groupBy(BUCKET))
            .applyInPandas(
                lambda tx, cu: _to_spark(bucket_features(tx, cu, spec, cap, id_columns)),
                spark_schema(out_meta),
            )
            .cache()
        )
        frame.count()
        by_customer.unpersist()
    return frame


def run(plan: Plan, watch: Stopwatch, spark) -> Result:
    from pyspark.sql import functions as F

    customers = spark.createDataFrame(
        _to_spark(plan.customers), schema=spark_schema(plan.customers)
    )
    counts = None
    if plan.blocks:
        meta = read_block(plan.blocks[0], plan.id_columns).iloc[:0]
        with watch.stage("read"):
            raw = _read(spark, plan, meta).cache()
            raw.count()
        frame, first = features_frame(spark, raw, customers, plan, watch)
        raw.unpersist()
        second = counts_of(frame.filter(F.col(KIND) != ROWS).toPandas())
        counts = first + second if first is not None else second
        frame = frame.filter(F.col(KIND) == ROWS)
    else:
        frame = customers
    out = frame
    if plan.scorer is not None:
        with watch.stage("scoring"):
            scorer = spark.sparkContext.broadcast(plan.scorer)
            extra = plan.extra
            schema = spark_schema(answers_meta(plan.spec, plan.extra))

            def score(batches):
                for batch in batches:
                    yield _to_spark(score_features(batch, scorer.value, extra))

            out = frame.mapInPandas(score, schema).cache()
            out.count()
    with watch.stage("write"):
        out = out.drop(*[c for c in HELPERS if c in out.columns and c != POSITION])
        out.write.mode("error").parquet(str(plan.parts_dir))
        rows = out.count()
    shuffled = _shuffle_write_bytes(spark) if plan.measure_shuffle else None
    master = spark.sparkContext.master
    return Result(counts=counts, rows=rows, shuffle_bytes=shuffled, ran_on=master)


def _shuffle_write_bytes(spark) -> int | None:
    """Spark's own count of shuffle bytes written, summed over stages (its REST API on the
    driver's UI, bound to 127.0.0.1 in local mode)."""
    import json
    import urllib.request

    url = spark.sparkContext.uiWebUrl
    if not url:
        return None
    app = spark.sparkContext.applicationId
    with urllib.request.urlopen(f"{url}/api/v1/applications/{app}/stages", timeout=10) as r:
        stages = json.load(r)
    return int(sum(s.get("shuffleWriteBytes", 0) for s in stages))
