"""What an engine is asked to do, and what it reports back."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from core.errors import UserError
from core.rawfiles import Block
from core.spec import Spec
from features.transactions import CleaningCounts
from model.scorer import Scorer

__all__ = ["STAGES", "EngineUnavailable", "Plan", "Result", "Stopwatch"]

STAGES = ("read", "id_pass", "shuffle", "features", "scoring", "write")


class EngineUnavailable(UserError, RuntimeError):
    """The engine is not installed, cannot start, or cannot be reached."""


@dataclass
class Plan:
    """One run: the input's blocks, the customer table (read on the driver), what to do."""

    spec: Spec
    blocks: list[Block]  # the raw transactions, in file order; empty without transactions
    transactions: Path | None
    customers: pd.DataFrame  # the customer table with its ORDER column
    cap: float | None  # the amount cap: the model's, or none for `features` without a model
    id_columns: tuple[str, ...]  # read as `string`
    buckets: int
    parts_dir: Path  # the engine writes the output's Parquet parts here
    scorer: Scorer | None = None  # None: features only
    extra: dict[str, str] = field(default_factory=dict)  # constant answer columns (hashes)
    measure_shuffle: bool = False  # benchmarks: count the bytes shuffled (costs a pass)


@dataclass
class Result:
    counts: CleaningCounts | None
    rows: int  # customers written
    # Dask: in-memory (pandas deep) size of the rows entering the shuffles; Spark: its
    # shuffle write bytes (serialised). None unless Plan.measure_shuffle.
    shuffle_bytes: int | None = None
    ran_on: str = "this process"  # the Dask scheduler's address or the Spark master


class Stopwatch:
    """Seconds per stage; each engine materialises a stage before the next starts."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        assert name in STAGES, name
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started
