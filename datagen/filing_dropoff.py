"""Synthetic tax-filing sessions (brief 000, Taxfix): who drops off before filing?

One row per user who started a return this season: the brief's 11 columns, in
the brief's order, after a `user_id` the product needs to key predictions. The
brief promises a clean dataset, so nothing is injected; the only irregularities
are the skews real behaviour data has (log-normal income, Poisson-like session
counts, long-tailed time on the platform).

How a row comes about:

- `employment_type` is drawn first; `age` depends on it (students are young,
  retirees old) and `income` is log-normal around a median per employment type.
- `marital_status` depends on age; `previous_year_filing` is likelier for older
  users and for anyone with a payslip.
- An unobserved motivation `m ~ N(0, 1)` drives engagement:
  `number_of_sessions = 1 + Poisson(exp(0.6 + 0.3 m + device effect))`,
  `time_spent_on_platform` = sessions x log-normal minutes per session (longer
  for the self-employed, whose returns are longer), and
  `fields_filled_percentage = 100 * sigmoid(0.6 + 0.9 m + 0.25 log(sessions) + N(0, 0.6))`.
- Completion is Bernoulli(sigmoid(logit)) with
  `logit = b + 0.7 z(fields_filled) + 0.35 log(sessions) + 1.0 previous_year_filing
  + 1.6 (employment + device + referral effects) + 0.5 m`, where `z` standardises
  and `b` is solved so that `COMPLETION_RATE` of users complete. Motivation
  enters twice (through the observed engagement and directly), so a model sees
  most but not all of it: ROC-AUC lands around 0.8, not 1.
"""

from pathlib import Path

import numpy as np
import pandas as pd

from datagen.common import intercept_for_rate, sigmoid, write_csv

SEED = 20240500
N_USERS = 5_000
COMPLETION_RATE = 0.70  # so about 30 % drop off, the risk event
FILE_NAME = "filing_dropoff.csv"
ID_PREFIX = "U"

COLUMNS = [
    "user_id",
    "age",
    "income",
    "employment_type",
    "marital_status",
    "time_spent_on_platform",
    "number_of_sessions",
    "fields_filled_percentage",
    "previous_year_filing",
    "device_type",
    "referral_source",
    "completed_filing",
]

# employment type: share of users, (age mean, age sd), median income EUR, log-income sd,
# effect on completion (self-employed returns are long; students often only want a refund check)
EMPLOYMENT = {
    "full_time": (0.56, (40, 10), 48_000, 0.40, 0.25),
    "part_time": (0.16, (38, 12), 24_000, 0.45, 0.0),
    "self_employed": (0.11, (44, 10), 52_000, 0.70, -0.55),
    "unemployed": (0.06, (37, 12), 11_000, 0.50, -0.35),
    "student": (0.07, (23, 3), 9_000, 0.55, -0.30),
    "retired": (0.04, (69, 5), 21_000, 0.40, 0.10),
}
AGE_RANGE = (18, 85)

# device: share of users, effect on sessions (log scale), effect on completion
DEVICES = {
    "mobile": (0.58, 0.10, -0.20),
    "desktop": (0.32, -0.05, 0.30),
    "tablet": (0.10, 0.0, 0.0),
}
# referral: share of users, effect on completion (a friend's word brings committed users)
REFERRALS = {
    "organic_search": (0.40, 0.10),
    "friend_referral": (0.22, 0.35),
    "social_media_ad": (0.38, -0.30),
}

CONTEXT_WEIGHT = 1.6  # scales the employment, device and referral effects in the logit
MINUTES_PER_SESSION = 11.0  # median; self-employed spend longer per session
SELF_EMPLOYED_TIME_FACTOR = 1.6


def _draw(rng: np.random.Generator, options: dict, n: int) -> np.ndarray:
    """Draw option names with the probabilities in each option's first field."""
    names = list(options)
    shares = np.array([options[k][0] for k in names])
    return np.array(names, dtype=object)[rng.choice(len(names), size=n, p=shares / shares.sum())]


def _lookup(values: np.ndarray, options: dict, field: int) -> np.ndarray:
    return np.array([options[v][field] for v in values], dtype=float)


def _standardise(x: np.ndarray) -> np.ndarray:
    return (x - x.mean()) / x.std()


def _demographics(rng: np.random.Generator, n: int) -> pd.DataFrame:
    employment = _draw(rng, EMPLOYMENT, n)
    age_mean = np.array([EMPLOYMENT[e][1][0] for e in employment], dtype=float)
    age_sd = np.array([EMPLOYMENT[e][1][1] for e in employment], dtype=float)
    age = np.clip(np.rint(rng.normal(age_mean, age_sd)), *AGE_RANGE).astype(int)
    median = _lookup(employment, EMPLOYMENT, 2)
    spread = _lookup(employment, EMPLOYMENT, 3)
    income = np.round(median * np.exp(rng.normal(0.0, spread)), 2)

    # Marriage becomes likelier through the thirties; divorce needs a marriage first.
    p_married = 0.62 * sigmoid((age - 31) / 4)
    p_divorced = np.where(age >= 30, 0.11, 0.01)
    u = rng.random(n)
    marital = np.where(
        u < p_married, "married", np.where(u < p_married + p_divorced, "divorced", "single")
    )

    has_payslip = np.isin(employment, ["full_time", "part_time", "retired"])
    p_prev = sigmoid(-0.9 + 0.05 * (age - 30) + 0.9 * has_payslip)
    previous = (rng.random(n) < np.where(age <= 19, 0.05, p_prev)).astype(int)
    return pd.DataFrame(
        {
            "age": age,
            "income": income,
            "employment_type": employment,
            "marital_status": marital,
            "previous_year_filing": previous,
        }
    )


def _engagement(
    rng: np.random.Generator, employment: np.ndarray, device: np.ndarray, motivation: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = len(device)
    rate = np.exp(0.6 + 0.3 * motivation + _lookup(device, DEVICES, 1))
    sessions = 1 + rng.poisson(rate)
    per_session = MINUTES_PER_SESSION * np.exp(rng.normal(0.0, 0.5, n))
    per_session *= np.where(employment == "self_employed", SELF_EMPLOYED_TIME_FACTOR, 1.0)
    minutes = np.round(sessions * per_session, 1)
    filled = sigmoid(0.6 + 0.9 * motivation + 0.25 * np.log(sessions) + rng.normal(0.0, 0.6, n))
    return minutes, sessions, np.round(100 * filled, 1)


def _completion(
    rng: np.random.Generator, frame: pd.DataFrame, motivation: np.ndarray
) -> np.ndarray:
    # Context (returning filer, job, device, channel) carries about as much signal as
    # progress so far, so no single column decides the outcome.
    context = (
        _lookup(frame["employment_type"].to_numpy(), EMPLOYMENT, 4)
        + _lookup(frame["device_type"].to_numpy(), DEVICES, 2)
        + _lookup(frame["referral_source"].to_numpy(), REFERRALS, 1)
    )
    logit = (
        0.7 * _standardise(frame["fields_filled_percentage"].to_numpy())
        + 0.35 * np.log(frame["number_of_sessions"].to_numpy())
        + 1.0 * frame["previous_year_filing"].to_numpy()
        + CONTEXT_WEIGHT * context
        + 0.5 * motivation
    )
    shift = intercept_for_rate(logit, COMPLETION_RATE)
    return (rng.random(len(logit)) < sigmoid(logit + shift)).astype(int)


def build(rng: np.random.Generator, n: int = N_USERS) -> pd.DataFrame:
    """The whole table, columns in the published order."""
    frame = _demographics(rng, n)
    frame["device_type"] = _draw(rng, DEVICES, n)
    frame["referral_source"] = _draw(rng, REFERRALS, n)
    motivation = rng.normal(0.0, 1.0, n)
    minutes, sessions, filled = _engagement(
        rng, frame["employment_type"].to_numpy(), frame["device_type"].to_numpy(), motivation
    )
    frame["time_spent_on_platform"] = minutes
    frame["number_of_sessions"] = sessions
    frame["fields_filled_percentage"] = filled
    frame["completed_filing"] = _completion(rng, frame, motivation)
    frame["user_id"] = [f"{ID_PREFIX}{i:05d}" for i in range(1, n + 1)]
    return frame[COLUMNS]


INJECTED_PROBLEMS: dict[str, str] = {}


def generate(out_dir: Path) -> list[Path]:
    rng = np.random.default_rng(SEED)
    return [write_csv(build(rng), out_dir / FILE_NAME)]
