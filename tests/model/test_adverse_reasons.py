"""Adverse-action reasons: the factors that raise a customer's risk, with stable codes.

They must be exactly what re-scoring each record with one feature set to its typical
value gives (brute force through the fitted pipeline), strongest first, never a
feature that lowers the risk, and only for flagged customers unless asked.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.reasoncodes import ABOVE, BELOW, BLANK, LEVEL, catalogue, generated_code
from core.spec import parse_spec
from features.tabular import prepare_frame
from model.scorer import ADVERSE_SHOWN, MIN_EFFECT, Scorer
from training.train import assemble


def _scored_test_split(use_case: str, trained_tag, builtin_spec, rows: int = 300):
    spec = builtin_spec(use_case)
    data = assemble(spec)
    frame = data.frame[(data.split == "test").to_numpy()].head(rows).reset_index(drop=True)
    return Scorer.from_store(trained_tag(use_case)), frame


def _brute_force(
    scorer: Scorer, frame: pd.DataFrame
) -> tuple[list[list[tuple[str, float]]], dict[str, np.ndarray]]:
    """(feature, effect) of each record's risk-raising features, strongest first, by
    scoring the record again through the pipeline with one feature typical at a time;
    and every feature's effect on every record."""
    X = prepare_frame(frame, scorer.spec)
    p = scorer.pipeline.predict_proba(X)[:, 1]
    effects = {}
    for name in scorer.spec.feature_names:
        occluded = X.copy()
        occluded[name] = scorer.typical[name]
        effects[name] = p - scorer.pipeline.predict_proba(occluded)[:, 1]
    out = []
    for i in range(len(frame)):
        raising = sorted(
            ((n, e[i]) for n, e in effects.items() if e[i] >= MIN_EFFECT), key=lambda t: -t[1]
        )
        out.append(raising[:ADVERSE_SHOWN])
    return out, effects


@pytest.mark.parametrize("use_case", ["credit_risk", "default"])
def test_adverse_reasons_equal_brute_force_occlusion(trained_tag, builtin_spec, use_case):
    scorer, frame = _scored_test_split(use_case, trained_tag, builtin_spec)
    scorer.adverse_for_all = True  # every record, so many reasons are compared
    answers = scorer.score_frame(frame)
    expected, effects = _brute_force(scorer, frame)
    compared = 0
    for i, (answer, want) in enumerate(zip(answers, expected, strict=True)):
        got = [(r["feature"], r["effect"]) for r in answer["adverse_reasons"]]
        # The same strongest effects, in order; each named feature's own effect is that
        # effect (two features can raise the risk by exactly as much: either may be named).
        np.testing.assert_allclose([e for _, e in got], [e for _, e in want], rtol=0, atol=1e-9)
        for feature, effect in got:
            assert effects[feature][i] == pytest.approx(effect, abs=1e-9), (i, feature)
        compared += len(got)
    assert compared > len(frame) / 2, "too few adverse reasons to compare"


def test_adverse_reasons_carry_the_code_text_and_value_of_their_direction(
    trained_tag, builtin_spec
):
    scorer, frame = _scored_test_split("credit_risk", trained_tag, builtin_spec)
    scorer.adverse_for_all = True
    codes = catalogue(scorer.spec)
    for answer, (_, row) in zip(scorer.score_frame(frame), frame.iterrows(), strict=True):
        for reason in answer["adverse_reasons"]:
            name = reason["feature"]
            assert reason["value"] == pytest.approx(row[name])
            direction = ABOVE if row[name] > scorer.typical[name] else BELOW
            assert (reason["code"], reason["text"]) == (
                codes[name, direction].code,
                codes[name, direction].text,
            )
            assert reason["code"].startswith("CR")  # credit_risk declares every code


def test_only_flagged_customers_get_adverse_reasons_unless_asked(trained_tag, builtin_spec):
    scorer, frame = _scored_test_split("credit_risk", trained_tag, builtin_spec)
    answers = scorer.score_frame(frame)
    flagged = [a for a in answers if a["prediction"] == 1]
    assert flagged and len(flagged) < len(answers)
    assert all(a["adverse_reasons"] for a in flagged)
    assert not any(a["adverse_reasons"] for a in answers if a["prediction"] == 0)
    scorer.adverse_for_all = True
    everyone = scorer.score_frame(frame)
    assert any(a["adverse_reasons"] for a in everyone if a["prediction"] == 0)
    assert [a["adverse_reasons"] for a in everyone if a["prediction"] == 1] == [
        a["adverse_reasons"] for a in flagged
    ]


def test_the_batch_table_states_codes_texts_and_values(trained_tag, builtin_spec):
    scorer, frame = _scored_test_split("credit_risk", trained_tag, builtin_spec, rows=100)
    table = scorer.answer_table(frame)
    answers = scorer.score_frame(frame)
    for text, answer in zip(table["adverse_reasons"], answers, strict=True):
        assert text.count(" | ") == max(len(answer["adverse_reasons"]) - 1, 0)
        for reason in answer["adverse_reasons"]:
            assert f"{reason['code']}: {reason['text']}" in text


def _spec(features: list[dict], reason_codes: dict | None = None):
    return parse_spec(
        {
            "name": "toy",
            "purpose": "x",
            "data": {"table": "t.csv"},
            "id_column": "id",
            "target": {"column": "y", "positive": 1},
            "features": features,
            "costs": {"missed_event": 1, "false_alarm": 1},
            "tiers": {"medium": 0.3, "high": 0.6},
            "reason_codes": reason_codes or {},
        },
        "toy",
        Path("."),
    )


INCOME = {"name": "income", "type": "numeric", "description": "x", "missing": "native"}
PLAN = {"name": "plan", "type": "categorical", "levels": ["a", "b"], "description": "x"}
FLAG = {"name": "flag", "type": "binary", "description": "x", "missing": "reject"}


def test_generated_codes_depend_on_feature_and_direction_only():
    """A retrained model (other features, another order, declared codes elsewhere) keeps
    every generated code; the scheme itself is pinned."""
    first = catalogue(_spec([INCOME, PLAN]))
    retrained = catalogue(_spec([FLAG, PLAN, INCOME], {"flag": {"code": "F1", "text": "Flag set"}}))
    for key, reason in first.items():
        assert retrained[key].code == reason.code and not reason.declared
    # Pinned: a change of the scheme would renumber every notice already sent.
    assert generated_code("income", BELOW) == "GA7669"
    assert generated_code("income", ABOVE) != generated_code("income", BELOW)
    assert set(first) == {
        ("income", ABOVE), ("income", BELOW), ("income", BLANK), ("plan", LEVEL), ("plan", BLANK)
    }  # fmt: skip
    assert ("flag", BLANK) not in retrained  # a blank flag is refused, never scored


def test_declared_codes_win_per_direction():
    codes = catalogue(
        _spec([INCOME], {"income": {"below": {"code": "R07", "text": "Income too low"}}})
    )
    assert (codes["income", BELOW].code, codes["income", BELOW].text) == ("R07", "Income too low")
    assert codes["income", BELOW].declared
    assert codes["income", ABOVE].code == generated_code("income", ABOVE)
