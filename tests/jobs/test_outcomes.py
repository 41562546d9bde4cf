"""Outcomes (jobs/outcomes.py): matured labels joined to logged predictions by the stated
rule, every unused label counted by kind, numbers equal to core.metrics on the joined
rows, champion vs shadow by core.decision's paired test, the Prometheus file, the exit
codes, and the whole loop (traffic with outcomes, then outcomes) on a quick model.

Most tests write a hand-made log (JSON lines as PredictionLog writes them) of
filing_dropoff, whose model tags are not in the store: the job then uses the logged
decision and the spec's costs."""

import csv
import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core import metrics
from core.decision import decide
from core.names import PROJECT_ROOT, USECASES_DIRNAME
from core.spec import load_spec
from jobs import outcomes
from jobs.outcomes import (
    ALL,
    BELOW,
    EXIT_BELOW_FLOOR,
    EXIT_OK,
    EXIT_TOO_FEW_ROWS,
    EXIT_USER_ERROR,
    OUTCOME_METRICS,
    PROM_FILE,
    check,
)
from jobs.traffic import OUTCOME_WEEKS
from riskbento.__main__ import main

USE_CASE = "filing_dropoff"
ID = "user_id"
CHAMP, SHADOW_TAG = "filing_dropoff:champ", "filing_dropoff:shadow"
AS_OF = date(2024, 6, 1)
FAST = {"resamples": 20, "comparison_resamples": 100}


def _write_log(path: Path, rows: list[dict]) -> Path:
    """Rows as PredictionLog writes them; `role` only where given (older logs have none)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for r in rows:
            p = r["p"]
            row = {ID: r["id"], "probability": p, "prediction": int(p >= 0.5),
                   "risk_tier": "high" if p >= 0.5 else "medium" if p >= 0.2 else "low",
                   "model_tag": r.get("tag", CHAMP), "timestamp": r["ts"],
                   "request_id": "1", "trace_id": "0"}  # fmt: skip
            if "role" in r:
                row["role"] = r["role"]
            out.write(json.dumps(row) + "\n")
    return path


def _write_labels(path: Path, rows: list[tuple], header=(ID, "outcome", "outcome_date")) -> Path:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(rows)
    return path


# ---------------------------------------------------------------- the join rule


def test_each_tag_matches_its_latest_prediction_on_or_before_the_outcome_date(tmp_path):
    log = _write_log(
        tmp_path / "data.0.log",
        [
            {"id": "A", "ts": "2024-01-01T10:00:00", "p": 0.1},
            {"id": "A", "ts": "2024-01-10T10:00:00", "p": 0.2},  # the latest before: used
            {"id": "A", "ts": "2024-03-01T10:00:00", "p": 0.9},  # after the outcome
            {"id": "A", "ts": "2024-01-05T10:00:00", "p": 0.3, "tag": SHADOW_TAG, "role": "shadow"},
            {"id": "B", "ts": "2024-01-10T23:00:00", "p": 0.4},  # same day as the outcome
            {"id": "C", "ts": "2024-01-11T00:00:01", "p": 0.5},  # the day after the outcome
            {"id": "D", "ts": "2023-06-01T10:00:00", "p": 0.6},  # > 90 days before it
            {"id": "E", "ts": "2024-05-01T10:00:00", "p": 0.7},  # window open at as-of
            {"id": "G", "ts": "2024-01-02T10:00:00", "p": 0.8, "tag": SHADOW_TAG, "role": "shadow"},
        ],
    )  # fmt: skip
    labels = _write_labels(
        tmp_path / "labels.csv",
        [("A", 1, "2024-02-01"), ("B", 0, "2024-01-10"), ("C", 1, "2024-01-10"),
         ("D", 0, "2024-01-10"), ("E", 1, "2024-05-15"), ("F", 0, "2024-01-10"),
         ("G", 1, "2024-02-01")],
    )  # fmt: skip
    run = check(USE_CASE, labels, log, AS_OF, **FAST)
    assert run.labels.counts["unknown_id"] == 1  # F: never scored by any model
    assert run.tag_counts[CHAMP] == {
        "matched": 2, "no_prediction": 1, "before_prediction": 1, "outside_window": 1,
        "unmatured": 1,
    }  # fmt: skip
    assert run.tag_counts[SHADOW_TAG] == {
        "matched": 2, "no_prediction": 4, "before_prediction": 0, "outside_window": 0,
        "unmatured": 0,
    }  # fmt: skip
    matched, _ = outcomes.join(run.labels.frame, run.logged.frame, 90, AS_OF)
    got = {(r.tag, r.id): (r.p, r.vintage) for r in matched.itertuples()}
    assert got == {
        (CHAMP, "A"): (0.2, "2024-W02"),
        (CHAMP, "B"): (0.4, "2024-W02"),
        (SHADOW_TAG, "A"): (0.3, "2024-W01"),
        (SHADOW_TAG, "G"): (0.8, "2024-W01"),
    }
    assert {m.tag: m.role for m in run.models.values()} == {CHAMP: "champion", SHADOW_TAG: "shadow"}
    report = outcomes.markdown(run, {})
    assert "latest logged prediction for the id on or before the outcome date" in report


def test_bad_label_rows_are_counted_by_kind_and_never_used(tmp_path):
    days = [f"2024-01-{d:02d}T10:00:00" for d in range(1, 8)]
    log = _write_log(
        tmp_path / "data.0.log",
        [{"id": i, "ts": days[0], "p": 0.3} for i in ("K1", "K2", "H", "R", "L")],
    )
    labels = _write_labels(
        tmp_path / "labels.csv",
        [("K1", 1, "2024-02-01"), ("K2", 0, "2024-02-01"),
         ("", 1, "2024-02-01"),  # no id
         ("K1", "yes", "2024-02-01"),  # not 0 / 1
         ("K2", 0, "soon"),  # not a date
         ("H", 1, "2024-02-01"), ("H", 0, "2024-02-01"),  # conflicting
         ("R", 1, "2024-02-01"), ("R", 1, "2024-02-01"),  # an exact repeat
         ("L", 0, "2024-07-01")],  # after the as-of date
    )  # fmt: skip
    run = check(USE_CASE, labels, log, AS_OF, **FAST)
    assert run.labels.rows == 10
    assert run.labels.counts == {
        "blank_id": 1, "bad_outcome": 1, "bad_date": 1, "conflicting": 2, "repeated": 1,
        "after_as_of": 1, "unknown_id": 0,
    }  # fmt: skip
    assert run.labels.conflicting_ids == ["H"]
    assert run.labels.examples["bad_outcome"] == ["'yes'"]
    assert sorted(run.labels.frame["id"]) == ["K1", "K2", "R"]
    assert run.tag_counts[CHAMP]["matched"] == 3
    text = outcomes.markdown(run, {})
    assert "Conflicting ids: `H`." in text


def test_missing_columns_and_an_empty_join_are_one_line_errors(tmp_path, capsys):
    log = _write_log(tmp_path / "data.0.log", [{"id": "A", "ts": "2024-01-01T10:00:00", "p": 0.2}])
    no_date = _write_labels(tmp_path / "a.csv", [("A", 1)], header=(ID, "outcome"))
    args = ["outcomes", USE_CASE, "--log", str(log), "--as-of", "2024-06-01"]
    assert main([*args, "--labels", str(no_date)]) == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert "missing column(s) ['outcome_date']" in err and err.count("\n") == 1

    unmatured = _write_labels(tmp_path / "b.csv", [("A", 1, "2024-01-02"), ("Z", 0, "2024-01-02")])
    assert main([*args[:-1], "2024-02-01", "--labels", str(unmatured)]) == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert "no label of" in err and "matched a matured prediction" in err
    assert "1 unknown_id" in err and "1 unmatured" in err

    with pytest.raises(SystemExit) as exited:
        main([*args[:-1], "June", "--labels", str(unmatured)])
    assert exited.value.code == 2
    assert "invalid fromisoformat value: 'June'" in capsys.readouterr().err


# ---------------------------------------------------------------- the numbers


def _synthetic(
    tmp_path: Path, weeks: int, per_week: int, shadow: str | None = None, seed: int = 0
) -> tuple[Path, Path, pd.DataFrame]:
    """A champion (no role column, older format) with an informative score; with `shadow`
    "better" a shadow that knows the outcome better, "same" one that answers the same."""
    rng = np.random.default_rng(seed)
    start = datetime(2024, 1, 1, 9)  # a Monday: ISO week 2024-W01
    rows, labels, truth = [], [], []
    for i in range(weeks * per_week):
        ts = start + timedelta(days=7 * (i // per_week), minutes=i)
        y = int(rng.random() < 0.3)
        p = float(np.clip(0.3 + 0.15 * (y - 0.3) + rng.normal(0, 0.15), 0.01, 0.99))
        rows.append({"id": f"U{i}", "ts": ts.isoformat(), "p": p})
        if shadow:
            informed = float(np.clip(0.3 + 0.5 * (y - 0.3) + rng.normal(0, 0.1), 0.01, 0.99))
            q = p if shadow == "same" else informed
            rows.append({"id": f"U{i}", "ts": ts.isoformat(), "p": q, "tag": SHADOW_TAG})
            rows[-1]["role"] = "shadow"
        labels.append((f"U{i}", y, (ts + timedelta(days=30)).date().isoformat()))
        truth.append((f"U{i}", y, p))
    log = _write_log(tmp_path / "data.0.log", rows)
    truth_frame = pd.DataFrame(truth, columns=["id", "y", "p"])
    return log, _write_labels(tmp_path / "labels.csv", labels), truth_frame


def test_numbers_are_core_metrics_on_the_joined_rows(tmp_path):
    log, labels, truth = _synthetic(tmp_path, weeks=2, per_week=120)
    run = check(USE_CASE, labels, log, AS_OF, **FAST)
    spec = load_spec(USE_CASE, check_data=False)
    by_week = {v["vintage"]: v for v in run.vintages if v["model_tag"] == CHAMP}
    assert set(by_week) == {"2024-W01", "2024-W02", ALL}
    first = truth.iloc[:120]
    y, p = first["y"].to_numpy(), first["p"].to_numpy()
    flagged = p >= 0.5  # the logged decision: this tag is not in the store
    week = by_week["2024-W01"]
    assert week["rows"] == 120 and week["events"] == y.sum()
    assert week["roc_auc"] == pytest.approx(metrics.selection_score("roc_auc", y, p))
    assert week["pr_auc"] == pytest.approx(metrics.selection_score("pr_auc", y, p))
    assert week["brier"] == pytest.approx(metrics.selection_score("brier", y, p))
    assert week["ece"] == pytest.approx(metrics.expected_calibration_error(y, p))
    assert week["calibration_gap"] == pytest.approx(p.mean() - y.mean())
    assert week["cost_per_customer"] == pytest.approx(
        metrics.cost_per_customer(y, flagged, spec.costs)
    )
    low, high = week["intervals"]["roc_auc"]
    assert low < week["roc_auc"] < high
    assert by_week[ALL]["rows"] == 240
    tiers = [t for t in run.tiers if t["model_tag"] == CHAMP and t["vintage"] == ALL]
    assert sum(t["rows"] for t in tiers) == 240
    low_tier = truth[truth["p"] < 0.2]
    (row,) = [t for t in tiers if t["tier"] == "low"]
    assert row["observed"] == pytest.approx(low_tier["y"].mean())


def test_a_clearly_better_shadow_is_recommended_by_the_paired_test(tmp_path):
    log, labels, truth = _synthetic(tmp_path, weeks=1, per_week=300, shadow="better")
    run = check(USE_CASE, labels, log, AS_OF, **FAST)
    (c,) = run.comparisons
    assert (c.champion, c.shadow, c.paired) == (CHAMP, SHADOW_TAG, 300)
    assert c.decision.promote and c.recommendation.startswith(f"promote {SHADOW_TAG}")
    shadow_p = run.logged.frame.query("tag == @SHADOW_TAG").set_index("id").loc[truth["id"], "p"]
    again = decide(
        "roc_auc", truth["y"].to_numpy(), truth["p"].to_numpy(), shadow_p.to_numpy(), 100
    )
    assert (c.decision.gain, c.decision.margin) == pytest.approx((again.gain, again.margin))
    assert "shadow recommended for promotion" in outcomes.verdict(run)


def test_a_shadow_that_answers_the_same_is_not_recommended(tmp_path):
    log, labels, _ = _synthetic(tmp_path, weeks=1, per_week=300, shadow="same")
    (c,) = check(USE_CASE, labels, log, AS_OF, **FAST).comparisons
    assert not c.decision.promote and c.decision.gain == 0
    assert c.recommendation.startswith(f"keep {CHAMP}")


def test_report_files_and_prometheus_names(tmp_path):
    log, labels, _ = _synthetic(tmp_path, weeks=2, per_week=120, shadow="better")
    out = tmp_path / "report"
    outcomes.write_report(check(USE_CASE, labels, log, AS_OF, **FAST), out)
    assert {p.name for p in out.iterdir()} == {
        "outcomes.md", "outcomes.json", "outcomes.png", PROM_FILE,
    }  # fmt: skip
    samples = [line for line in (out / PROM_FILE).read_text().splitlines() if line[:1] != "#"]
    names = {line.split("{")[0].split(" ")[0] for line in samples}
    assert names == set(OUTCOME_METRICS)
    roc = 'riskbento_outcome_roc_auc{model_tag="filing_dropoff:champ",role="champion",'
    assert any(
        line.startswith(roc + 'use_case="filing_dropoff",vintage="2024-W01"}') for line in samples
    )
    report = json.loads((out / "outcomes.json").read_text())
    assert report["labels"]["sha256"] and report["log"]["files"] == [str(log)]
    assert report["join_rule"].startswith("For each label")


def _outcomes_args(labels: Path, log: Path, out: Path) -> list[str]:
    """`python -m riskbento outcomes` on the synthetic files, as of 2024-06-01."""
    return ["outcomes", USE_CASE, "--labels", str(labels), "--log", str(log),
            "--as-of", "2024-06-01", "--out", str(out)]  # fmt: skip


def test_a_champion_week_below_the_floor_exits_1(tmp_path, no_pushgateway):
    rng = np.random.default_rng(5)
    rows = [{"id": f"N{i}", "ts": f"2024-01-0{1 + i % 5}T10:00:00", "p": float(rng.random())}
            for i in range(200)]  # fmt: skip
    log = _write_log(tmp_path / "data.0.log", rows)
    labels = _write_labels(
        tmp_path / "labels.csv",
        [(f"N{i}", int(rng.random() < 0.5), "2024-02-01") for i in range(200)],
    )
    out = tmp_path / "report"
    assert main(_outcomes_args(labels, log, out)) == EXIT_BELOW_FLOOR
    text = (out / "outcomes.md").read_text()
    assert BELOW in text and "ROC-AUC" in text


def test_too_few_labels_to_judge_exits_3(tmp_path, no_pushgateway):
    log, labels, _ = _synthetic(tmp_path, weeks=1, per_week=20)
    assert main(_outcomes_args(labels, log, tmp_path / "r")) == EXIT_TOO_FEW_ROWS


# ---------------------------------------------------------------- the loop


@pytest.mark.slow
def test_traffic_with_outcomes_then_outcomes_runs_the_loop(
    trained_tag: Callable[[str], str], tmp_project: Path, tmp_path: Path, no_pushgateway
):
    tag = trained_tag(USE_CASE)
    spec_file = tmp_project / USECASES_DIRNAME / f"{USE_CASE}.yaml"
    log, labels = tmp_path / "log", tmp_path / "labels.csv"
    command = [sys.executable, "-m", "riskbento", "traffic", str(spec_file), "--out", str(log),
               "--model-tag", tag, "--outcomes", str(labels)]  # fmt: skip
    done = subprocess.run(
        command, cwd=PROJECT_ROOT, env=dict(os.environ), capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    written = pd.read_csv(labels, dtype=str)
    assert list(written.columns) == [ID, "outcome", "outcome_date"]
    out = tmp_path / "report"
    code = main(["outcomes", str(spec_file), "--labels", str(labels), "--log", str(log),
                 "--out", str(out)])  # fmt: skip
    report = json.loads((out / "outcomes.json").read_text())
    judged = [v for v in report["vintages"] if v["vintage"] != ALL and v["status"] in ("ok", BELOW)]
    assert code == (EXIT_BELOW_FLOOR if any(v["status"] == BELOW for v in judged) else EXIT_OK)
    assert len(judged) >= OUTCOME_WEEKS
    assert not any(report["labels"]["not_used"].values())  # a clean feed: nothing bad
    counts = report["per_model"][tag]
    assert counts["unmatured"] > 0  # early events of the week whose window is still open
    assert counts["matched"] + counts["unmatured"] == len(written)
    overall = next(v for v in report["vintages"] if v["vintage"] == ALL)
    assert overall["roc_auc"] > 0.6
