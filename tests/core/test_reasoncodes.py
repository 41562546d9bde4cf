"""The spec's reason-code catalogue: a bad entry is refused with one error naming its key."""

from pathlib import Path

import pytest

from core.spec import SpecError, parse_spec

CODE = {"code": "R07", "text": "Too few months of history"}


def spec_with(reason_codes: dict) -> dict:
    return {
        "name": "toy",
        "purpose": "x",
        "data": {"table": "t.csv"},
        "id_column": "id",
        "target": {"column": "y", "positive": 1},
        "features": [
            {"name": "age", "type": "numeric", "missing": "reject", "description": "x"},
            {"name": "plan", "type": "categorical", "levels": ["a", "b"], "description": "x"},
        ],
        "costs": {"missed_event": 1, "false_alarm": 1},
        "tiers": {"medium": 0.3, "high": 0.6},
        "reason_codes": reason_codes,
    }


@pytest.mark.parametrize(
    ("reason_codes", "expected"),
    [
        ({"income": CODE}, "reason_codes.income: not a feature of this spec"),
        (
            {"age": {"below": CODE}, "plan": CODE},
            "reason_codes.plan: code 'R07' is already used by reason_codes.age",
        ),
        ({"age": {"code": "G1A2B3", "text": "x"}}, "has the form of a generated code"),
        ({"plan": {"above": CODE}}, "reason_codes.plan: above / below apply to numbers"),
        ({"age": {"code": "R07"}}, "code and text go together"),
        ({"age": {"above": CODE, "code": "R08", "text": "x"}}, "not both"),
        ({"age": {"blank": CODE}}, "reason_codes.age.blank: age's missing rule is reject"),
        ({"age": {"code": "R 7", "text": "x"}}, "reason_codes.age.code: String should match"),
    ],
)
def test_a_bad_reason_code_is_refused_naming_the_key(reason_codes, expected):
    with pytest.raises(SpecError) as err:
        parse_spec(spec_with(reason_codes), "toy", Path("."))
    problems = err.value.problems
    assert len(problems) == 1 and expected in problems[0], problems


def test_one_code_for_both_directions_of_one_feature_is_allowed():
    spec = parse_spec(spec_with({"age": {"above": CODE, "below": CODE}}), "toy", Path("."))
    assert spec.reason_codes["age"].above.code == spec.reason_codes["age"].below.code == "R07"
