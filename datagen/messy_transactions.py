"""Raw bank transactions at any size, with the mess a real export has.

Vectorised numpy, deterministic for a seed: a few thousand distinct descriptions
with store numbers, card references and typos; debit/credit in mixed case and
unsigned debits; missing amounts, descriptions, ids and timestamps; amounts over
any plausible cap; transaction ids reused within and across customers; exact
duplicate rows; timestamps in several formats and with UTC offsets; rows of
customers the customer table does not know, and customers without a single
transaction. About one customer per 30 rows.

`generate(n)` returns one frame (as `read_transactions` loads it) and the customer
ids; `write_parts` writes a large set chunk by chunk (CSV or Parquet parts in a
folder, or one file) so a 50M-row set never sits in memory at once. Used by the
feature and scale-out benchmarks and by the scale-out exactness tests.
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd

from core.spec import Transactions

__all__ = ["ROLES", "ROWS_PER_CUSTOMER", "SEED", "generate", "write_parts"]

SEED = 2024
ROWS_PER_CUSTOMER = 30
SILENT_CUSTOMER_SHARE = 0.02  # customers in the table without any transaction
UNKNOWN_CUSTOMER_SHARE = 0.001  # rows of a customer id the table does not know
WINDOW_START = np.datetime64("2024-01-01")
WINDOW_DAYS = 90
STORE_VARIANTS = 100  # distinct store numbers / references per template with a placeholder

# Shares of the injected mess (per row).
EXACT_DUPLICATE_SHARE = 0.003
REUSED_ID_SHARE = 0.001
NULL_ID_SHARE = 0.0001
NULL_AMOUNT_SHARE = 0.002
UNSIGNED_DEBIT_SHARE = 0.05
AMOUNT_TYPO_SHARE = 0.0001  # a lost decimal point: x1000
NULL_DESCRIPTION_SHARE = 0.005
NULL_TIMESTAMP_SHARE = 0.002
BAD_TIMESTAMP_SHARE = 0.0002  # text that is no date at all, or an impossible one
DATE_ONLY_SHARE = 0.0005
CREDIT_SHARE = 0.15

# Timestamps written another way: with a UTC offset (the wall-clock digits as above),
# or day-first text with a month name. The time a customer lived stays the same.
OFFSET_TIMESTAMP_SHARE = 0.01
OFFSETS = ("+02:00", "-05:00", "Z", "+0530")
NAMED_MONTH_SHARE = 0.001
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

TYPE_SPELLINGS = {  # value -> share
    "debit": ("debit", "Debit", "DEBIT", " debit "),
    "credit": ("credit", "Credit", "CREDIT"),
}
TYPE_SPELLING_P = {"debit": (0.80, 0.09, 0.09, 0.02), "credit": (0.82, 0.09, 0.09)}
OTHER_TYPES = (None, "pending", "REFUND?")
OTHER_TYPE_SHARE = 0.002
STATUSES = ("COMPLETED", "completed", "DECLINED", "Reversed", "PENDING", None)
STATUS_P = (0.93, 0.02, 0.03, 0.01, 0.0095, 0.0005)
BAD_TIMESTAMPS = ("not a date", "2024-02-30 10:00:00", "31/31/2024", "??")

# Description templates: {n} a store or terminal number, {r} a card reference,
# {e} an employer, {p} a payee. Weight = share of transactions.
TEMPLATES: dict[str, tuple[float, tuple[str, ...]]] = {
    "groceries": (
        0.25,
        (
            "TESCO STORE {n}", "TESCO EXPRESS {n}", "Tesco Stores {n}", "TESC0 EXPRESS {n}",
            "SAINSBURYS S/MKT {n}", "Sainsbury's {n}", "SAINSBRY {n}", "ASDA SUPERSTORE {n}",
            "ALDI {n}", "LIDL GB {n}", "Lidl GB {n} LONDON", "CO-OP GROCER {n}",
        ),
    ),
    "subscriptions": (
        0.05,
        (
            "NETFLIX.COM {r}", "Netflix.com*", "NETFLX", "SPOTIFY P{r}", "SPOTFY UK",
            "DISNEY PLUS", "AMAZON PRIME VIDEO", "APPLE SUBSCRIPTION {r}",
        ),
    ),
    "salary": (0.03, ("SALARY PAYMENT - {e}", "{e} PAYROLL", "WAGES {e}", "{e} SALARY")),
    "rent": (0.03, ("RENT - FLAT {n}", "LANDLORD PAYMENT", "FOXTONS LETTINGS", "RENT PAYMENT {r}")),
    "transfer": (
        0.10,
        (
            "TRANSFER TO {p}", "TRANSFER FROM {p}", "Faster Payment FROM {p}",
            "STANDING ORDER SAVINGS", "FPS TRANSFR {r}",
        ),
    ),
    "gambling": (
        0.02,
        ("BET365", "PADDYPOWER BET {r}", "GROSVENOR CASINO {n}", "POKERSTARS", "NATIONAL LOTTERY"),
    ),
    "crypto": (0.01, ("COINBASE UK", "BINANCE.COM {r}", "KRAKEN.COM", "CRYPTO.COM {r}")),
    "cash": (0.06, ("ATM WITHDRAWAL {n}", "CASH WITHDRAWAL LINK {n}", "ATM HSBC HIGH ST")),
    "other": (
        0.45,
        (
            "COSTA COFFEE {n}", "PRET A MANGER {n}", "AMAZON MKTPLACE*{r}", "TFL TRAVEL CHARGE",
            "SHELL {n}", "BOOTS {n}", "GREGGS {n}", "McDonalds {n}", "Just Eat*{r}",
            "UBER *TRIP {r}", "BRITISH GAS", "VODAFONE UK", "COUNCIL TAX {n}", "ARGOS {n}",
            "Better Homes Furniture", "Parental leave top-up", "PRIMARK {n}", "CURRYS {n}",
            "Waterstones", "THAMES WATER DD", "OCTOPUS ENERGY", "DELIVEROO {r}",
        ),
    ),
}  # fmt: skip
EMPLOYERS = ("ACME LTD", "GLOBEX PLC", "INITECH LTD", "NHS TRUST", "CITY COUNCIL", "HOOLI UK")
PAYEES = ("J SMITH", "A PATEL", "M JONES", "S KHAN", "L BROWN", "K WILSON", "R TAYLOR")
REF_ALPHABET = "0123456789BCDFGHJKLMNPQRSTVWXZ"

ROLES = Transactions.model_validate(
    {
        "path": "synthetic.csv",
        "columns": {
            "customer_id": "customer_id",
            "transaction_id": "transaction_id",
            "amount": "amount",
            "type": "type",
            "description": "description",
            "timestamp": "timestamp",
            "status": "status",
        },
    }
)


def description_pool(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A few thousand distinct descriptions and the share of rows each one gets."""
    texts: list[str] = []
    weights: list[float] = []
    for share, templates in TEMPLATES.values():
        for template in templates:
            placeholder = "{" in template
            variants = STORE_VARIANTS if placeholder else 1
            for _ in range(variants):
                ref = "".join(rng.choice(list(REF_ALPHABET), 6))
                texts.append(
                    template.format(
                        n=int(rng.integers(1, 9999)),
                        r=ref,
                        e=EMPLOYERS[rng.integers(len(EMPLOYERS))],
                        p=PAYEES[rng.integers(len(PAYEES))],
                    )
                )
                weights.append(share / len(templates) / variants)
    # Same text from two templates' draws collapses into one entry.
    frame = pd.DataFrame({"text": texts, "weight": weights}).groupby("text", sort=True).sum()
    p = frame["weight"].to_numpy()
    return frame.index.to_numpy(dtype=object), p / p.sum()


def _text_column(chars: np.ndarray) -> np.ndarray:
    """(n, width) uint8 ASCII -> object array of str, one new str per row (as a CSV reader)."""
    width = chars.shape[1]
    return np.ascontiguousarray(chars).view(f"S{width}").ravel().astype(f"U{width}").astype(object)


def _digits(numbers: np.ndarray, width: int) -> np.ndarray:
    out = np.empty((len(numbers), width), dtype=np.uint8)
    rest = numbers.astype(np.int64)
    for k in range(width - 1, -1, -1):
        out[:, k] = 48 + rest % 10
        rest //= 10
    return out


def _pool_strings(values: list[str]) -> np.ndarray:
    return np.array(values, dtype=object)


def customer_ids(n_customers: int) -> np.ndarray:
    return _pool_strings([f"CUST{i:07d}" for i in range(1, n_customers + 1)])


def _timestamps(rng: np.random.Generator, n: int) -> np.ndarray:
    days = _pool_strings(
        [str(WINDOW_START + np.timedelta64(d, "D")) for d in range(WINDOW_DAYS)]
    ).astype("S10")
    day_chars = np.frombuffer(days.tobytes(), dtype=np.uint8).reshape(WINDOW_DAYS, 10)
    second = rng.integers(0, 86_400, n)
    stamp = np.empty((n, 19), dtype=np.uint8)
    stamp[:, :10] = day_chars[rng.integers(0, WINDOW_DAYS, n)]
    stamp[:, 10] = ord(" ")
    for start, unit, modulo in ((11, 3600, 24), (14, 60, 60), (17, 1, 60)):
        stamp[:, start : start + 2] = _digits((second // unit) % modulo, 2)
    stamp[:, 13] = stamp[:, 16] = ord(":")
    timestamp = _text_column(stamp)
    del stamp
    odd = np.flatnonzero(rng.random(n) < DATE_ONLY_SHARE)
    timestamp[odd] = [t[:10] for t in timestamp[odd]]
    offset = np.flatnonzero(rng.random(n) < OFFSET_TIMESTAMP_SHARE)
    zone = rng.integers(len(OFFSETS), size=len(offset))
    timestamp[offset] = [
        f"{t[:10]}T{t[11:]}{OFFSETS[z]}" if len(t) == 19 else t
        for t, z in zip(timestamp[offset], zone, strict=True)
    ]
    named = np.flatnonzero(rng.random(n) < NAMED_MONTH_SHARE)
    timestamp[named] = [
        f"{t[8:10]} {MONTHS[int(t[5:7]) - 1]} {t[:4]} {t[11:16]}" if len(t) == 19 else t
        for t in timestamp[named]
    ]
    bad = np.flatnonzero(rng.random(n) < BAD_TIMESTAMP_SHARE)
    garbage = _pool_strings(list(BAD_TIMESTAMPS))
    timestamp[bad] = garbage[rng.integers(len(garbage), size=len(bad))]
    timestamp[rng.random(n) < NULL_TIMESTAMP_SHARE] = np.nan
    return timestamp


def _transaction_ids(rng: np.random.Generator, first: int, n: int) -> np.ndarray:
    """Ids TX0000000001... numbered from `first`; some reuse an earlier row's id (of this
    chunk or an earlier one, usually another customer's), a few are missing."""
    number = np.arange(first + 1, first + n + 1)
    reused = np.flatnonzero(rng.random(n) < REUSED_ID_SHARE)
    reused = reused[first + reused > 0]
    number[reused] = rng.integers(1, first + reused + 1)  # an earlier row's number
    ids = np.empty((n, 12), dtype=np.uint8)
    ids[:, :2] = np.frombuffer(b"TX", dtype=np.uint8)
    ids[:, 2:] = _digits(number, 10)
    transaction_id = _text_column(ids)
    transaction_id[rng.random(n) < NULL_ID_SHARE] = None
    return transaction_id


def generate(
    n_rows: int, seed: int = SEED, *, first_row: int = 0, n_customers: int | None = None
) -> tuple[pd.DataFrame, pd.Series]:
    """n_rows raw transactions (as `read_transactions` would load them) and the customer ids
    of the table (including customers without transactions, excluding unknown ones).

    `first_row` and `n_customers` let chunks of one large set be generated apart
    (`write_parts`): ids continue where the chunk before stopped, customers are shared.
    Vectorised: the only Python loops run over the few thousand distinct descriptions,
    the customer pool and the rare odd timestamps, never over all rows.
    """
    rng = np.random.default_rng([seed, first_row])
    n_customers = n_customers or max(1, n_rows // ROWS_PER_CUSTOMER)
    n_dup = int(n_rows * EXACT_DUPLICATE_SHARE)
    n = n_rows - n_dup  # rows before the exact duplicates are added

    customers = customer_ids(n_customers)
    active = max(1, n_customers - int(n_customers * SILENT_CUSTOMER_SHARE))
    who = customers[rng.integers(0, active, n)]  # the last customers never transact
    unknown = np.flatnonzero(rng.random(n) < UNKNOWN_CUSTOMER_SHARE)
    who[unknown] = [f"GHOST{i:06d}" for i in rng.integers(0, 1_000_000, len(unknown))]

    texts, p = description_pool(np.random.default_rng(seed))  # the same pool in every chunk
    description = texts[rng.choice(len(texts), size=n, p=p)]
    description[rng.random(n) < NULL_DESCRIPTION_SHARE] = np.nan

    credit = rng.random(n) < CREDIT_SHARE
    kind = np.empty(n, dtype=object)
    for direction, spellings in TYPE_SPELLINGS.items():
        rows = np.flatnonzero(credit if direction == "credit" else ~credit)
        pick = rng.choice(len(spellings), size=len(rows), p=TYPE_SPELLING_P[direction])
        kind[rows] = _pool_strings(list(spellings))[pick]
    other = np.flatnonzero(rng.random(n) < OTHER_TYPE_SHARE)
    kind[other] = _pool_strings(list(OTHER_TYPES))[rng.integers(len(OTHER_TYPES), size=len(other))]

    magnitude = np.round(np.exp(rng.normal(np.log(30.0), 1.1, n)), 2)
    amount = np.where(credit, magnitude, -magnitude)
    amount[~credit & (rng.random(n) < UNSIGNED_DEBIT_SHARE)] *= -1  # unsigned debits
    typo = rng.random(n) < AMOUNT_TYPO_SHARE
    amount[typo] = np.round(amount[typo] * 1000, 2)
    amount[rng.random(n) < NULL_AMOUNT_SHARE] = np.nan

    status = _pool_strings(list(STATUSES))[rng.choice(len(STATUSES), size=n, p=STATUS_P)]
    timestamp = _timestamps(rng, n)
    transaction_id = _transaction_ids(rng, first_row, n)

    # Exact duplicates sit right after their original row.
    order = np.sort(np.concatenate([np.arange(n), rng.integers(0, n, n_dup)]), kind="stable")
    columns = {
        "customer_id": (who[order], "string"),
        "transaction_id": (transaction_id[order], "string"),
        "timestamp": (timestamp[order], "str"),
        "amount": (amount[order], "float64"),
        "type": (kind[order], "str"),
        "description": (description[order], "str"),
        "status": (status[order], "str"),
    }
    raw = pd.DataFrame(
        {name: pd.array(values, dtype=dtype) for name, (values, dtype) in columns.items()}
    )
    return raw, pd.Series(customers, dtype="string", name="customer_id")


def write_parts(
    out: Path, n_rows: int, *, parts: int = 1, fmt: str = "csv", seed: int = SEED
) -> tuple[list[Path], pd.Series]:
    """Write n_rows in `parts` files under the folder `out` (one chunk in memory at a time);
    return the files in order and the customer ids. fmt: 'csv' or 'parquet'."""
    out.mkdir(parents=True, exist_ok=True)
    n_customers = max(1, n_rows // ROWS_PER_CUSTOMER)
    bounds = np.linspace(0, n_rows, parts + 1).astype(int)
    files: list[Path] = []
    ids = pd.Series(dtype="string")
    for k, (start, stop) in enumerate(pairwise(bounds)):
        raw, ids = generate(int(stop - start), seed, first_row=int(start), n_customers=n_customers)
        path = out / f"part-{k:05d}.{fmt}"
        if fmt == "csv":
            raw.to_csv(path, index=False)
        elif fmt == "parquet":
            raw.to_parquet(path, index=False)
        else:
            raise ValueError(f"fmt: expected 'csv' or 'parquet', got {fmt!r}")
        files.append(path)
    return files, ids
