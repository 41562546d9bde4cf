"""Progress lines, one way: `get_logger("train").info("...")` prints `[train] ...`.

Modules only ask for a logger; nothing is configured when a module is imported. The
command-line entry points call `setup()` once, which sends this project's loggers
(`riskbento.<tag>`) to stdout (info) and stderr (warnings and errors), one flushed line
each, `[<tag>] <message>`. Without `setup()` (a library call, a test) info lines go
nowhere and warnings reach Python's last-resort handler on stderr.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

ROOT = "riskbento"
FORMAT = "[%(tag)s] %(message)s"


class _CurrentStream(logging.StreamHandler):
    """A handler writing to sys.stdout or sys.stderr as they are when a line is logged,
    so a redirected stream (pytest's capsys, contextlib.redirect_stdout) gets the line."""

    def __init__(self, name: str) -> None:
        self._stream_name = name
        super().__init__()

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return getattr(sys, self._stream_name)

    @stream.setter
    def stream(self, _value: object) -> None:
        pass  # always the current sys.<name>


class _Tagged(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        record.tag = record.name.removeprefix(f"{ROOT}.")
        return super().format(record)


def get_logger(tag: str) -> logging.Logger:
    """The logger whose lines start `[tag]`."""
    return logging.getLogger(f"{ROOT}.{tag}")


def setup(level: int = logging.INFO) -> None:
    """Progress lines to stdout, warnings and errors to stderr (idempotent)."""
    base = logging.getLogger(ROOT)
    base.setLevel(level)
    base.propagate = False
    if any(isinstance(h, _CurrentStream) for h in base.handlers):
        return
    formatter = _Tagged(FORMAT)
    out, err = _CurrentStream("stdout"), _CurrentStream("stderr")
    out.addFilter(lambda record: record.levelno < logging.WARNING)
    err.setLevel(logging.WARNING)
    for handler in (out, err):
        handler.setFormatter(formatter)
        base.addHandler(handler)
