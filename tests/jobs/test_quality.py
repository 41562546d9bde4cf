"""The data-quality checks: silent on clean data, and each injected problem is found and counted."""

import copy
import importlib
import re
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
import yaml

from core.names import BUILTIN_USE_CASES
from core.spec import FeatureType, Spec, parse_spec
from features import transactions as features_tx
from jobs import quality, quality_plots

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


# ---------------------------------------------------------------- plots of the data

DESCRIPTIONS = ["TESCO STORES 123", "NETFLIX.COM", "SALARY ACME LTD", "ATM CASH 9", "CAFE NERO"]


def described_transactions(customers: pd.Series, seed: int = 0) -> pd.DataFrame:
    tx = clean_transactions(customers, seed)
    tx["description"] = np.random.default_rng(seed).choice(DESCRIPTIONS, len(tx))
    return tx


def write_use_case(root: Path, table: pd.DataFrame, tx: pd.DataFrame) -> Path:
    """The toy spec with a description column and a feature built from the transactions,
    as a YAML file beside its two CSV files."""
    raw = copy.deepcopy(SPEC)
    raw["data"]["transactions"]["columns"]["description"] = "description"
    raw["target"]["description"] = "bad == 1: the toy loan went unpaid; more words here."
    raw["features"].append(
        {"name": "num_transactions", "type": "numeric", "min": 0, "description": "x"}
    )
    table.to_csv(root / "t.csv", index=False)
    tx.to_csv(root / "tx.csv", index=False)
    path = root / "toy.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def test_shares_per_class_sum_to_one_and_blanks_are_a_bar_of_their_own():
    rng = np.random.default_rng(0)
    big = pd.Series(rng.normal(0, 1, 900))
    big[:90] = np.nan
    small = pd.Series(rng.normal(1, 1, 100))
    s = quality_plots.distribution({"no": big, "yes": small}, FeatureType.numeric)
    assert s.kind == "histogram" and s.has_blank
    assert s.table.index[-1] == quality_plots.BLANK
    assert np.allclose(s.table.sum(), 1.0)  # within each class, whatever its size
    assert s.table.loc[quality_plots.BLANK, "no"] == pytest.approx(0.1)
    assert s.table.loc[quality_plots.BLANK, "yes"] == 0
    assert s.rows == {"no": 900, "yes": 100} and s.blanks == {"no": 90, "yes": 0}
    assert s.edges is not None and len(s.edges) == len(s.table)  # bins + 1 edges, one blank


def test_no_blank_bar_without_blanks_and_levels_as_bars():
    levels = quality_plots.distribution(
        {"no": pd.Series(["a", "b", "b", "z"]), "yes": pd.Series(["c"])},
        FeatureType.categorical,
        ["a", "b", "c"],
    )
    assert levels.kind == "bars" and not levels.has_blank
    assert list(levels.table.index) == ["a", "b", "c", "z"]  # the spec's order, then unknown
    assert levels.table.loc["b", "no"] == pytest.approx(0.5)
    assert np.allclose(levels.table.sum(), 1.0)
    flags = quality_plots.distribution(
        {"no": pd.Series([0.0, 1.0, 1.0]), "yes": pd.Series([1, np.nan])}, FeatureType.binary
    )
    assert list(flags.table.index) == ["0", "1", quality_plots.BLANK]
    assert flags.table.loc[quality_plots.BLANK, "yes"] == pytest.approx(0.5)
    counts = quality_plots.distribution(
        {"no": pd.Series([0, 1, 2, 2]), "yes": pd.Series([5])}, FeatureType.numeric
    )
    assert counts.kind == "bars" and list(counts.table.index) == ["0", "1", "2", "5"]


def test_many_levels_fold_into_one_bar():
    values = pd.Series([f"l{i:02d}" for i in range(40) for _ in range(i + 1)])
    s = quality_plots.distribution({"all": values}, FeatureType.categorical)
    assert len(s.table) == quality_plots.MAX_LEVELS
    assert s.table.index[-1].startswith("other (21 levels)")
    assert s.table["all"].sum() == pytest.approx(1.0)


def test_classes_are_named_from_the_spec_not_0_and_1(spec):
    names = quality_plots.class_names(
        spec.target.model_copy(update={"description": "bad == 1: the loan went unpaid; etc."})
    )
    assert (names.negative, names.positive) == ("bad ≠ 1", "bad = 1")
    assert names.legends[names.positive] == "bad = 1: the loan went unpaid"


def test_the_side_by_side_panel_needs_rows_to_score(spec):
    table = clean_table()
    names = quality_plots.class_names(spec.target)
    positive = spec.target.is_positive(table["bad"]).to_numpy()
    feature = spec.feature("income")
    alone = quality_plots.feature_panels(feature, table["income"], positive, names, None)
    assert [set(p.shares.table.columns) for p in alone] == [{names.negative, names.positive}]
    both = quality_plots.feature_panels(
        feature, table["income"], positive, names, clean_table(seed=1)["income"]
    )
    assert len(both) == 2
    assert list(both[1].shares.table.columns) == [quality_plots.LABELED, quality_plots.TO_SCORE]


def test_amount_by_category_uses_the_features_keyword_map(spec):
    table = clean_table()
    tx = described_transactions(table["customer_id"])
    roles = spec.data.transactions.model_copy(
        update={"columns": spec.data.transactions.columns.model_copy(update={"description": "d"})}
    )
    clean, _ = features_tx.clean_transactions(tx.rename(columns={"description": "d"}), roles, None)
    classes = pd.Series(np.where(table["bad"] == 1, "yes", "no"), index=table["customer_id"])
    stats = quality_plots.amount_by_category(clean, classes, roles.categories)
    found = stats.set_index(["category", "group"])
    bad = tx["customer_id"].map(classes.to_dict()).to_numpy()
    for text, category in [
        ("TESCO STORES 123", "groceries"),
        ("NETFLIX.COM", "subscriptions"),
        ("CAFE NERO", quality_plots.NO_CATEGORY),
    ]:
        for group in ("no", "yes"):
            rows = tx[(tx["description"] == text) & (bad == group)]
            assert found.loc[(category, group), "transactions"] == len(rows)
            median = found.loc[(category, group), "median"]
            assert median == pytest.approx(rows["amount"].abs().median())
    assert stats["transactions"].sum() == len(tx)  # one category each here


def test_report_links_a_png_per_feature_and_the_transaction_plots(tmp_path):
    table = clean_table()
    table.loc[:49, "income"] = np.nan
    table.loc[N - 300 :, "bad"] = np.nan  # rows to score
    path = write_use_case(tmp_path, table, described_transactions(table["customer_id"]))
    report = quality.run(path, tmp_path / "reports")
    folder = tmp_path / "reports" / "toy"
    markdown = (folder / "quality.md").read_text(encoding="utf-8")
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown)
    drawn = ("income", "segment", "has_app", "num_transactions")
    expected = {f"quality/feature_{f}.png" for f in drawn} | {
        f"quality/{quality_plots.TX_PER_CUSTOMER_FILE}",
        f"quality/{quality_plots.TX_AMOUNT_FILE}",
    }
    assert set(links) == expected == {p["file"] for p in report["plots"]}
    assert {f"quality/{p.name}" for p in (folder / "quality").iterdir()} == expected
    for link in links:
        assert (folder / link).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        image = matplotlib.image.imread(folder / link)
        assert image.ndim == 3 and min(image.shape[:2]) > 100
    captions = {p["title"]: p["caption"] for p in report["plots"]}
    labeled = table[table["bad"].notna()]
    for name, rows in [
        ("bad ≠ 1", labeled[labeled["bad"] != 1]),
        ("bad = 1", labeled[labeled["bad"] == 1]),
    ]:
        blank = int(rows["income"].isna().sum())
        assert f"`{name}` {len(rows):,} rows, {blank:,} blank" in captions["income"]
    assert "`to be scored` 300 rows, 0 blank" in captions["income"]
    assert "to be scored" in captions["segment"]
    assert "to be scored" not in captions["transactions per customer"]
    assert "(built from the transactions)" in captions["num_transactions"]
    assert "(built from" not in captions["income"]


def test_without_transactions_or_rows_to_score_only_the_features_are_drawn(tmp_path):
    raw = copy.deepcopy(SPEC)
    del raw["data"]["transactions"]
    plain = parse_spec(raw, "toy", Path("."))
    folder = tmp_path / "quality"
    folder.mkdir()
    (folder / "feature_gone.png").write_bytes(b"stale")
    table = clean_table()
    plots = quality_plots.write_plots(plain, table, table.iloc[:0], None, None, folder)
    assert [p.file for p in plots] == [
        f"quality/feature_{f}.png" for f in ("income", "segment", "has_app")
    ]
    assert not any("to be scored" in p.caption for p in plots)
    assert sorted(p.name for p in folder.iterdir()) == sorted(Path(p.file).name for p in plots)


def test_cohort_shift_of_a_number_column_with_stray_text_counts_the_numbers():
    labeled = pd.Series(["1", "2", "?", "4"] * 30)  # "?" is what an export writes for blank
    scored = pd.Series(["1", "n/a", "3"] * 20)
    shift = quality.cohort_psi(labeled, scored, categorical=False)
    numbers_only = quality.cohort_psi(
        pd.Series([1.0, 2.0, 4.0] * 30), pd.Series([1.0, 3.0] * 20), categorical=False
    )
    assert shift == pytest.approx(numbers_only)
