"""Ships the prediction log out of the pod, to an OpenTelemetry Collector (OTLP/HTTP JSON).

Each server worker appends one JSON line per answered record to its data file, and the
line is written before the answer leaves (`serving/predlog.py`). `ship()` follows those
files the way Fluent Bit's tail input does with its offset database: it reads complete
lines from a byte offset, POSTs them in batches to `<endpoint>/v1/logs` as OTLP log
records (body: the line, unchanged) and records the new offset once the receiver answers.
It runs beside the server (a sidecar) rather than inside it: an in-process exporter holds
its batch in the worker's memory, which a SIGKILLed worker takes with it.

The guarantee: **at least once, in file order, up to the receiver's 2xx.** A file's
offset is written to the checkpoint (a JSON file, replaced atomically) only after the
receiver answered 2xx for the lines before it, so a shipper killed at any point, SIGKILL
included, resumes from the checkpoint: only the batch in flight can arrive twice, and its
lines then carry the same `log.record.uid` (file id + byte offset) as their first copy,
so de-duplicating on it gives exactly the log. Nothing is dropped on the way: a receiver
that is down, throttles (429) or fails (5xx) is retried with capped backoff; a refusal
(another 4xx) is logged with the receiver's answer and the batch is held and retried at
the backoff cap; a 413 halves the batch. A line without its newline is still being
written and waits. Lines are lost only when their file goes (a pod's `emptyDir`, a file
deleted) before they were shipped.

A file is known by the hash of its first line, not by its name: the daily rotation's
rename (`data.<worker>.log` to `data.<worker>.log.YYYY-MM-DD`) keeps the id and the
offset, so the renamed file is finished and the new `data.<worker>.log` is a new id
shipped from its start. A file shorter than its checkpoint was truncated: it is shipped
again from its start (counted and logged; the resent lines keep their uids).
"""

from __future__ import annotations

import base64
import enum
import hashlib
import http.client
import json
import os
import random
import re
import signal
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from core.errors import UserError
from core.logs import get_logger
from serving.predlog import (
    DATA_FOLDER,
    MONITOR_PREFIX,
    PredictionLogError,
    log_files,
)

log = get_logger("ship-log")

OTLP_LOGS_PATH = "/v1/logs"  # OTLP/HTTP's path for logs, appended to a base endpoint
JSON = "application/json"
SERVICE_NAME = "riskbento"
SCOPE_NAME = "riskbento.logship"
STATE_FILE = "logship-state.json"  # the default checkpoint, inside the log folder
STATE_VERSION = 1

# Log record attributes: OpenTelemetry semantic conventions where one exists.
RECORD_UID = "log.record.uid"  # "<file id>:<offset>": what a receiver de-duplicates on
FILE_NAME = "log.file.name"  # the file's name when the line was read
FILE_ID = "riskbento.log.file_id"
OFFSET = "riskbento.log.offset"  # byte offset of the line in its file
USE_CASE = "riskbento.use_case"
POD_NAME = "k8s.pod.name"  # resource attribute, from HOSTNAME (a pod's name)

# OTLP/HTTP's throttling answers, whose Retry-After is honoured. They and every 5xx are
# retried with backoff; another 4xx is a refusal, held and retried at the backoff cap.
THROTTLED = frozenset({429, 503})
TOO_LARGE = 413
HEAD_LIMIT = 64 * 1024  # a first line longer than this is identified by its first 64 KiB
MAX_BATCH_BYTES = 4 * 1024 * 1024  # well under OTLP/HTTP's recommended 20 MiB body limit

# TimedRotatingFileHandler(when="D") renames data.<worker>.log to data.<worker>.log.<date>.
_ROTATED = re.compile(r"^(?P<live>.+\.log)\.(?P<date>\d{4}-\d{2}-\d{2})$")


class LogShipError(UserError, ValueError):
    """A log folder, endpoint or setting the shipper cannot work with."""


@dataclass
class FileState:
    """One file in the checkpoint: lines before `offset` have been answered 2xx."""

    name: str
    dev: int
    ino: int
    offset: int
    size: int  # the file's size when last seen


@dataclass
class Counts:
    lines: int = 0
    batches: int = 0
    retries: int = 0
    truncations: int = 0
    rejected: int = 0  # log records a receiver's partial success said it dropped
    deleted: int = 0  # rotated files removed once shipped (delete_shipped)
    per_file: dict[str, int] = field(default_factory=dict)  # file name -> lines shipped

    def summary(self) -> str:
        files = ", ".join(f"{name} {n:,}" for name, n in sorted(self.per_file.items()))
        return (
            f"{self.lines:,} lines in {self.batches:,} batches, {self.retries:,} retries, "
            f"{self.truncations} truncated, {self.deleted} deleted ({files or 'no file'})"
        )


@dataclass(frozen=True)
class Line:
    offset: int
    data: bytes  # without its newline


class Outcome(enum.Enum):
    SENT = "sent"  # answered 2xx: the offset may move past the batch
    SMALLER = "smaller"  # 413: read the batch again, in smaller pieces
    STOPPED = "stopped"  # a stop arrived or the retries ran out: nothing is checkpointed


@dataclass(frozen=True)
class Answer:
    status: int | None  # None: no answer (refused, reset, timed out)
    text: str
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


# ---------------------------------------------------------------- settings checked once


def logs_url(endpoint: str) -> str:
    """The OTLP/HTTP logs URL of a receiver: a base (`http://collector:4318`) gets
    `/v1/logs` appended; a URL already ending in it is taken as it is."""
    try:
        parts = urllib.parse.urlsplit(endpoint)
        parts.port  # noqa: B018 -- raises ValueError on a port that is not a number
    except ValueError as err:
        raise LogShipError(f"--endpoint: {err}, got {endpoint!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise LogShipError(
            "--endpoint: expected the http(s)://host[:port] of an OTLP/HTTP receiver "
            f"(an OpenTelemetry Collector listens on :4318), got {endpoint!r}"
        )
    path = parts.path.rstrip("/")
    if not path.endswith(OTLP_LOGS_PATH):
        path += OTLP_LOGS_PATH
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def check_log_dir(path: Path) -> Path:
    if not path.exists():
        raise LogShipError(f"prediction log folder {path} does not exist")
    if not path.is_dir():
        raise LogShipError(f"--log: expected the prediction log folder, got the file {path}")
    return path


# ---------------------------------------------------------------- the checkpoint


def load_state(path: Path) -> dict[str, FileState]:
    """File id -> state. A checkpoint that cannot be read is started over (with a
    warning): everything is sent again under the same uids, which is safe."""
    if not path.exists():
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw.get("version") != STATE_VERSION:
            raise ValueError(f"version {raw.get('version')!r}, expected {STATE_VERSION}")
        return {fid: FileState(**entry) for fid, entry in raw["files"].items()}
    except (ValueError, TypeError, KeyError, AttributeError) as err:
        log.warning(f"checkpoint {path} unreadable ({err}): shipping every file from its start")
        return {}


def save_state(path: Path, files: dict[str, FileState]) -> None:
    """Write the checkpoint whole or not at all: a temporary file, synced, renamed."""
    body = {"version": STATE_VERSION, "files": {fid: asdict(s) for fid, s in files.items()}}
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as out:
        json.dump(body, out, indent=1, sort_keys=True)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


# ---------------------------------------------------------------- files and lines


def is_rotated(path: Path) -> bool:
    return _ROTATED.match(path.name) is not None


def _file_order(path: Path) -> tuple[str, int, str]:
    """A worker's rotated files (oldest first), then its live file."""
    rotated = _ROTATED.match(path.name)
    if rotated:
        return rotated["live"], 0, rotated["date"]
    return path.name, 1, ""


def data_files(log_dir: Path, use_case: str | None) -> list[Path]:
    """The data files to follow, in shipping order; none while the server has not
    written its first line."""
    if use_case is None:
        monitors = sorted({p.parent.parent.name for p in log_dir.glob(f"*/{DATA_FOLDER}/*")})
        monitors = [m for m in monitors if m.startswith(MONITOR_PREFIX)]
        if len(monitors) > 1:
            raise LogShipError(
                f"{log_dir} holds the logs of several use cases ({', '.join(monitors)}): "
                "pick one with --use-case"
            )
    try:
        files = log_files(log_dir, use_case)
    except PredictionLogError:
        return []
    return sorted(files, key=_file_order)


def use_case_of(path: Path) -> str:
    """The use case a data file belongs to, from its monitor folder `riskbento_<name>`."""
    monitor = path.parent.parent.name if path.parent.name == DATA_FOLDER else ""
    return monitor.removeprefix(MONITOR_PREFIX) if monitor.startswith(MONITOR_PREFIX) else ""


def file_id(handle: BinaryIO) -> str | None:
    """The hash of the file's first line: the same through renames, new after a
    truncation. None while the first line is not complete."""
    handle.seek(0)
    head = handle.readline(HEAD_LIMIT)
    if not head.endswith(b"\n") and len(head) < HEAD_LIMIT:
        return None
    return hashlib.sha256(head).hexdigest()[:16]


def read_lines(
    handle: BinaryIO, offset: int, limit: int, max_lines: int, max_bytes: int = MAX_BATCH_BYTES
) -> tuple[list[Line], int]:
    """Complete lines from `offset`, stopping before `limit` (the size the pass started
    from), `max_lines` or `max_bytes`; returns them (blank lines left out) and the offset
    after the last complete line read. A line without its newline is not read."""
    handle.seek(offset)
    lines: list[Line] = []
    end = offset
    while end < limit and len(lines) < max_lines and end - offset < max_bytes:
        raw = handle.readline()
        if not raw.endswith(b"\n"):
            break
        if raw.strip():
            lines.append(Line(end, raw[:-1]))
        end += len(raw)
    return lines, end


# ---------------------------------------------------------------- OTLP/HTTP JSON


def _attribute(key: str, value: str | int) -> dict[str, Any]:
    # OTLP JSON follows protobuf's JSON mapping: 64-bit integers are decimal strings.
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    return {"key": key, "value": {"stringValue": value}}


def _body(data: bytes) -> dict[str, str]:
    try:
        return {"stringValue": data.decode("utf-8")}
    except UnicodeDecodeError:
        return {"bytesValue": base64.b64encode(data).decode("ascii")}


def resource_attributes() -> list[dict[str, Any]]:
    pod = os.environ.get("HOSTNAME")
    where = _attribute(POD_NAME, pod) if pod else _attribute("host.name", socket.gethostname())
    return [_attribute("service.name", SERVICE_NAME), where]


def otlp_logs(
    lines: list[Line], name: str, fid: str, use_case: str, resource: list[dict[str, Any]]
) -> bytes:
    """An ExportLogsServiceRequest in OTLP's JSON encoding: one log record per line."""
    observed = str(time.time_ns())
    records = [
        {
            "observedTimeUnixNano": observed,
            "body": _body(line.data),
            "attributes": [
                _attribute(RECORD_UID, f"{fid}:{line.offset}"),
                _attribute(FILE_NAME, name),
                _attribute(FILE_ID, fid),
                _attribute(OFFSET, line.offset),
                _attribute(USE_CASE, use_case),
            ],
        }
        for line in lines
    ]
    payload = {
        "resourceLogs": [
            {
                "resource": {"attributes": resource},
                "scopeLogs": [{"scope": {"name": SCOPE_NAME}, "logRecords": records}],
            }
        ]
    }
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def post(url: str, body: bytes, timeout: float) -> Answer:
    """One POST; every outcome is an Answer, never an exception."""
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": JSON, "Accept": JSON}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Answer(response.status, response.read(4096).decode("utf-8", "replace"))
    except urllib.error.HTTPError as err:
        text = err.read(1024).decode("utf-8", "replace")
        return Answer(err.code, text, _retry_after(err.headers.get("Retry-After")))
    except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
        return Answer(None, str(getattr(err, "reason", err)))


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP date: fall back to the backoff


def rejected_records(answer: Answer) -> tuple[int, str]:
    """A 2xx's partial success: log records the receiver dropped, and why."""
    try:
        partial = json.loads(answer.text or "{}").get("partialSuccess") or {}
        return int(partial.get("rejectedLogRecords") or 0), str(partial.get("errorMessage", ""))
    except (ValueError, AttributeError):
        return 0, ""


# ---------------------------------------------------------------- the shipper


@dataclass
class Options:
    batch_lines: int = 500
    interval_s: float = 1.0
    timeout_s: float = 10.0
    backoff_s: float = 0.5  # first retry delay, doubled each time
    max_backoff_s: float = 30.0
    drain_timeout_s: float = 10.0  # --once: give up a batch after this; SIGTERM: last pass
    delete_shipped: bool = False
    report_every_s: float = 60.0


class Shipper:
    """Follows the data files under one log folder; `run()` ships and checkpoints."""

    def __init__(
        self,
        log_dir: Path,
        url: str,
        state_file: Path,
        use_case: str | None,
        options: Options,
        stop: threading.Event,
    ) -> None:
        self.log_dir, self.url, self.state_file = log_dir, url, state_file
        self.use_case, self.options, self.stop = use_case, options, stop
        self.batch_lines = options.batch_lines
        self.files = load_state(state_file)
        self.counts = Counts()
        self.resource = resource_attributes()
        self._give_up_at: float | None = None  # set for the last pass after a stop
        self._once = False

    def run(self, follow: bool) -> bool:
        """Ship until stopped (follow) or once; True when every complete line that was
        there when the last pass started has been answered 2xx."""
        self._once = not follow
        if not follow:
            return self.ship_pass()
        reported, shown = time.monotonic(), self.counts.summary()
        while not self.stop.is_set():
            self.ship_pass()
            if time.monotonic() - reported >= self.options.report_every_s:
                if self.counts.summary() != shown:
                    log.info(self.counts.summary())
                reported, shown = time.monotonic(), self.counts.summary()
            self.stop.wait(self.options.interval_s)
        # Stopped (SIGTERM): the server has exited, so what it wrote while draining is
        # in the files now. One last pass, within the drain timeout.
        self._give_up_at = time.monotonic() + self.options.drain_timeout_s
        return self.ship_pass()

    def ship_pass(self) -> bool:
        """Every data file once, up to the size it had when opened."""
        complete, seen, listed, missed = True, set(), set(), False
        for path in data_files(self.log_dir, self.use_case):
            try:
                handle = path.open("rb")
            except FileNotFoundError:  # renamed or removed since listed
                missed = True
                continue
            with handle:
                stat = os.fstat(handle.fileno())
                listed.add((stat.st_dev, stat.st_ino))
                fid = file_id(handle)
                if fid is None:
                    self._check_emptied(path, stat)
                    continue
                seen.add(fid)
                if not self._ship_file(path, handle, fid, stat):
                    complete = False
                    break
        if complete and not missed:
            self._forget_gone(seen, listed)
        return complete

    def _ship_file(self, path: Path, handle: BinaryIO, fid: str, stat: os.stat_result) -> bool:
        state = self._resume(path, fid, stat)
        use_case = self.use_case or use_case_of(path)
        while True:
            lines, end = read_lines(handle, state.offset, stat.st_size, self.batch_lines)
            if end == state.offset:
                break
            outcome = self._send(lines, path.name, fid, use_case) if lines else Outcome.SENT
            if outcome is Outcome.STOPPED:
                return False
            if outcome is Outcome.SMALLER:
                continue
            state.offset = end
            save_state(self.state_file, self.files)
        if self.options.delete_shipped and is_rotated(path) and state.offset == stat.st_size:
            path.unlink(missing_ok=True)
            del self.files[fid]
            save_state(self.state_file, self.files)
            self.counts.deleted += 1
            log.info(f"{path.name}: every line shipped; deleted")
        return True

    def _resume(self, path: Path, fid: str, stat: os.stat_result) -> FileState:
        """The file's checkpoint: new files start at 0, so do truncated ones."""
        state = self.files.get(fid)
        if state is None:
            earlier = self._same_inode(stat, other_than=fid)
            if earlier is not None:  # emptied in place, then written again
                self._truncated(path, self.files.pop(earlier).offset, stat.st_size)
            state = self.files[fid] = FileState(path.name, stat.st_dev, stat.st_ino, 0, 0)
            log.info(f"{path.name}: new file {fid}, shipping from its start")
        elif stat.st_size < state.offset:
            self._truncated(path, state.offset, stat.st_size)
            state.offset = 0
        state.name, state.dev, state.ino, state.size = (
            path.name, stat.st_dev, stat.st_ino, stat.st_size,
        )  # fmt: skip
        return state

    def _same_inode(self, stat: os.stat_result, other_than: str) -> str | None:
        for fid, state in self.files.items():
            if fid != other_than and (state.dev, state.ino) == (stat.st_dev, stat.st_ino):
                return fid
        return None

    def _check_emptied(self, path: Path, stat: os.stat_result) -> None:
        earlier = self._same_inode(stat, other_than="")
        if earlier is not None and stat.st_size < self.files[earlier].offset:
            self._truncated(path, self.files.pop(earlier).offset, stat.st_size)
            save_state(self.state_file, self.files)

    def _truncated(self, path: Path, offset: int, size: int) -> None:
        self.counts.truncations += 1
        log.warning(
            f"{path.name}: truncated ({size:,} bytes, checkpoint at {offset:,}): "
            "shipping it again from its start"
        )

    def _forget_gone(self, seen: set[str], listed: set[tuple[int, int]]) -> None:
        gone = [
            fid for fid, s in self.files.items() if fid not in seen and (s.dev, s.ino) not in listed
        ]
        for fid in gone:
            state = self.files.pop(fid)
            if state.offset < state.size:
                log.warning(
                    f"{state.name}: removed with {state.size - state.offset:,} bytes not shipped"
                )
        if gone:
            save_state(self.state_file, self.files)

    # ------------------------------------------------------------ sending

    def _send(self, lines: list[Line], name: str, fid: str, use_case: str) -> Outcome:
        """POST the lines until a 2xx. Nothing is checkpointed unless SENT."""
        body = otlp_logs(lines, name, fid, use_case, self.resource)
        delay = self.options.backoff_s
        give_up_at = self._give_up_at
        if self._once:
            give_up_at = time.monotonic() + self.options.drain_timeout_s
        while True:
            answer = post(self.url, body, self._timeout(give_up_at))
            if answer.ok:
                self._shipped(lines, name, answer)
                return Outcome.SENT
            if answer.status == TOO_LARGE and len(lines) > 1:
                self.batch_lines = max(1, len(lines) // 2)
                log.warning(f"{name}: 413 for {len(lines)} lines; now {self.batch_lines} a batch")
                return Outcome.SMALLER
            self.counts.retries += 1
            wait = self._wait_for(answer, delay)
            self._report_failure(answer, name, lines, wait)
            if give_up_at is not None and time.monotonic() + wait > give_up_at:
                log.warning(f"{name}: giving up for now at offset {lines[0].offset:,}")
                return Outcome.STOPPED
            if self._sleep(wait):
                return Outcome.STOPPED
            delay = min(delay * 2, self.options.max_backoff_s)

    def _shipped(self, lines: list[Line], name: str, answer: Answer) -> None:
        self.counts.lines += len(lines)
        self.counts.batches += 1
        self.counts.per_file[name] = self.counts.per_file.get(name, 0) + len(lines)
        rejected, why = rejected_records(answer)
        if rejected:
            self.counts.rejected += rejected
            log.warning(f"{name}: the receiver accepted the batch but dropped {rejected}: {why}")

    def _wait_for(self, answer: Answer, delay: float) -> float:
        cap = self.options.max_backoff_s
        if answer.retry_after is not None and answer.status in THROTTLED:
            return min(answer.retry_after, cap)
        refused = answer.status is not None and 400 <= answer.status < 500
        if refused and answer.status not in THROTTLED:
            return cap  # a refusal will not go away by itself: hold the batch, slowly
        return delay * random.uniform(0.8, 1.2)  # jitter: pods do not retry in step

    def _report_failure(self, answer: Answer, name: str, lines: list[Line], wait: float) -> None:
        where = f"{name}: {len(lines)} lines from offset {lines[0].offset:,}"
        if answer.status is None:
            log.warning(f"{where}: no answer from {self.url} ({answer.text}); retry in {wait:.1f}s")
        elif 400 <= answer.status < 500 and answer.status not in THROTTLED:
            log.error(
                f"{where}: refused with {answer.status} {answer.text.strip()[:500]!r}; "
                f"batch held, retry in {wait:.1f}s"
            )
        else:
            log.warning(f"{where}: answer {answer.status}; retry in {wait:.1f}s")

    def _timeout(self, give_up_at: float | None) -> float:
        if give_up_at is None:
            return self.options.timeout_s
        return max(0.1, min(self.options.timeout_s, give_up_at - time.monotonic()))

    def _sleep(self, seconds: float) -> bool:
        """Wait before a retry; True when a stop arrived meanwhile (following only: the
        last pass and --once wait their time out)."""
        if self._once or self._give_up_at is not None:
            time.sleep(seconds)
            return False
        return self.stop.wait(seconds)


# ---------------------------------------------------------------- entry point


def ship(
    log_dir: Path | str,
    endpoint: str,
    state_file: Path | str | None = None,
    *,
    follow: bool = False,
    use_case: str | None = None,
    options: Options | None = None,
    stop: threading.Event | None = None,
) -> tuple[bool, Counts]:
    """Ship the prediction log under `log_dir` to the OTLP/HTTP receiver at `endpoint`.

    Once (default): what is there now, then return. Following: every
    `options.interval_s` until `stop` is set (or, without `stop`, until SIGTERM or
    SIGINT), then one last pass. Returns (every line there shipped, counts)."""
    log_dir = check_log_dir(Path(log_dir))
    url = logs_url(endpoint)
    options = options or Options()
    if options.batch_lines < 1:
        raise LogShipError(f"--batch-lines: expected 1 or more, got {options.batch_lines}")
    state = Path(state_file) if state_file is not None else log_dir / STATE_FILE
    own_stop = stop is None
    stop = stop or threading.Event()
    shipper = Shipper(log_dir, url, state, use_case, options, stop)
    log.info(f"{'following' if follow else 'shipping'} {log_dir} to {url} (checkpoint {state})")
    restore = _on_signals(stop.set) if follow and own_stop else None
    try:
        done = shipper.run(follow)
    finally:
        if restore is not None:
            restore()
    log.info(("done: " if done else "lines left to ship: ") + shipper.counts.summary())
    return done, shipper.counts


def _on_signals(handler: Callable[[], None]) -> Callable[[], None] | None:
    """SIGTERM and SIGINT call `handler`; returns what puts the old handlers back."""
    if threading.current_thread() is not threading.main_thread():
        return None
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    for sig in previous:
        signal.signal(sig, lambda *_: handler())

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore
