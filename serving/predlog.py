"""Prediction logging with `bentoml.monitor`, and reading the logs back for drift checks.

`PredictionLog(spec, model_tag).log(records, answers)` writes one row per scored
customer: the id, every spec feature as sent, probability, prediction, risk tier
and the model tag. Nothing from the request envelope (headers, client address)
is logged. Where it goes is BentoML's monitoring config: by default the
`DefaultMonitor` appends JSON lines to
`<log_path>/riskbento_<use case>/data/data.<worker>.log` (rotated daily to
`data.<worker>.log.YYYY-MM-DD`) and the column schema to `.../schema/schema.<worker>.log`;
with `type: otlp` the same rows go to an OpenTelemetry collector instead.

Roles: BentoML knows only `feature`, `prediction` and `target` (anything else warns
on every value). The id is logged as a categorical `feature` column and the model
tag as a categorical `prediction` column; readers (the drift job) pick features by
the spec, never by role.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import logging.handlers
import os
import random
import tempfile
from pathlib import Path
from typing import Any

import bentoml
import orjson
import pandas as pd
from bentoml.monitoring import MonitorBase

from core.errors import UserError
from core.spec import ORDERED, FeatureType, Spec
from serving.bentoml_private import DefaultMonitor, json_lines_logging_yaml, trace_context

logger = logging.getLogger(__name__)

MONITOR_PREFIX = "riskbento_"
DATA_FOLDER = "data"  # DefaultMonitor's folder of data files inside a monitor's folder
DATA_GLOB = "data.*.log*"  # data.<worker>.log and its daily rotations
TIMESTAMP_COLUMN = "timestamp"  # added by DefaultMonitor to every row (local time, ISO 8601)
MODEL_COLUMN = "model_tag"
ROLE_COLUMN = "role"  # CHAMPION: the answer the caller got; SHADOW: a shadow challenger's
CHAMPION, SHADOW = "champion", "shadow"
# Who asked: PRODUCTION unless the request carried SOURCE_HEADER (the dashboard's what-if
# and CSV calls); reports of the traffic (drift, the dashboard's aggregates) count
# production rows only. Rows logged before the column existed are production.
SOURCE_COLUMN = "source"
SOURCE_HEADER = b"x-riskbento-source"  # as ASGI hands header names: lower case
PRODUCTION = "production"
SOURCES = (PRODUCTION, "dashboard-whatif", "dashboard-csv")
PREDICTION_COLUMNS = ("probability", "prediction", "risk_tier")
ANSWER_COLUMNS = (*PREDICTION_COLUMNS, MODEL_COLUMN, ROLE_COLUMN, SOURCE_COLUMN)  # per record

NUMERICAL, CATEGORICAL = "numerical", "categorical"
FEATURE, PREDICTION = "feature", "prediction"

# A column name BentoML reserves for its own fields gets "_" appended when logged.
_RESERVED = ("timestamp", "request_id", "trace_id")
_OPENED: dict[str, str | None] = {}  # monitor name -> log path, in this process


# BentoML's monitoring `type` for the service and for commands: its DefaultMonitor's files
# and rows, written a block at a time (see JsonLinesMonitor).
MONITOR_CLASS = "serving.predlog.JsonLinesMonitor"
HANDLER_CLASS = "serving.predlog.RaisingRotatingFileHandler"


class PredictionLogWriteError(OSError):
    """A scored block could not be written to the prediction log (disk full, permission)."""


class RaisingRotatingFileHandler(logging.handlers.TimedRotatingFileHandler):
    """BentoML's data handler (daily files), except that a failed write raises instead of
    printing a traceback and carrying on: the caller decides whether to answer unlogged.
    Each block is flushed to the operating system before `emit` returns, so a line is in
    the file before its answer leaves, and a killed worker cannot lose it."""

    def handleError(self, record: logging.LogRecord) -> None:
        # What failed stays in the stream's buffer and would be written by a later block:
        # rows never answered. Point the stream at /dev/null and close it there, so that
        # buffer goes nowhere; the next block reopens the file.
        stream, self.stream = self.stream, None
        if stream is not None:
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, stream.fileno())
            os.close(null)
            with contextlib.suppress(OSError, ValueError):
                stream.close()
        raise  # called by `emit` inside its `except`: re-raises that error

    def _open(self) -> Any:
        """The file, after a newline if it ends inside a row: a block cut short by a failed
        write stays one unreadable line (counted by the reader), not the start of the next."""
        stream = super()._open()
        if stream.tell() > 0:
            with open(self.baseFilename, "rb") as written:
                written.seek(-1, os.SEEK_END)
                if written.read(1) != b"\n":
                    stream.write("\n")
        return stream


class JsonLinesMonitor(DefaultMonitor):
    """BentoML's default file monitor, same folders, files, daily rotation and row format
    (the logged columns plus `timestamp`, `request_id`, `trace_id`), but a scored block is
    rendered with orjson and written in one call: the default formats each row through a
    JSON log formatter and flushes it on its own, which costs more than scoring the row."""

    def _init_logger(self) -> None:
        if self.log_config_file is None:
            with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as config:
                config.write(json_lines_logging_yaml(HANDLER_CLASS))
            self.log_config_file = config.name
        super()._init_logger()

    def export_data(self, datas: dict[str, Any]) -> None:
        names = list(datas)
        self.write_block(names, [datas[name] for name in names])
        for queue in datas.values():
            queue.clear()

    def write_block(
        self, names: list[str], columns: list[Any], shared: dict[str, Any] | None = None
    ) -> None:
        """Rows of equal-length columns as JSON lines, in one write; `shared`: values every
        row has (the model, its role, the source), rendered once for the block.
        `PredictionLog` calls it directly once the schema is written, skipping BentoML's
        per-value `log` calls (13,000 for 1,000 records of a ten-feature model)."""
        if self.data_logger is None:
            self._init_logger()
        rows = [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]
        if not rows:
            return
        stamp = {
            self.COLUMN_TIME: datetime.datetime.now().isoformat(),
            self.COLUMN_RID: str(trace_context.request_id),
            self.COLUMN_TID: str(trace_context.trace_id),
        }
        # The end of every row: `,"model_tag":...,"trace_id":"..."}`
        tail = b"," + orjson.dumps({**(shared or {}), **stamp}, default=str)[1:-1] + b"}"
        # The block in one orjson call (far cheaper than a call per row), cut into lines
        # where one row ends and the next begins. Values are scalars, so an unescaped `"`
        # after `},{` can only open the next row: inside a string it would be `\"`.
        block = orjson.dumps(rows, default=str, option=orjson.OPT_SERIALIZE_NUMPY)
        lines = block[1:-2].replace(b'},{"', tail + b'\n{"') + tail
        try:
            self.data_logger.info(lines.decode())
        except OSError as err:
            raise PredictionLogWriteError(
                err.errno, f"prediction log {self.name}: {len(rows)} row(s) not written"
            ) from err


class PredictionLogError(UserError, ValueError):
    """A log folder or file that cannot be read as riskbento prediction logs."""


def monitor_name(use_case: str) -> str:
    return f"{MONITOR_PREFIX}{use_case}"


def _monitor_type(feature_type: FeatureType) -> str:
    if feature_type in ORDERED:
        return NUMERICAL
    return CATEGORICAL


def logged_name(name: str) -> str:
    return name + "_" if name in _RESERVED else name


class PredictionLog:
    """Logs scored records of one use case through `bentoml.monitor`.

    `log_path=None` takes the monitoring config of the running BentoML service (or
    BentoML's default, `./monitoring`); a path forces the file exporter there, for
    commands that run outside a server. BentoML caches one monitor per name and
    process, so the first `PredictionLog` of a use case in a process fixes its path.
    `sample_rate` below 1 logs that share of the records, drawn at random (logging a
    record costs a third to a half of scoring it in a large batch).
    """

    def __init__(
        self,
        spec: Spec,
        model_tag: str,
        log_path: Path | str | None = None,
        sample_rate: float = 1.0,
    ) -> None:
        if not 0.0 < sample_rate <= 1.0:
            raise ValueError(f"sample_rate: expected a share in (0, 1], got {sample_rate!r}")
        self.sample_rate = sample_rate
        self._draw = random.Random(0).random  # which records a sample keeps; not security
        self.name = monitor_name(spec.name)
        self.model_tag = model_tag
        self.id_column = spec.id_column
        self._id_name = logged_name(spec.id_column)
        self.features = [
            (f.name, logged_name(f.name), _monitor_type(f.type)) for f in spec.features
        ]
        self.options: dict[str, Any] = {}
        if log_path is not None:
            self.options = {
                "monitor_class": MONITOR_CLASS,
                "monitor_options": {"log_path": str(log_path)},
            }
        self._monitor: MonitorBase | None = None
        clash = sorted(set(ANSWER_COLUMNS) & {spec.id_column, *spec.feature_names})
        if clash:
            raise ValueError(
                f"spec {spec.name!r}: id or feature names {clash} clash with the logged answer "
                f"columns {list(ANSWER_COLUMNS)}; rename them in the spec"
            )
        _warn_if_shared(self.name, None if log_path is None else str(log_path))

    def log(
        self,
        records: list[dict[str, Any]],
        answers: list[dict[str, Any]],
        model_tag: str | None = None,
        role: str = CHAMPION,
        source: str = PRODUCTION,
    ) -> None:
        """One log row per record; `answers` are the scorer's answers in the same order,
        given by `model_tag` (default: this log's model) in `role`, asked for by `source`."""
        if len(records) != len(answers):
            raise ValueError(
                f"expected one answer per record, got {len(answers)} for {len(records)}"
            )
        if self.sample_rate < 1.0:
            keep = [i for i in range(len(records)) if self._draw() < self.sample_rate]
            records, answers = [records[i] for i in keep], [answers[i] for i in keep]
        if not records:
            return
        shared = self._shared(model_tag, role, source)
        if self._monitor is None:
            # The first block goes through `bentoml.monitor()`, which creates the monitor and
            # writes the schema from this block's calls; one record, because BentoML warns
            # on every value after the first of a column while it collects the schema.
            with bentoml.monitor(self.name, **self.options) as monitor:
                first = self._columns(records[:1], answers[:1], shared)
                _log_columns(monitor, first)
            self._monitor = monitor
            records, answers = records[1:], answers[1:]
            if not records:
                return
        # Every column is built before the record opens: an exception inside it would
        # leave BentoML's per-context record open and fail every later log call.
        if isinstance(self._monitor, JsonLinesMonitor):
            columns = self._columns(records, answers)
            values = {name: value for name, _, _, value in shared}
            self._monitor.write_block([c[0] for c in columns], [c[3] for c in columns], values)
            return
        columns = self._columns(records, answers, shared)
        # What `bentoml.monitor()` does per block, minus its dependency injection and
        # context manager: half the cost of logging a single record.
        self._monitor.start_record()
        _log_columns(self._monitor, columns)
        self._monitor.stop_record()

    def _columns(
        self,
        records: list[dict[str, Any]],
        answers: list[dict[str, Any]],
        shared: list[tuple[str, str, str, str]] | None = None,
    ) -> _Columns:
        """The logged columns, one value per record, and the `shared` ones repeated."""
        columns: _Columns = [
            (self._id_name, FEATURE, CATEGORICAL, [r[self.id_column] for r in records])
        ]
        columns += [
            (logged, FEATURE, kind, [r.get(name) for r in records])
            for name, logged, kind in self.features
        ]
        columns += [
            ("probability", PREDICTION, NUMERICAL, [a["probability"] for a in answers]),
            ("prediction", PREDICTION, CATEGORICAL, [a["prediction"] for a in answers]),
            ("risk_tier", PREDICTION, CATEGORICAL, [a["risk_tier"] for a in answers]),
        ]
        n = len(records)
        return columns + [(c, r, k, [value] * n) for c, r, k, value in shared or []]

    def _shared(
        self, model_tag: str | None, role: str, source: str
    ) -> list[tuple[str, str, str, str]]:
        """The columns every row of a block shares: who answered, as what, asked by whom."""
        return [
            (MODEL_COLUMN, PREDICTION, CATEGORICAL, model_tag or self.model_tag),
            (ROLE_COLUMN, PREDICTION, CATEGORICAL, role),
            (SOURCE_COLUMN, PREDICTION, CATEGORICAL, source),
        ]


_Columns = list[tuple[str, str, str, list[Any]]]


def _warn_if_shared(name: str, path: str | None) -> None:
    """BentoML keeps the first path a monitor name was opened with, and all its file
    monitors in a process write through one logger (the last one opened wins): a server
    runs one use case per process, but a test or script that logs two gets mixed files."""
    others = {n: p for n, p in _OPENED.items() if n != name or p != path}
    if others:
        logger.warning(
            "prediction log %s (%s) opened in a process that already logs %s: BentoML writes "
            "every monitor of a process to the last one's file",
            name,
            path or "service config",
            others,
        )
    _OPENED[name] = path


def _log_columns(monitor: MonitorBase, columns: _Columns) -> None:
    for name, role, kind, values in columns:
        for value in values:
            monitor.log(value, name, role, kind)


# ---------------------------------------------------------------- reading


def log_files(path: Path | str, use_case: str | None = None) -> list[Path]:
    """The data files under a log location: a file, a monitor's folder or its `data/`
    folder, or the log root holding `riskbento_<use case>/` (pass `use_case` if it
    holds several monitors)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"prediction log {path} does not exist")
    if path.is_file():
        return [path]
    for folder in (path, path / DATA_FOLDER):
        files = sorted(p for p in folder.glob(DATA_GLOB) if p.is_file())
        if files:
            return files
    monitors = sorted(p.parent.parent for p in path.glob(f"*/{DATA_FOLDER}/{DATA_GLOB}"))
    monitors = sorted(set(monitors))
    if use_case is not None:
        wanted = path / monitor_name(use_case)
        if wanted in monitors:
            return log_files(wanted)
    if len(monitors) == 1 and use_case is None:
        return log_files(monitors[0])
    found = ", ".join(p.name for p in monitors) or "none"
    want = f" for {monitor_name(use_case)}" if use_case else ""
    raise PredictionLogError(
        f"no prediction log files{want} under {path}: expected {DATA_GLOB} files in it, "
        f"in its {DATA_FOLDER}/ folder or in <monitor>/{DATA_FOLDER}/ (monitors found: {found})"
    )


def production_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows production traffic asked for (a row without a source is one)."""
    if SOURCE_COLUMN not in frame.columns:
        return frame
    source = frame[SOURCE_COLUMN]
    return frame[source.isna() | (source == PRODUCTION)].reset_index(drop=True)


def read_rows(files: list[Path]) -> tuple[list[dict[str, Any]], int]:
    """Every JSON-object line of the files, oldest file first, and how many lines were not
    one (a line cut short when a server was killed, or not UTF-8)."""
    rows: list[dict[str, Any]] = []
    skipped = 0
    for file in files:
        with file.open("rb") as lines:
            for line in lines:
                if not line.strip():
                    continue
                try:
                    row = orjson.loads(line)
                except orjson.JSONDecodeError:
                    skipped += 1
                    continue
                if isinstance(row, dict):
                    rows.append(row)
                else:
                    skipped += 1
    return rows, skipped


def read_prediction_log(path: Path | str, use_case: str | None = None) -> pd.DataFrame:
    """Logged predictions as a table, one row per scored record, oldest file first.

    Lines that are not JSON objects (a line cut short when a server was killed) are
    skipped and counted in `frame.attrs["skipped_lines"]`; `frame.attrs["files"]`
    lists the files read."""
    files = log_files(path, use_case)
    rows, skipped = read_rows(files)
    if not rows:
        shown = ", ".join(str(f) for f in files)
        raise PredictionLogError(
            f"no logged predictions in {shown} ({skipped} unreadable line(s)): expected JSON "
            "lines written by riskbento's PredictionLog"
        )
    frame = pd.DataFrame.from_records(rows)
    frame.attrs["files"] = [str(f) for f in files]
    frame.attrs["skipped_lines"] = skipped
    return frame
