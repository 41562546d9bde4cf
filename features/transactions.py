"""Raw transactions to one row of features per customer.

`clean_transactions` applies the cleaning rules (each counted), and
`aggregate` turns the clean rows into the catalogue's features. The same two
functions run at training time and when raw transactions are scored later.

Built for millions of rows (loadtest/bench_features.py measures it): text is
cleaned, lowercased and categorised once per distinct value and mapped back by
integer codes, timestamps parse with the ISO parser first, and per-customer
sums run on integer customer codes. Per-distinct-value work is exactly the
per-row rule applied to that value, so the results are the same as row by row.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from pandas.api.types import infer_dtype, is_string_dtype

from core.catalogue import DEFAULT_CATEGORIES, aggregate_catalogue
from core.stats import OUTLIER_FENCE_K, tukey_fence

if TYPE_CHECKING:
    from core.spec import Transactions

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
    "drop_repeats",
]

LATE_NIGHT_END_HOUR = 5  # 00:00-04:59 counts as late night
FUZZY_MIN_LENGTH = (
    5  # keywords this long also match a word prefix or one typo away ("tesc", "netflx")
)
DAY_GRID_MAX_CELLS = 256_000_000  # customer x day flags (bytes); beyond, distinct pairs are hashed

_NOT_LETTERS = re.compile(r"[^a-z\s]+")
_SPACES = re.compile(r"\s+")
# A UTC offset or zone letter right after a time of day: '10:00:00+02:00', '10:00Z', '10:00 +0200'.
# A string, ASCII classes only: pandas hands it to Arrow's RE2 for Arrow-backed text (20x
# faster than Python's re on 10M stamps) and to re otherwise, and both read it alike.
_UTC_OFFSET = (
    r"(?i)([0-9]{1,2}:[0-9]{2}(?::[0-9]{2}(?:[.,][0-9]+)?)?)[ \t]*"
    r"(?:Z|UTC|GMT|[+-][0-9]{2}(?::?[0-9]{2})?)$"
)


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

    def __add__(self, other: CleaningCounts) -> CleaningCounts:
        """Field by field: the counts of two disjoint sets of rows (buckets of one input)."""
        mine, theirs = asdict(self), asdict(other)
        return CleaningCounts(**{k: mine[k] + theirs[k] for k in mine})


# ---------------------------------------------------------------- once per distinct value


def _text_codes(values: pd.Series) -> tuple[np.ndarray, np.ndarray] | None:
    """Integer codes (-1 where missing) and the distinct values, when every value present
    is a str (then equal codes mean equal text). None for other contents (numbers, mixed
    objects), which callers handle row by row."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes = values.cat.codes.to_numpy()
        uniques = np.asarray(values.cat.categories, dtype=object)
    else:
        codes, uniques = pd.factorize(values)
        uniques = np.asarray(uniques, dtype=object)
    if len(uniques) and infer_dtype(uniques, skipna=False) != "string":
        return None
    return codes, uniques


def _clean_text_rows(text: pd.Series) -> pd.Series:
    lowered = text.fillna("").astype(str).str.lower()
    return (
        lowered.str.replace(_NOT_LETTERS, " ", regex=True)
        .str.replace(_SPACES, " ", regex=True)
        .str.strip()
    )


def _cleaned_uniques(uniques: np.ndarray) -> np.ndarray:
    """clean_text of each distinct value, plus a last entry for a missing value ('')."""
    with_missing = pd.Series(np.append(uniques, ""), dtype=object)
    return _clean_text_rows(with_missing).to_numpy(dtype=object)


def clean_text(text: pd.Series) -> pd.Series:
    """Lowercase, drop digits and punctuation, collapse spaces ('TESCO 12' -> 'tesco')."""
    found = _text_codes(text)
    if found is None:
        return _clean_text_rows(text)
    codes, uniques = found
    cleaned = _cleaned_uniques(uniques)[codes]  # code -1 (missing) takes the last entry, ''
    return pd.Series(cleaned, index=text.index, name=text.name, dtype="str")


def _lowered_in(values: pd.Series, *wanted: list[str]) -> list[np.ndarray]:
    """For each list: values.astype('string').str.strip().str.lower().isin(list), missing
    -> False, as a boolean array."""
    found = _text_codes(values)
    if found is None:
        lowered = values.astype("string").str.strip().str.lower()
        return [
            lowered.isin([v.lower() for v in w]).fillna(False).to_numpy(dtype=bool) for w in wanted
        ]
    codes, uniques = found
    lowered = pd.Series(uniques, dtype="string").str.strip().str.lower()
    return [
        np.append(lowered.isin([v.lower() for v in w]).to_numpy(dtype=bool), False)[codes]
        for w in wanted
    ]


def _wall_clock(values: pd.Series) -> pd.Series:
    """The text without a UTC offset after the time ('...10:00:00+02:00' -> '...10:00:00')."""
    return values.str.replace(_UTC_OFFSET, r"\1", regex=True)


def _parse_timestamps(values: pd.Series) -> pd.Series:
    """Each value parsed on its own to the wall-clock time it states (naive datetime64[us]).

    The rule is per value, never per column: a UTC offset ('+02:00', 'Z') is dropped,
    keeping the time as the customer lived it (late night, calendar day), so a file that
    mixes offsets, or a slice of a file scored on another machine, parses each stamp the
    same. Pandas' ISO-8601 parser runs first; only its failures go through 'mixed'.
    """
    if values.empty:
        return pd.Series(pd.NaT, index=values.index, dtype="datetime64[us]")
    if not is_string_dtype(values):
        values = values.astype("str").where(values.notna())
    text = _wall_clock(values)
    parsed = _naive(pd.to_datetime(text, errors="coerce", format="ISO8601"))
    failed = (parsed.isna() & text.notna()).to_numpy()
    if failed.any():
        parsed.iloc[np.flatnonzero(failed)] = _parse_mixed(text[failed]).to_numpy()
    return parsed


def _naive(parsed: pd.Series) -> pd.Series:
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        parsed = parsed.dt.tz_localize(None)
    return parsed.astype("datetime64[us]")


def _parse_mixed(text: pd.Series) -> pd.Series:
    """format='mixed' (dateutil) for what ISO-8601 refused; value by value where the values
    disagree on time zone (e.g. named zones), so no value's result depends on another's."""
    try:
        return _naive(pd.to_datetime(text, errors="coerce", format="mixed"))
    except (ValueError, TypeError):
        one = [pd.to_datetime(v, errors="coerce") for v in text]
        return pd.Series(
            [pd.NaT if pd.isna(t) else t.replace(tzinfo=None) for t in one],
            index=text.index,
            dtype="datetime64[us]",
        )


# ---------------------------------------------------------------- categories


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


def _category_table(
    cleaned: pd.Series, categories: dict[str, list[str]]
) -> tuple[np.ndarray, np.ndarray]:
    """Codes of the cleaned descriptions and a (distinct descriptions + 1) x categories
    boolean table; the last row (all False) is for a missing description (code -1)."""
    frozen = tuple((name, tuple(words)) for name, words in categories.items())
    found = _text_codes(cleaned)
    if found is None:
        codes, uniques = pd.factorize(cleaned)
        uniques = np.asarray(uniques, dtype=object)
    else:
        codes, uniques = found
    table = np.zeros((len(uniques) + 1, len(frozen)), dtype=bool)
    for i, text in enumerate(uniques):
        hits = _categories_of(text, frozen)
        for j, (name, _) in enumerate(frozen):
            table[i, j] = name in hits
    return codes, table


def categorise(cleaned: pd.Series, categories: dict[str, list[str]]) -> pd.DataFrame:
    """One boolean column per category: does the cleaned description mention it?

    A keyword matches as a whole word; keywords of 5+ letters also match as a word
    prefix ('netflixcom') or one typo away ('tesc', 'netflx').
    """
    codes, table = _category_table(cleaned, categories)
    return pd.DataFrame(
        {name: table[codes, j] for j, name in enumerate(categories)}, index=cleaned.index
    )


# ---------------------------------------------------------------- cleaning


def amount_cap(amounts: pd.Series, k: float = OUTLIER_FENCE_K) -> float:
    """Upper fence for |amount| when the spec sets no max_amount: Tukey's far-out fence on
    log10|amount| (the quality report's rule), learned on the training split's transactions."""
    magnitude = np.log10(amounts.abs()[amounts.abs() > 0].dropna())
    if magnitude.empty:
        return float("inf")
    return float(10 ** tukey_fence(magnitude, k)[1])


def drop_repeats(raw: pd.DataFrame, id_column: str | None) -> tuple[np.ndarray, int, int]:
    """Positions of the rows kept after dropping exact repeats, then reused ids (the first
    row seen is the original); and how many rows each rule dropped.

    An exact repeat has the same id as the row it repeats, so with an id column only the
    rows whose id occurs more than once (or is missing) are compared column by column.
    """
    if id_column is None:
        repeat = raw.duplicated().to_numpy()
        return np.flatnonzero(~repeat), int(repeat.sum()), 0
    ids = raw[id_column]
    missing = ids.isna().to_numpy()
    shared = np.flatnonzero(ids.duplicated(keep=False).to_numpy() | missing)
    repeat = raw.iloc[shared].duplicated().to_numpy()
    left = shared[~repeat]
    reused = ids.iloc[left].duplicated().to_numpy() & ~missing[left]
    drop = np.zeros(len(raw), dtype=bool)
    drop[shared[repeat]] = True
    drop[left[reused]] = True
    return np.flatnonzero(~drop), int(repeat.sum()), int(reused.sum())


def clean_transactions(
    raw: pd.DataFrame, roles: Transactions, cap: float | None
) -> tuple[pd.DataFrame, CleaningCounts]:
    """Apply the cleaning rules; return a frame with standard columns and the counts.

    Output columns: customer_id (categorical text), amount (signed: debit < 0),
    description (cleaned, categorical), timestamp (datetime or NaT), declined (bool).
    """
    cols = roles.columns
    counts = CleaningCounts(rows_in=len(raw))
    # `rows`: positions in `raw` still kept; each rule narrows it.
    rows, counts.exact_duplicates_dropped, counts.repeated_ids_dropped = drop_repeats(
        raw, cols.transaction_id
    )

    amount = pd.to_numeric(raw[cols.amount].iloc[rows], errors="coerce")
    present = amount.notna()
    counts.null_amounts_dropped = int((~present).sum())
    rows, amount = rows[present.to_numpy()], amount[present]

    if cols.type:
        debit, credit = _lowered_in(raw[cols.type], roles.debit_values, roles.credit_values)
        debit, credit = debit[rows], credit[rows]
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
        rows, amount = rows[keep.to_numpy()], amount[keep]

    if cols.description:
        found = _text_codes(raw[cols.description])
        if found is None:
            text = raw[cols.description].iloc[rows]
            counts.null_descriptions = int(text.isna().sum())
            description = pd.Categorical(_clean_text_rows(text))
        else:
            codes, uniques = found
            codes = codes[rows]
            counts.null_descriptions = int((codes == -1).sum())
            # Distinct raw texts clean to fewer distinct texts ('TESCO 12', 'TESCO 13').
            to_clean, cleaned = pd.factorize(_cleaned_uniques(uniques))
            description = pd.Categorical.from_codes(
                to_clean[codes], categories=pd.Index(cleaned, dtype="str")
            )
    else:
        description = pd.Categorical.from_codes(
            np.zeros(len(rows), dtype=np.int8), categories=pd.Index([""], dtype="str")
        )

    if cols.timestamp:
        stamps = raw[cols.timestamp].iloc[rows]
        timestamp = _parse_timestamps(stamps)
        counts.bad_timestamps = int((timestamp.isna() & stamps.notna()).sum())
    else:
        timestamp = pd.Series(pd.NaT, index=range(len(rows)), dtype="datetime64[ns]")

    if cols.status:
        declined = _lowered_in(raw[cols.status], roles.declined_values)[0][rows]
    else:
        declined = np.zeros(len(rows), dtype=bool)

    found = _text_codes(raw[cols.customer_id])
    if found is None:
        customer = pd.Categorical(raw[cols.customer_id].iloc[rows].astype("string"))
    else:
        codes, uniques = found
        customer = pd.Categorical.from_codes(codes[rows], categories=pd.Index(uniques, dtype="str"))

    clean = pd.DataFrame(
        {
            "customer_id": customer,
            "amount": amount.to_numpy(dtype=float),
            "description": description,
            "timestamp": timestamp.to_numpy(),
            "declined": np.asarray(declined, dtype=bool),
        }
    )
    counts.rows_out = len(clean)
    return clean, counts


# ---------------------------------------------------------------- aggregation


def _customer_codes(customer: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Codes (-1 for a missing id) and the distinct ids, as groupby would see them."""
    if isinstance(customer.dtype, pd.CategoricalDtype):
        return customer.cat.codes.to_numpy().astype(np.intp), pd.Index(customer.cat.categories)
    codes, uniques = pd.factorize(customer)
    return codes.astype(np.intp, copy=False), pd.Index(uniques)


def _active_days(timestamp: pd.Series, codes: np.ndarray, n_customers: int) -> np.ndarray:
    """Distinct calendar days with a timestamp, per customer code (naive wall-clock times)."""
    day = timestamp.to_numpy().astype("datetime64[D]")
    valid = ~np.isnat(day)
    day = day.view(np.int64)
    day, who = day[valid], codes[valid]
    if len(day) == 0:
        return np.zeros(n_customers, dtype=np.int64)
    day = day - day.min()
    span = int(day.max()) + 1
    if n_customers * span <= DAY_GRID_MAX_CELLS:
        seen = np.zeros(n_customers * span, dtype=bool)
        seen[who * span + day] = True
        return seen.reshape(n_customers, span).sum(axis=1)
    pairs = pd.DataFrame({"who": who, "day": day}).drop_duplicates()
    return np.bincount(pairs["who"].to_numpy(), minlength=n_customers)


def aggregate(clean: pd.DataFrame, customer_ids: pd.Series, roles: Transactions) -> pd.DataFrame:
    """One row per customer id (in the given order), every catalogue feature, no NaN.

    Declined rows count as transactions but move no money. Customers without
    transactions get zeros.
    """
    names = list(aggregate_catalogue(roles.categories, has_status=roles.columns.status is not None))
    ids = pd.Index(customer_ids.astype("string"), name="customer_id")
    if clean.empty:
        return pd.DataFrame(0.0, index=ids, columns=names)

    codes, customers = _customer_codes(clean["customer_id"])
    known = codes >= 0  # rows without a customer id belong to no one
    clean = clean[known] if not known.all() else clean
    codes = codes[known]
    k = len(customers)

    money = clean["amount"].where(~clean["declined"], 0.0)
    work = pd.DataFrame(
        {"amount": money, "debit": money.clip(upper=0), "credit": money.clip(lower=0)}
    )
    # Money sums go through pandas' groupby (compensated summation, in row order); the
    # counts below are exact whatever the order.
    grouped = work.groupby(codes)
    money_sums = grouped.sum()
    lowest_debit = grouped["debit"].min()
    seen = money_sums.index.to_numpy()

    def count(mask: np.ndarray | None = None) -> np.ndarray:
        who = codes if mask is None else codes[mask]
        return np.bincount(who, minlength=k)[seen].astype(float)

    hour = clean["timestamp"].dt.hour
    has_time = hour.notna().to_numpy()
    late = (hour < LATE_NIGHT_END_HOUR).to_numpy() & has_time
    desc_codes, table = _category_table(clean["description"], roles.categories)

    index = customers[seen]
    sums = pd.DataFrame(
        {
            "one": count(),
            "amount": money_sums["amount"].to_numpy(),
            "debit": money_sums["debit"].to_numpy(),
            "credit": money_sums["credit"].to_numpy(),
            "late": count(late),
            "has_time": count(has_time),
            "declined": count(clean["declined"].to_numpy(dtype=bool)),
        },
        index=index,
    )
    for j, name in enumerate(roles.categories):
        sums[f"n_{name}"] = count(table[desc_codes, j])
    n = sums["one"]

    out = pd.DataFrame(index=sums.index)
    out["num_transactions"] = n
    out["total_debit"] = sums["debit"]
    out["total_credit"] = sums["credit"]
    out["avg_amount"] = sums["amount"] / n
    out["net_flow"] = sums["credit"] + sums["debit"]
    out["active_days"] = _active_days(clean["timestamp"], codes, k)[seen]
    out["max_debit"] = -lowest_debit.to_numpy()
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
