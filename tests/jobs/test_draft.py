"""`python -m riskbento init`: a draft spec from a user's CSV that loads, passes the quality
report and trains unchanged, and tells the user what to review."""

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.names import BUILTIN_USE_CASES
from core.spec import FeatureType, MissingRule, Spec, load_spec
from jobs import quality
from jobs.draft import DraftError, draft_spec, write_draft
from riskbento.__main__ import main
from training.train import QUICK, train_use_case

# Each built-in is drafted from a sample of its own CSV, small enough to train in seconds.
SAMPLE_POSITIVES = 120
SAMPLE_NEGATIVES = 380
SAMPLE_UNLABELED = 40
# Findings that would mean the draft's own bounds, levels or types refuse its data.
SCHEMA_CHECKS = {"out_of_range", "unknown_level", "not_a_number", "not_an_integer"}


def _sample(table: pd.DataFrame, spec: Spec) -> pd.DataFrame:
    target = table[spec.target.column]
    positive = spec.target.is_positive(target)
    labeled = target.notna()
    parts = [
        table[positive].sample(min(SAMPLE_POSITIVES, int(positive.sum())), random_state=0),
        table[labeled & ~positive].sample(SAMPLE_NEGATIVES, random_state=0),
        table[~labeled].head(SAMPLE_UNLABELED),
    ]
    return pd.concat(parts).sort_index()


@pytest.fixture(scope="module")
def drafted(builtin_spec, tmp_path_factory) -> Callable[[str], tuple[Spec, Spec, Path]]:
    """`drafted("churn")` -> (the hand-written spec, the draft loaded, the draft's path):
    `init` run on a sample of the built-in's CSV (and its transactions, where it has some)."""
    done: dict[str, tuple[Spec, Spec, Path]] = {}

    def _get(use_case: str) -> tuple[Spec, Spec, Path]:
        if use_case not in done:
            builtin = builtin_spec(use_case)
            folder = tmp_path_factory.mktemp(use_case)
            table_path = builtin.resolve(builtin.data.table)
            table = _sample(pd.read_csv(table_path, dtype={builtin.id_column: "string"}), builtin)
            data = folder / table_path.name
            table.to_csv(data, index=False)
            transactions = None
            roles = builtin.data.transactions
            if roles is not None:
                raw_path = builtin.resolve(roles.path)
                raw = pd.read_csv(raw_path, dtype=str)
                transactions = folder / raw_path.name
                raw[raw[roles.columns.customer_id].isin(table[builtin.id_column])].to_csv(
                    transactions, index=False
                )
            positive = str(builtin.target.positive)
            draft = draft_spec(data, builtin.target.column, positive, transactions=transactions)
            path = write_draft(draft)
            done[use_case] = (builtin, load_spec(path), path)
        return done[use_case]

    return _get


@pytest.mark.parametrize("use_case", BUILTIN_USE_CASES)
def test_a_draft_of_each_builtin_recovers_its_hand_written_spec(drafted, use_case):
    """The types, levels and transaction roles a person wrote for each built-in are what the
    draft reads off the data; the only features it leaves out are transaction aggregates (of
    the built-in's own merchant categories, or constant in a sample of a few hundred)."""
    builtin, draft, path = drafted(use_case)
    assert path.name == f"{Path(builtin.data.table).stem}.yaml"  # beside the data, by default
    assert (draft.id_column, draft.target.column) == (builtin.id_column, builtin.target.column)
    assert draft.target.positive == builtin.target.positive
    for feature in builtin.features:
        if feature.name not in draft.feature_names:
            assert feature.name in builtin.aggregate_catalogue(), feature.name
            continue
        mine = draft.feature(feature.name)
        assert mine.type is feature.type, feature.name
        assert mine.integer == feature.integer, feature.name
        if feature.type is FeatureType.categorical:
            assert set(mine.levels) <= set(feature.levels), feature.name
    if builtin.data.transactions is not None:
        theirs, mine = builtin.data.transactions, draft.data.transactions
        assert mine.columns == theirs.columns
        assert (mine.debit_values, mine.credit_values) == (
            theirs.debit_values,
            theirs.credit_values,
        )
        assert set(mine.declined_values) == set(theirs.declined_values)


@pytest.mark.slow
@pytest.mark.parametrize("use_case", BUILTIN_USE_CASES)
def test_a_draft_of_each_builtin_passes_quality_and_trains_unchanged(drafted, use_case, tmp_path):
    _, draft, path = drafted(use_case)
    report = quality.run(path, tmp_path / "reports")
    refused = [f for f in report["findings"] if f["check"] in SCHEMA_CHECKS]
    assert not refused, refused  # the drafted bounds and levels accept every value seen

    trained = train_use_case(path, tmp_path / "reports", tmp_path / "outputs", QUICK)
    assert trained["model_tag"].startswith(f"{draft.name}:")
    assert [f["name"] for f in trained["features"]] == draft.feature_names
    assert trained["test"]["roc_auc"] > 0.6  # the drafted features carry the signal


# ---------------------------------------------------------------- a user's own CSV

N = 600


@pytest.fixture
def own_csv(tmp_path: Path) -> Path:
    """Customers as a user might export them: an id, an account number, a constant column,
    free text, a date, numbers mixed with text, a header with a space, a column whose blanks
    mean risk, one blank at random, and one that is the outcome in disguise."""
    rng = np.random.default_rng(7)
    bad = rng.random(N) < 0.2
    arrears_blank = rng.random(N) < np.where(bad, 0.7, 0.1)
    opened = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 1500, N), unit="D")
    frame = pd.DataFrame(
        {
            "customer_id": [f"C{i:05d}" for i in range(N)],
            "account_number": rng.permutation(np.arange(10_000_000, 10_000_000 + N)),
            "country": "FR",
            "income": rng.normal(40_000, 9_000, N).round(2) - bad * 8_000,
            "months_since_arrears": np.where(arrears_blank, np.nan, rng.integers(1, 120, N)),
            "score_blank_at_random": np.where(rng.random(N) < 0.15, np.nan, rng.normal(0, 1, N)),
            "segment": rng.choice(["retail", "premium", "student"], N),
            "opened_on": opened.strftime("%Y-%m-%d"),
            "notes": [f"called about {w} on day {d}" for w, d in zip(
                rng.choice(["fees", "card", "loan", "app"], N), rng.integers(0, 60, N),
                strict=True,
            )],
            "balance": np.where(rng.random(N) < 0.02, "?", rng.integers(0, 900, N).astype(str)),
            "Monthly Fee": rng.normal(20, 4, N).round(2),
            "in_collections": np.where(rng.random(N) < 0.02, ~bad, bad).astype(int),
            "defaulted": np.where(bad, "yes", "no"),
        }
    )  # fmt: skip
    path = tmp_path / "customers.csv"
    frame.to_csv(path, index=False)
    return path


def _init(*args: str) -> int:
    return main(["init", *args])


def test_columns_the_model_cannot_use_go_to_drop_with_the_reason(own_csv):
    draft = draft_spec(own_csv, "defaulted", "yes")
    spec = load_spec(write_draft(draft))
    assert spec.id_column == "customer_id"
    assert {k: v.split(":")[0] for k, v in draft.dropped.items()} == {
        "account_number": "id-like",
        "country": "constant",
        "opened_on": "datetime",
        "notes": "text",
        "balance": "numbers mixed with text",
        "Monthly Fee": "name",
    }
    assert set(spec.drop) == set(draft.dropped)
    assert "# REVIEW: id-like: unique per row\n  - account_number" in draft.text
    assert "# REVIEW: constant: always 'FR'\n  - country" in draft.text
    seen = pd.read_csv(own_csv)["segment"].value_counts()
    assert spec.feature("segment").levels == seen.index.tolist()  # most frequent first


def test_blanks_that_carry_risk_are_kept_native_and_random_ones_imputed(own_csv):
    spec = load_spec(write_draft(draft_spec(own_csv, "defaulted", "yes")))
    assert spec.feature("months_since_arrears").missing is MissingRule.native
    assert spec.feature("score_blank_at_random").missing is MissingRule.impute
    table = pd.read_csv(own_csv)
    labeled = table["defaulted"] == "yes"
    p = quality.missing_vs_target_test(table["months_since_arrears"].isna(), labeled)
    assert p < quality.MNAR_ALPHA  # the same test, the same verdict as the quality report


def test_a_column_that_gives_the_target_away_is_warned_about_with_its_auc(own_csv, capsys):
    assert _init(str(own_csv), "--target", "defaulted", "--positive", "yes") == 0
    err = capsys.readouterr().err
    assert "warning: in_collections nearly determines the target" in err
    auc = float(err.split("single-column ROC-AUC ")[1][:5])
    assert auc >= 0.95
    text = (own_csv.parent / "customers.yaml").read_text()
    assert "# WARNING: in_collections nearly determines the target" in text
    assert not any("WARNING" in line and "income" in line for line in text.splitlines())


def test_every_guess_and_placeholder_is_marked_for_review(own_csv):
    lines = draft_spec(own_csv, "defaulted", "yes").text.splitlines()
    for key in ("name:", "purpose:", "  missed_event:", "  false_alarm:", "  medium:", "  high:"):
        line = next(line for line in lines if line.startswith(key))
        assert "# REVIEW:" in line, line
    descriptions = [line for line in lines if line.strip().startswith("description:")]
    assert len(descriptions) == 6  # the target's and the five features'
    assert all("# REVIEW:" in line for line in descriptions)


def test_init_never_overwrites_a_spec(own_csv, capsys):
    args = [str(own_csv), "--target", "defaulted", "--positive", "yes"]
    assert _init(*args) == 0
    spec_file = own_csv.parent / "customers.yaml"
    spec_file.write_text("# my reviewed spec\n")
    capsys.readouterr()
    assert _init(*args) != 0
    assert f"error: {spec_file} already exists" in capsys.readouterr().err
    assert spec_file.read_text() == "# my reviewed spec\n"
    with pytest.raises(DraftError, match="already exists"):
        draft_spec(own_csv, "defaulted", "yes", out=spec_file)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--target", "default", "--positive", "yes"],
            "error: --target: column 'default' is not in customers.csv (columns: customer_id,",
        ),
        (
            ["--target", "defaulted", "--positive", "Yes"],
            "error: --positive: value 'Yes' never occurs in column 'defaulted' (values seen: "
            "'no' (",
        ),
        (
            ["--target", "in_collections", "--positive", "yes"],
            "error: --positive: column 'in_collections' holds numbers; expected one of its values",
        ),
        (
            ["--target", "defaulted", "--positive", "yes", "--id", "uuid"],
            "error: --id: column 'uuid' is not in customers.csv (columns: customer_id,",
        ),
        (
            ["--target", "defaulted", "--positive", "yes", "--out", "spec.json"],
            "error: --out: expected a .yaml or .yml file, got 'spec.json'",
        ),
    ],
)
def test_bad_input_says_what_was_expected_and_what_arrived(own_csv, capsys, args, expected):
    assert _init(str(own_csv), *args) == 2
    assert expected in capsys.readouterr().err
    assert not (own_csv.parent / "customers.yaml").exists()


def test_transaction_roles_are_guessed_from_unfamiliar_headers(own_csv, tmp_path):
    """A bank export with its own header names and DR/CR directions maps onto the roles,
    and the aggregates training will compute are listed as features."""
    customers = pd.read_csv(own_csv)["customer_id"]
    rng = np.random.default_rng(3)
    n = 4_000
    credit = rng.random(n) < 0.2
    tx = pd.DataFrame(
        {
            "Client": rng.choice(customers, n),
            "Txn Ref": [f"T{i:06d}" for i in range(n)],
            "Posted At": pd.Timestamp("2024-01-01")
            + pd.to_timedelta(rng.integers(0, 90 * 24 * 3600, n), unit="s"),
            "Txn Amount": rng.gamma(2.0, 40.0, n).round(2),
            "DC": np.where(credit, "CR", "DR"),
            "Narrative": np.where(credit, "SALARY ACME LTD", rng.choice(["TESCO 12", "RENT"], n)),
            "Branch": rng.choice(["north", "south"], n),
        }
    )
    tx_path = tmp_path / "statement.csv"
    tx.to_csv(tx_path, index=False)
    draft = draft_spec(own_csv, "defaulted", "yes", transactions=tx_path)
    spec = load_spec(write_draft(draft))
    roles = spec.data.transactions
    assert roles.columns.present() == {
        "customer_id": "Client",
        "amount": "Txn Amount",
        "transaction_id": "Txn Ref",
        "type": "DC",
        "description": "Narrative",
        "timestamp": "Posted At",
    }
    assert (roles.debit_values, roles.credit_values) == (["dr"], ["cr"])
    assert {"num_transactions", "total_credit", "has_salary", "share_groceries"} <= set(
        draft.from_transactions
    )
    assert "n_crypto" not in spec.feature_names  # never seen in this file: left out, said why
    assert "Not listed, always 0 in this data:" in draft.text
    assert "Not read by the aggregation: Branch." in draft.text
