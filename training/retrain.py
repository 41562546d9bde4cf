"""Retraining: a challenger on new labeled data, promoted only if it beats the champion.

`python -m riskbento retrain USE_CASE --data PATH`:

1. The new data (a CSV, or a folder holding files named as in the spec) gets a
   derived spec named `<use case>_challenger`, so the challenger is stored under
   that name and never becomes `<use case>:latest`, the model the service loads.
2. Matured labels only: rows with a blank label (outcome not known yet) are
   excluded by training, and with `date_column` / `window_days` / `as_of`, rows
   whose outcome window is still open are excluded too; both are counted.
3. The challenger is trained by `train_use_case` (60 / 20 / 20 split). Its
   inference hold-out (stratified, never used to fit or choose) is the comparison
   set: champion and challenger are both scored on it with `Scorer`.
4. The challenger is promoted if its gain on the spec's `selection_metric` exceeds
   the margin the comparison set's sampling noise allows (1.645 x the standard
   deviation of the gain over paired, stratified bootstrap resamples: a one-sided
   95 % test; `core/decision.py`, the rule the outcomes job also uses). Promotion
   re-saves the challenger as a new version of `<use case>`, which makes it `latest`,
   with `promoted_from` and the decision in its metadata.
5. The decision, both scores and why go into `reports/<use case>/retrain/<run>/`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from statistics import NormalDist
from typing import Any

import bentoml
import numpy as np
import pandas as pd
import yaml

from core import metrics
from core.datafiles import file_sha256, read_transactions
from core.decision import decide
from core.errors import UserError
from core.logs import get_logger, setup
from core.markdown import cell, table
from core.names import BUILTIN_USE_CASES, CHALLENGER_SUFFIX
from core.settings import get_settings
from core.spec import Spec, SpecError, load_spec, spec_path
from datagen.common import write_csv
from features.customers import customer_features
from model import store
from model.holdout import split_rows
from model.scorer import ModelNotFound, Scorer, find_model
from training.document import document_paths, rewrite_document
from training.report import REPORT_STEM as TRAINING_STEM
from training.train import FULL, Budget, train_use_case

RETRAIN_DIRNAME = "retrain"  # reports/<use case>/retrain/<run>/
REPORT_STEM = "retrain"
CHALLENGER_SPEC_FILE = "challenger_spec.yaml"
MATURED_PREFIX = "matured_"  # the table without open-window rows, when dates are given
COMPARISON_SPLIT = "inference"  # the challenger's hold-out: never used to fit or choose

REPORTED_METRICS = ("roc_auc", "pr_auc", "brier", "log_loss")

DECISION_DATE_COLUMN = "decided_on"  # what `cohort --decided-between` adds to a table

DELAYED_LABELS = (
    "Only matured labels train or judge a model. A customer's label is final once "
    "their outcome window has closed (credit_risk: 90 days after the loan decision); "
    "before that a 0 only means 'not yet'. The file given as DATA is the "
    "matured-labels file: rows whose outcome is not known yet carry a blank label and "
    "are excluded and counted. When the table has the date each outcome window opened, "
    "`--date-column COLUMN --window-days N [--as-of DATE]` also excludes (and counts) "
    "labeled rows whose window closes after the as-of date, so a provisional 0 never "
    "trains or judges a model. Run retraining when a new cohort's windows have closed, "
    "e.g. monthly on the customers decided 90+ days earlier."
)


class RetrainDataError(UserError, ValueError):
    """New data that cannot be used for retraining."""


log = get_logger("retrain").info  # "[retrain] ..." on stdout once an entry point ran setup()


# ---------------------------------------------------------------- the new data


def new_data_files(spec: Spec, data: Path) -> dict[str, Path]:
    """The new data's files by spec key: a CSV is the customer table; a folder holds
    files named as in the spec (table, and raw transactions where the spec has them)."""
    wanted = {"data.table": Path(spec.data.table).name}
    if spec.data.transactions is not None:
        wanted["data.transactions.path"] = Path(spec.data.transactions.path).name
    expected = " and ".join(wanted.values())
    if not data.exists():
        raise RetrainDataError(
            f"--data {data} does not exist (expected a folder holding {expected}"
            + (" or that CSV" if len(wanted) == 1 else "")
            + f" with {spec.name}'s new labeled customers)"
        )
    if data.is_file():
        if len(wanted) > 1:
            raise RetrainDataError(
                f"--data {data} is a file; {spec.name} is built from a customer table and raw "
                f"transactions, so --data must be a folder holding {expected}"
            )
        if data.suffix.lower() != ".csv":
            raise RetrainDataError(f"--data {data}: expected a .csv file, got {data.suffix!r}")
        return {"data.table": data}
    found = {key: data / name for key, name in wanted.items()}
    missing = [p.name for p in found.values() if not p.is_file()]
    if missing:
        present = sorted(p.name for p in data.iterdir())[:20]
        raise RetrainDataError(
            f"--data {data}: expected {expected} in the folder, missing {missing} "
            f"(the folder holds {present})"
        )
    return found


@dataclass(frozen=True)
class Maturity:
    """Which labeled rows have a final outcome: their window opened `window_days` before
    `as_of` or earlier. Without `date_column`, every labeled row is taken as matured."""

    date_column: str | None = None
    window_days: int | None = None
    as_of: date | None = None

    def describe(self) -> str:
        if self.date_column is None:
            return "no date column given: every labeled row is taken as matured"
        return (
            f"a row is matured when {self.date_column} + {self.window_days} days <= "
            f"{self.as_of.isoformat() if self.as_of else 'today'}"
        )


def matured_rows(
    table: pd.DataFrame, target: str, maturity: Maturity
) -> tuple[pd.Series, dict[str, Any]]:
    """Mask of the rows that may train and judge a model, and the counts of the rest."""
    labeled = table[target].notna()
    counts: dict[str, Any] = {
        "rows": len(table),
        "blank_label_excluded": int((~labeled).sum()),
        "open_window_excluded": 0,
    }
    if maturity.date_column is None:
        if maturity.window_days is not None or maturity.as_of is not None:
            raise RetrainDataError(
                "--window-days and --as-of need --date-column (the column holding the date "
                "each outcome window opened), got none"
            )
        counts["matured"] = int(labeled.sum())
        return labeled, counts
    column = maturity.date_column
    if column not in table.columns:
        raise RetrainDataError(
            f"--date-column {column!r} is not a column of the new table "
            f"(columns: {', '.join(map(str, table.columns))})"
        )
    if maturity.window_days is None or maturity.window_days <= 0:
        raise RetrainDataError(
            f"--window-days: expected a positive number of days with --date-column, "
            f"got {maturity.window_days!r}"
        )
    opened = pd.to_datetime(table[column], errors="coerce", format="ISO8601")
    bad = opened.isna() & labeled
    if bad.any():
        examples = table.loc[bad, column].head(3).tolist()
        raise RetrainDataError(
            f"{column}: {int(bad.sum())} labeled row(s) have no readable date "
            f"(expected YYYY-MM-DD, got e.g. {examples}): cannot tell if their outcome "
            f"window has closed"
        )
    as_of = pd.Timestamp(maturity.as_of or datetime.now(UTC).date())
    still_open = labeled & (opened + pd.Timedelta(days=maturity.window_days) > as_of)
    counts["open_window_excluded"] = int(still_open.sum())
    keep = labeled & ~still_open
    counts["matured"] = int(keep.sum())
    return keep, counts


def read_matured(
    spec: Spec, path: Path, maturity: Maturity
) -> tuple[pd.DataFrame, pd.Series, dict[str, Any]]:
    """The new customer table as text (written back unchanged), the matured rows, counts."""
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise RetrainDataError(
            f"--data {path}: expected a CSV table, could not read it: {err}"
        ) from None
    if spec.target.column not in table.columns:
        raise RetrainDataError(
            f"--data {path}: expected the target column {spec.target.column!r}, the table has "
            f"{', '.join(map(str, table.columns))}"
        )
    keep, counts = matured_rows(table, spec.target.column, maturity)
    return table, keep, counts


def _spec_text(raw: dict[str, Any], header: str) -> str:
    return f"# {header}\n" + yaml.safe_dump(raw, sort_keys=False, allow_unicode=True)


def challenger_spec(
    spec: Spec, source: Path, files: dict[str, Path], data: Path, out: Path
) -> tuple[Path, dict[str, Any]]:
    """The use case's spec over the new files, named `<use case>_challenger`; written to
    `out` and checked against the data. Returns its path and its raw content."""
    raw = spec.model_dump(mode="json", exclude_none=True)
    raw["name"] = spec.name + CHALLENGER_SUFFIX
    block: dict[str, Any] = {"table": str(files["data.table"].resolve())}
    if spec.data.transactions is not None:
        tx = spec.data.transactions.model_dump(mode="json", exclude_none=True)
        tx.pop("unlabeled_path", None)
        tx["path"] = str(files["data.transactions.path"].resolve())
        block["transactions"] = tx
    raw["data"] = block
    path = out / CHALLENGER_SPEC_FILE
    header = f"Challenger spec written by `riskbento retrain`: {source} over {data}"
    path.write_text(_spec_text(raw, header), encoding="utf-8")
    try:
        load_spec(path)
    except SpecError as err:
        raise SpecError(f"--data {data} (for spec {source})", err.problems) from None
    return path, raw


# ---------------------------------------------------------------- the comparison


def comparison_frame(
    challenger: bentoml.Model, spec: Spec
) -> tuple[pd.DataFrame, np.ndarray, list[str]]:
    """The challenger's inference hold-out as stored with it: rows (table columns +
    features, built with its amount cap), labels, and the table's own columns (to rebuild
    transaction features with another model's cap)."""
    held = split_rows(challenger, spec, COMPARISON_SPLIT, store.card(challenger).amount_cap)
    table_columns = list(pd.read_csv(spec.resolve(spec.data.table), nrows=0).columns)
    return held.frame, held.y, table_columns


def champion_probabilities(
    champion: Scorer, frame: pd.DataFrame, table_columns: list[str], spec: Spec
) -> np.ndarray:
    """The champion's probabilities for the comparison rows, features built its own way
    (its spec, its transaction amount cap), as the service would."""
    if spec.data.transactions is not None and champion.spec.data.transactions is not None:
        raw = read_transactions(spec)
        frame = customer_features(champion.spec, frame[table_columns], raw, champion.amount_cap)[0]
    missing = [f for f in [champion.id_column, *champion.spec.feature_names] if f not in frame]
    if missing:
        raise RetrainDataError(
            f"champion {champion.tag} needs columns {missing} that the new data does not have"
        )
    return _probabilities(champion, frame)


def _probabilities(scorer: Scorer, frame: pd.DataFrame) -> np.ndarray:
    answers = scorer.score_frame(frame, explain=False)
    return np.array([a["probability"] for a in answers], dtype=float)


# ---------------------------------------------------------------- promotion


def promote(
    use_case: str,
    challenger: bentoml.Model,
    spec_raw: dict[str, Any],
    record: dict[str, Any],
    by: str = "`riskbento retrain`",
    reports_dir: Path | None = None,
) -> str:
    """Save the challenger as a new version of `use_case` (so it is `latest`); its metadata
    records `promoted_from` and the decision, and links the use case's model document
    (rewritten for it by the caller; its training and fairness reports stay the
    challenger's). Returns the new tag."""
    trained = store.card(challenger)
    documents = dict(trained.documents or {})
    folder = reports_dir or get_settings().reports_dir
    documents["model_document"] = document_paths(use_case, folder)["model_document"]
    card = trained.model_copy(
        update={
            "use_case": use_case,
            "spec": trained.spec.model_copy(update={"name": use_case}),
            "promoted_from": str(challenger.tag),
            "retrain": record,
            "documents": documents,
        }
    )
    text = _spec_text({**spec_raw, "name": use_case}, f"Promoted from {challenger.tag} by {by}")
    saved = store.save(
        use_case,
        store.load_pipeline(challenger),
        text,
        card,
        splits=store.read_csv(challenger, store.SPLITS_FILE),
        test_scores=store.read_csv(challenger, store.TEST_SCORES_FILE),
    )
    return str(saved.tag)


# ---------------------------------------------------------------- the whole run


def _run_dir(reports_dir: Path, use_case: str) -> Path:
    base = reports_dir / use_case / RETRAIN_DIRNAME
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    for n in range(1, 1000):
        run = base / (stamp if n == 1 else f"{stamp}-{n}")
        try:
            run.mkdir(parents=True)
            return run
        except FileExistsError:
            continue
    raise RuntimeError(f"no free run folder under {base}")


def _champion(tag: str) -> bentoml.Model | None:
    try:
        return find_model(tag)
    except ModelNotFound:
        return None


def retrain(
    use_case: str | Path,
    data: Path,
    reports_dir: Path,
    budget: Budget = FULL,
    maturity: Maturity | None = None,
) -> dict[str, Any]:
    """Train a challenger on `data`, compare with `<use case>:latest`, promote if better;
    write the report under `reports_dir/<use case>/retrain/<run>/` and return it."""
    maturity = maturity or Maturity()
    source = spec_path(use_case)
    spec = load_spec(source, check_data=False)
    data = Path(data)
    files = new_data_files(spec, data)
    hashes = {key: file_sha256(path) for key, path in files.items()}
    champion_model = _champion(f"{spec.name}:latest")
    if champion_model is not None:
        trained_on = store.card(champion_model).data_sha256
        if trained_on.get("data.table") == hashes["data.table"]:
            raise RetrainDataError(
                f"--data {data}: its table is the one {champion_model.tag} was trained on "
                f"(sha256 {hashes['data.table'][:16]}...); retraining needs new labeled data "
                f"the champion has not seen"
            )
    # Loaded now, so a champion that cannot be scored stops the run before training.
    champion = Scorer.from_store(str(champion_model.tag)) if champion_model else None

    table, keep, counts = read_matured(spec, files["data.table"], maturity)
    as_of = maturity.as_of.isoformat() if maturity.as_of else None
    run = _run_dir(reports_dir, spec.name)
    log(f"{spec.name}: new data {data}; run folder {run}")
    used = dict(files)
    if maturity.date_column is not None:
        used["data.table"] = run / f"{MATURED_PREFIX}{files['data.table'].name}"
        write_csv(table[keep], used["data.table"])
        hashes["matured_table"] = file_sha256(used["data.table"])
    log(
        f"{spec.name}: {counts['rows']} rows; excluded {counts['blank_label_excluded']} with a "
        f"blank label, {counts['open_window_excluded']} with an open outcome window; "
        f"{counts['matured']} matured"
    )
    spec_file, spec_raw = challenger_spec(spec, source, used, data, run)
    challenger_spec_obj = load_spec(spec_file)

    trained = train_use_case(spec_file, run, run, budget)
    challenger_tag = trained["model_tag"]
    challenger_model = find_model(challenger_tag)
    challenger = Scorer.from_store(challenger_tag)
    frame, y, table_columns = comparison_frame(challenger_model, challenger_spec_obj)
    log(f"{spec.name}: comparison set {len(y)} customers ({y.mean():.2%} risk event)")
    p_challenger = _probabilities(challenger, frame)
    p_champion = (
        champion_probabilities(champion, frame, table_columns, challenger_spec_obj)
        if champion
        else None
    )
    decision = decide(spec.selection_metric, y, p_champion, p_challenger)

    scores = {"challenger": metrics.evaluate(y, p_challenger, challenger.threshold, spec.costs)}
    if champion is not None and p_champion is not None:
        scores["champion"] = metrics.evaluate(y, p_champion, champion.threshold, spec.costs)
    report: dict[str, Any] = {
        "use_case": spec.name,
        "run": run.name,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "spec_file": str(source),
        "data": {
            **{key: str(path) for key, path in files.items()},
            **({"matured_table": str(used["data.table"])} if "matured_table" in hashes else {}),
        },
        "data_sha256": hashes,
        "rows": {
            **counts,
            "train": trained["rows"]["train"],
            "test": trained["rows"]["test"],
            "comparison": len(y),
        },
        "maturity": {**asdict(maturity), "as_of": as_of, "rule": maturity.describe()},
        "comparison_split": COMPARISON_SPLIT,
        "comparison_positive_rate": float(y.mean()),
        "champion_tag": str(champion_model.tag) if champion_model else None,
        "challenger_tag": challenger_tag,
        "selection_metric": spec.selection_metric,
        "scores": scores,
        "decision": asdict(decision),
        "promoted_tag": None,
        "delayed_labels": DELAYED_LABELS,
        "challenger_report": str(run / challenger_spec_obj.name / f"{TRAINING_STEM}.md"),
    }
    if decision.promote:
        record = {
            k: report[k]
            for k in ("run", "champion_tag", "challenger_tag", "data_sha256", "selection_metric")
        }
        record["decision"] = asdict(decision)
        record["report"] = str(run / f"{REPORT_STEM}.md")
        report["promoted_tag"] = promote(
            spec.name, challenger_model, spec_raw, record, reports_dir=reports_dir
        )
        rewrite_document(source, reports_dir, report["promoted_tag"])
        log(f"{spec.name}: promoted {challenger_tag} as {report['promoted_tag']} (now latest)")
    else:
        log(f"{spec.name}: kept {report['champion_tag']}; {decision.why}")
    write_report(report, run)
    return report


# ---------------------------------------------------------------- the report


def to_markdown(report: dict[str, Any]) -> str:
    d = report["decision"]
    z = NormalDist().inv_cdf(d["confidence"])
    uc, champion, challenger = report["use_case"], report["champion_tag"], report["challenger_tag"]
    if report["promoted_tag"]:
        verdict = (
            f"**Promoted.** `{challenger}` is now `{report['promoted_tag']}`, which "
            f"`{uc}:latest` resolves to (the service loads it at its next start)."
        )
    else:
        verdict = f"**Kept.** `{champion}` stays `{uc}:latest`; `{challenger}` is not served."
    lines = [
        f"# {uc}: retraining decision",
        "",
        f"Run `{report['run']}`, written {report['created_at']}.",
        "",
        verdict,
        "",
        f"Why: {d['why']}.",
        "",
        "## Data",
        "",
        *table(
            ["file", "path", "sha256"],
            [
                [key, f"`{report['data'][key]}`", f"`{digest}`"]
                for key, digest in report["data_sha256"].items()
            ],
        ),
        "",
        f"Rows in the table: {report['rows']['rows']}; excluded with a blank label "
        f"(outcome not known yet): {report['rows']['blank_label_excluded']}; excluded with an "
        f"open outcome window: {report['rows']['open_window_excluded']} "
        f"({report['maturity']['rule']}); matured: {report['rows']['matured']}.",
        f"Challenger trained on {report['rows']['train']} customers (test split "
        f"{report['rows']['test']}); compared on its {report['comparison_split']} hold-out of "
        f"{report['rows']['comparison']} customers ({report['comparison_positive_rate']:.2%} "
        f"risk event), never used to fit or choose it. DATA is not the table the champion "
        "was trained on (sha256 compared).",
        "",
        "## Scores on the comparison set",
        "",
    ]
    models = [("champion", champion), ("challenger", challenger)]
    shown = [(role, tag) for role, tag in models if role in report["scores"]]
    selection = report["selection_metric"]
    labels = {key: key for key in [selection, *REPORTED_METRICS]}
    labels[selection] = f"{selection} (selection metric)"
    labels |= {"threshold": "threshold (its own)", "cost_per_customer": "cost / customer"}
    lines += table(
        ["metric", *(f"{role} `{tag}`" for role, tag in shown)],
        [
            [label, *(report["scores"][role][key] for role, _ in shown)]
            for key, label in labels.items()
        ],
    )
    lines += [
        "",
        "## The margin",
        "",
        (
            f"Gain of the challenger on {d['metric']}: {cell(d['gain'])} (positive: better). "
            f"Margin it must exceed: {cell(d['margin'])} = {z:.3f} x "
            f"{cell(d['bootstrap_std'])}, the standard deviation of the gain over "
            f"{d['resamples']} paired, stratified bootstrap resamples of the comparison set "
            f"(a one-sided {d['confidence']:.0%} test that the gain is not sampling noise). "
            "The margin is measured on each run's data, not fixed: a small comparison set "
            "needs a large gain."
            if d["margin"] is not None
            else "No champion to compare with: the first model is promoted without a margin."
        ),
        "",
        "## Delayed labels",
        "",
        report["delayed_labels"],
        "",
        f"Challenger training report: `{report['challenger_report']}`.",
    ]
    return "\n".join(lines) + "\n"


def write_report(report: dict[str, Any], run: Path) -> Path:
    (run / f"{REPORT_STEM}.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    path = run / f"{REPORT_STEM}.md"
    path.write_text(to_markdown(report), encoding="utf-8")
    log(f"{report['use_case']}: wrote {path}")
    return path


# ---------------------------------------------------------------- new data for trying it


def new_cohort(
    use_case: str,
    out_dir: Path,
    seed: int,
    shuffle_labels: bool = False,
    decided_between: tuple[date, date] | None = None,
) -> list[Path]:
    """A built-in generator's data for other customers (another seed), written flat into
    `out_dir`; the generator's default output is untouched. `shuffle_labels` permutes the
    labels between customers (a cohort a model cannot learn from); `decided_between` adds
    a `decided_on` date per customer (for trying the open-window exclusion)."""
    synthetic = [u for u in BUILTIN_USE_CASES if u != "churn"]  # churn is real data
    if use_case not in synthetic:
        raise UserError(f"expected a synthetic built-in use case {synthetic}, got {use_case!r}")
    module = importlib.import_module(f"datagen.{use_case}")
    if seed == module.SEED:
        raise UserError(f"seed {seed} is the built-in data's own: pick another for new customers")
    out_dir.mkdir(parents=True, exist_ok=True)
    default_seed = module.SEED
    module.SEED = seed
    try:
        paths = module.generate(out_dir)
    finally:
        module.SEED = default_seed
    if not shuffle_labels and decided_between is None:
        return paths
    spec = load_spec(use_case, check_data=False)
    path = out_dir / Path(spec.data.table).name
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    ids = table[spec.id_column]
    first = table.groupby(spec.id_column, sort=False)[spec.target.column].first()
    rng = np.random.default_rng(seed)
    if shuffle_labels:
        labeled = first[first != ""]
        shuffled = pd.Series(rng.permutation(labeled.to_numpy()), index=labeled.index)
        table[spec.target.column] = ids.map(shuffled).fillna("")
    if decided_between is not None:
        start, end = decided_between
        offsets = rng.integers(0, (end - start).days + 1, len(first))
        days = pd.Series([(start + timedelta(int(o))).isoformat() for o in offsets], first.index)
        table[DECISION_DATE_COLUMN] = ids.map(days)
    write_csv(table, path)
    return paths


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.retrain",
        description="Write a new labeled cohort of a built-in use case, to try retraining on.",
    )
    parser.add_argument("use_case", help="a synthetic built-in use case")
    parser.add_argument("out_dir", type=Path, help="folder to write the cohort's files into")
    parser.add_argument("--seed", type=int, default=7, help="another seed: other customers")
    parser.add_argument("--shuffle-labels", action="store_true", help="labels permuted")
    parser.add_argument(
        "--decided-between", nargs=2, type=_date, metavar=("START", "END"),
        help=f"add a {DECISION_DATE_COLUMN} date per customer in this range",
    )  # fmt: skip
    args = parser.parse_args(argv)
    setup()
    try:
        paths = new_cohort(
            args.use_case, args.out_dir, args.seed, args.shuffle_labels, args.decided_between
        )
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    log(f"{args.use_case} cohort (seed {args.seed}): {', '.join(map(str, paths))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
