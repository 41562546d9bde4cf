"""The dashboard's aggregates job (`jobs/dashboard_data.py`), function by function on
hand-made log rows: what is counted, per day and tier, the latest answer per customer,
the action list's criteria, the top reasons, the drift table and the atomic write."""

import json
import os
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pathspec
import pytest
import yaml

from core.names import PROJECT_ROOT
from core.spec import ActionList, Rule, Tiers, load_spec
from jobs import dashboard_data as job
from serving import dashboard, security
from serving.predlog import PRODUCTION, SHADOW, SOURCE_COLUMN, SOURCES, production_rows

TAG = "credit_risk:new"


def row(i: int, day: str = "2026-01-02", tier: str = "low", p: float = 0.05, **extra) -> dict:
    return {
        "customer_id": f"C{i}",
        "probability": p,
        "prediction": int(p >= 0.15),
        "risk_tier": tier,
        "model_tag": TAG,
        "role": "champion",
        "source": PRODUCTION,
        "timestamp": f"{day}T10:00:{i % 60:02d}",
        **extra,
    }


def test_only_production_rows_of_the_champion_of_one_model_are_counted():
    rows = [
        row(1),
        row(2, role=SHADOW),
        row(3, source="dashboard-whatif"),
        row(4, source="dashboard-csv"),
        row(5, model_tag="credit_risk:old", timestamp="2025-12-31T00:00:00"),
        {k: v for k, v in row(6).items() if k != SOURCE_COLUMN},  # logged before the column
    ]
    kept, tag, excluded = job.split_rows(rows, "credit_risk", None)
    assert tag == TAG  # the model of the latest production row
    assert [r["customer_id"] for r in kept] == ["C1", "C6"]
    assert excluded == {
        "shadow": 1,
        "not_production": {"dashboard-whatif": 1, "dashboard-csv": 1},
        "other_models": {"credit_risk:old": 1},
    }
    kept, tag, _ = job.split_rows(rows, "credit_risk", "credit_risk:old")
    assert tag == "credit_risk:old" and [r["customer_id"] for r in kept] == ["C5"]


def test_no_model_of_the_use_case_leaves_no_tag():
    assert job.split_rows([row(1, model_tag="churn:x")], "credit_risk", None)[1] is None


def test_tier_mix_counts_each_day_and_tier():
    rows = [row(1, "2026-01-01", "high"), row(2, "2026-01-01"), row(3, "2026-01-02", "medium")]
    mix = job.tier_mix(rows, {"low": 0.6, "medium": 0.3, "high": 0.1})
    assert mix["days"] == [
        {"day": "2026-01-01", "low": 1, "medium": 0, "high": 1, "total": 2},
        {"day": "2026-01-02", "low": 0, "medium": 1, "high": 0, "total": 1},
    ]
    assert mix["training_shares"]["high"] == 0.1


def test_score_histogram_shares_and_reference():
    rows = [row(i, p=p) for i, p in enumerate([0.01, 0.02, 0.51, 0.99])]
    tiers = Tiers(medium=0.1, high=0.3)
    hist = job.score_histogram(rows, np.array([0.0, 1.0]), 0.2, tiers)
    assert sum(hist["observed"]) == 4 and hist["observed"][0] == 2 and hist["observed"][-1] == 1
    assert sum(hist["observed_share"]) == pytest.approx(1.0)
    assert hist["training_share"][0] == 0.5 and hist["training_share"][-1] == 0.5
    assert hist["edges"][0] == 0.0 and hist["edges"][-1] == 1.0
    assert job.score_histogram(rows, None, 0.2, tiers)["training_share"] is None


def test_the_latest_answer_of_each_customer_wins():
    rows = [
        row(1, "2026-01-03", "high", 0.5),
        row(1, "2026-01-04", "low", 0.01),
        row(2, "2026-01-04", "high", 0.6),
        row(2, "2026-01-01", "low", 0.02),
    ]
    latest = job.latest_per_customer(rows, "customer_id")
    assert {r["customer_id"]: r["risk_tier"] for r in latest} == {"C1": "low", "C2": "high"}


def test_the_action_list_is_the_high_tier_or_the_spec_criteria():
    spec = load_spec("credit_risk", check_data=False)
    customers = [
        row(1, tier="high", p=0.5, num_transactions=3),
        row(2, tier="high", p=0.35, num_transactions=30),
        row(3, tier="medium", p=0.2, num_transactions=1),
    ]
    listed, words = job.listed(spec.model_copy(update={"action_list": None}), customers)
    assert [c["customer_id"] for c in listed] == ["C1", "C2"] and words == "risk tier high"
    rule = Rule(feature="num_transactions", op="<", value=5, label="few transactions")
    criteria = ActionList(
        name="calls", title="Customers to call", min_probability=0.15, rules=[rule], min_rules=1
    )
    listed, words = job.listed(spec.model_copy(update={"action_list": criteria}), customers)
    assert [c["customer_id"] for c in listed] == ["C1", "C3"]
    assert words.startswith("Customers to call: probability ≥ 0.15") and "few transactions" in words


def test_top_reasons_count_only_what_raises_the_probability():
    answers = [
        {"reasons": [{"feature": "a", "effect": 0.2}, {"feature": "b", "effect": -0.1}]},
        {"reasons": [{"feature": "a", "effect": 0.1}, {"feature": "c", "effect": 0.05}]},
        {},
    ]
    top = job.top_reasons(answers)
    assert [(t["feature"], t["customers"]) for t in top] == [("a", 2), ("c", 1)]
    assert top[0]["mean_effect"] == pytest.approx(0.15)
    assert top[0]["share"] == pytest.approx(2 / 3)


def test_action_entries_carry_adverse_reasons_only_when_answered():
    plain = job.action_entry(row(1), {"reasons": [{"text": "x"}]}, "customer_id")
    assert "adverse_reasons" not in plain and plain["reasons"] == [{"text": "x"}]
    coded = job.action_entry(row(1), {"reasons": [], "adverse_reasons": []}, "customer_id")
    assert coded["adverse_reasons"] == []


def test_latest_drift_sorted_by_psi_and_says_when_missing(tmp_path: Path):
    missing = job.latest_drift(tmp_path, "credit_risk")
    assert missing["available"] is False and "drift" in missing["why"]
    folder = tmp_path / "credit_risk" / job.DRIFT_DIRNAME
    folder.mkdir(parents=True)
    columns = [
        {"column": "a", "type": "numeric", "psi": 0.01, "status": "ok", "bins": []},
        {"column": "b", "type": "numeric", "psi": 0.3, "status": "alert", "bins": []},
        {"column": "score", "type": "score", "psi": 0.12, "status": "warn", "bins": []},
    ]
    report = {"columns": columns, "written_at": "2026-01-05T00:00:00+00:00", "model_tag": TAG}
    (folder / job.DRIFT_FILE).write_text(json.dumps(report))
    drift = job.latest_drift(tmp_path, "credit_risk")
    assert [c["column"] for c in drift["columns"]] == ["b", "score", "a"]
    assert drift["written_at"] == "2026-01-05T00:00:00+00:00" and "bins" not in drift["columns"][0]


def test_unreadable_lines_are_skipped_and_counted(tmp_path: Path):
    log = tmp_path / "data.0.log"
    log.write_bytes(orjson.dumps(row(1)) + b"\n[1]\n\n" + orjson.dumps(row(2))[:20] + b"\n")
    rows, skipped = job.read_rows([log])
    assert [r["customer_id"] for r in rows] == ["C1"] and skipped == 2


def test_the_file_is_replaced_whole_or_not_at_all(tmp_path: Path):
    path = tmp_path / "dashboard" / "data.json"
    job.write_atomically({"a": 1}, path)
    assert json.loads(path.read_text()) == {"a": 1}
    assert oct(os.stat(path).st_mode & 0o777) == oct(0o644)
    with pytest.raises(TypeError):
        job.write_atomically({"a": object()}, path)  # fails while writing the temporary file
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in path.parent.iterdir()] == ["data.json"]


def test_the_served_file_is_where_the_job_writes_it(tmp_path: Path):
    assert dashboard.data_path(tmp_path, "churn") == tmp_path / "churn" / "dashboard" / "data.json"


@pytest.mark.parametrize("path", [*dashboard.SHELL_PATHS, dashboard.ASSETS_PATH + "app.js"])
def test_the_shell_and_its_assets_load_without_a_token(path: str):
    assert security._is_open({"path": path, "method": "GET"})


@pytest.mark.parametrize("path", ["/dashboard/api/data", "/dashboard/api/form", "/dashboardx"])
def test_the_data_endpoints_need_the_token(path: str):
    assert not security._is_open({"path": path, "method": "GET"})


def test_only_reading_the_shell_is_open():
    assert not security._is_open({"path": "/dashboard/", "method": "POST"})


def test_the_page_marks_its_calls_with_known_sources():
    app_js = (dashboard.STATIC_DIR / "assets" / "app.js").read_text()
    for source in SOURCES[1:]:
        assert f'"{source}"' in app_js
    assert '"X-Riskbento-Source"' in app_js


def test_no_asset_names_another_host():
    """Only the vendored library's licence comments name a web address."""
    for path in dashboard.STATIC_DIR.rglob("*"):
        if path.suffix in (".html", ".js", ".css"):
            text = path.read_text()
            for scheme in ("http://", "https://", "//fonts.", "//cdn"):
                if path.name == "chart.umd.min.js" and scheme == "https://":
                    continue  # `https://www.chartjs.org` and a GitHub link, in comments
                assert scheme not in text, f"{path.name} names {scheme}"


def test_the_bento_packs_the_dashboard_files():
    config = yaml.safe_load((PROJECT_ROOT / "bentofile.yaml").read_text())
    included = pathspec.PathSpec.from_lines("gitwildmatch", config["include"])
    files = [p for p in dashboard.STATIC_DIR.rglob("*") if p.is_file()]
    assert len(files) >= 5
    for path in files:
        assert included.match_file(path.relative_to(PROJECT_ROOT).as_posix()), path


def test_drift_reads_production_rows_only():
    """`production_rows` (what jobs/drift.py keeps): a row without a source is production."""
    frame = pd.DataFrame({SOURCE_COLUMN: [PRODUCTION, "dashboard-csv", None], "x": [1, 2, 3]})
    frame.attrs["files"] = ["data.0.log"]
    kept = production_rows(frame)
    assert kept["x"].tolist() == [1, 3] and kept.attrs["files"] == ["data.0.log"]
    old = pd.DataFrame({"x": [1, 2]})
    assert production_rows(old) is old
