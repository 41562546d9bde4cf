"""Raw transactions to one row of features per customer.

`clean_transactions` applies the cleaning rules (each counted), and
`aggregate` turns the clean rows into the catalogue's features. The same two
functions run at training time and when raw transactions are scored later.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from features.catalogue import DEFAULT_CATEGORIES, aggregate_catalogue

if TYPE_CHECKING:
    from riskbento.spec import Transactions

__all__ = [
    "DEFAULT_CATEGORIES",
    "CleaningCounts",
    "aggregate",
    "aggregate_catalogue",
    "amount_cap",
    "build_customer_features",
    "categorise",
    "clean_text",
    "clean_transactions",
]

LATE_NIGHT_END_HOUR = 5  # 00:00-04:59 counts as late night
OUTLIER_FENCE_K = 3.0  # same rule as the quality report: Tukey far-out fence on log10|amount|
FUZZY_MIN_LENGTH = (
    5  # keywords this long also match a word prefix or one typo away ("tesc", "netflx")
)

_NOT_LETTERS = re.compile(r"[^a-z\s]+")
_SPACES = re.compile(r"\s+")


@dataclass
class CleaningCounts:
    """How many rows each cleaning rule touched."""

    rows_in: int = 0
    exact_duplicates_dropped: int = 0
    repeated_ids_dropped: int = 0
    null_amounts_dropped: int = 0
    sign_fixed_from_type: int = 0
    unknown_type: int = 0
    null_descriptions: int = 0
    bad_timestamps: int = 0
    amounts_over_cap_dropped: int = 0
    rows_out: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def clean_text(text: pd.Series) -> pd.Series:
    """Lowercase, drop digits and punctuation, collapse spaces ('TESCO 12' -> 'tesco')."""
    lowered = text.fillna("").astype(str).str.lower()
    return (
        lowered.str.replace(_NOT_LETTERS, " ", regex=True)
        .str.replace(_SPACES, " ", regex=True)
        .str.strip()
    )


def _one_edit_apart(a: str, b: str) -> bool:
    if abs(len(a) - len(b)) > 1 or a == b:
        return a == b
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) == 1
    short, long_ = sorted((a, b), key=len)
    return any(long_[:i] + long_[i + 1 :] == short for i in range(len(long_)))


def _mentions(keyword: str, padded: str, tokens: list[str]) -> bool:
    if f" {keyword} " in padded:
        return True
    if len(keyword) < FUZZY_MIN_LENGTH or " " in keyword:
        return False
    return any(t.startswith(keyword) or _one_edit_apart(t, keyword) for t in tokens)


@lru_cache(maxsize=65_536)
def _categories_of(cleaned: str, categories: tuple[tuple[str, tuple[str, ...]], ...]) -> frozenset:
    padded, tokens = f" {cleaned} ", cleaned.split()
    return frozenset(
        name for name, keywords in categories if any(_mentions(k, padded, tokens) for k in keywords)
    )


def categorise(cleaned: pd.Series, categories: dict[str, list[str]]) -> pd.DataFrame:
    """One boolean column per category: does the cleaned description mention it?

    A keyword matches as a whole word; keywords of 5+ letters also match as a word
    prefix ('netflixcom') or one typo away ('tesc', 'netflx').
    """
    frozen = tuple((name, tuple(words)) for name, words in categories.items())
    uniques = pd.Series(cleaned.unique())
    found = uniques.map(lambda text: _categories_of(text, frozen))
    table = pd.DataFrame(
        {name: found.map(lambda s, n=name: n in s).to_numpy() for name in categories},
        index=uniques.to_numpy(),
    )
    return table.reindex(cleaned.to_numpy()).set_axis(cleaned.index)


def amount_cap(amounts: pd.Series, k: float = OUTLIER_FENCE_K) -> float:
    """Upper fence for |amount| when the spec sets no max_amount: Tukey on log10|amount|,
    learned on the training split's transactions."""
    magnitude = np.log10(amounts.abs()[amounts.abs() > 0].dropna())
    if magnitude.empty:
        return float("inf")
    q1, q3 = magnitude.quantile([0.25, 0.75])
    return float(10 ** (q3 + k * (q3 - q1)))


def clean_transactions(
    raw: pd.DataFrame, roles: Transactions, cap: float | None
) -> tuple[pd.DataFrame, CleaningCounts]:
    """Apply the cleaning rules; return a frame with standard columns and the counts.

    Output columns: customer_id, amount (signed: debit < 0), description (cleaned),
    timestamp (datetime or NaT), declined (bool).
    """
    cols = roles.columns
    counts = CleaningCounts(rows_in=len(raw))
    frame = raw.drop_duplicates()
    counts.exact_duplicates_dropped = len(raw) - len(frame)
    if cols.transaction_id:
        # A reused id with different content: keep the first row seen, it is the original.
        keep = ~frame[cols.transaction_id].duplicated() | frame[cols.transaction_id].isna()
        counts.repeated_ids_dropped = int((~keep).sum())
        frame = frame[keep]

    amount = pd.to_numeric(frame[cols.amount], errors="coerce")
    counts.null_amounts_dropped = int(amount.isna().sum())
    frame, amount = frame[amount.notna()], amount[amount.notna()]

    if cols.type:
        kind = frame[cols.type].astype("string").str.strip().str.lower()
        debit = kind.isin([v.lower() for v in roles.debit_values]).to_numpy()
        credit = kind.isin([v.lower() for v in roles.credit_values]).to_numpy()
        # `type` wins over the sign: a file either signs amounts or gives a direction.
        signed = np.where(debit, -amount.abs(), np.where(credit, amount.abs(), amount))
        counts.sign_fixed_from_type = int((np.sign(signed) != np.sign(amount)).sum())
        counts.unknown_type = int((~debit & ~credit).sum())
        amount = pd.Series(signed, index=amount.index)

    if cap is not None:
        # Beyond what a real transaction can be (a typed-in x1000, cents booked as units):
        # any corrected value would be a guess, so the row is dropped and counted.
        keep = amount.abs() <= cap
        counts.amounts_over_cap_dropped = int((~keep).sum())
        frame, amount = frame[keep], amount[keep]

    if cols.description:
        counts.null_descriptions = int(frame[cols.description].isna().sum())
        description = clean_text(frame[cols.description])
    else:
        description = pd.Series("", index=frame.index)

    if cols.timestamp:
        timestamp = pd.to_datetime(frame[cols.timestamp], errors="coerce", format="mixed")
        counts.bad_timestamps = int((timestamp.isna() & frame[cols.timestamp].notna()).sum())
    else:
        timestamp = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns]")

    if cols.status:
        status = frame[cols.status].astype("string").str.strip().str.lower()
        declined = status.isin([v.lower() for v in roles.declined_values]).fillna(False)
    else:
        declined = pd.Series(False, index=frame.index)

    clean = pd.DataFrame(
        {
            "customer_id": frame[cols.customer_id].astype("string").to_numpy(),
            "amount": amount.to_numpy(dtype=float),
            "description": description.to_numpy(),
            "timestamp": timestamp.to_numpy(),
            "declined": declined.to_numpy(dtype=bool),
        }
    )
    counts.rows_out = len(clean)
    return clean, counts


def aggregate(clean: pd.DataFrame, customer_ids: pd.Series, roles: Transactions) -> pd.DataFrame:
    """One row per customer id (in the given order), every catalogue feature, no NaN.

    Declined rows count as transactions but move no money. Customers without
    transactions get zeros.
    """
    names = list(aggregate_catalogue(roles.categories, has_status=roles.columns.status is not None))
    ids = pd.Index(customer_ids.astype("string"), name="customer_id")
    if clean.empty:
        return pd.DataFrame(0.0, index=ids, columns=names)

    money = clean["amount"].where(~clean["declined"], 0.0)
    cats = categorise(clean["description"], roles.categories)
    hour = clean["timestamp"].dt.hour
    work = pd.DataFrame(
        {
            "customer_id": clean["customer_id"],
            "one": 1.0,
            "amount": money,
            "debit": money.clip(upper=0),
            "credit": money.clip(lower=0),
            "late": (hour < LATE_NIGHT_END_HOUR).astype(float).where(hour.notna()),
            "has_time": hour.notna().astype(float),
            "day": clean["timestamp"].dt.floor("D"),
            "declined": clean["declined"].astype(float),
        }
    )
    for name in roles.categories:
        work[f"n_{name}"] = cats[name].astype(float).to_numpy()
    grouped = work.groupby("customer_id", sort=False)
    sums = grouped.sum(numeric_only=True)
    n = sums["one"]

    out = pd.DataFrame(index=sums.index)
    out["num_transactions"] = n
    out["total_debit"] = sums["debit"]
    out["total_credit"] = sums["credit"]
    out["avg_amount"] = sums["amount"] / n
    out["net_flow"] = sums["credit"] + sums["debit"]
    out["active_days"] = grouped["day"].nunique()
    out["max_debit"] = -grouped["debit"].min()
    out["debit_to_credit"] = -sums["debit"] / sums["credit"].clip(lower=1.0)
    out["late_night_share"] = (sums["late"] / sums["has_time"]).fillna(0.0)
    if roles.columns.status is not None:
        out["declined_share"] = sums["declined"] / n
    for name in roles.categories:
        out[f"n_{name}"] = sums[f"n_{name}"]
        out[f"has_{name}"] = (sums[f"n_{name}"] > 0).astype(float)
        out[f"share_{name}"] = sums[f"n_{name}"] / n
    out.index = out.index.astype("string")
    return out.reindex(ids).fillna(0.0)[names].round(6)


def build_customer_features(
    raw: pd.DataFrame, roles: Transactions, customer_ids: pd.Series, cap: float | None
) -> tuple[pd.DataFrame, CleaningCounts]:
    """Raw transactions -> cleaned -> one feature row per customer id."""
    clean, counts = clean_transactions(raw, roles, cap)
    return aggregate(clean, customer_ids, roles), counts
