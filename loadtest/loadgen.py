"""A light closed-loop HTTP/1.1 load generator: asyncio protocols over raw keep-alive sockets.

`--concurrency` connections each send one POST, wait for the whole answer, check it,
and send the next, for `--warmup` + `--duration` seconds; only the answers that
arrive inside the measured window count. No HTTP library sits on the hot path: a
request is a pre-built byte string and an answer is read by its Content-Length (or
its chunks), so one process drives thousands of requests a second on a fraction of
a core. The generator measures its own CPU over the window (`getrusage`), so a
report can show it was not the bottleneck.

    python -m loadtest.loadgen --url http://127.0.0.1:3000/predict \\
        --bodies bodies.jsonl --concurrency 32 --duration 10

`--bodies` is a JSON-lines file: each line `{"body": <the JSON to send>, "rows": n}`;
the bodies are sent in turn. An answer counts as an error unless it is a 200 whose
body holds `--key` exactly `rows` times (one answer per record sent), so a server
that drops records or answers 503 under load cannot look fast. Prints
`MEASURE_START` and `MEASURE_END` lines as the window opens and closes (a caller
can sample server CPU on them), then one JSON line with the results.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import resource
import sys
import time
from array import array
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

DEFAULT_KEY = '"probability"'
RECONNECT_PAUSE_S = 0.05
BALANCE_ROUNDS = 40
ERROR_SAMPLES = 3


def nearest_rank(sorted_values: list[float], share: float) -> float | None:
    """The value `share` of the samples are at or below (nearest-rank percentile)."""
    if not sorted_values:
        return None
    return sorted_values[max(0, math.ceil(share * len(sorted_values)) - 1)]


def build_requests(url: str, bodies: list[bytes]) -> tuple[str, int, list[bytes]]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: riskbento-loadgen\r\n"
        "Content-Type: application/json\r\nAccept: application/json\r\n"
    )
    requests = [(head + f"Content-Length: {len(b)}\r\n\r\n").encode("latin-1") + b for b in bodies]
    return host, port, requests


class Run:
    """Shared state of one load run: the window, the counters, the samples."""

    def __init__(
        self, requests: list[bytes], rows: list[int], key: bytes, timeout_s: float
    ) -> None:
        self.requests = requests
        self.rows = rows
        self.key = key
        self.timeout_s = timeout_s
        self.next_body = 0
        self.window_start = math.inf
        self.window_end = math.inf
        self.stopping = False
        self.latencies = array("d")  # seconds, answers finished inside the window
        self.ok = 0
        self.rows_ok = 0
        self.errors: Counter[str] = Counter()
        self.error_samples: list[str] = []
        self.statuses: Counter[int] = Counter()
        self.bytes_in = 0
        self.idle = asyncio.Event()
        self.in_flight = 0

    def take(self) -> int:
        i = self.next_body
        self.next_body = (i + 1) % len(self.requests)
        return i

    def in_window(self, t: float) -> bool:
        return self.window_start <= t < self.window_end

    def error(self, kind: str, detail: str, t: float) -> None:
        if self.in_window(t):
            self.errors[kind] += 1
            if len(self.error_samples) < ERROR_SAMPLES:
                self.error_samples.append(f"{kind}: {detail[:300]}")


class Connection(asyncio.Protocol):
    """One keep-alive connection that sends a request as soon as the last one is answered."""

    def __init__(self, run: Run, connected: asyncio.Future) -> None:
        self.run = run
        self.connected = connected
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.sent_at = 0.0
        self.body = -1
        self.head_end = -1
        self.status = 0
        self.length = -1  # -1: chunked
        self.closed = False
        self.local_port = 0

    # ---- asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.local_port = transport.get_extra_info("sockname")[1]
        if not self.connected.done():
            self.connected.set_result(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.body >= 0:
            self.run.in_flight -= 1
            self.run.error("disconnected", repr(exc), time.perf_counter())
            self.body = -1
            self._maybe_idle()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.body >= 0 and self._parse():
            pass

    # ---- requests

    def send(self) -> None:
        if self.closed or self.run.stopping:
            return
        self.body = self.run.take()
        self.head_end = -1
        self.run.in_flight += 1
        self.sent_at = time.perf_counter()
        assert self.transport is not None
        self.transport.write(self.run.requests[self.body])

    def _parse(self) -> bool:
        """True when an answer was completed (the buffer may hold more)."""
        buf = self.buffer
        if self.head_end < 0:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return False
            head = bytes(buf[:end]).lower()
            self.status = int(head[9:12])
            self.head_end = end + 4
            at = head.find(b"\r\ncontent-length:")
            if at >= 0:
                stop = head.find(b"\r\n", at + 2)
                self.length = int(head[at + 17 : stop if stop > 0 else len(head)])
            elif b"transfer-encoding: chunked" in head:
                self.length = -1
            else:
                self.length = 0
        if self.length >= 0:
            stop = self.head_end + self.length
            if len(buf) < stop:
                return False
            body = bytes(buf[self.head_end : stop])
        else:
            if not buf.endswith(b"0\r\n\r\n"):
                return False
            body, stop = self._dechunk(bytes(buf[self.head_end :]))
            if body is None:
                return False
            stop += self.head_end
        del buf[:stop]
        self._finish(body)
        return True

    @staticmethod
    def _dechunk(raw: bytes) -> tuple[bytes | None, int]:
        out, at = [], 0
        while True:
            line_end = raw.find(b"\r\n", at)
            if line_end < 0:
                return None, 0
            size = int(raw[at:line_end].split(b";")[0], 16)
            if size == 0:
                return b"".join(out), line_end + 4
            out.append(raw[line_end + 2 : line_end + 2 + size])
            at = line_end + 2 + size + 2

    def _finish(self, body: bytes) -> None:
        run, done = self.run, time.perf_counter()
        run.in_flight -= 1
        index, self.body = self.body, -1
        if run.in_window(done):
            run.statuses[self.status] += 1
            run.bytes_in += len(body)
            if self.status != 200:
                run.error(f"http_{self.status}", body.decode("utf-8", "replace"), done)
            elif body.count(run.key) != run.rows[index]:
                got = body.count(run.key)
                run.error("answers", f"expected {run.rows[index]} answers, got {got}", done)
            else:
                run.ok += 1
                run.rows_ok += run.rows[index]
                run.latencies.append(done - self.sent_at)
        if run.stopping:
            self._maybe_idle()
        else:
            self.send()

    def _maybe_idle(self) -> None:
        if self.run.stopping and self.run.in_flight <= 0:
            self.run.idle.set()

    def expire(self, now: float) -> None:
        """Give up on an answer older than the timeout: an error, and a fresh connection."""
        if self.body >= 0 and now - self.sent_at > self.run.timeout_s:
            self.run.error("timeout", f"no answer in {self.run.timeout_s}s", now)
            self.run.in_flight -= 1
            self.body = -1
            self.closed = True
            if self.transport is not None:
                self.transport.abort()


async def _connect(loop: asyncio.AbstractEventLoop, run: Run, host: str, port: int) -> Connection:
    connected: asyncio.Future = loop.create_future()
    await loop.create_connection(lambda: Connection(run, connected), host, port)
    return await connected


def _owners(connections: list[Connection], port: int) -> list[int | None]:
    """The server process that accepted each connection (same machine: from psutil)."""
    import psutil

    local = [c.local_port for c in connections]
    by_port = {
        conn.raddr.port: conn.pid
        for conn in psutil.net_connections("tcp")
        if conn.laddr and conn.laddr.port == port and conn.raddr and conn.pid
    }
    return [by_port.get(p) for p in local]


def _spread(connections: list[Connection], port: int, pids: list[int]) -> dict[str, int]:
    if not pids:
        return {}
    owners = _owners(connections, port)
    return {str(pid): owners.count(pid) for pid in pids}


async def _balance(
    loop: asyncio.AbstractEventLoop, run: Run, host: str, port: int,
    connections: list[Connection], pids: list[int],
) -> list[Connection]:  # fmt: skip
    """Reconnect until the server's worker processes hold the connections evenly.

    Workers sharing one listening socket race for each connect; a burst of connects
    often lands on one worker and leaves the other cores idle. A real server sees
    many clients come and go, which evens this out; a benchmark with a fixed set of
    keep-alive connections must do it on purpose, or it measures the race.
    """
    fair = -(-len(connections) // len(pids))  # ceil
    for _ in range(BALANCE_ROUNDS):
        await asyncio.sleep(0.02)  # let the workers accept
        owners = _owners(connections, port)
        excess = []
        for pid in pids:
            held = [i for i, owner in enumerate(owners) if owner == pid]
            excess += held[fair:]
        if not excess:
            break
        for i in excess:
            connections[i].closed = True
            assert connections[i].transport is not None
            connections[i].transport.close()
            connections[i] = await _connect(loop, run, host, port)
    return connections


async def _drive(
    host: str, port: int, run: Run, concurrency: int, warmup_s: float, duration_s: float,
    server_pids: list[int],
) -> float:  # fmt: skip
    """Run the load; returns the measured window's length in seconds."""
    loop = asyncio.get_running_loop()
    connections = [await _connect(loop, run, host, port) for _ in range(concurrency)]
    if server_pids:
        connections = await _balance(loop, run, host, port, connections, server_pids)
    run.spread = _spread(connections, port, server_pids)  # type: ignore[attr-defined]
    for connection in connections:
        connection.send()
    start = time.perf_counter()
    run.window_start = start + warmup_s
    run.window_end = run.window_start + duration_s
    marked = False
    cpu_start = cpu_end = None
    while True:
        now = time.perf_counter()
        if not marked and now >= run.window_start:
            cpu_start = _cpu()
            print("MEASURE_START", flush=True)
            marked = True
        if now >= run.window_end:
            cpu_end = _cpu()
            print("MEASURE_END", flush=True)
            break
        for i, connection in enumerate(connections):
            connection.expire(now)
            if connection.closed and not run.stopping:
                try:
                    connections[i] = await _connect(loop, run, host, port)
                    connections[i].send()
                except OSError as err:
                    run.error("connect", repr(err), now)
                    await asyncio.sleep(RECONNECT_PAUSE_S)
        wake = min(run.window_start if not marked else run.window_end, now + 0.1)
        await asyncio.sleep(max(0.0, wake - time.perf_counter()))
    run.stopping = True
    if run.in_flight > 0:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(run.idle.wait(), timeout=run.timeout_s)
    for connection in connections:
        if connection.transport is not None:
            connection.transport.close()
    run.cpu = (cpu_start, cpu_end)  # type: ignore[attr-defined]
    return duration_s


def _cpu() -> tuple[float, float, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime, time.perf_counter()


def run_load(
    url: str,
    bodies: list[bytes],
    rows: list[int],
    concurrency: int,
    duration_s: float,
    warmup_s: float = 1.0,
    timeout_s: float = 10.0,
    key: str = DEFAULT_KEY,
    server_pids: list[int] | None = None,
) -> dict[str, Any]:
    """One closed-loop run; the results as a JSON-friendly dict."""
    try:
        import uvloop

        uvloop.install()
        loop_name = "uvloop"
    except ImportError:
        loop_name = "asyncio"
    host, port, requests = build_requests(url, bodies)
    run = Run(requests, rows, key.encode(), timeout_s)
    measured = asyncio.run(
        _drive(host, port, run, concurrency, warmup_s, duration_s, server_pids or [])
    )
    (u0, s0, t0), (u1, s1, t1) = run.cpu  # type: ignore[attr-defined]
    latencies_ms = sorted(x * 1000.0 for x in run.latencies)
    errors = sum(run.errors.values())
    return {
        "url": url,
        "concurrency": concurrency,
        "duration_s": measured,
        "warmup_s": warmup_s,
        "requests": run.ok + errors,
        "ok": run.ok,
        "errors": errors,
        "error_kinds": dict(run.errors),
        "error_samples": run.error_samples,
        "statuses": {str(k): v for k, v in sorted(run.statuses.items())},
        "rps": run.ok / measured,
        "rows": run.rows_ok,
        "rows_per_s": run.rows_ok / measured,
        "mb_in_per_s": run.bytes_in / measured / 1e6,
        "p50_ms": nearest_rank(latencies_ms, 0.50),
        "p95_ms": nearest_rank(latencies_ms, 0.95),
        "p99_ms": nearest_rank(latencies_ms, 0.99),
        "max_ms": latencies_ms[-1] if latencies_ms else None,
        "connections_per_worker": run.spread,  # type: ignore[attr-defined]
        "mean_ms": sum(latencies_ms) / len(latencies_ms) if latencies_ms else None,
        "client": {
            "impl": f"loadtest.loadgen ({loop_name}, raw sockets)",
            "cpu_s": (u1 - u0) + (s1 - s0),
            "cores": ((u1 - u0) + (s1 - s0)) / (t1 - t0),
        },
    }


def read_bodies(path: Path) -> tuple[list[bytes], list[int]]:
    bodies, rows = [], []
    for line in path.read_text().splitlines():
        if line.strip():
            item = json.loads(line)
            bodies.append(json.dumps(item["body"], separators=(",", ":")).encode())
            rows.append(int(item.get("rows", 1)))
    if not bodies:
        raise SystemExit(f"{path}: no bodies")
    return bodies, rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--bodies", type=Path, required=True, help="JSON lines: {body, rows}")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds first")
    parser.add_argument("--timeout", type=float, default=10.0, help="per request, seconds")
    parser.add_argument("--key", default=DEFAULT_KEY, help="appears once per answered record")
    parser.add_argument(
        "--server-pids", default="", help="comma-separated worker pids (same machine): spread "
        "the connections evenly over them"
    )  # fmt: skip
    args = parser.parse_args(argv)
    pids = [int(x) for x in args.server_pids.split(",") if x]
    bodies, rows = read_bodies(args.bodies)
    result = run_load(
        args.url, bodies, rows, args.concurrency, args.duration, args.warmup, args.timeout,
        args.key, pids,
    )  # fmt: skip
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
