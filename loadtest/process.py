"""Starting, probing and stopping a local server for the load tests, benchmarks and
integration tests: one place for the process handling all three need."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import psutil

from core.names import PROJECT_ROOT

STARTUP_TIMEOUT_S = 180
LOG_TAIL_CHARS = 3_000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http(
    method: str, url: str, body: bytes | None = None, content_type: str = "application/json"
) -> tuple[int, bytes]:
    """(status, body) of one request; an HTTP error status is an answer, not an exception."""
    request = urllib.request.Request(url, data=body, method=method)
    if body is not None:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def bentoml_serve(port: int, service: str = "service:RiskService") -> list[str]:
    """The command that serves riskbento on 127.0.0.1:`port`."""
    return [
        sys.executable, "-m", "bentoml", "serve", service,
        "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip


class ServerProcess:
    """A server started on 127.0.0.1 in its own process group (so stopping reaches its workers)."""

    def __init__(
        self,
        name: str,
        command: list[str],
        env: dict[str, str],
        log_path: Path,
        cwd: Path = PROJECT_ROOT,
    ):
        self.name = name
        self.log_path = log_path
        self.port = int(command[command.index("--port") + 1])
        self.url = f"http://127.0.0.1:{self.port}"
        with log_path.open("w") as out:
            self.process = subprocess.Popen(
                command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    def wait_until(self, ready: Callable[[], bool], poll_s: float = 0.5) -> float:
        """Seconds until `ready()` holds; raises with the log's tail if the server dies or
        does not get there in time."""
        start = time.monotonic()
        while time.monotonic() - start < STARTUP_TIMEOUT_S:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited early:\n{self.tail()}")
            try:
                if ready():
                    return time.monotonic() - start
            except OSError:
                pass
            time.sleep(poll_s)
        raise TimeoutError(f"{self.name} not ready after {STARTUP_TIMEOUT_S}s:\n{self.tail()}")

    def wait_ready(self) -> float:
        """Until BentoML's /readyz answers 200."""
        return self.wait_until(lambda: http("GET", f"{self.url}/readyz")[0] == 200)

    def processes(self) -> list[psutil.Process]:
        try:
            root = psutil.Process(self.process.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def cpu_seconds(self) -> float:
        """User + system CPU of the server and every process under it."""
        total = 0.0
        for proc in self.processes():
            try:
                times = proc.cpu_times()
                total += times.user + times.system
            except psutil.NoSuchProcess:
                pass
        return total

    def tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-LOG_TAIL_CHARS:]

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
