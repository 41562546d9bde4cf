"""The training report: Markdown + JSON + PNG plots under reports/<use case>/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no screen

import matplotlib.pyplot as plt
import numpy as np
from sklearn.calibration import calibration_curve
from sklearn.metrics import precision_recall_curve, roc_curve

from core.markdown import table
from core.metrics import CALIBRATION_BINS, tier_table

REPORT_STEM = "training"
TOP_FEATURES = 15
HEADLINE = ("roc_auc", "pr_auc", "precision", "recall", "f1", "brier", "ece", "cost_per_customer")


def _save(fig: plt.Figure, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path.name


def plot_roc(y: np.ndarray, p: np.ndarray, path: Path) -> str:
    fpr, tpr, _ = roc_curve(y, p)
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot(fpr, tpr, label="champion")
    ax.plot([0, 1], [0, 1], "--", color="grey", label="chance")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (test split)")
    ax.legend()
    return _save(fig, path)


def plot_pr(y: np.ndarray, p: np.ndarray, path: Path) -> str:
    precision, recall, _ = precision_recall_curve(y, p)
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot(recall, precision, label="champion")
    ax.axhline(y.mean(), linestyle="--", color="grey", label="prior")
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall (test split)")
    ax.legend()
    return _save(fig, path)


def plot_calibration(
    y: np.ndarray, p: np.ndarray, path: Path, before: np.ndarray | None = None, method: str = ""
) -> str:
    """Reliability on the test split: the stored model, and the same model before its
    calibrator where there is one."""
    fig, ax = plt.subplots(figsize=(5, 4))
    curves = [(p, f"after ({method})" if before is not None else "champion", "o-")]
    if before is not None:
        curves.insert(0, (before, "before calibration", "s--"))
    for scores, label, style in curves:
        observed, predicted = calibration_curve(
            y, scores, n_bins=CALIBRATION_BINS, strategy="quantile"
        )
        ax.plot(predicted, observed, style, label=label)
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect")
    ax.set(xlabel="mean predicted probability", ylabel="observed rate", title="Calibration")
    ax.legend()
    return _save(fig, path)


def plot_importance(importance: list[dict[str, Any]], path: Path) -> str:
    top = importance[:TOP_FEATURES][::-1]
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(top) + 1.2))
    ax.barh(
        [r["feature"] for r in top], [r["importance"] for r in top], xerr=[r["std"] for r in top]
    )
    ax.set(xlabel="metric lost when shuffled", title="Permutation importance (test split)")
    return _save(fig, path)


def plot_scores(y: np.ndarray, p: np.ndarray, path: Path) -> str:
    fig, ax = plt.subplots(figsize=(5, 4))
    bins = np.linspace(0, 1, 41)
    ax.hist(p[y == 0], bins=bins, alpha=0.6, density=True, label="no risk event")
    ax.hist(p[y == 1], bins=bins, alpha=0.6, density=True, label="risk event")
    ax.set(xlabel="probability", ylabel="density", title="Scores by class (test split)")
    ax.legend()
    return _save(fig, path)


def _intervals(ci: dict[str, Any] | None) -> list[str]:
    """The champion's bootstrap intervals on the test split (core/intervals.py)."""
    if not ci:
        return []
    first = next(iter(ci.values()))
    return [
        f"Champion, {first['level']:.0%} bootstrap intervals ({first['resamples']} stratified "
        f"resamples of the test split, seed {first['seed']}):",
        "",
        *table(
            ["metric", "test", "low", "high"],
            [[name, c["value"], c["low"], c["high"]] for name, c in ci.items()],
        ),
        "",
    ]


def _costs(serving: dict[str, float] | None) -> list[Any]:
    """Serving cost columns (measured for each family's winner only)."""
    return [serving["single"], serving["batch_1000"]] if serving else ["", ""]


def _selection(record: dict[str, Any]) -> list[str]:
    winners = record["serving_us"]
    return [
        "## Why this champion",
        "",
        f"Rule: {record['rule']}. Best by score: `{record['best_by_score']}` "
        f"({record['metric']} {record['best_cv_mean']:.4f}, standard error "
        f"{record['standard_error']:.4f}); within one standard error: "
        + ", ".join(f"`{label}`" for label in record["within"])
        + f". Chosen: `{record['chosen']}`.",
        "",
        *table(
            ["family winner", "µs single", "µs/row at 1,000", "within one SE"],
            [
                [label, *_costs(cost), "yes" if label in record["within"] else "no"]
                for label, cost in winners.items()
            ],
        ),
        "",
    ]


def _rule(record: dict[str, Any]) -> str:
    if "rule" not in record:  # reports written before the rule was recorded
        return "the lowest"
    return f"{record['rule']}, standard error {record['standard_error']:.4f}"


def _calibration(record: dict[str, Any]) -> list[str]:
    losses = ", ".join(f"{m} {v:.4f}" for m, v in record["cv_log_loss"].items())
    refused = "".join(f" {m} refused: {why}." for m, why in record["refused"].items())
    ece = record["test_ece"]
    return [
        "## Calibration",
        "",
        f"Chosen: **{record['method']}**, by {record['folds']}-fold cross-validated log-loss on "
        f"the champion's out-of-fold training scores ({losses}; {_rule(record)}).{refused} "
        "The threshold is "
        "chosen on the calibrated scores. Test-split ECE before calibration "
        f"{ece['before']:.4f}, after {ece['after']:.4f} (reliability plot: calibration.png).",
        "",
    ]


def to_markdown(report: dict[str, Any], plots: dict[str, str]) -> str:
    test, base = report["test"], report["baselines"]
    single = base["best_single_feature"]
    models = [
        [f"champion: {report['champion']['family']}", *(test[k] for k in HEADLINE)],
        [
            f"challenger: {report['challenger']['family']}",
            *(report["challenger"]["test"][k] for k in HEADLINE),
        ],
        [f"best single feature: {single['feature']}", *(single[k] for k in HEADLINE)],
        ["majority class", *(base["majority_class"][k] for k in HEADLINE)],
    ]
    published = report.get("published")
    if published:
        models.append(
            [f"published: {published['source']}", *(published["metrics"].get(k) for k in HEADLINE)]
        )
    oof = report["threshold"]["out_of_fold"]
    conf = test["confusion"]
    costs = report["costs"]
    lines = [
        f"# Training report: {report['use_case']}",
        "",
        f"Model `{report['model_tag']}`, trained {report['created_at']} in {report['seconds']} s "
        f"from spec `{report['spec_file']}`.",
        "",
        "Data (sha256): "
        + ", ".join(f"{k} `{v[:16]}`" for k, v in report["data_sha256"].items())
        + ".",
        "",
        "Packages: " + ", ".join(f"{k} {v}" for k, v in report["packages"].items()) + ".",
        "",
        f"{report['rows']['labeled']} labeled customers, risk event `{report['risk_event']}`; "
        f"train {report['rows']['train']}, test {report['rows']['test']}, the rest is the "
        "inference hold-out (never used to fit or choose).",
        "",
        f"## Test split ({test['rows']} customers, {test['positive_rate']:.2%} risk event)",
        "",
        *table(["model", *HEADLINE], models),
        "",
        f"Champion: `{report['champion']['candidate']}`. "
        f"Threshold {report['threshold']['value']:.4f}, "
        f"chosen to minimise expected cost (missed event {costs['missed_event']:g} "
        f"{costs['unit']}, "
        f"false alarm {costs['false_alarm']:g} {costs['unit']}) on out-of-fold training scores "
        f"(there: precision {oof['precision']:.3f}, recall {oof['recall']:.3f}).",
        "",
        f"Confusion matrix at the threshold: TN {conf['tn']}, FP {conf['fp']}, "
        f"FN {conf['fn']}, TP {conf['tp']}.",
        "",
        *_intervals(report.get("test_ci")),
        "## Risk tiers (test split)",
        "",
        *table(
            ["tier", "probability", "customers", "share", "risk-event rate"],
            [
                [r["tier"], r["range"], r["customers"], r["share"], r["risk_event_rate"]]
                for r in report["tiers_test"]
            ],
        ),
        "",
        "## Threshold table (test split)",
        "",
        *table(
            [
                "threshold",
                "precision",
                "recall",
                "f1",
                "flagged",
                f"cost / customer ({costs['unit']})",
            ],
            [
                [
                    r["threshold"],
                    r["precision"],
                    r["recall"],
                    r["f1"],
                    r["flagged_share"],
                    r["cost_per_customer"],
                ]
                for r in report["threshold_table"]
            ],
        ),
        "",
        f"## Candidates ({report['cv_folds']}-fold stratified CV on {report['search_rows']} "
        f"training rows, metric {report['selection_metric']})",
        "",
        *table(
            ["candidate", "mean", "std", "brier", "ece", "seconds", "µs single", "µs/row at 1,000"],
            [
                [
                    c["candidate"],
                    c["cv_mean"],
                    c["cv_std"],
                    c["cv_brier"],
                    c["cv_ece"],
                    c["seconds"],
                    *_costs(c.get("serving_us")),
                ]
                for c in report["candidates"]
            ],
        ),
        "",
        *[f"- {family}: {why}" for family, why in report.get("constraint_notes", {}).items()],
        "",
        *_selection(report["selection"]),
        *_calibration(report["calibration"]),
        f"Refit: {report['refit']['why']}.",
        "",
        "Imbalance handling: `weights` and `undersample` probabilities are mapped back to the "
        "true prior (odds correction), so Brier and ECE compare like with like.",
        "",
        "## Feature importance (permutation, test split)",
        "",
        *table(
            ["feature", "importance", "std"],
            [
                [r["feature"], r["importance"], r["std"]]
                for r in report["importance"][:TOP_FEATURES]
            ],
        ),
        "",
        "## Data cleaning",
        "",
        "```",
        json.dumps(report["cleaning"], indent=2),
        "```",
        "",
        "## Plots",
        "",
        *[f"![{name}]({file})" for name, file in plots.items()],
    ]
    return "\n".join(lines) + "\n"


def write_report(
    report: dict[str, Any], y: np.ndarray, p: np.ndarray, out_dir: Path, p_raw: np.ndarray
) -> Path:
    """Write training.md, training.json and the plots; returns the Markdown path. `p` is the
    champion on the test split, `p_raw` the same before its calibrator."""
    out_dir.mkdir(parents=True, exist_ok=True)
    report["tiers_test"] = tier_table(y, p, report["tiers"])
    plots = {
        "ROC": plot_roc(y, p, out_dir / "roc.png"),
        "Precision-recall": plot_pr(y, p, out_dir / "pr.png"),
        "Calibration": plot_calibration(
            y, p, out_dir / "calibration.png", p_raw, report["calibration"]["method"]
        ),
        "Importance": plot_importance(report["importance"], out_dir / "importance.png"),
        "Scores by class": plot_scores(y, p, out_dir / "scores.png"),
    }
    path = out_dir / f"{REPORT_STEM}.md"
    path.write_text(to_markdown(report, plots), encoding="utf-8")
    (out_dir / f"{REPORT_STEM}.json").write_text(
        json.dumps(report, indent=2, default=float), encoding="utf-8"
    )
    return path
