"""Synthetic raw bank transactions and 90-day default labels (brief 004, Atto).

Writes `transactions.csv` (customer_id, transaction_id, amount, type,
description, timestamp) and `labels.csv` (customer_id, defaulted, age_band) for a
consumer lender's applicants: 90 days of transactions (Jan–Mar 2024) per
customer and whether they defaulted in the 90 days after. Debits are
negative, credits positive, as in the brief's example.

Mechanism. Each customer has latent traits:
  - income: monthly net income, log-normal around £2,300 (z-score `z_income`);
  - salaried: a monthly salary (likelier with higher income), else irregular
    gig payouts, universal credit and transfers in;
  - housing: rent (a monthly "RENT" / "LANDLORD" / "LETTINGS" debit),
    mortgage (likelier with higher income), or neither;
  - pressure: spending over the 90 days divided by income, N(0.92, 0.12),
    higher for lower incomes and for gamblers;
  - gambler / crypto trader: extra betting or exchange debits;
  - shock: an unobserved financial shock (job loss, debt elsewhere), N(0, 0.6).
The traits shape the transactions: credits add up to about 3 months of
income; debits (rent or mortgage, bills, subscriptions, groceries, shops,
cash, and card repayments or transfers out taking what the budget leaves)
add up to `pressure` times that. Default is drawn from
    logit = b + 1.5 z_pressure - 0.5 z_income + 0.9 [not salaried]
              + 0.4 [renter] + 0.5 [gambler] + 0.3 [crypto] + shock
with `b` set so that 12 % default. So the default signal shows in the
brief's six aggregates (total debit / total credit, total credit,
has_salary, has_rent) while the shock and the hidden habits keep a model's
ROC-AUC around 0.8, well below 1.

Protected attribute. `labels.csv` also carries each applicant's `age_band`
(18-24, 25-39, 40-61, 62+), as a lender's application data would: the spec
declares it protected (never a model feature) and the fairness report groups
by it. Age is drawn from its own random stream, so every other column and row
is the same as without it; older applicants earn a little more
(corr(age, z_income) = AGE_INCOME_CORR), so the band is mildly associated with
the income features and, through income, with default; age has no other part
in the default logit.

Mess a real export has, injected on purpose and counted in
`INJECTED_PROBLEMS` (see data/README.md): nulls, exact duplicate rows,
transaction ids reused for different content, ×1000 amount typos, amount
signs that contradict `type`, misspelt merchants, `type` casing variants,
duplicate label rows, labeled customers without transactions and
transactions of customers without a label.
"""

from pathlib import Path

import numpy as np
import pandas as pd

from datagen.common import intercept_for_rate, sigmoid, write_csv

SEED = 4004
TRANSACTIONS_FILE = "transactions.csv"
LABELS_FILE = "labels.csv"
TRANSACTION_COLUMNS = [
    "customer_id",
    "transaction_id",
    "amount",
    "type",
    "description",
    "timestamp",
]
LABEL_COLUMNS = ["customer_id", "defaulted", "age_band"]

N_CUSTOMERS = 3_000  # labeled customers
# Applicant age: its own random stream ([SEED, AGE_STREAM]) so adding it changed no other
# value; bands end at 62 because Regulation B (12 CFR 1002.6(b)(2)) protects 62 and over.
AGE_STREAM = 1
AGE_MEAN, AGE_SD, AGE_INCOME_CORR = 42.0, 14.0, 0.3
MIN_AGE, MAX_AGE = 18, 85
AGE_BANDS = {"18-24": 18, "25-39": 25, "40-61": 40, "62+": 62}  # band -> first age in it
DEFAULT_RATE = 0.12  # the client's default rate last quarter
MIN_TRANSACTIONS, MAX_TRANSACTIONS = 10, 60  # per customer, before injected rows
WINDOW_START = np.datetime64("2024-01-01T00:00:00")
WINDOW_DAYS = 90
MONTHS = 3  # salary, rent, bills and subscriptions recur once per month of the window

MEDIAN_INCOME = 2_300.0
INCOME_SIGMA = 0.45
MIN_INCOME, MAX_INCOME = 900.0, 12_000.0
MAX_LEGIT_AMOUNT = 15_000.0  # no genuine single transaction is larger
OUTLIER_FACTOR = 1_000  # a dropped decimal point: 45.50 typed as 45500
OUTLIER_SOURCE_RANGE = (20.0, 200.0)  # so every typo lands at 20,000 or more
OUTLIER_THRESHOLD = OUTLIER_FACTOR * OUTLIER_SOURCE_RANGE[0]

N_NULL_AMOUNTS = 400
N_NULL_DESCRIPTIONS = 600
N_EXACT_DUPLICATES = 300
N_REPOSTED_IDS = 30  # same id re-sent days later with an amended amount
N_COLLIDING_IDS = 30  # same id reused for another customer's transaction
N_DUPLICATE_IDS = N_REPOSTED_IDS + N_COLLIDING_IDS
N_OUTLIERS = 25
N_SIGN_FLIPS = 800
N_DESCRIPTION_TYPOS = 300
N_TYPE_CASING = 1_500
N_LABEL_DUPLICATES = 10
N_CUSTOMERS_WITHOUT_TRANSACTIONS = 25
N_UNKNOWN_CUSTOMERS = 15  # transactions, but no label

TYPOS = {"TESCO": "TESC0", "NETFLIX": "NETFLX", "SPOTIFY": "SPOTFY", "SAINSBURY": "SAINSBRY"}
TYPE_VARIANTS = {"debit": ["Debit", "DEBIT"], "credit": ["Credit", "CREDIT"]}

INJECTED_PROBLEMS: dict[str, str] = {
    "null_values": (
        f"{N_NULL_AMOUNTS} transactions with a null amount and "
        f"{N_NULL_DESCRIPTIONS} with a null description"
    ),
    "exact_duplicate_rows": (
        f"{N_EXACT_DUPLICATES} transaction rows and {N_LABEL_DUPLICATES} labels rows "
        "repeated verbatim"
    ),
    "duplicate_ids": (
        f"{N_DUPLICATE_IDS} transaction_ids on two different rows: {N_REPOSTED_IDS} re-posted "
        f"days later with an amended amount, {N_COLLIDING_IDS} reused by another customer"
    ),
    "outliers": (
        f"{N_OUTLIERS} amounts multiplied by {OUTLIER_FACTOR} (a lost decimal point), "
        f"all with |amount| >= {OUTLIER_THRESHOLD:,.0f}"
    ),
    "sign_type_disagreement": (
        f"{N_SIGN_FLIPS} rows whose amount sign contradicts type "
        "(unsigned debits, negative credits)"
    ),
    "messy_text": (
        f"{N_DESCRIPTION_TYPOS} misspelt merchants ({', '.join(TYPOS.values())}); "
        f"{N_TYPE_CASING} type values cased Debit/DEBIT/Credit/CREDIT; store numbers, "
        "card references, '*' and mixed casing throughout the descriptions"
    ),
    "customers_without_transactions": (
        f"{N_CUSTOMERS_WITHOUT_TRANSACTIONS} labeled customers with no transactions"
    ),
    "unknown_customers": f"{N_UNKNOWN_CUSTOMERS} customer ids with transactions but no label",
}

# Description templates: {n} a store or terminal number, {r} a card reference,
# {e} the customer's employer, {p} a payee name. Only the templates of a
# category contain that category's keywords (features/transactions.py), and
# no template contains another category's keyword.
REF_ALPHABET = "0123456789BCDFGHJKLMNPQRSTVWXZ"  # no vowels: a reference never spells a keyword
EMPLOYERS = [
    "ACME LTD", "GLOBEX PLC", "INITECH LTD", "NORTHWIND TRADERS", "UMBRELLA CORP",
    "HOOLI UK", "WAYNE ENTERPRISES", "NHS TRUST", "CITY COUNCIL", "VANDELAY IND",
]  # fmt: skip
PAYEES = ["J SMITH", "A PATEL", "M JONES", "S KHAN", "L BROWN", "K WILSON", "R TAYLOR", "O DAVIES"]
TEMPLATES: dict[str, list[str]] = {
    "salary": ["SALARY PAYMENT - {e}", "{e} PAYROLL", "WAGES {e}", "{e} SALARY"],
    "income_other": [
        "UBER BV PAYOUT", "DELIVEROO RIDER PAYOUT {n}", "ETSY PAYOUT {r}", "DWP UC",
        "TRANSFER FROM {p}", "Faster Payment FROM {p}", "CLIENT PAYMENT INV {n}",
    ],
    "refund": ["AMAZON REFUND {r}", "REFUND - ARGOS {n}", "TRANSFER FROM {p}", "PAYPAL REFUND"],
    "rent": ["RENT - FLAT {f}", "LANDLORD PAYMENT", "RENT PAYMENT REF {n}", "FOXTONS LETTINGS"],
    "mortgage": ["MORTGAGE - NATIONWIDE BS", "HALIFAX MORTGAGE {n}", "SANTANDER MTG"],
    "bills": [
        "BRITISH GAS", "THAMES WATER DD", "COUNCIL TAX {n}", "VODAFONE UK", "OCTOPUS ENERGY",
        "EE LIMITED", "TV LICENCE MBP",
    ],
    "groceries": [
        "TESCO STORE {n}", "TESCO EXPRESS {n}", "Sainsbury's {n}", "SAINSBURYS S/MKT",
        "ASDA SUPERSTORE {n}", "ALDI {n}", "LIDL GB {n}", "Tesco Stores {n}",
    ],
    "misc": [
        "AMAZON MKTPLACE*{r}", "COSTA COFFEE {n}", "PRET A MANGER", "BOOTS {n}",
        "TFL TRAVEL CHARGE", "SHELL {n}", "DELIVEROO", "UBER *TRIP", "GREGGS {n}", "ARGOS",
        "PRIMARK {n}", "Just Eat*{r}", "McDonalds {n}", "CURRYS {n}", "Waterstones",
    ],
    "cash": ["ATM WITHDRAWAL {n}", "CASH WITHDRAWAL LINK {n}", "ATM HSBC HIGH ST"],
    "transfer_out": [
        "TRANSFER TO {p}", "Faster Payment TO {p}", "STANDING ORDER SAVINGS", "FPS TRANSFER {r}",
    ],
    "gambling": [
        "BET365", "PADDYPOWER BET", "SKYBET {r}", "GROSVENOR CASINO", "POKERSTARS",
        "NATIONAL LOTTERY",
    ],
    "crypto": ["COINBASE UK", "BINANCE.COM {r}", "KRAKEN.COM"],
    "card_repayment": ["BARCLAYCARD PAYMENT", "AMEX PAYMENT", "MBNA CREDIT CARD", "CAPITAL ONE DD"],
}  # fmt: skip
SUBSCRIPTIONS = {  # monthly price in GBP
    "Netflix.com*": 10.99,
    "NETFLIX.COM {n}": 10.99,
    "SPOTIFY P{r}": 11.99,
    "Spotify UK": 11.99,
    "DISNEY PLUS": 7.99,
    "AMAZON PRIME VIDEO": 8.99,
}
# Everyday spending: share of a customer's scattered transactions and median
# amount for a customer on the median income (scaled by sqrt(income)).
SPEND_WEIGHT = {"groceries": 0.34, "misc": 0.40, "cash": 0.10, "transfer_out": 0.16}
GAMBLING_WEIGHT, CRYPTO_WEIGHT = 0.3, 0.1
SCATTERED = (*SPEND_WEIGHT, "gambling", "crypto")
SPEND_MEDIAN = {"groceries": 45.0, "misc": 22.0, "gambling": 25.0, "crypto": 150.0}
CASH_AMOUNTS = np.array([10.0, 20.0, 30.0, 40.0, 50.0, 100.0])
# Card repayments and transfers out carry what is left of the spending budget
# (the card statement and savings, not visible line by line).
SINKS = ("card_repayment", "transfer_out")
RECURRING = ("salary", "rent", "mortgage", "card_repayment", "bills", "subscriptions")
MIN_SINK = 25.0
MIN_SPEND_SCALE = 0.2

# The default model in the module docstring.
LOGIT_WEIGHTS = {
    "z_pressure": 1.5,
    "z_income": -0.5,
    "not_salaried": 0.9,
    "renter": 0.4,
    "gambler": 0.5,
    "crypto": 0.3,
}
SHOCK_SD = 0.6


def _traits(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """Latent per-customer traits that shape both transactions and default."""
    z_income = rng.standard_normal(n)
    income = np.clip(MEDIAN_INCOME * np.exp(INCOME_SIGMA * z_income), MIN_INCOME, MAX_INCOME)
    salaried = rng.random(n) < sigmoid(1.3 + 0.8 * z_income)
    mortgage = rng.random(n) < sigmoid(-1.2 + 1.0 * z_income)
    renter = ~mortgage & (rng.random(n) < 0.75)
    gambler = rng.random(n) < 0.12
    crypto = rng.random(n) < 0.10
    pressure = 0.92 + 0.12 * rng.standard_normal(n) - 0.04 * z_income + 0.10 * gambler
    return pd.DataFrame(
        {
            "income": income,
            "z_income": z_income,
            "salaried": salaried,
            "renter": renter,
            "mortgage": mortgage,
            "has_card": rng.random(n) < 0.7,
            "gambler": gambler,
            "crypto": crypto,
            "pressure": np.clip(pressure, 0.5, 1.6),
            "employer": rng.integers(len(EMPLOYERS), size=n),
            "ref": rng.integers(1, 9999, n),  # account / flat reference on recurring payments
            "activity": np.exp(rng.normal(np.log(26), 0.45, n)),
            "shock": rng.normal(0.0, SHOCK_SD, n),
        }
    )


def _defaults(rng: np.random.Generator, t: pd.DataFrame) -> np.ndarray:
    z_pressure = (t["pressure"] - t["pressure"].mean()) / t["pressure"].std()
    logit = (
        LOGIT_WEIGHTS["z_pressure"] * z_pressure
        + LOGIT_WEIGHTS["z_income"] * t["z_income"]
        + LOGIT_WEIGHTS["not_salaried"] * ~t["salaried"]
        + LOGIT_WEIGHTS["renter"] * t["renter"]
        + LOGIT_WEIGHTS["gambler"] * t["gambler"]
        + LOGIT_WEIGHTS["crypto"] * t["crypto"]
        + t["shock"]
    ).to_numpy(dtype=float)
    b = intercept_for_rate(logit, DEFAULT_RATE)
    return (rng.random(len(t)) < sigmoid(logit + b)).astype(int)


def _monthly(
    rng: np.random.Generator, customers: np.ndarray, kind: str, n_templates: int
) -> pd.DataFrame:
    """One event per month per customer, same day of month and same payee text."""
    day = rng.integers(0, 28, size=len(customers))
    month_start = np.tile(np.array([0, 31, 60]), len(customers))  # Jan 1, Feb 1, Mar 1
    return pd.DataFrame(
        {
            "cust": np.repeat(customers, MONTHS),
            "kind": kind,
            "day": month_start + np.repeat(day, MONTHS),
            "template": np.repeat(rng.integers(n_templates, size=len(customers)), MONTHS),
        }
    )


def _scattered(rng: np.random.Generator, cust: np.ndarray, kind: str | np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {"cust": cust, "kind": kind, "day": rng.integers(0, WINDOW_DAYS, len(cust))}
    )


def _events(rng: np.random.Generator, t: pd.DataFrame) -> pd.DataFrame:
    """Every transaction as (customer, kind, day, template), before amounts."""
    n = len(t)
    idx = np.arange(n)
    salaried, renter, mortgage, card = (
        t[c].to_numpy() for c in ("salaried", "renter", "mortgage", "has_card")
    )
    n_streams = salaried.astype(int) + renter + mortgage + card  # int first: bool + bool is `or`
    n_gig = np.where(salaried, 0, 2 + rng.poisson(3, n))
    n_refund = np.where(salaried, rng.poisson(0.6, n), rng.poisson(0.3, n))
    n_bills = rng.integers(0, 3, n)
    n_subs = rng.choice(5, size=n, p=[0.15, 0.3, 0.3, 0.15, 0.1])
    recurring = MONTHS * (n_streams + n_bills + n_subs)
    n_forced = np.where(card, 0, 2)  # without a card bill to pay, spare money leaves by transfer
    total = np.clip(np.round(t["activity"].to_numpy()), MIN_TRANSACTIONS, MAX_TRANSACTIONS)
    n_scattered = np.maximum(total.astype(int) - recurring - n_gig - n_refund - n_forced, 3)

    weights = np.column_stack(
        [np.full(n, w) for w in SPEND_WEIGHT.values()]
        + [GAMBLING_WEIGHT * t["gambler"].to_numpy(), CRYPTO_WEIGHT * t["crypto"].to_numpy()]
    )
    counts = rng.multinomial(n_scattered, weights / weights.sum(axis=1, keepdims=True))
    counts[:, SCATTERED.index("transfer_out")] += n_forced
    scattered_kind = np.repeat(np.tile(np.array(SCATTERED), n), counts.ravel())
    scattered_cust = np.repeat(np.repeat(idx, len(SCATTERED)), counts.ravel())

    parts = [
        _monthly(rng, idx[salaried], "salary", len(TEMPLATES["salary"])),
        _monthly(rng, idx[renter], "rent", len(TEMPLATES["rent"])),
        _monthly(rng, idx[mortgage], "mortgage", len(TEMPLATES["mortgage"])),
        _monthly(rng, idx[card], "card_repayment", len(TEMPLATES["card_repayment"])),
        _monthly(rng, np.repeat(idx, n_bills), "bills", len(TEMPLATES["bills"])),
        _monthly(rng, np.repeat(idx, n_subs), "subscriptions", len(SUBSCRIPTIONS)),
        _scattered(rng, np.repeat(idx, n_gig), "income_other"),
        _scattered(rng, np.repeat(idx, n_refund), "refund"),
        _scattered(rng, scattered_cust, scattered_kind),
    ]
    return pd.concat(parts).reset_index(drop=True)


def _per_customer_sum(cust: np.ndarray, values: np.ndarray, mask: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(cust[mask], weights=values[mask], minlength=n)


def _amounts(rng: np.random.Generator, ev: pd.DataFrame, t: pd.DataFrame) -> np.ndarray:
    """Signed amounts: credits add up to ~3 months of income, debits to `pressure` x that."""
    n = len(t)
    cust = ev["cust"].to_numpy()
    kind = ev["kind"].to_numpy()
    template = ev["template"].to_numpy(dtype=float, na_value=0).astype(int)
    income = t["income"].to_numpy()[cust]
    amount = np.zeros(len(ev))

    is_salary = kind == "salary"
    amount[is_salary] = income[is_salary] * rng.normal(1.0, 0.02, is_salary.sum())
    gig = kind == "income_other"
    share = rng.gamma(2.0, 1.0, len(ev))
    amount[gig] = (
        MONTHS * income[gig] * share[gig] / _per_customer_sum(cust, share, gig, n)[cust[gig]]
    )
    refund = kind == "refund"
    amount[refund] = np.exp(rng.normal(np.log(40), 0.8, refund.sum()))

    housing = np.isin(kind, ["rent", "mortgage"])
    amount[housing] = -(rng.uniform(0.25, 0.42, n)[cust] * income)[housing]
    bills = kind == "bills"
    amount[bills] = -(rng.uniform(0.02, 0.06, len(ev)) * income)[bills]
    subs = kind == "subscriptions"
    amount[subs] = -np.array(list(SUBSCRIPTIONS.values()))[template[subs]]
    cash = kind == "cash"
    amount[cash] = -rng.choice(CASH_AMOUNTS, cash.sum())
    spend = np.isin(kind, list(SPEND_MEDIAN))
    median = np.array([SPEND_MEDIAN.get(k, 0.0) for k in kind])
    size = median * np.sqrt(income / MEDIAN_INCOME) * np.exp(rng.normal(0.0, 0.6, len(ev)))
    amount[spend] = -size[spend]

    # What the budget leaves goes to card repayments and transfers out (every
    # customer has at least two of those); when nothing is left, they shrink
    # to a token amount and everyday spending shrinks instead.
    target = t["pressure"].to_numpy() * MONTHS * t["income"].to_numpy() * rng.normal(1, 0.05, n)
    sink = np.isin(kind, SINKS)
    left = target + _per_customer_sum(cust, np.minimum(amount, 0), ~sink, n)
    n_sinks = np.bincount(cust[sink], minlength=n)
    short = left < MIN_SINK * n_sinks
    sink_share = share / _per_customer_sum(cust, share, sink, n)[cust]
    amount[sink] = -np.maximum(np.where(short[cust], 0, left[cust] * sink_share), MIN_SINK)[sink]
    spent = -_per_customer_sum(cust, amount, spend, n)
    room = left + spent - MIN_SINK * n_sinks
    scale = np.clip(room / np.maximum(spent, 1.0), MIN_SPEND_SCALE, 1.0)
    shrink = spend & short[cust]
    amount[shrink] *= scale[cust][shrink]
    return np.round(np.clip(amount, -MAX_LEGIT_AMOUNT, MAX_LEGIT_AMOUNT), 2)


def _descriptions(rng: np.random.Generator, ev: pd.DataFrame, t: pd.DataFrame) -> np.ndarray:
    """Bank-feed text; recurring payments repeat the customer's own reference."""
    out = np.empty(len(ev), dtype=object)
    kinds = ev["kind"].to_numpy()
    ref = t["ref"].to_numpy()[ev["cust"]]
    numbers = np.where(np.isin(kinds, RECURRING), ref, rng.integers(1, 9999, len(ev)))
    refs = np.array(list(REF_ALPHABET))[rng.integers(len(REF_ALPHABET), size=(len(ev), 6))]
    payees = rng.integers(len(PAYEES), size=len(ev))
    employer = t["employer"].to_numpy()[ev["cust"]]
    template_idx = ev["template"].to_numpy(dtype=float, na_value=np.nan)
    subscription_names = list(SUBSCRIPTIONS)
    for kind in np.unique(kinds):
        rows = np.flatnonzero(kinds == kind)
        names = subscription_names if kind == "subscriptions" else TEMPLATES[kind]
        picks = template_idx[rows]
        fresh = rng.integers(len(names), size=len(rows))
        picks = np.where(np.isnan(picks), fresh, picks).astype(int)
        if kind == "salary":  # an employer's payroll text is the same every month
            picks = employer[rows] % len(names)
        for row, pick in zip(rows, picks, strict=True):
            out[row] = names[pick].format(
                n=numbers[row],
                f=f"{ref[row] % 40 + 1}{'ABCD'[ref[row] % 4]}",
                r="".join(refs[row]),
                e=EMPLOYERS[employer[row]],
                p=PAYEES[payees[row]],
            )
    return out


def _timestamps(rng: np.random.Generator, ev: pd.DataFrame) -> np.ndarray:
    """Recurring payments post early in the morning, card spending in the day."""
    recurring = np.isin(ev["kind"], RECURRING)
    hour = np.where(recurring, rng.integers(0, 8, len(ev)), rng.integers(7, 24, len(ev)))
    seconds = (
        ev["day"].to_numpy() * 86_400
        + hour * 3_600
        + rng.integers(0, 60, len(ev)) * 60
        + rng.integers(0, 60, len(ev))
    )
    stamps = WINDOW_START + seconds.astype("timedelta64[s]")
    return np.char.replace(np.datetime_as_string(stamps, unit="s"), "T", " ")


def _clean_transactions(rng: np.random.Generator, t: pd.DataFrame, ids: np.ndarray) -> pd.DataFrame:
    ev = _events(rng, t)
    ev["amount"] = _amounts(rng, ev, t)
    ev["type"] = np.where(ev["amount"] < 0, "debit", "credit")
    ev["description"] = _descriptions(rng, ev, t)
    ev["timestamp"] = _timestamps(rng, ev)
    ev["customer_id"] = ids[ev["cust"]]
    ev = ev.sort_values(["timestamp", "customer_id", "description"], kind="mergesort")
    ev = ev.reset_index(drop=True)
    ev["transaction_id"] = [f"TXN{i:07d}" for i in range(1, len(ev) + 1)]
    return ev[TRANSACTION_COLUMNS]


def _take(rng: np.random.Generator, pool: np.ndarray, k: int, used: np.ndarray) -> np.ndarray:
    """k distinct rows from pool, none already touched by another injection (marks them used)."""
    picked = rng.choice(pool[~used[pool]], size=k, replace=False)
    used[picked] = True
    return picked


def _inject(rng: np.random.Generator, tx: pd.DataFrame) -> pd.DataFrame:
    """Add the counted mess of INJECTED_PROBLEMS; each row gets at most one problem."""
    tx = tx.copy()
    used = np.zeros(len(tx), dtype=bool)
    every = np.arange(len(tx))
    amount = tx["amount"].to_numpy(dtype=float, copy=True)

    small = np.flatnonzero(
        (tx["type"] == "debit")
        & (-amount >= OUTLIER_SOURCE_RANGE[0])
        & (-amount <= OUTLIER_SOURCE_RANGE[1])
    )
    rows = _take(rng, small, N_OUTLIERS, used)
    amount[rows] = np.round(amount[rows] * OUTLIER_FACTOR, 2)

    rows = _take(rng, every, N_SIGN_FLIPS, used)
    amount[rows] = -amount[rows]
    tx["amount"] = amount

    upper = tx["description"].str.contains("|".join(TYPOS), regex=True)
    rows = _take(rng, np.flatnonzero(upper), N_DESCRIPTION_TYPOS, used)
    fixed = tx.loc[rows, "description"]
    for right, wrong in TYPOS.items():
        fixed = fixed.str.replace(right, wrong, regex=False)
    tx.loc[rows, "description"] = fixed

    rows = _take(rng, every, N_TYPE_CASING, used)
    variant = rng.integers(0, 2, len(rows))
    tx.loc[rows, "type"] = [
        TYPE_VARIANTS[k][v] for k, v in zip(tx.loc[rows, "type"], variant, strict=True)
    ]

    tx.loc[_take(rng, every, N_NULL_AMOUNTS, used), "amount"] = np.nan
    tx.loc[_take(rng, every, N_NULL_DESCRIPTIONS, used), "description"] = np.nan

    reposted = tx.loc[_take(rng, every, N_REPOSTED_IDS, used)].copy()
    reposted["amount"] = np.round(reposted["amount"] * rng.uniform(0.5, 0.95, len(reposted)), 2)
    later = pd.to_datetime(reposted["timestamp"]) + pd.to_timedelta(
        rng.integers(1, 4, len(reposted)), unit="D"
    )
    reposted["timestamp"] = later.dt.strftime("%Y-%m-%d %H:%M:%S")

    # A colliding id comes from a different customer's row: the merged feed
    # numbered two sources' transactions alike.
    victims = _take(rng, every, N_COLLIDING_IDS, used)
    donors = _take(rng, every, N_COLLIDING_IDS, used)
    same = tx["customer_id"].to_numpy()[victims] == tx["customer_id"].to_numpy()[donors]
    donors[same] = np.roll(donors, 1)[same]
    tx.loc[victims, "transaction_id"] = tx["transaction_id"].to_numpy()[donors]

    duplicates = tx.loc[_take(rng, every, N_EXACT_DUPLICATES, used)]
    tx = pd.concat([tx, reposted, duplicates])
    return tx.sort_values(["timestamp", "transaction_id"], kind="mergesort").reset_index(drop=True)


def _age_bands(rng: np.random.Generator, z_income: np.ndarray) -> np.ndarray:
    """Each customer's age band; age correlates AGE_INCOME_CORR with the income z-score."""
    noise = rng.standard_normal(len(z_income))
    z_age = AGE_INCOME_CORR * z_income + np.sqrt(1 - AGE_INCOME_CORR**2) * noise
    age = np.clip(np.round(AGE_MEAN + AGE_SD * z_age), MIN_AGE, MAX_AGE)
    starts = np.array(list(AGE_BANDS.values()))
    return np.array(list(AGE_BANDS))[np.searchsorted(starts, age, side="right") - 1]


def _labels(
    rng: np.random.Generator, ids: np.ndarray, defaulted: np.ndarray, age_band: np.ndarray
) -> pd.DataFrame:
    labels = pd.DataFrame({"customer_id": ids, "defaulted": defaulted, "age_band": age_band})
    repeated = labels.iloc[rng.choice(len(labels), N_LABEL_DUPLICATES, replace=False)]
    labels = pd.concat([labels, repeated]).sort_values("customer_id", kind="mergesort")
    return labels.reset_index(drop=True)


def _money_text(amount: np.ndarray) -> np.ndarray:
    """Two decimals as in the brief's sample (-45.50, not -45.5); a null stays blank."""
    return np.where(np.isnan(amount), "", np.char.mod("%.2f", amount))


def generate(out_dir: Path) -> list[Path]:
    """Write transactions.csv and labels.csv into out_dir."""
    rng = np.random.default_rng(SEED)
    population = N_CUSTOMERS + N_UNKNOWN_CUSTOMERS
    ids = np.array([f"CUST{i:04d}" for i in range(1, population + 1)])
    traits = _traits(rng, population)
    defaulted = _defaults(rng, traits)
    age_band = _age_bands(np.random.default_rng([SEED, AGE_STREAM]), traits["z_income"].to_numpy())

    unlabeled = np.zeros(population, dtype=bool)
    unlabeled[rng.choice(population, N_UNKNOWN_CUSTOMERS, replace=False)] = True
    labeled = np.flatnonzero(~unlabeled)
    silent = rng.choice(labeled, N_CUSTOMERS_WITHOUT_TRANSACTIONS, replace=False)

    tx = _clean_transactions(rng, traits, ids)
    tx = tx[~tx["customer_id"].isin(ids[silent])].reset_index(drop=True)
    tx = _inject(rng, tx)
    labels = _labels(rng, ids[labeled], defaulted[labeled], age_band[labeled])
    tx["amount"] = _money_text(tx["amount"].to_numpy())
    return [
        write_csv(tx[TRANSACTION_COLUMNS], out_dir / TRANSACTIONS_FILE),
        write_csv(labels[LABEL_COLUMNS], out_dir / LABELS_FILE),
    ]
