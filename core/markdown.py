"""Markdown tables for the reports, one way: `table(header, rows)` -> lines.

A cell is text as given, a float formatted with `fmt` (".4f" unless the caller says), None
or NaN as "n/a", anything else as str(); a `|` inside a cell is escaped so it cannot split
the row.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

MISSING = "n/a"


def cell(value: Any, fmt: str = ".4f") -> str:
    """One value as report text: a float formatted with `fmt`, None / NaN as n/a."""
    if value is None:
        return MISSING
    if isinstance(value, float):
        return MISSING if math.isnan(value) else format(value, fmt)
    return str(value)


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


def _row(cells: Iterable[str]) -> str:
    """`| a | b |`; an empty cell is `| |`."""
    return "|" + "|".join(f" {_escape(c)} " if c else " " for c in cells) + "|"


def table(header: Sequence[Any], rows: Iterable[Sequence[Any]], fmt: str = ".4f") -> list[str]:
    """A header line, the separator, one line per row (floats formatted with `fmt`)."""
    lines = [_row(map(str, header)), "|" + "---|" * len(header)]
    return lines + [_row(cell(value, fmt) for value in row) for row in rows]
