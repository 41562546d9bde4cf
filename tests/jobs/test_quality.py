"""The data-quality checks: silent on clean data, and each injected problem is found and counted."""

import importlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.names import BUILTIN_USE_CASES
from core.spec import Spec, parse_spec
from jobs import quality

N = 2_000

SPEC = {
    "name": "toy",
    "purpose": "Toy risk model.",
    "data": {
        "table": "t.csv",
        "transactions": {
            "path": "tx.csv",
            "columns": {
                "customer_id": "customer_id",
                "amount": "amount",
                "type": "type",
                "transaction_id": "transaction_id",
            },
        },
    },
    "id_column": "customer_id",
    "target": {"column": "bad", "positive": 1},
    "features": [
        {"name": "income", "type": "numeric", "min": 0, "max": 1_000_000, "description": "x"},
        {"name": "segment", "type": "categorical", "levels": ["a", "b", "c"], "description": "x"},
        {"name": "has_app", "type": "binary", "description": "x"},
    ],
    "costs": {"missed_event": 10, "false_alarm": 1},
    "tiers": {"medium": 0.2, "high": 0.5},
}


@pytest.fixture
def spec() -> Spec:
    return parse_spec(SPEC, "toy", Path("."))


def clean_table(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "customer_id": [f"C{i:05d}" for i in range(N)],
            "income": rng.normal(40_000, 8_000, N).round(2),
            "segment": rng.choice(["a", "b", "c"], N),
            "has_app": rng.integers(0, 2, N),
            "bad": rng.binomial(1, 0.1, N),
        }
    )


def clean_transactions(customers: pd.Series, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ids = np.repeat(customers.to_numpy(), 3)
    kind = rng.choice(["debit", "credit"], len(ids))
    size = rng.lognormal(3, 0.5, len(ids)).round(2)
    return pd.DataFrame(
        {
            "customer_id": ids,
            "transaction_id": [f"T{i:07d}" for i in range(len(ids))],
            "amount": np.where(kind == "debit", -size, size),
            "type": kind,
        }
    )


def checks(findings: list[quality.Finding]) -> dict[str, int]:
    out: dict[str, int] = {}
    for f in findings:
        out[f.check] = out.get(f.check, 0) + f.count
    return out


def test_clean_data_has_no_findings(spec):
    table = clean_table()
    assert quality.table_findings(table, spec) == []
    tx_findings, coverage = quality.transaction_findings(
        clean_transactions(table["customer_id"]), spec, table["customer_id"]
    )
    assert tx_findings == []
    assert coverage["customers_without_transactions"] == 0
    shift, _ = quality.shift_findings(table, clean_table(seed=1), spec)
    assert shift == []


def test_table_problems_are_found_and_counted(spec):
    table = clean_table()
    table.loc[:9, "income"] = np.nan  # 10 nulls
    table.loc[10, "income"] = 5_000_000  # out of range and an outlier
    table.loc[11:13, "segment"] = "z"  # unknown level
    table.loc[14, "has_app"] = 2
    table.loc[15, "customer_id"] = table.loc[16, "customer_id"]  # one id, two different rows
    table = pd.concat([table, table.iloc[100:104]], ignore_index=True)  # 4 verbatim repeats
    found = checks(quality.table_findings(table, spec))
    assert found["null_values"] == 10
    assert found["exact_duplicate_rows"] == 4
    assert found["duplicate_ids"] == 1
    assert found["unknown_level"] == 3
    assert found["out_of_range"] == 2  # income 5M, has_app 2
    assert found["outliers"] == 1


def test_blanks_that_follow_the_target_are_flagged_not_at_random(spec):
    table = clean_table()
    rng = np.random.default_rng(3)
    blank = rng.random(N) < np.where(table["bad"] == 1, 0.6, 0.05)
    table.loc[blank, "income"] = np.nan
    found = {f.check: f for f in quality.table_findings(table, spec)}
    assert "missing_not_at_random" in found
    assert found["missing_not_at_random"].count == int(blank.sum())


def test_blanks_at_random_are_not_flagged(spec):
    table = clean_table()
    table.loc[np.random.default_rng(4).random(N) < 0.1, "income"] = np.nan
    assert "missing_not_at_random" not in checks(quality.table_findings(table, spec))


def test_transaction_problems_are_found_and_counted(spec):
    table = clean_table()
    tx = clean_transactions(table["customer_id"].iloc[5:])  # first 5 customers have none
    tx.loc[0, "amount"] = abs(tx.loc[0, "amount"]) * (1 if tx.loc[0, "type"] == "debit" else -1)
    tx.loc[1, "transaction_id"] = tx.loc[2, "transaction_id"]
    tx.loc[3, "amount"] = -1_000_000.0 if tx.loc[3, "type"] == "debit" else 1_000_000.0
    tx.loc[4, "customer_id"] = "STRANGER"
    tx = pd.concat([tx, tx.iloc[50:52]], ignore_index=True)
    found = checks(quality.transaction_findings(tx, spec, table["customer_id"])[0])
    assert found == {
        "sign_type_disagreement": 1,
        "duplicate_ids": 1,
        "outliers": 1,
        "exact_duplicate_rows": 2,
        "customers_without_transactions": 5,
        "unknown_customers": 1,
    }


def test_shifted_cohort_is_flagged(spec):
    shifted = clean_table(seed=1)
    shifted["income"] = shifted["income"] * 1.5
    shift, scores = quality.shift_findings(clean_table(), shifted, spec)
    assert [f.where for f in shift] == ["unlabeled.income"]
    assert scores["income"] > quality.PSI_SHIFT > scores["segment"]


# Problems the report is built to find; `messy_text` needs the text cleaner (features/).
DETECTABLE = {
    "exact_duplicate_rows",
    "duplicate_ids",
    "null_values",
    "outliers",
    "sign_type_disagreement",
    "missing_not_at_random",
    "customers_without_transactions",
    "distribution_shift",
}


@pytest.mark.slow
@pytest.mark.parametrize("use_case", BUILTIN_USE_CASES)
def test_report_finds_every_injected_problem(builtin_spec, tmp_project, tmp_path, use_case):
    builtin_spec(use_case)  # generates the data
    report = quality.run(tmp_project / "usecases" / f"{use_case}.yaml", tmp_path)
    injected = importlib.import_module(f"datagen.{use_case}").INJECTED_PROBLEMS
    found = {f["check"] for f in report["findings"]}
    assert (set(injected) & DETECTABLE) <= found
    assert (
        (tmp_path / use_case / "quality.md").read_text().startswith(f"# Data quality: {use_case}")
    )
    assert len(report["data"]["data.table"]["sha256"]) == 64
