"""Synthetic Deblock-style bank: customers, their transactions, and who got SUSPENDED.

Two cohorts share one generating process. The labeled one (4,000 customers)
carries the final account `state`; the unlabeled one (1,500 customers, the
next review batch) does not, and is mildly younger and more into crypto.

Mechanism. Each customer gets hidden risk traits, partly driven by the profile
(young people, new accounts, basic KYC and paid acquisition channels are more
often recruited as money mules):

- `mule`: pass-through account; many incoming instant transfers from
  different people, each sent on within hours (to a person, a high-risk
  country, a crypto exchange or an ATM); some incoming ones get recalled.
- `gamble_rate`, `crypto_rate`: monthly betting and crypto trades.
- `decline_prop`: share of outgoing payments that are declined or reversed.
- `hr_sender`: regular transfers to high-risk jurisdictions.
- `hidden`: everything the bank knows that the data does not show (external
  alerts, KYC documents): standard normal noise.

The traits generate the transactions (90 days before the 2025-01-01 snapshot,
so a model only sees them through noisy counts) and the label:

    logit P(SUSPENDED) = b + 3.6 mule + 1.4 log1p(gamble_rate)
        + 0.4 log1p(crypto_rate) + 18 decline_prop + 2.2 hr_sender
        + 0.9 [account younger than 90 days] + 0.8 [kyc basic]
        - 0.5 [kyc enhanced] + 0.4 hidden

with b set so that 8 % of the labeled cohort is SUSPENDED. The unlabeled
cohort uses the same b, so its (unknown) rate follows from its shift: about 9 %.

Data problems a bank export really has are injected on purpose and listed in
`INJECTED_PROBLEMS`; their sizes are the module constants below.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from datagen.common import intercept_for_rate, sigmoid, write_csv

SEED = 1001
SUSPENDED_RATE = 0.08
SNAPSHOT = np.datetime64("2025-01-01T00:00:00", "s")
WINDOW_DAYS = 90
MAX_TX_PER_CUSTOMER = 80
DAY_SECONDS = 86_400
MONTH_DAYS = 30.0

LABELED_CUSTOMERS = "customers_labeled.csv"
UNLABELED_CUSTOMERS = "customers_unlabeled.csv"
LABELED_TRANSACTIONS = "transactions_labeled.csv"
UNLABELED_TRANSACTIONS = "transactions_unlabeled.csv"

CUSTOMER_COLUMNS = [
    "customer_id",
    "age",
    "country",
    "account_age_days",
    "kyc_level",
    "occupation",
    "onboarding_channel",
    "declared_income_band",
]
TARGET_COLUMN = "state"
TRANSACTION_COLUMNS = [
    "customer_id",
    "transaction_id",
    "timestamp",
    "amount",
    "currency",
    "direction",
    "channel",
    "description",
    "merchant_category",
    "counterparty_country",
    "status",
]

COUNTRIES = ["FR", "DE", "ES", "IT", "BE", "NL", "PT", "IE", "AT", "LU"]
COUNTRY_WEIGHTS = [0.52, 0.12, 0.09, 0.08, 0.05, 0.04, 0.04, 0.03, 0.02, 0.01]
# Illustrative jurisdictions under increased monitoring; none is "NA", which pandas reads as NaN.
HIGH_RISK_COUNTRIES = ["NG", "PA", "VN", "HT", "MM", "SY"]
REMITTANCE_COUNTRIES = ["MA", "TN", "SN", "PL", "RO", "TR", "GB", "US", "CH", "NG", "VN"]
TRAVEL_COUNTRIES = ["ES", "IT", "PT", "GB", "US", "CH", "MA", "TH"]
CURRENCY_OF = {"GB": "GBP", "US": "USD", "CH": "CHF", "MA": "MAD", "TH": "THB"}
TRAVEL_SHARE = 0.06

KYC_LEVELS = ["basic", "standard", "enhanced"]
OCCUPATIONS = ["employee", "self_employed", "business_owner", "student", "unemployed", "retired"]
CHANNELS = ["organic", "referral", "paid_social", "affiliate"]
INCOME_BANDS = ["under_20k", "20k_40k", "40k_70k", "over_70k"]
SALARY_BY_BAND = np.array([1300.0, 2300.0, 3800.0, 6500.0])
LEGIT_MAX_AMOUNT = 15_000.0
MIN_AMOUNT = 1.0

SURNAMES = [
    "Dupont", "Martin", "Bernard", "Petit", "Durand", "Leroy", "Moreau", "Simon",
    "Lefebvre", "Michel", "Garcia", "Muller", "Schmidt", "Rossi", "Fernandez", "Silva",
    "Nowak", "Popescu", "Kowalski", "Ahmed", "Nguyen", "Diallo", "Okafor", "Costa",
    "Romano", "Weber", "Fischer", "Janssens", "Peeters", "Lopez",
]  # fmt: skip
EMPLOYERS = [
    "ACME SAS", "Globex GmbH", "Initech SARL", "Umbrella SA", "Hooli Europe",
    "Soylent BV", "Vandelay Industries", "Wonka SAS", "Stark Europe", "Dunder Mifflin",
]  # fmt: skip
CITIES = ["Paris", "Lyon", "Marseille", "Lille", "Berlin", "Madrid", "Lisbon", "Milan", "Brussels"]
LOCAL = "LOCAL"  # merchant in the customer's country of residence

# (description, merchant_category, country); LOCAL means the customer's country.
GROCERS = [
    (name, "groceries", LOCAL)
    for name in [
        "Carrefour", "Carrefour City", "Lidl", "Aldi", "Auchan", "Monoprix", "E.Leclerc",
        "Intermarche", "Franprix", "Rewe", "Edeka", "Mercadona", "Albert Heijn", "Esselunga",
    ]
]  # fmt: skip
EVERYDAY = [
    ("Amazon", "shopping", "LU"),
    ("Fnac", "shopping", LOCAL),
    ("Zara", "shopping", LOCAL),
    ("Decathlon", "shopping", LOCAL),
    ("Ikea", "shopping", LOCAL),
    ("Apple.com", "shopping", "IE"),
    ("Uber", "transport", "NL"),
    ("SNCF Connect", "transport", "FR"),
    ("TotalEnergies", "transport", LOCAL),
    ("Deliveroo", "restaurants", LOCAL),
    ("Uber Eats", "restaurants", "NL"),
    ("McDonald's", "restaurants", LOCAL),
    ("Starbucks", "restaurants", LOCAL),
    ("Pharmacie du Centre", "health", LOCAL),
]
SUBSCRIPTIONS = [
    ("Netflix", "subscriptions", "NL"),
    ("Spotify", "subscriptions", "SE"),
    ("Disney Plus", "subscriptions", "NL"),
    ("Canal Plus", "subscriptions", "FR"),
    ("Deezer", "subscriptions", "FR"),
    ("YouTube Premium", "subscriptions", "IE"),
    ("Apple iCloud", "subscriptions", "IE"),
]
BILLS = [
    (name, "bills", LOCAL)
    for name in [
        "EDF",
        "Engie",
        "Orange",
        "SFR",
        "Free Mobile",
        "Bouygues Telecom",
        "AXA Assurance",
    ]
]
GAMBLING_OUT = [
    ("Bet365", "gambling", "GB"),
    ("Winamax", "gambling", "FR"),
    ("Betclic", "gambling", "MT"),
    ("Unibet", "gambling", "MT"),
    ("PokerStars", "gambling", "MT"),
    ("FDJ", "gambling", "FR"),
    ("PMU", "gambling", "FR"),
]
GAMBLING_IN = [
    ("Winamax payout", "gambling", "FR"),
    ("Betclic withdrawal", "gambling", "MT"),
    ("Unibet withdrawal", "gambling", "MT"),
    ("PokerStars cashout", "gambling", "MT"),
]
EXCHANGES = [("Binance", "MT"), ("Coinbase", "IE"), ("Kraken", "IE"), ("Bitpanda", "AT")]
COINS = ["BTC", "ETH", "SOL", "USDC"]
TRANSFER_CHANNELS = ["sepa_transfer", "instant_transfer", "international_transfer"]
# Outgoing payments that fail are "declined"; transfers that fail or are recalled are "reversed".
DECLINABLE_CHANNELS = ["card_payment", "atm", "crypto_buy", "direct_debit"]
BASE_RECALL_PROB = 0.005
MULE_RECALL_PROB = 0.08  # victims' banks claw back some of the money a mule receives


@dataclass(frozen=True)
class Spend:
    """Payments to a list of merchants: direction, channel and a lognormal amount in EUR."""

    merchants: list[tuple[str, str, str]]
    direction: str
    channel: str
    median: float
    sigma: float


GROCERY_SPEND = Spend(GROCERS, "OUT", "card_payment", 35.0, 0.7)
EVERYDAY_SPEND = Spend(EVERYDAY, "OUT", "card_payment", 30.0, 0.9)
SUBSCRIPTION_SPEND = Spend(SUBSCRIPTIONS, "OUT", "card_payment", 12.0, 0.4)
BILL_SPEND = Spend(BILLS, "OUT", "direct_debit", 60.0, 0.6)
BETS = Spend(GAMBLING_OUT, "OUT", "card_payment", 25.0, 1.0)
WINNINGS = Spend(GAMBLING_IN, "IN", "sepa_transfer", 80.0, 1.1)


@dataclass(frozen=True)
class Cohort:
    """One customer file: how many, where ids start, and its (mild) shift."""

    name: str
    customers_file: str
    transactions_file: str
    size: int
    first_number: int
    age_scale: float
    crypto_user_share: float
    paid_social_boost: float
    labeled: bool


LABELED = Cohort("labeled", LABELED_CUSTOMERS, LABELED_TRANSACTIONS, 4000, 1, 7.0, 0.42, 0.0, True)
# A later review batch, signed up while social-media ads and crypto marketing ran: younger,
# more crypto, more paid-social sign-ups.
UNLABELED = Cohort(
    "unlabeled", UNLABELED_CUSTOMERS, UNLABELED_TRANSACTIONS, 1500, 4001, 5.5, 0.50, 0.08, False
)
COHORTS = (LABELED, UNLABELED)

# Sizes of the injected problems, per file.
NO_TRANSACTION_CUSTOMERS = {LABELED_CUSTOMERS: 120, UNLABELED_CUSTOMERS: 45}
AGE_SENTINEL = 125  # birth date left at the 1900-01-01 default
AGE_SENTINEL_ROWS = {LABELED_CUSTOMERS: 7, UNLABELED_CUSTOMERS: 3}
NULL_INCOME_BAND = {LABELED_CUSTOMERS: 260, UNLABELED_CUSTOMERS: 95}
NULL_OCCUPATION = {LABELED_CUSTOMERS: 90, UNLABELED_CUSTOMERS: 35}
NULL_COUNTERPARTY_COUNTRY = {LABELED_TRANSACTIONS: 320, UNLABELED_TRANSACTIONS: 110}
EXACT_DUPLICATE_TRANSACTIONS = {LABELED_TRANSACTIONS: 60, UNLABELED_TRANSACTIONS: 20}
AMOUNT_OUTLIER_FACTOR = 100  # amount booked in cents instead of euros
AMOUNT_OUTLIER_SOURCE_MIN = 500.0  # only large amounts are scaled, so outliers clear 50,000
AMOUNT_OUTLIER_ROWS = {LABELED_TRANSACTIONS: 25, UNLABELED_TRANSACTIONS: 9}
MESSY_DESCRIPTION_ROWS = {LABELED_TRANSACTIONS: 3000, UNLABELED_TRANSACTIONS: 1100}
# Canonical descriptions never match this; every messy variant does.
MESSY_PATTERN = r"^CB |^VIR SEPA |^PRLV SEPA |REF\d{6}$|^\s|\s$|\s\s"

INJECTED_PROBLEMS: dict[str, str] = {
    "customers_without_transactions": (
        f"{NO_TRANSACTION_CUSTOMERS[LABELED_CUSTOMERS]} labeled and "
        f"{NO_TRANSACTION_CUSTOMERS[UNLABELED_CUSTOMERS]} unlabeled customers have no "
        "transaction in the 90-day window"
    ),
    "null_values": (
        f"declared_income_band blank for {NULL_INCOME_BAND[LABELED_CUSTOMERS]} + "
        f"{NULL_INCOME_BAND[UNLABELED_CUSTOMERS]} customers, occupation blank for "
        f"{NULL_OCCUPATION[LABELED_CUSTOMERS]} + {NULL_OCCUPATION[UNLABELED_CUSTOMERS]}, "
        f"counterparty_country blank on {NULL_COUNTERPARTY_COUNTRY[LABELED_TRANSACTIONS]} + "
        f"{NULL_COUNTERPARTY_COUNTRY[UNLABELED_TRANSACTIONS]} transactions (labeled + unlabeled)"
    ),
    "outliers": (
        f"age {AGE_SENTINEL} (default 1900 birth date) for {AGE_SENTINEL_ROWS[LABELED_CUSTOMERS]} "
        f"+ {AGE_SENTINEL_ROWS[UNLABELED_CUSTOMERS]} customers; "
        f"{AMOUNT_OUTLIER_ROWS[LABELED_TRANSACTIONS]} + "
        f"{AMOUNT_OUTLIER_ROWS[UNLABELED_TRANSACTIONS]} transaction amounts booked in cents "
        "(x100, all above 50,000 EUR)"
    ),
    "exact_duplicate_rows": (
        f"{EXACT_DUPLICATE_TRANSACTIONS[LABELED_TRANSACTIONS]} labeled and "
        f"{EXACT_DUPLICATE_TRANSACTIONS[UNLABELED_TRANSACTIONS]} unlabeled transaction rows "
        "exported twice, verbatim, next to the original"
    ),
    "messy_text": (
        f"{MESSY_DESCRIPTION_ROWS[LABELED_TRANSACTIONS]} labeled and "
        f"{MESSY_DESCRIPTION_ROWS[UNLABELED_TRANSACTIONS]} unlabeled descriptions in raw "
        "statement form: 'CB CARREFOUR 12/11', 'VIR SEPA ... REF123456', 'PRLV SEPA EDF ...', "
        "odd case and spacing"
    ),
    "distribution_shift": (
        "unlabeled cohort is younger (mean age 3.5 years lower, age PSI about 0.12), has more "
        f"crypto users ({UNLABELED.crypto_user_share:.0%} vs {LABELED.crypto_user_share:.0%} "
        "latent) and more paid-social sign-ups (26 % vs 20 %)"
    ),
}


def _choose(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One index per row of a (rows, options) probability matrix."""
    cumulative = np.cumsum(probs / probs.sum(axis=1, keepdims=True), axis=1)
    u = rng.random(len(probs))[:, None]
    return np.minimum((u > cumulative).sum(axis=1), probs.shape[1] - 1)


def _occupation_probs(age: np.ndarray) -> np.ndarray:
    base = np.tile([0.55, 0.11, 0.06, 0.06, 0.08, 0.02], (len(age), 1))
    young, old = age < 25, age >= 63
    base[young] = [0.38, 0.05, 0.01, 0.48, 0.08, 0.0]
    base[old] = [0.18, 0.06, 0.04, 0.0, 0.04, 0.68]
    return base


def _income_probs(occupation: np.ndarray) -> np.ndarray:
    table = np.array(
        [
            [0.15, 0.45, 0.30, 0.10],  # employee
            [0.25, 0.35, 0.25, 0.15],  # self_employed
            [0.10, 0.25, 0.30, 0.35],  # business_owner
            [0.85, 0.13, 0.02, 0.00],  # student
            [0.88, 0.10, 0.02, 0.00],  # unemployed
            [0.30, 0.45, 0.18, 0.07],  # retired
        ]
    )
    return table[occupation]


def _profiles(rng: np.random.Generator, cohort: Cohort) -> pd.DataFrame:
    n = cohort.size
    age = np.clip(np.round(18 + rng.gamma(2.4, cohort.age_scale, n)), 18, 90).astype(int)
    account_age = np.clip(np.round(1100 * rng.beta(1.1, 1.8, n)), 1, 1100).astype(int)
    country = rng.choice(len(COUNTRIES), n, p=COUNTRY_WEIGHTS)
    new = account_age < WINDOW_DAYS
    kyc_probs = np.column_stack(
        [0.14 + 0.30 * new, np.full(n, 0.62), 0.24 - 0.14 * new + 0.002 * (age - 18)]
    )
    kyc = _choose(rng, np.clip(kyc_probs, 0.01, None))
    occupation = _choose(rng, _occupation_probs(age))
    boost = cohort.paid_social_boost
    channel_probs = np.tile([0.45 - boost, 0.25, 0.20 + boost, 0.10], (n, 1))
    channel = _choose(rng, channel_probs)
    income = _choose(rng, _income_probs(occupation))
    return pd.DataFrame(
        {
            "customer_id": [f"C{cohort.first_number + i:06d}" for i in range(n)],
            "age": age,
            "country": np.array(COUNTRIES)[country],
            "account_age_days": account_age,
            "kyc_level": np.array(KYC_LEVELS)[kyc],
            "occupation": np.array(OCCUPATIONS)[occupation],
            "onboarding_channel": np.array(CHANNELS)[channel],
            "declared_income_band": np.array(INCOME_BANDS)[income],
            "_income_idx": income,
        }
    )


def _latent_traits(rng: np.random.Generator, prof: pd.DataFrame, cohort: Cohort) -> pd.DataFrame:
    """Hidden traits; mules are recruited among the young, the new and the lightly verified."""
    n = len(prof)
    age = prof["age"].to_numpy()
    student_or_jobless = prof["occupation"].isin(["student", "unemployed"]).to_numpy()
    paid = prof["onboarding_channel"].isin(["paid_social", "affiliate"]).to_numpy()
    mule_logit = (
        -3.6
        + 0.9 * (age < 25)
        + 0.8 * (prof["kyc_level"] == "basic").to_numpy()
        + 0.7 * (prof["account_age_days"] < 120).to_numpy()
        + 0.5 * student_or_jobless
        + 0.4 * paid
    )
    mule = rng.random(n) < sigmoid(mule_logit)
    gambler = rng.random(n) < 0.10 + 0.04 * (age < 35)
    gamble_rate = gambler * rng.lognormal(np.log(1.5), 1.0, n)
    crypto_user = rng.random(n) < cohort.crypto_user_share
    crypto_rate = crypto_user * rng.lognormal(np.log(0.9), 0.9, n)
    troubled = rng.random(n) < 0.08 + 0.10 * mule
    decline_prop = rng.beta(1.0, 35.0, n) + troubled * 0.25 * rng.beta(2.0, 3.0, n)
    hr_sender = rng.random(n) < 0.04 + 0.10 * mule
    return pd.DataFrame(
        {
            "mule": mule,
            "gamble_rate": gamble_rate,
            "crypto_rate": crypto_rate,
            "decline_prop": decline_prop,
            "hr_sender": hr_sender,
            "remitter": rng.random(n) < 0.08,
            "main_account": rng.random(n) < np.where(prof["occupation"] == "employee", 0.45, 0.2),
            "activity": rng.lognormal(0.0, 0.5, n),
            "night_prop": 0.03 + 0.12 * gambler + 0.18 * mule,
            "hidden": rng.standard_normal(n),
        }
    )


def _suspension_logit(prof: pd.DataFrame, lat: pd.DataFrame) -> np.ndarray:
    """The stated model of the module docstring, without its intercept."""
    kyc = prof["kyc_level"].to_numpy()
    return (
        3.6 * lat["mule"].to_numpy()
        + 1.4 * np.log1p(lat["gamble_rate"].to_numpy())
        + 0.4 * np.log1p(lat["crypto_rate"].to_numpy())
        + 18.0 * lat["decline_prop"].to_numpy()
        + 2.2 * lat["hr_sender"].to_numpy()
        + 0.9 * (prof["account_age_days"].to_numpy() < WINDOW_DAYS)
        + 0.8 * (kyc == "basic")
        - 0.5 * (kyc == "enhanced")
        + 0.4 * lat["hidden"].to_numpy()
    )


@dataclass
class _Rows:
    """Columns of a block of transactions, before they become a frame."""

    cust: np.ndarray
    direction: str
    channel: np.ndarray
    description: np.ndarray
    category: np.ndarray
    country: np.ndarray
    amount: np.ndarray
    seconds: np.ndarray | None = None  # offset from the window start; drawn later if None
    recall_prob: float = 0.0  # incoming money the sender's bank may claw back


def _poisson_counts(rng, monthly_rate, months) -> np.ndarray:
    return rng.poisson(np.asarray(monthly_rate) * months)


def _lognormal(rng, median: float, sigma: float, size: int) -> np.ndarray:
    return rng.lognormal(np.log(median), sigma, size)


def _const(value: str, size: int) -> np.ndarray:
    return np.full(size, value, dtype=object)


def _merchant_rows(rng, counts, spend: Spend, home) -> _Rows:
    cust = np.repeat(np.arange(len(counts)), counts)
    pick = rng.integers(0, len(spend.merchants), len(cust))
    desc, cat, where = (np.array(c, dtype=object) for c in zip(*spend.merchants, strict=True))
    country = where[pick].copy()
    local = country == LOCAL
    country[local] = home[cust[local]]
    travelling = local & (rng.random(len(cust)) < TRAVEL_SHARE)
    country[travelling] = rng.choice(TRAVEL_COUNTRIES, travelling.sum())
    return _Rows(
        cust,
        spend.direction,
        _const(spend.channel, len(cust)),
        desc[pick],
        cat[pick],
        country,
        _lognormal(rng, spend.median, spend.sigma, len(cust)),
    )


def _names(rng, size: int) -> np.ndarray:
    initials = np.array(list("ABCDEFGHJKLMNOPRSTVY"))[rng.integers(0, 20, size)]
    surnames = np.array(SURNAMES)[rng.integers(0, len(SURNAMES), size)]
    return np.char.add(np.char.add(initials, ". "), surnames).astype(object)


def _person_transfer_rows(rng, counts, direction, home, median, sigma, instant) -> _Rows:
    cust = np.repeat(np.arange(len(counts)), counts)
    n = len(cust)
    french = rng.random(n) < 0.5
    if direction == "IN":
        prefix = np.where(french, "Virement de ", "Transfer from ")
    else:
        prefix = np.where(french, "Virement a ", "Transfer to ")
    channel = np.where(rng.random(n) < instant, "instant_transfer", "sepa_transfer")
    abroad = rng.random(n) < 0.15
    country = np.where(abroad, rng.choice(COUNTRIES, n), home[cust]).astype(object)
    return _Rows(
        cust,
        direction,
        channel.astype(object),
        np.char.add(prefix, _names(rng, n).astype(str)).astype(object),
        _const("p2p_transfer", n),
        country,
        _lognormal(rng, median, sigma, n),
    )


def _international_rows(rng, counts, destinations, median) -> _Rows:
    cust = np.repeat(np.arange(len(counts)), counts)
    n = len(cust)
    return _Rows(
        cust,
        "OUT",
        _const("international_transfer", n),
        np.char.add("International transfer to ", _names(rng, n).astype(str)).astype(object),
        _const("international_transfer", n),
        rng.choice(destinations, n).astype(object),
        _lognormal(rng, median, 0.8, n),
    )


def _crypto_rows(rng, counts, direction, median) -> _Rows:
    """Trades in the app, or transfers to and from an outside exchange."""
    cust = np.repeat(np.arange(len(counts)), counts)
    n = len(cust)
    in_app = rng.random(n) < 0.7
    coin = rng.choice(COINS, n)
    exchange = rng.integers(0, len(EXCHANGES), n)
    names = np.array([e[0] for e in EXCHANGES])[exchange]
    where = np.array([e[1] for e in EXCHANGES])[exchange]
    verb, app_channel = ("buy", "crypto_buy") if direction == "OUT" else ("sell", "crypto_sell")
    link = "Transfer to " if direction == "OUT" else "Transfer from "
    desc = np.where(in_app, np.char.add(f"Crypto {verb} ", coin), np.char.add(link, names))
    return _Rows(
        cust,
        direction,
        np.where(in_app, app_channel, "sepa_transfer").astype(object),
        desc.astype(object),
        _const("crypto", n),
        np.where(in_app, "FR", where).astype(object),
        _lognormal(rng, median, 1.1, n),
    )


def _salary_rows(rng, counts, income_idx, home) -> _Rows:
    cust = np.repeat(np.arange(len(counts)), counts)
    n = len(cust)
    employer = np.array(EMPLOYERS)[rng.integers(0, len(EMPLOYERS), len(counts))][cust]
    prefix = rng.choice(["SALAIRE ", "Salary ", "Payroll "], len(counts))[cust]
    return _Rows(
        cust,
        "IN",
        _const("sepa_transfer", n),
        np.char.add(prefix, employer).astype(object),
        _const("salary", n),
        home[cust],
        SALARY_BY_BAND[income_idx[cust]] * rng.lognormal(0.0, 0.15, n),
    )


def _atm_rows(rng, counts, home) -> _Rows:
    cust = np.repeat(np.arange(len(counts)), counts)
    n = len(cust)
    city = rng.choice(CITIES, n)
    prefix = np.where(rng.random(n) < 0.5, "ATM withdrawal ", "Retrait DAB ")
    amount = np.maximum(20.0, np.round(_lognormal(rng, 60.0, 0.6, n) / 10) * 10)
    return _Rows(
        cust,
        "OUT",
        _const("atm", n),
        np.char.add(prefix, city).astype(object),
        _const("cash", n),
        home[cust],
        amount,
    )


def _topup_rows(rng, counts, home) -> _Rows:
    cust = np.repeat(np.arange(len(counts)), counts)
    n = len(cust)
    return _Rows(
        cust,
        "IN",
        _const("card_topup", n),
        _const("Top-up from external card", n),
        _const("top_up", n),
        home[cust],
        _lognormal(rng, 150.0, 0.8, n),
    )


def _mule_rows(rng, pairs, home, window_s) -> list[_Rows]:
    """Incoming transfers from many people, each forwarded within hours."""
    cust = np.repeat(np.arange(len(pairs)), pairs)
    n = len(cust)
    start = (rng.random(n) * np.maximum(window_s[cust] - 6 * 3600, 1)).astype(np.int64)
    incoming = _person_transfer_rows(rng, pairs, "IN", home, 450.0, 0.7, instant=0.8)
    incoming.amount = _lognormal(rng, 450.0, 0.7, n)
    incoming.seconds = start
    incoming.recall_prob = MULE_RECALL_PROB
    out_amount = incoming.amount * rng.uniform(0.85, 0.98, n)
    out_seconds = start + rng.integers(600, 6 * 3600, n)
    route = _choose(rng, np.tile([0.35, 0.30, 0.20, 0.15], (n, 1)))
    person = _person_transfer_rows(rng, pairs, "OUT", home, 1.0, 0.1, instant=1.0)
    abroad = _international_rows(rng, pairs, HIGH_RISK_COUNTRIES, 1.0)
    crypto = _crypto_rows(rng, pairs, "OUT", 1.0)
    cash = _atm_rows(rng, pairs, home)
    blocks = [person, abroad, crypto, cash]
    out = _Rows(
        cust,
        "OUT",
        *(
            np.choose(route, [getattr(b, field) for b in blocks])
            for field in ("channel", "description", "category", "country")
        ),
        out_amount,
        out_seconds,
    )
    return [incoming, out]


def _transaction_blocks(rng, prof: pd.DataFrame, lat: pd.DataFrame, window_days) -> list[_Rows]:
    months = window_days / MONTH_DAYS
    act = lat["activity"].to_numpy()
    main = lat["main_account"].to_numpy()
    home = prof["country"].to_numpy().astype(object)
    crypto = lat["crypto_rate"].to_numpy()
    gamble = lat["gamble_rate"].to_numpy()
    mule = lat["mule"].to_numpy()
    has_salary = main & prof["occupation"].isin(["employee", "self_employed", "business_owner"])
    income = prof["_income_idx"].to_numpy()

    def counts(rate):
        return _poisson_counts(rng, rate, months)

    remitter = lat["remitter"].to_numpy()
    hr_sender = lat["hr_sender"].to_numpy()
    # Salaries land here only when this is the customer's main account.
    salaries = rng.binomial(np.floor(months).astype(int) + 1, 0.9) * has_salary
    blocks = [
        _salary_rows(rng, salaries, income, home),
        _merchant_rows(rng, counts(act * np.where(main, 3.5, 1.6)), GROCERY_SPEND, home),
        _merchant_rows(rng, counts(act * np.where(main, 3.0, 1.8)), EVERYDAY_SPEND, home),
        _merchant_rows(rng, counts(np.where(main, 1.2, 0.5)), SUBSCRIPTION_SPEND, home),
        _merchant_rows(rng, counts(np.where(main, 1.5, 0.2)), BILL_SPEND, home),
        _atm_rows(rng, counts(act * 0.4), home),
        _topup_rows(rng, counts(np.where(main, 0.2, 1.0) * act), home),
        _person_transfer_rows(rng, counts(act * 0.35), "IN", home, 60.0, 1.0, instant=0.4),
        _person_transfer_rows(rng, counts(act * 0.5), "OUT", home, 50.0, 1.0, instant=0.4),
        _international_rows(rng, counts(remitter * 0.7), REMITTANCE_COUNTRIES, 250.0),
        _international_rows(rng, counts(hr_sender * 0.8), HIGH_RISK_COUNTRIES, 600.0),
        _crypto_rows(rng, counts(crypto * 0.65), "OUT", 150.0),
        _crypto_rows(rng, counts(crypto * 0.35), "IN", 250.0),
        _merchant_rows(rng, counts(gamble * 0.8), BETS, home),
        _merchant_rows(rng, counts(gamble * 0.2), WINNINGS, home),
    ]
    pairs = counts(mule * rng.lognormal(np.log(4.0), 0.5, len(prof)))
    blocks += _mule_rows(rng, pairs, home, window_days * DAY_SECONDS)
    return blocks


def _draw_seconds(rng, cust, night_prop, window_days) -> np.ndarray:
    """Offset from the window start: a random day, at night for some, else in waking hours."""
    n = len(cust)
    day = np.floor(rng.random(n) * window_days[cust]).astype(np.int64)
    night = rng.random(n) < night_prop[cust]
    hour_seconds = np.where(night, rng.random(n) * 5, 7 + rng.beta(2.0, 2.0, n) * 16.99) * 3600
    return day * DAY_SECONDS + hour_seconds.astype(np.int64)


def _frame_of(rng, blocks, lat, window_days) -> pd.DataFrame:
    """Stack the blocks; time, status and sign come from the customer's traits."""
    night_prop = lat["night_prop"].to_numpy()
    decline = lat["decline_prop"].to_numpy()
    parts = []
    for b in blocks:
        seconds = b.seconds
        if seconds is None:
            seconds = _draw_seconds(rng, b.cust, night_prop, window_days)
        fail_prob = (
            decline[b.cust] if b.direction == "OUT" else max(b.recall_prob, BASE_RECALL_PROB)
        )
        flagged = rng.random(len(b.cust)) < fail_prob
        declinable = np.isin(b.channel, DECLINABLE_CHANNELS)
        status = np.where(flagged, np.where(declinable, "DECLINED", "REVERSED"), "COMPLETED")
        parts.append(
            pd.DataFrame(
                {
                    "cust": b.cust,
                    "seconds": seconds,
                    "amount": b.amount,
                    "direction": b.direction,
                    "channel": b.channel,
                    "description": b.description,
                    "merchant_category": b.category,
                    "counterparty_country": b.country,
                    "status": status,
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def _cap_per_customer(rng, tx: pd.DataFrame) -> pd.DataFrame:
    """Keep at most MAX_TX_PER_CUSTOMER rows per customer, chosen at random."""
    tx = tx.assign(_key=rng.random(len(tx))).sort_values(["cust", "_key"], kind="stable")
    keep = tx.groupby("cust", sort=False).cumcount().to_numpy() < MAX_TX_PER_CUSTOMER
    return tx.loc[keep].drop(columns="_key")


def _transactions(rng, prof, lat, cohort: Cohort, first_tx: int) -> pd.DataFrame:
    """Transactions of one cohort, ids numbered from `first_tx`, sorted by customer and time."""
    n = len(prof)
    window_days = np.minimum(prof["account_age_days"].to_numpy(), WINDOW_DAYS)
    tx = _frame_of(rng, _transaction_blocks(rng, prof, lat, window_days), lat, window_days)
    silent = rng.choice(n, NO_TRANSACTION_CUSTOMERS[cohort.customers_file], replace=False)
    tx = tx.loc[~tx["cust"].isin(silent)]
    tx = _with_one_topup_for_empty(rng, tx, prof, lat, silent, window_days)
    tx = _cap_per_customer(rng, tx)
    window_start = SNAPSHOT - window_days.astype("timedelta64[D]")
    when = window_start[tx["cust"].to_numpy()] + np.minimum(
        tx["seconds"].to_numpy(), window_days[tx["cust"].to_numpy()] * DAY_SECONDS - 1
    ).astype("timedelta64[s]")
    tx = tx.assign(_when=when).sort_values(["cust", "_when"], kind="stable")
    amount = np.clip(tx["amount"].to_numpy(), MIN_AMOUNT, LEGIT_MAX_AMOUNT)
    currency = [CURRENCY_OF.get(c, "EUR") for c in tx["counterparty_country"]]
    is_card = (tx["channel"] == "card_payment").to_numpy()
    out = pd.DataFrame(
        {
            "customer_id": prof["customer_id"].to_numpy()[tx["cust"].to_numpy()],
            "transaction_id": [f"T{first_tx + i:08d}" for i in range(len(tx))],
            "timestamp": pd.Series(np.datetime_as_string(tx["_when"].to_numpy(), unit="s"))
            .str.replace("T", " ")
            .to_numpy(),
            "amount": np.round(amount, 2),
            "currency": np.where(is_card, currency, "EUR"),
            "direction": tx["direction"].to_numpy(),
            "channel": tx["channel"].to_numpy(),
            "description": tx["description"].to_numpy(),
            "merchant_category": tx["merchant_category"].to_numpy(),
            "counterparty_country": tx["counterparty_country"].to_numpy(),
            "status": tx["status"].to_numpy(),
        }
    )
    return out


def _with_one_topup_for_empty(rng, tx, prof, lat, silent, window_days) -> pd.DataFrame:
    """Only the chosen silent customers may end up with no transaction at all."""
    counts = np.bincount(tx["cust"].to_numpy(), minlength=len(prof))
    empty = (counts == 0) & ~np.isin(np.arange(len(prof)), silent)
    home = prof["country"].to_numpy().astype(object)
    extra = _frame_of(rng, [_topup_rows(rng, empty.astype(int), home)], lat, window_days)
    return pd.concat([tx, extra], ignore_index=True)


def _messy(rng, tx: pd.DataFrame, rows: int) -> pd.DataFrame:
    """Raw statement text for some rows, in the form each channel's export really uses."""
    pick = np.sort(rng.choice(len(tx), rows, replace=False))
    desc = tx["description"].to_numpy()[pick].astype(str)
    channel = tx["channel"].to_numpy()[pick]
    stamp = tx["timestamp"].to_numpy()[pick].astype(str)
    ref = rng.integers(100_000, 1_000_000, rows)
    upper = np.char.upper(desc)
    card = [f"CB {u} {t[8:10]}/{t[5:7]}" for u, t in zip(upper, stamp, strict=True)]
    transfer = [f"VIR SEPA {u} REF{r}" for u, r in zip(upper, ref, strict=True)]
    debit = [f"PRLV SEPA {u} REF{r}" for u, r in zip(upper, ref, strict=True)]
    spaced = ["  " + s.lower().replace(" ", "  ", 1) + " " for s in desc]
    text = np.select(
        [channel == "card_payment", np.isin(channel, TRANSFER_CHANNELS), channel == "direct_debit"],
        [card, transfer, debit],
        spaced,
    )
    new = tx["description"].to_numpy().copy()
    new[pick] = text
    return tx.assign(description=new)


def _inject_transaction_problems(rng, tx: pd.DataFrame, file: str) -> pd.DataFrame:
    tx = _messy(rng, tx, MESSY_DESCRIPTION_ROWS[file])
    big = np.flatnonzero(tx["amount"].to_numpy() >= AMOUNT_OUTLIER_SOURCE_MIN)
    scaled = rng.choice(big, AMOUNT_OUTLIER_ROWS[file], replace=False)
    amount = tx["amount"].to_numpy().copy()
    amount[scaled] = np.round(amount[scaled] * AMOUNT_OUTLIER_FACTOR, 2)
    country = tx["counterparty_country"].to_numpy().copy()
    country[rng.choice(len(tx), NULL_COUNTERPARTY_COUNTRY[file], replace=False)] = None
    tx = tx.assign(amount=amount, counterparty_country=country)
    twice = rng.choice(len(tx), EXACT_DUPLICATE_TRANSACTIONS[file], replace=False)
    order = np.sort(np.concatenate([np.arange(len(tx)), twice]), kind="stable")
    return tx.iloc[order].reset_index(drop=True)


def _inject_customer_problems(rng, prof: pd.DataFrame, file: str) -> pd.DataFrame:
    prof = prof.copy()
    n = len(prof)
    prof.loc[rng.choice(n, AGE_SENTINEL_ROWS[file], replace=False), "age"] = AGE_SENTINEL
    prof.loc[rng.choice(n, NULL_INCOME_BAND[file], replace=False), "declared_income_band"] = None
    prof.loc[rng.choice(n, NULL_OCCUPATION[file], replace=False), "occupation"] = None
    return prof


def generate(out_dir: Path) -> list[Path]:
    """Write both cohorts' customers and transactions into `out_dir`."""
    rng = np.random.default_rng(SEED)
    paths: list[Path] = []
    intercept = None
    first_tx = 1
    for cohort in COHORTS:
        prof = _profiles(rng, cohort)
        lat = _latent_traits(rng, prof, cohort)
        logit = _suspension_logit(prof, lat)
        if intercept is None:
            intercept = intercept_for_rate(logit, SUSPENDED_RATE)
        suspended = rng.random(len(prof)) < sigmoid(logit + intercept)
        tx = _transactions(rng, prof, lat, cohort, first_tx)
        first_tx += len(tx)
        tx = _inject_transaction_problems(rng, tx, cohort.transactions_file)
        customers = _inject_customer_problems(rng, prof[CUSTOMER_COLUMNS], cohort.customers_file)
        if cohort.labeled:
            customers[TARGET_COLUMN] = np.where(suspended, "SUSPENDED", "ACTIVE")
        paths.append(write_csv(customers, out_dir / cohort.customers_file))
        paths.append(write_csv(tx[TRANSACTION_COLUMNS], out_dir / cohort.transactions_file))
    return paths
