"""Specs: good ones load, bad ones fail with an error that names the key and the problem."""

import copy
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from core.names import BUILTIN_USE_CASES
from core.spec import FeatureType, MissingRule, SpecError, load_spec

TABLE = pd.DataFrame(
    {
        "user_id": ["U1", "U2", "U3", "U4"],
        "age": [25, 40, 61, 33],
        "plan": ["basic", "plus", "basic", "yes"],
        "churned": ["yes", "no", "no", "yes"],
        "internal_score": [0.1, 0.2, 0.3, 0.4],
    }
)
TRANSACTIONS = pd.DataFrame(
    {
        "cust": ["U1", "U1", "U2"],
        "amt": [-10.0, 250.0, -3.5],
        "kind": ["debit", "credit", "debit"],
        "memo": ["TESCO 12", "SALARY", "NETFLIX"],
    }
)

GOOD: dict[str, Any] = {
    "name": "my_churn",
    "purpose": "Which subscribers will leave next month.",
    "data": {"table": "customers.csv"},
    "id_column": "user_id",
    "target": {"column": "churned", "positive": "yes"},
    "features": [
        {"name": "age", "type": "numeric", "min": 18, "max": 100, "description": "Age in years."},
        {
            "name": "plan",
            "type": "categorical",
            "levels": ["basic", "plus", "yes"],
            "description": "Subscription plan.",
        },
    ],
    "drop": ["internal_score"],
    "costs": {"missed_event": 120, "false_alarm": 10, "unit": "USD"},
    "tiers": {"medium": 0.3, "high": 0.6},
    "selection_metric": "roc_auc",
}


def write_spec(folder: Path, spec: dict[str, Any] | str, with_transactions: bool = False) -> Path:
    TABLE.to_csv(folder / "customers.csv", index=False)
    if with_transactions:
        TRANSACTIONS.to_csv(folder / "tx.csv", index=False)
    path = folder / "spec.yaml"
    path.write_text(spec if isinstance(spec, str) else yaml.safe_dump(spec), encoding="utf-8")
    return path


def problems_of(tmp_path: Path, spec: dict[str, Any] | str, **kwargs: Any) -> list[str]:
    with pytest.raises(SpecError) as err:
        load_spec(write_spec(tmp_path, spec, **kwargs))
    return err.value.problems


def changed(**edits: Any) -> dict[str, Any]:
    """A copy of GOOD with dotted keys replaced, e.g. changed(**{"target.column": "x"})."""
    spec = copy.deepcopy(GOOD)
    for dotted, value in edits.items():
        node = spec
        *parents, last = dotted.split(".")
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        node[int(last) if last.isdigit() else last] = value
    return spec


def test_good_spec_loads_with_paths_relative_to_the_spec(tmp_path):
    spec = load_spec(write_spec(tmp_path, GOOD))
    assert spec.feature_names == ["age", "plan"]
    assert spec.feature("plan").type is FeatureType.categorical
    assert spec.resolve(spec.data.table) == (tmp_path / "customers.csv").resolve()
    assert spec.feature("age").missing is MissingRule.impute


def test_yes_and_no_stay_strings_in_yaml(tmp_path):
    text = yaml.safe_dump(GOOD).replace("positive: 'yes'", "positive: yes")
    assert "positive: yes" in text
    assert load_spec(write_spec(tmp_path, text)).target.positive == "yes"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (changed(**{"target.postive": 1}), "target.postive: unknown key"),
        (changed(colour="red"), "colour: unknown key"),
        (
            changed(**{"features.0.min": "abc"}),
            "features[0] (age).min: Input should be a valid number",
        ),
        (changed(**{"features.0.type": "number"}), "features[0] (age).type: Input should be"),
        (changed(**{"features.0.min": 200}), "min (200.0) is greater than max (100.0)"),
        (changed(**{"features.1.levels": []}), "needs a non-empty list of levels"),
        (changed(**{"features.0.fill_value": 0}), "fill_value is required with missing: constant"),
        (changed(**{"tiers.medium": 0.7}), "tiers: Value error, medium (0.7) must be below high"),
        (
            changed(**{"costs.missed_event": -5}),
            "costs.missed_event: Input should be greater than 0",
        ),
        (changed(selection_metric="accuracy"), "selection_metric: Input should be"),
        (
            changed(features=[{"name": "user_id", "type": "binary", "description": "x"}]),
            "cannot be the id",
        ),
    ],
)
def test_bad_structure_names_the_key(tmp_path, spec, expected):
    assert any(expected in p for p in problems_of(tmp_path, spec)), problems_of(tmp_path, spec)


def test_missing_target_key_is_reported(tmp_path):
    spec = copy.deepcopy(GOOD)
    del spec["target"]
    assert problems_of(tmp_path, spec) == ["target: Field required"]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (changed(**{"features.0.name": "agee"}), "features[0] (agee): not a column of data.table"),
        (changed(**{"target.column": "left"}), "target.column: column 'left' is not in data.table"),
        (changed(**{"target.positive": "YES"}), "target.positive: value 'YES' never occurs"),
        (changed(drop=["nope"]), "drop[0]: column 'nope' is not in data.table"),
        (changed(**{"data.table": "other.csv"}), "data.table: file"),
    ],
)
def test_spec_that_does_not_match_its_data_names_the_key(tmp_path, spec, expected):
    assert any(expected in p for p in problems_of(tmp_path, spec)), problems_of(tmp_path, spec)


def test_every_problem_is_reported_at_once(tmp_path):
    spec = changed(colour="red", selection_metric="accuracy")
    assert len(problems_of(tmp_path, spec)) == 2


def test_repeated_yaml_key_is_rejected_not_silently_overwritten(tmp_path):
    text = yaml.safe_dump(GOOD) + "name: other\n"
    assert "appear more than once" in problems_of(tmp_path, text)[0]


def test_protected_attribute_used_as_feature_without_allowance_is_one_error(tmp_path):
    for protected in (["age"], [{"column": "age"}]):
        problems = problems_of(tmp_path, changed(protected=protected))
        assert len(problems) == 1, problems
        assert problems[0].startswith("protected[0] (age): is also a feature"), problems


def test_protected_attribute_as_feature_needs_why(tmp_path):
    problems = problems_of(tmp_path, changed(protected=[{"column": "age", "use_as_feature": True}]))
    assert len(problems) == 1 and problems[0].startswith("protected[0] (age):"), problems
    assert "use_as_feature needs `why`" in problems[0]


def test_protected_column_missing_from_the_table_names_the_key(tmp_path):
    problems = problems_of(tmp_path, changed(protected=["internal_score", "sex"]))
    assert problems == [
        "protected[1] (sex): column 'sex' is not in data.table (columns: user_id, age, plan, "
        "churned, internal_score)"
    ]


def test_protected_attributes_load_as_columns_with_bands(tmp_path):
    allowed = {"column": "age", "use_as_feature": True, "why": "Checked.", "bands": [25, 62]}
    spec = load_spec(write_spec(tmp_path, changed(protected=[allowed, "internal_score"])))
    assert [(p.column, p.use_as_feature) for p in spec.protected] == [
        ("age", True),
        ("internal_score", False),
    ]
    assert spec.protected[0].bands == [25, 62]
    assert "internal_score" not in spec.feature_names
    bad = dict(allowed, bands=[62, 25])
    assert "bands must be increasing" in problems_of(tmp_path, changed(protected=[bad]))[0]


def _with_transactions(features: list[dict[str, Any]], amount_column: str = "amt") -> dict:
    spec = changed(features=features)
    spec["data"]["transactions"] = {
        "path": "tx.csv",
        "columns": {"customer_id": "cust", "amount": amount_column, "type": "kind"},
    }
    return spec


def test_transaction_aggregates_are_valid_features(tmp_path):
    features = [
        {"name": "num_transactions", "type": "numeric", "min": 0, "description": "Count."},
        {"name": "has_salary", "type": "binary", "description": "Salary seen."},
    ]
    spec = load_spec(write_spec(tmp_path, _with_transactions(features), with_transactions=True))
    assert "share_gambling" in spec.aggregate_catalogue()


def test_transaction_role_missing_from_file_names_the_role(tmp_path):
    features = [{"name": "num_transactions", "type": "numeric", "description": "Count."}]
    spec = _with_transactions(features, amount_column="value")
    problems = problems_of(tmp_path, spec, with_transactions=True)
    assert any(p.startswith("data.transactions.columns.amount: column 'value'") for p in problems)


def test_unknown_aggregate_is_not_a_feature(tmp_path):
    features = [{"name": "has_yacht", "type": "binary", "description": "Owns a yacht."}]
    problems = problems_of(tmp_path, _with_transactions(features), with_transactions=True)
    assert "nor the transaction aggregates" in problems[0]


def test_unknown_builtin_name_lists_the_builtins():
    with pytest.raises(FileNotFoundError, match="credit_risk"):
        load_spec("no_such_use_case")


@pytest.mark.parametrize("use_case", BUILTIN_USE_CASES)
def test_builtin_spec_loads_against_its_generated_data(builtin_spec, use_case):
    spec = builtin_spec(use_case)
    assert spec.name == use_case
    assert all(f.description.strip() for f in spec.features)


def test_command_line_reports_a_bad_spec_without_a_traceback(tmp_path, capsys):
    from riskbento.__main__ import main

    spec = write_spec(tmp_path, changed(colour="red"))
    assert main(["quality", str(spec)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: invalid spec") and "colour: unknown key" in err
    assert "Traceback" not in err
