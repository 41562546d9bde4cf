"""Synthetic pay-later orders (brief 002, Klarna): will the customer default on this one?

One row per order, with the column names of Klarna's public take-home data set
(a customer's invoice and account history over the last 0-24 months, plus
the order's merchant, hour and e-mail match). Amounts are in SEK. About
`UNLABELED_SHARE` of the rows have a blank `default`: orders too recent to
know, the set to score (`results.csv` in the brief).

How a row comes about:

- Each customer has an unobserved creditworthiness `q ~ N(0, 1)` (slightly
  better with age), a Klarna tenure in months (`NEW_CUSTOMER_SHARE` are on
  their first order), a purchase rate, and for `ACCOUNT_SHARE` of the
  established ones a Klarna account opened some months ago.
- Invoices closed in each window are split into paid on time / paid after a
  reminder / sent to debt collection / written off with a multinomial whose
  probabilities worsen as `q` falls. Counts, statuses of the last three
  archived invoices, worst statuses per window, payment spans, paid amounts
  and account statuses are all read off these draws, so they agree with each
  other (a customer with no debt collection never has status 3).
- `default` is Bernoulli(sigmoid(b - 1.9 q + 0.9 first_order + merchant,
  e-mail, hour and age effects + 0.5 unpaid_bills_now)), `b` solved for a
  `DEFAULT_RATE` rate. The history only shows `q` through noisy counts, so a
  gradient-boosted model reaches ROC-AUC around 0.85.

Missing values are NOT missing at random (the brief's finding), in two ways:

1. Structural: a value that cannot exist is blank, never 0. `account_status`
   and `account_worst_status_*` are blank without a Klarna account (and per
   window, when the account did not exist yet); `account_days_in_*_12_24m`
   are blank when the customer had no Klarna record 12-24 months ago;
   `account_incoming_debt_vs_paid_0_24m` is blank without an account or when
   nothing was paid into it (division by zero); `avg_payment_span_0_12m`,
   `avg_payment_span_0_3m` and `num_active_div_by_paid_inv_0_12m` are blank
   when no invoice was paid in the window; `num_arch_written_off_*` are blank
   when the customer had no closed invoice at all in 0-24 months;
   `worst_status_active_inv` is blank without an open invoice. Because new and
   thin-file customers default more, these blanks carry default signal.
2. Through the target itself: a customer about to default has often stopped
   paying, so `avg_payment_span_0_3m` is additionally blanked for
   `PRE_DEFAULT_SPAN_BLANK` of the (labeled or not) defaulting rows and for
   `OTHER_SPAN_BLANK` of the rest. Blank here means ~4x the default rate.
"""

import uuid
from pathlib import Path

import numpy as np
import pandas as pd

from datagen.common import intercept_for_rate, sigmoid, write_csv

SEED = 20240502
N_ORDERS = 100_000
UNLABELED_SHARE = 0.10
DEFAULT_RATE = 0.015
FILE_NAME = "default.csv"

NEW_CUSTOMER_SHARE = 0.14  # first order with Klarna: no history at all
ACCOUNT_SHARE = 0.50  # of established customers, holding a Klarna account
MAX_TENURE_MONTHS = 60
PRE_DEFAULT_SPAN_BLANK = 0.40
OTHER_SPAN_BLANK = 0.03

# Archived invoice outcomes, also the status codes: 1 paid, 2 paid after reminder,
# 3 debt collection, 4 written off; 0 means "no such invoice".
STATUS_OK, STATUS_REM, STATUS_DC, STATUS_WO = 1, 2, 3, 4

MERCHANT_GROUPS = {
    # group: (share of orders, effect on default logit, categories)
    "Clothing & Shoes": (
        0.26,
        0.0,
        ["Youthful Shoes & Clothing", "General Shoes & Clothing", "Outdoor clothing"],
    ),
    "Entertainment": (
        0.20,
        0.15,
        ["Books & Magazines", "Music & Movies", "Video Games & Related accessories"],
    ),
    "Health & Beauty": (
        0.14,
        -0.10,
        ["Dietary supplements", "Diversified Health & Beauty products", "Pharmaceutical products"],
    ),
    "Children Products": (
        0.12,
        -0.20,
        ["Children Clothes & Nurturing products", "Diversified children products"],
    ),
    "Home & Garden": (0.09, -0.10, ["Diversified Home & Garden products", "Furniture"]),
    "Electronics": (
        0.08,
        0.35,
        ["Diversified electronics", "Cell phones & Accessories", "Computers & Software"],
    ),
    "Leisure, Sport & Hobby": (0.06, 0.0, ["Sports gear & Outdoor", "Hobby articles"]),
    "Intangible products": (0.03, 0.60, ["Event tickets", "Digital services", "Travel services"]),
    "Jewelry & Accessories": (0.02, 0.30, ["Jewelry & Watches", "Bags & Wallets"]),
}
# how the e-mail address relates to the customer's name: (share, effect on default logit)
NAME_IN_EMAIL = {
    "F+L": (0.42, -0.15),
    "F1+L": (0.06, -0.05),
    "L1+F": (0.03, 0.0),
    "F": (0.10, 0.10),
    "L": (0.06, 0.05),
    "Initials": (0.05, 0.10),
    "Nick": (0.15, 0.30),
    "no_match": (0.13, 0.45),
}
NIGHT_HOURS = (0.0, 6.0)  # orders placed between midnight and 6 am default more
NIGHT_EFFECT = 0.5

COLUMNS = [
    "uuid",
    "default",
    "account_amount_added_12_24m",
    "account_days_in_dc_12_24m",
    "account_days_in_rem_12_24m",
    "account_days_in_term_12_24m",
    "account_incoming_debt_vs_paid_0_24m",
    "account_status",
    "account_worst_status_0_3m",
    "account_worst_status_3_6m",
    "account_worst_status_6_12m",
    "account_worst_status_12_24m",
    "age",
    "avg_payment_span_0_12m",
    "avg_payment_span_0_3m",
    "merchant_category",
    "merchant_group",
    "has_paid",
    "max_paid_inv_0_12m",
    "max_paid_inv_0_24m",
    "name_in_email",
    "num_active_div_by_paid_inv_0_12m",
    "num_active_inv",
    "num_arch_dc_0_12m",
    "num_arch_dc_12_24m",
    "num_arch_ok_0_12m",
    "num_arch_ok_12_24m",
    "num_arch_rem_0_12m",
    "num_arch_written_off_0_12m",
    "num_arch_written_off_12_24m",
    "num_unpaid_bills",
    "status_last_archived_0_24m",
    "status_2nd_last_archived_0_24m",
    "status_3rd_last_archived_0_24m",
    "status_max_archived_0_6_months",
    "status_max_archived_0_12_months",
    "status_max_archived_0_24_months",
    "recovery_debt",
    "sum_capital_paid_account_0_12m",
    "sum_capital_paid_account_12_24m",
    "sum_paid_inv_0_12m",
    "time_hours",
    "worst_status_active_inv",
]


# Whole numbers (counts, status codes, whole SEK); written without ".0", blanks kept blank.
INTEGER_COLUMNS = [
    c
    for c in COLUMNS
    if c.startswith(("num_arch", "status_", "account_status", "account_worst", "account_days"))
    or c
    in (
        "account_amount_added_12_24m",
        "age",
        "has_paid",
        "max_paid_inv_0_12m",
        "max_paid_inv_0_24m",
        "num_active_inv",
        "num_unpaid_bills",
        "recovery_debt",
        "sum_capital_paid_account_0_12m",
        "sum_capital_paid_account_12_24m",
        "sum_paid_inv_0_12m",
        "worst_status_active_inv",
    )
]
COLUMNS_WITH_BLANKS = [
    "account_days_in_dc_12_24m",
    "account_days_in_rem_12_24m",
    "account_days_in_term_12_24m",
    "account_incoming_debt_vs_paid_0_24m",
    "account_status",
    "account_worst_status_0_3m",
    "account_worst_status_3_6m",
    "account_worst_status_6_12m",
    "account_worst_status_12_24m",
    "avg_payment_span_0_12m",
    "avg_payment_span_0_3m",
    "num_active_div_by_paid_inv_0_12m",
    "num_arch_written_off_0_12m",
    "num_arch_written_off_12_24m",
    "worst_status_active_inv",
]


def _choice(rng: np.random.Generator, options: dict, n: int) -> np.ndarray:
    names = list(options)
    shares = np.array([options[k][0] for k in names])
    return np.array(names, dtype=object)[rng.choice(len(names), size=n, p=shares / shares.sum())]


def _effect(values: np.ndarray, options: dict) -> np.ndarray:
    return np.array([options[v][1] for v in values], dtype=float)


def _outcome_probabilities(q: np.ndarray) -> np.ndarray:
    """Per customer: P(paid), P(reminder), P(debt collection), P(written off) of an invoice.

    A softmax against "paid", so the four always sum to one however poor `q` is.
    """
    logits = np.column_stack([np.zeros_like(q), -1.9 - 0.8 * q, -4.2 - 1.1 * q, -6.0 - 1.2 * q])
    weights = np.exp(logits)
    return weights / weights.sum(axis=1, keepdims=True)


def _worst(counts: np.ndarray) -> np.ndarray:
    """Worst status code present in a window's (ok, rem, dc, wo) counts; 0 when empty."""
    codes = np.array([STATUS_OK, STATUS_REM, STATUS_DC, STATUS_WO])
    return np.where(counts > 0, codes, 0).max(axis=1)


def _last_three(rng: np.random.Generator, counts: np.ndarray) -> list[np.ndarray]:
    """Status codes of the last, 2nd-last and 3rd-last closed invoices (without replacement)."""
    left = counts.astype(float).copy()
    codes = []
    for _ in range(3):
        total = left.sum(axis=1)
        cum = np.cumsum(left, axis=1) / np.where(total > 0, total, 1.0)[:, None]
        pick = (rng.random(len(left))[:, None] >= cum).sum(axis=1).clip(max=3)
        pick_code = np.where(total > 0, pick + 1, 0)
        has = total > 0
        left[np.flatnonzero(has), pick[has]] -= 1
        codes.append(pick_code)
    return codes


def _uuids(rng: np.random.Generator, n: int) -> list[str]:
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    return [str(uuid.UUID(bytes=row.tobytes(), version=4)) for row in raw]


def _history(rng: np.random.Generator, q: np.ndarray, n: int) -> dict[str, np.ndarray]:
    """Invoice history: counts per window and outcome, spans, amounts, statuses.

    Also returns `new` and `tenure` (not columns) for the account columns to build on.
    """
    new = rng.random(n) < NEW_CUSTOMER_SHARE
    tenure = np.where(new, 0, rng.integers(1, MAX_TENURE_MONTHS + 1, n))
    rate = np.exp(rng.normal(-0.6, 0.8, n))  # invoices per month
    basket = np.exp(rng.normal(np.log(450.0), 0.6, n))  # typical order, SEK
    months_recent = np.clip(tenure, 0, 12)
    months_older = np.clip(tenure - 12, 0, 12)
    probs = _outcome_probabilities(q)
    recent = rng.multinomial(rng.poisson(rate * months_recent), probs)
    older = rng.multinomial(rng.poisson(rate * months_older), probs)
    last_6m = rng.binomial(recent, 0.5)
    last_3m_paid = rng.binomial(recent[:, 0] + recent[:, 1], 0.25)

    paid_recent = recent[:, 0] + recent[:, 1]
    span = np.clip(rng.normal(14.0 - 4.0 * q, 4.0), 0.0, None)
    # Open invoices: a first-time customer has at most one (another order from this week).
    recent_order = rng.random(n) < 0.3
    active = np.where(new, recent_order, rng.poisson(rate * 1.2) + recent_order)
    unpaid = rng.binomial(active, sigmoid(-2.2 - 0.9 * q))
    active_worst = np.where(
        unpaid > 0, np.where(rng.random(n) < sigmoid(-1.5 - 0.8 * q), STATUS_DC, STATUS_REM), 1
    )
    paid_amounts = basket * np.exp(rng.normal(0.0, 0.3, n))
    max_recent = np.where(
        paid_recent > 0,
        basket * (1.0 + 0.5 * np.log1p(paid_recent)) * np.exp(rng.normal(0, 0.2, n)),
        0.0,
    )
    paid_older = older[:, 0] + older[:, 1]
    max_older = np.where(
        paid_older > 0,
        basket * (1.0 + 0.5 * np.log1p(paid_older)) * np.exp(rng.normal(0, 0.2, n)),
        0.0,
    )
    last, second, third = _last_three(rng, recent + older)
    any_closed = (recent + older).sum(axis=1) > 0
    dc_any = recent[:, 2] + recent[:, 3] + older[:, 2] + older[:, 3]
    return {
        "new": new,
        "tenure": tenure,
        "avg_payment_span_0_12m": np.where(paid_recent > 0, np.round(span, 2), np.nan),
        "avg_payment_span_0_3m": np.where(
            last_3m_paid > 0, np.round(np.clip(span + rng.normal(0, 3.0, n), 0, None), 2), np.nan
        ),
        "has_paid": (paid_recent + paid_older > 0).astype(int),
        "max_paid_inv_0_12m": np.round(max_recent, 0),
        "max_paid_inv_0_24m": np.round(np.maximum(max_recent, max_older), 0),
        "num_active_div_by_paid_inv_0_12m": np.where(
            paid_recent > 0, np.round(active / np.maximum(paid_recent, 1), 4), np.nan
        ),
        "num_active_inv": active,
        "num_arch_dc_0_12m": recent[:, 2],
        "num_arch_dc_12_24m": older[:, 2],
        "num_arch_ok_0_12m": recent[:, 0],
        "num_arch_ok_12_24m": older[:, 0],
        "num_arch_rem_0_12m": recent[:, 1],
        "num_arch_written_off_0_12m": np.where(any_closed, recent[:, 3], np.nan),
        "num_arch_written_off_12_24m": np.where(any_closed, older[:, 3], np.nan),
        "num_unpaid_bills": unpaid,
        "status_last_archived_0_24m": last,
        "status_2nd_last_archived_0_24m": second,
        "status_3rd_last_archived_0_24m": third,
        "status_max_archived_0_6_months": _worst(last_6m),
        "status_max_archived_0_12_months": _worst(recent),
        "status_max_archived_0_24_months": _worst(recent + older),
        "recovery_debt": np.where(
            dc_any > 0, np.round(dc_any * basket * rng.uniform(0.2, 1.0, n)), 0
        ),
        "sum_paid_inv_0_12m": np.round(paid_recent * paid_amounts),
        "worst_status_active_inv": np.where(active > 0, active_worst, np.nan),
    }


def _account(
    rng: np.random.Generator, q: np.ndarray, hist: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Klarna account columns: blank where no account (or no record) existed."""
    n = len(q)
    tenure = hist["tenure"]
    holder = ~hist["new"] & (rng.random(n) < ACCOUNT_SHARE)
    age_months = np.where(holder, np.floor(rng.uniform(0, 1, n) * tenure), -1)
    bad = sigmoid(-2.0 - 1.0 * q)  # chance an account month goes to reminder or worse

    def worst_status(window_start: int) -> np.ndarray:
        level = 1 + rng.binomial(3, bad)  # 1 ok ... 4 terminated
        return np.where(holder & (age_months >= window_start), level, np.nan)

    in_record_12_24 = tenure >= 12
    had_account_12_24 = holder & (age_months >= 12)
    days_rem = np.where(had_account_12_24, rng.binomial(365, bad * 0.15), 0)
    days_dc = np.where(had_account_12_24, rng.binomial(365, bad * 0.03), 0)
    days_term = np.where(
        had_account_12_24 & (rng.random(n) < bad * 0.2), rng.integers(1, 366, n), 0
    )
    added_12_24 = np.where(had_account_12_24, np.round(np.exp(rng.normal(8.0, 1.0, n))), 0)
    paid_recent = np.where(
        holder & (rng.random(n) < 0.8), np.round(np.exp(rng.normal(7.5, 1.1, n))), 0
    )
    paid_older = np.where(had_account_12_24, np.round(added_12_24 * rng.uniform(0.3, 1.1, n)), 0)
    incoming = np.exp(rng.normal(-0.3 - 0.4 * q, 0.5))
    paid_any = paid_recent + paid_older > 0
    status = 1 + rng.binomial(3, bad * 0.6)
    return {
        "account_amount_added_12_24m": added_12_24,
        "account_days_in_dc_12_24m": np.where(in_record_12_24, days_dc, np.nan),
        "account_days_in_rem_12_24m": np.where(in_record_12_24, days_rem, np.nan),
        "account_days_in_term_12_24m": np.where(in_record_12_24, days_term, np.nan),
        "account_incoming_debt_vs_paid_0_24m": np.where(
            holder & paid_any, np.round(incoming, 4), np.nan
        ),
        "account_status": np.where(holder, status, np.nan),
        "account_worst_status_0_3m": worst_status(0),
        "account_worst_status_3_6m": worst_status(3),
        "account_worst_status_6_12m": worst_status(6),
        "account_worst_status_12_24m": worst_status(12),
        "sum_capital_paid_account_0_12m": paid_recent,
        "sum_capital_paid_account_12_24m": paid_older,
    }


def _order_context(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    group = _choice(rng, MERCHANT_GROUPS, n)
    category = np.empty(n, dtype=object)
    for name, (_, _, categories) in MERCHANT_GROUPS.items():
        rows = np.flatnonzero(group == name)
        category[rows] = np.array(categories, dtype=object)[
            rng.integers(0, len(categories), len(rows))
        ]
    # Orders cluster in the afternoon and evening; a thin tail runs through the night.
    daytime = np.clip(rng.normal(17.0, 3.5, n), 6.0, 23.99)
    night = rng.uniform(0.0, 6.0, n)
    hours = np.where(rng.random(n) < 0.07, night, daytime)
    return {
        "merchant_category": category,
        "merchant_group": group,
        "name_in_email": _choice(rng, NAME_IN_EMAIL, n),
        "time_hours": np.round(hours, 4),
    }


def _default(
    rng: np.random.Generator, frame: pd.DataFrame, q: np.ndarray, new: np.ndarray
) -> np.ndarray:
    hours = frame["time_hours"].to_numpy()
    night = (hours >= NIGHT_HOURS[0]) & (hours < NIGHT_HOURS[1])
    logit = (
        -1.9 * q
        + 0.9 * new
        + 0.5 * (frame["num_unpaid_bills"].to_numpy() > 0)
        + _effect(frame["merchant_group"].to_numpy(), MERCHANT_GROUPS)
        + _effect(frame["name_in_email"].to_numpy(), NAME_IN_EMAIL)
        + NIGHT_EFFECT * night
        - 0.015 * (frame["age"].to_numpy() - 36)
    )
    shift = intercept_for_rate(logit, DEFAULT_RATE)
    return (rng.random(len(q)) < sigmoid(logit + shift)).astype(int)


def build(rng: np.random.Generator, n: int = N_ORDERS) -> pd.DataFrame:
    """The whole table, with the hidden label of the unlabeled rows already blanked."""
    age = np.clip(np.rint(18 + rng.gamma(2.0, 9.0, n)), 18, 90).astype(int)
    q = 0.25 * (age - 36) / 12 + rng.normal(0.0, 1.0, n)
    hist = _history(rng, q, n)
    frame = pd.DataFrame({"age": age, **_order_context(rng, n)})
    for name, values in {**hist, **_account(rng, q, hist)}.items():
        if name in COLUMNS:
            frame[name] = values
    default = _default(rng, frame, q, hist["new"])
    # A customer heading for default has often stopped paying: no recent payment span.
    blank_rate = np.where(default == 1, PRE_DEFAULT_SPAN_BLANK, OTHER_SPAN_BLANK)
    frame.loc[rng.random(n) < blank_rate, "avg_payment_span_0_3m"] = np.nan
    frame["default"] = default.astype(float)
    unlabeled = rng.permutation(n)[: round(n * UNLABELED_SHARE)]
    frame.loc[unlabeled, "default"] = np.nan
    frame["default"] = frame["default"].astype("Int64")
    frame["uuid"] = _uuids(rng, n)
    frame[INTEGER_COLUMNS] = frame[INTEGER_COLUMNS].astype("Int64")
    return frame[COLUMNS]


INJECTED_PROBLEMS: dict[str, str] = {
    "missing_not_at_random": (
        "blanks depend on other columns (no account -> account_status and "
        "account_worst_status_* blank; nothing paid -> avg_payment_span_* and "
        "num_active_div_by_paid_inv_0_12m blank; no closed invoice -> "
        "num_arch_written_off_* blank; ...) and on the target: avg_payment_span_0_3m "
        f"is also blanked for {PRE_DEFAULT_SPAN_BLANK:.0%} of defaulting rows vs "
        f"{OTHER_SPAN_BLANK:.0%} of the others"
    ),
    "null_values": (
        f"{round(N_ORDERS * UNLABELED_SHARE):,} rows with a blank `default` "
        f"(unlabeled orders to score) and blanks in {len(COLUMNS_WITH_BLANKS)} feature columns"
    ),
}


def generate(out_dir: Path) -> list[Path]:
    rng = np.random.default_rng(SEED)
    return [write_csv(build(rng), out_dir / FILE_NAME)]
