"""The fairness report (training/fairness.py): group rates, adverse impact and the four-fifths
rule, too-small groups, bootstrap intervals, bands and proxies on hand-made frames whose
answers are known; and a real quick training run that writes the report."""

import json
from typing import Any

import bentoml
import numpy as np
import pandas as pd
import pytest

from core.spec import Protected, Spec
from features.tabular import prepare_frame
from model import store
from training import fairness

THRESHOLD = 0.5


def make_spec(protected: list[dict[str, Any]], **settings: Any) -> Spec:
    return Spec.model_validate(
        {
            "name": "hand_made",
            "purpose": "Fairness on known answers.",
            "data": {"table": "unused.csv"},
            "id_column": "id",
            "target": {"column": "event", "positive": 1},
            "features": [
                {"name": "x", "type": "numeric", "description": "A score."},
                {"name": "age", "type": "numeric", "min": 18, "max": 100, "description": "Age."},
            ],
            "costs": {"missed_event": 10, "false_alarm": 1},
            "tiers": {"medium": 0.2, "high": 0.6},
            "protected": protected,
            "fairness": settings,
        }
    )


def group_rows(group: str, rows: int, events: int, flagged_events: int, flagged_others: int):
    """`rows` customers of `group`: `events` risk events, of which `flagged_events` flagged;
    of the others, `flagged_others` flagged (p = 0.9 flagged, 0.1 not)."""
    y = np.r_[np.ones(events), np.zeros(rows - events)].astype(int)
    flag = np.r_[
        np.ones(flagged_events),
        np.zeros(events - flagged_events),
        np.ones(flagged_others),
        np.zeros(rows - events - flagged_others),
    ].astype(bool)
    return [group] * rows, y, np.where(flag, 0.9, 0.1)


def frame_of(*groups) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    sex = [value for g in groups for value in g[0]]
    y = np.concatenate([g[1] for g in groups])
    p = np.concatenate([g[2] for g in groups])
    frame = pd.DataFrame({"sex": sex, "x": p, "age": 40})
    return frame, y, p


# A: 100 rows, 10 events (8 flagged), 12 of 90 others flagged -> flag rate 0.20
# B: 100 rows, 20 events (15 flagged), 35 of 80 others flagged -> flag rate 0.50
# C: 10 rows: too small at min_group_rows 30
KNOWN = (
    group_rows("A", 100, 10, 8, 12),
    group_rows("B", 100, 20, 15, 35),
    group_rows("C", 10, 2, 2, 3),
)


def groups_by_name(result: fairness.FairnessResult, column: str = "sex") -> dict:
    attribute = next(a for a in result.attributes if a.column == column)
    return {g.group: g for g in attribute.groups}


def test_rates_air_and_four_fifths_against_the_most_favoured_group():
    frame, y, p = frame_of(*KNOWN)
    result = fairness.evaluate(make_spec(["sex"]), frame, y, p, THRESHOLD)
    groups = groups_by_name(result)
    a, b = groups["A"], groups["B"]
    assert (a.rows, a.events, a.flagged) == (100, 10, 20)
    assert a.flag_rate == pytest.approx(0.20) and b.flag_rate == pytest.approx(0.50)
    assert result.attributes[0].most_favoured == "A"
    assert a.adverse_impact_ratio == pytest.approx(1.0) and a.four_fifths_ok is True
    assert b.adverse_impact_ratio == pytest.approx(0.5 / 0.8)
    assert b.four_fifths_ok is False
    assert a.tpr == pytest.approx(8 / 10) and a.fpr == pytest.approx(12 / 90)
    assert b.tpr == pytest.approx(15 / 20) and b.fpr == pytest.approx(35 / 80)
    assert a.mean_predicted == pytest.approx(0.2 * 0.9 + 0.8 * 0.1)
    assert a.observed_rate == pytest.approx(0.10)
    summary = fairness.summary(result)["attributes"]["sex"]
    assert summary["below_four_fifths"] == ["B"]
    assert summary["min_air"] == pytest.approx(0.625)
    assert summary["too_small"] == ["C"]


def test_a_too_small_group_is_listed_with_its_counts_and_never_judged():
    frame, y, p = frame_of(*KNOWN)
    c = groups_by_name(fairness.evaluate(make_spec(["sex"]), frame, y, p, THRESHOLD))["C"]
    assert c.too_small
    assert (c.rows, c.events, c.flagged) == (10, 2, 5)
    assert c.flag_rate is None and c.adverse_impact_ratio is None and c.four_fifths_ok is None
    # C flags half its rows and is the least favoured; too small to be the reference either.
    frame, y, p = frame_of(KNOWN[1], group_rows("C", 10, 0, 0, 0))
    result = fairness.evaluate(make_spec(["sex"]), frame, y, p, THRESHOLD)
    assert result.attributes[0].most_favoured == "B"


def test_favourable_flagged_turns_the_air_around():
    frame, y, p = frame_of(*KNOWN)
    result = fairness.evaluate(make_spec(["sex"], favourable="flagged"), frame, y, p, THRESHOLD)
    groups = groups_by_name(result)
    assert result.attributes[0].most_favoured == "B"
    assert groups["A"].favourable_rate == pytest.approx(0.20)
    assert groups["A"].adverse_impact_ratio == pytest.approx(0.2 / 0.5)
    assert groups["A"].four_fifths_ok is False and groups["B"].four_fifths_ok is True


def test_bootstrap_interval_holds_the_estimate_and_is_reproducible():
    frame, y, p = frame_of(*KNOWN)
    spec = make_spec(["sex"], bootstrap_below_rows=150)
    first = groups_by_name(fairness.evaluate(spec, frame, y, p, THRESHOLD))
    again = groups_by_name(fairness.evaluate(spec, frame, y, p, THRESHOLD))
    b = first["B"]
    low, high = b.flag_rate_ci
    assert low < b.flag_rate < high and high - low < 0.3
    air_low, air_high = b.air_ci
    assert air_low < b.adverse_impact_ratio < air_high
    assert first["A"].air_ci is None  # the reference's AIR is 1 by definition
    assert (b.flag_rate_ci, b.air_ci) == (again["B"].flag_rate_ci, again["B"].air_ci)
    # A group's interval does not depend on which other groups are present.
    frame2, y2, p2 = frame_of(KNOWN[0], KNOWN[1])
    alone = groups_by_name(fairness.evaluate(spec, frame2, y2, p2, THRESHOLD))
    assert alone["B"].flag_rate_ci == b.flag_rate_ci
    # At or above bootstrap_below_rows, no interval.
    big = groups_by_name(
        fairness.evaluate(make_spec(["sex"], bootstrap_below_rows=100), frame, y, p, THRESHOLD)
    )
    assert big["B"].flag_rate_ci is None


def test_numeric_attribute_in_bands_with_a_blank_and_an_out_of_range_group():
    ages = pd.Series([18, 24.9, 25, 39, 40, 61, 62, 90, np.nan, 125, None])
    attribute = Protected(column="age", bands=[25, 40, 62])
    assert fairness.band_labels([25, 40, 62]) == ["<25", "25-40", "40-62", ">=62"]
    spec = make_spec([{"column": "age", "bands": [25, 40, 62], "use_as_feature": True, "why": "t"}])
    labels = fairness.groups_of(ages, attribute, spec.features[1])
    assert list(labels) == [
        "<25", "<25", "25-40", "25-40", "40-62", "40-62", ">=62", ">=62", "blank",
        "out of range", "blank",
    ]  # fmt: skip
    frame = pd.DataFrame({"age": ages, "x": 0.1})
    result = fairness.evaluate(
        spec, frame, np.zeros(len(frame)), np.full(len(frame), 0.1), THRESHOLD
    )
    attribute_result = result.attributes[0]
    assert [g.group for g in attribute_result.groups] == [
        "<25", "25-40", "40-62", ">=62", "out of range", "blank",
    ]  # fmt: skip
    assert attribute_result.missing_rows == 2
    assert sum(g.rows for g in attribute_result.groups) == len(frame)


def test_values_are_grouped_as_text_with_blanks_their_own_group():
    values = pd.Series([1.0, 0.0, np.nan, 1.0])
    assert list(fairness.groups_of(values, Protected(column="female"))) == ["1", "0", "blank", "1"]


def test_cramers_v_of_a_perfect_proxy_is_one_and_of_an_independent_column_about_zero():
    rng = np.random.default_rng(0)
    group = pd.Series(rng.choice(["F", "M", "X"], 5_000))
    assert fairness.cramers_v(group.map({"F": "a", "M": "b", "X": "c"}), group) == pytest.approx(1)
    independent = pd.Series(rng.choice(["p", "q", "r", "s"], 5_000))
    assert fairness.cramers_v(independent, group) < 0.03
    assert fairness.cramers_v(pd.Series(["k"] * 10), group[:10]) == 0.0


def test_proxies_rank_features_by_association_and_bin_numeric_ones():
    rng = np.random.default_rng(1)
    sex = rng.permutation(np.repeat(["F", "M"], 1_000))  # halves: no decile straddles both
    frame = pd.DataFrame(
        {
            "sex": sex,
            "x": np.where(sex == "F", 1.0, 5.0) + rng.random(2_000),  # a perfect numeric proxy
            "age": rng.integers(18, 90, 2_000).astype(float),
        }
    )
    frame.loc[:9, "age"] = np.nan  # blanks are their own bin
    found = fairness.proxies(make_spec(["sex"]), frame)
    assert [(x.feature, x.attribute) for x in found] == [("x", "sex"), ("age", "sex")]
    assert found[0].value == pytest.approx(1.0, abs=0.01)  # 10 bins x 2 groups: corrected < 1
    assert found[1].value < 0.1


def test_a_protected_column_that_is_not_a_feature_never_reaches_the_model():
    frame, *_ = frame_of(*KNOWN)
    spec = make_spec(["sex"])
    assert list(prepare_frame(frame, spec).columns) == ["x", "age"]


def test_report_follows_the_contract_and_names_its_model_and_data(tmp_path):
    frame, y, p = frame_of(*KNOWN)
    frame.loc[0, "x"] = np.nan
    result = fairness.evaluate(make_spec(["sex"]), frame, y, p, THRESHOLD)
    paths = fairness.write_report(result, tmp_path, "hand_made:v1", {"data.table": "ab" * 32})
    report = json.loads(paths["json"].read_text())
    check_contract(report, rows=len(y))
    text = paths["markdown"].read_text()
    assert "hand_made:v1" in text and "abababab" in text and "**below**" in text
    assert "too small" in text


def check_contract(report: dict, rows: int) -> None:
    top = {"use_case", "model_tag", "data_sha256", "split", "rows", "threshold", "settings"}
    assert top | {"attributes", "proxies", "summary"} <= set(report)
    assert report["split"] == "test" and report["rows"] == rows
    assert set(report["settings"]) >= {
        "min_group_rows", "bootstrap_below_rows", "four_fifths", "favourable",
    }  # fmt: skip
    group_keys = {
        "group", "rows", "events", "too_small", "flag_rate", "flag_rate_ci", "favourable_rate",
        "adverse_impact_ratio", "air_ci", "four_fifths_ok", "tpr", "fpr", "mean_predicted",
        "observed_rate",
    }  # fmt: skip
    for attribute in report["attributes"]:
        assert {"column", "use_as_feature", "why", "bands", "missing_rows", "most_favoured"} <= set(
            attribute
        )
        assert sum(g["rows"] for g in attribute["groups"]) == rows
        for g in attribute["groups"]:
            assert group_keys <= set(g)
            assert g["four_fifths_ok"] is None or isinstance(g["four_fifths_ok"], bool)
            if g["too_small"]:
                assert g["four_fifths_ok"] is None
    for proxy in report["proxies"]:
        assert set(proxy) == {"feature", "attribute", "measure", "value"}
        assert proxy["measure"] == "cramers_v"
    values = [x["value"] for x in report["proxies"]]
    assert values == sorted(values, reverse=True)


# ---------------------------------------------------------------- a real training run


@pytest.fixture(scope="module")
def credit_risk_fairness(trained_tag, trained_reports) -> tuple[str, dict, str]:
    tag = trained_tag("credit_risk")
    folder = trained_reports / "credit_risk"
    report = json.loads((folder / "fairness.json").read_text())
    return tag, report, (folder / "fairness.md").read_text()


@pytest.mark.slow
def test_training_writes_the_fairness_report_of_the_age_band(credit_risk_fairness):
    tag, report, markdown = credit_risk_fairness
    card = store.card(bentoml.models.get(tag))
    assert report["model_tag"] == tag and tag in markdown
    assert report["data_sha256"] == card.data_sha256
    check_contract(report, rows=card.test.rows)
    assert report["threshold"] == card.threshold.value
    (attribute,) = report["attributes"]
    assert attribute["column"] == "age_band" and attribute["use_as_feature"] is False
    assert {g["group"] for g in attribute["groups"]} == {"18-24", "25-39", "40-61", "62+"}
    assert {x["feature"] for x in report["proxies"]} == {f.name for f in card.features}
    assert card.fairness is not None and "age_band" in card.fairness["attributes"]
    # The protected column is data, never a model input.
    assert "age_band" not in {f.name for f in card.features}


def test_shipped_specs_declare_their_protected_attributes(builtin_spec):
    declared = {
        name: [(p.column, p.use_as_feature) for p in builtin_spec(name).protected]
        for name in ("churn", "default", "credit_risk", "offboarding")
    }
    assert declared == {
        "churn": [("female", True), ("senior_citizen", True)],
        "default": [("age", True)],
        "credit_risk": [("age_band", False)],
        "offboarding": [("age", True)],
    }
    assert builtin_spec("churn").fairness.favourable == "flagged"
    assert builtin_spec("default").protected[0].bands == [25, 40, 62]


def test_an_attribute_the_model_reads_is_checked_for_raising_its_own_groups_risk():
    """Re-scored with the typical age, old customers' probabilities fall where the model
    scores age up: the report counts them per group (the Regulation B 62+ check)."""
    from sklearn.linear_model import LogisticRegression

    from training.fairness import evaluate, own_value_effects, to_markdown

    AGE_SPEC = make_spec(
        [{"column": "age", "bands": [25, 62], "use_as_feature": True, "why": "tested"}]
    )
    rng = np.random.default_rng(3)
    X = pd.DataFrame({"age": rng.integers(18, 90, 2000).astype(float), "x": 0.0})
    y = (rng.random(2000) < 0.05 + 0.4 * (X["age"] > 70)).astype(int).to_numpy()
    model = LogisticRegression().fit(X, y)
    effects = own_value_effects(AGE_SPEC, model, X, X)
    old = (X["age"] >= 62).to_numpy()
    assert (effects["age"][old] > 0).all() and (effects["age"][~old & (X["age"] < 50)] < 0).all()
    p = model.predict_proba(X)[:, 1]
    result = evaluate(AGE_SPEC, X, y, p, 0.2, own_effects=effects)
    groups = {g.group: g for g in result.attributes[0].groups}
    assert groups[">=62"].own_value_raises == int((effects["age"][old] >= 0.001).sum()) > 0
    assert groups["<25"].own_value_raises == 0
    assert "Does `age` itself raise the risk?" in to_markdown(result, "m:1", {})
