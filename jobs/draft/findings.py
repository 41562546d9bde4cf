"""What the drafter finds and hands between its steps: a `Column` (what the data says about
one column and what the draft does with it), a `TransactionsDraft` (the transaction file's
roles, values and aggregates), the `DraftError` every step raises for input it cannot use,
the `REVIEW:` marker, and the thresholds and number helpers that more than one step reads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from core.errors import UserError
from core.spec import FeatureType, MissingRule, Transactions

NUMBER_SHARE = 0.95  # a text column whose values are numbers at least this often is numeric
DATE_SHARE = 0.95  # ... dates at least this often: a datetime
SHOWN = 8  # values listed in a comment or an error
REVIEW = "REVIEW:"


class DraftError(UserError, ValueError):
    """Input the drafter cannot use: says what was expected and what arrived."""


@dataclass
class Column:
    """What the data says about one column, and what the draft does with it."""

    name: str
    type: FeatureType | None = None  # None: dropped
    why_dropped: str = ""
    integer: bool = False
    levels: list[str] | None = None
    bounds: tuple[float, float] | None = None
    missing: MissingRule = MissingRule.impute
    missing_note: str = ""
    leak: str = ""
    notes: list[str] = field(default_factory=list)
    description: str = ""
    from_table: bool = True  # a table column (its description is a placeholder)


@dataclass
class TransactionsDraft:
    roles: Transactions
    rows: int
    role_notes: dict[str, str]
    unused: list[str]
    type_values: list[str]
    unclassified: list[str]
    cap: float
    largest: float  # largest |amount|
    p999: float  # 99.9th percentile of |amount|
    columns: list[Column]
    omitted: dict[str, str]


def _show(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 1e5 else f"{x:,.6g}"


def _ceil_sig(x: float, digits: int = 2) -> float:
    """x rounded up to `digits` significant digits (x > 0)."""
    scale = 10 ** (math.floor(math.log10(x)) - digits + 1)
    return float(f"{math.ceil(x / scale - 1e-9) * scale:.12g}")
