"""Batch outputs from a stored model, by the same scoring code as the service.

For every use case: the inference hold-out scored with its metrics, the
unlabeled rows (if any) scored into `results.csv`, a segment profile of the
scored customers per tier, and the spec's action list (e.g. off-boarding).
Everything goes under `outputs/<use case>/`, headed with model tag and data hash.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from core.datafiles import data_fingerprint, read_table, read_transactions
from core.errors import UserError
from core.logs import get_logger
from core.markdown import table
from core.metrics import evaluate, tier_table
from core.names import TIER_NAMES
from core.spec import FeatureType, Spec, load_spec
from features.customers import customer_features
from model.holdout import split_rows
from model.scorer import Scorer, find_model

HOLDOUT_METRICS = ("roc_auc", "pr_auc", "precision", "recall", "f1", "brier", "ece")


class DataChanged(UserError, RuntimeError):
    pass


log = get_logger("score").info  # "[score] ..." on stdout once an entry point ran setup()


def score_in_chunks(scorer: Scorer, frame: pd.DataFrame, label: str) -> pd.DataFrame:
    """Answers for every row, as a table, with progress for long runs."""
    return scorer.answer_table(frame, lambda done, total: log(f"{label}: {done}/{total} scored"))


def with_protected(
    spec: Spec, answers: pd.DataFrame, frame: pd.DataFrame, source: str
) -> pd.DataFrame:
    """The answers with each customer's protected attributes carried over (what a later
    fairness check of these decisions groups by). A protected column the input lacks is
    reported and left out, never filled in."""
    missing = [p.column for p in spec.protected if p.column not in frame]
    if missing:
        log(
            f"{spec.name}: protected attribute(s) {missing} are not in {source}: the answers "
            "carry no such column, so their fairness cannot be checked by group"
        )
    for attribute in spec.protected:
        if attribute.column in frame and attribute.column not in answers:
            answers[attribute.column] = frame[attribute.column].to_numpy()
    return answers


def unlabeled_frame(spec: Spec, cap: float | None) -> pd.DataFrame:
    """Customers to score that have no label: blank targets and the unlabeled table."""
    table = read_table(spec)
    frames = []
    blank = table[table[spec.target.column].isna()]
    if len(blank):
        raw = read_transactions(spec) if spec.data.transactions else None
        frames.append(customer_features(spec, blank, raw, cap)[0])
    if spec.data.unlabeled_table:
        extra = read_table(spec, unlabeled=True)
        raw = None
        if spec.data.transactions is not None:
            raw = read_transactions(
                spec, unlabeled=spec.data.transactions.unlabeled_path is not None
            )
        frames.append(customer_features(spec, extra, raw, cap)[0])
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def segment_profiles(spec: Spec, scored: pd.DataFrame, frame: pd.DataFrame) -> list[str]:
    """What low / medium / high customers look like: counts and per-feature medians."""
    joined = frame.reset_index(drop=True).assign(
        _tier=scored["risk_tier"].to_numpy(), _p=scored["probability"].to_numpy()
    )
    tiers = [t for t in TIER_NAMES if (joined["_tier"] == t).any()]
    groups = {t: joined[joined["_tier"] == t] for t in tiers}
    rows = [
        ["customers", *(len(groups[t]) for t in tiers)],
        ["share", *(f"{len(groups[t]) / len(joined):.1%}" for t in tiers)],
        ["mean probability", *(groups[t]["_p"].mean() for t in tiers)],
    ]
    for feature in spec.features:
        column = {t: groups[t][feature.name] for t in tiers}
        if feature.type is FeatureType.categorical:
            cells = [
                f"{c.mode().iloc[0]} ({(c == c.mode().iloc[0]).mean():.0%})"
                if c.notna().any()
                else "n/a"
                for c in column.values()
            ]
            rows.append([f"{feature.name} (most common)", *cells])
        else:
            cells = [f"{pd.to_numeric(c, errors='coerce').median():,.4g}" for c in column.values()]
            rows.append([f"{feature.name} (median)", *cells])
    return table(["", *tiers], rows, fmt=".3f")


def action_list(spec: Spec, scored: pd.DataFrame, frame: pd.DataFrame) -> pd.DataFrame:
    """Customers meeting the spec's criteria, each with the facts that put them there."""
    criteria = spec.action_list
    assert criteria is not None
    frame = frame.reset_index(drop=True)
    holds = pd.DataFrame({r.describe(): r.holds(frame[r.feature]) for r in criteria.rules})
    listed = (scored["probability"] >= criteria.min_probability) & (
        holds.sum(axis=1) >= criteria.min_rules
    )
    rows = []
    for i in np.flatnonzero(listed.to_numpy()):
        facts = [
            f"{rule.label}: {rule.feature} = {frame.at[i, rule.feature]:,.4g}"
            for rule in criteria.rules
            if holds.at[i, rule.describe()]
        ]
        p = scored.at[i, "probability"]
        reason = (
            f"probability {p:.3f} >= {criteria.min_probability:g} ({scored.at[i, 'risk_tier']} "
            f"tier); " + "; ".join(facts) + f". Model's main reasons: {scored.at[i, 'reasons']}"
        )
        rows.append(
            {
                spec.id_column: scored.at[i, spec.id_column],
                "probability": p,
                "risk_tier": scored.at[i, "risk_tier"],
                "facts": "; ".join(facts),
                "reason": reason,
            }
        )
    columns = [spec.id_column, "probability", "risk_tier", "facts", "reason"]
    return pd.DataFrame(rows, columns=columns).sort_values("probability", ascending=False)


def write_markdown(path: Path, title: str, scorer: Scorer, spec: Spec, body: list[str]) -> Path:
    """A Markdown output headed with the model tag and the data it came from."""
    hashes = ", ".join(f"{k} `{v[:16]}`" for k, v in data_fingerprint(spec).items())
    written = datetime.now(UTC).isoformat(timespec="seconds")
    header = [
        f"# {title}",
        "",
        f"Model `{scorer.tag}`; data (sha256) {hashes}; written {written}.",
        "",
    ]
    path.write_text("\n".join([*header, *body]) + "\n", encoding="utf-8")
    return path


def score_use_case(use_case: str | Path, outputs_dir: Path) -> dict[str, Path]:
    """Write every batch output of one use case; returns the files written."""
    spec = load_spec(use_case)
    scorer = Scorer.from_store(f"{spec.name}:latest")
    if scorer.data_sha256 != data_fingerprint(spec):
        raise DataChanged(
            f"{spec.name}: the data differs from what {scorer.tag} was trained on; "
            f"retrain with `make train USE_CASE={spec.name}`"
        )
    out = outputs_dir / spec.name
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}

    held = split_rows(find_model(scorer.tag), spec, "inference", scorer.amount_cap)
    holdout = held.frame
    scored = score_in_chunks(scorer, holdout, f"{spec.name} inference hold-out")
    scored.insert(1, "label", held.y)
    written["holdout_scores"] = out / "holdout_scores.csv"
    scored.to_csv(written["holdout_scores"], index=False)
    y, p = held.y, scored["probability"].to_numpy()
    metrics = evaluate(y, p, scorer.threshold, spec.costs)
    metrics["tiers"] = tier_table(y, p, spec.tiers.model_dump())
    (out / "holdout_metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    written["holdout_metrics"] = write_markdown(
        out / "holdout_metrics.md",
        f"{spec.name}: the inference hold-out (never used in training)",
        scorer,
        spec,
        [
            f"{metrics['rows']} customers, {metrics['positive_rate']:.2%} risk event "
            f"(`{spec.target.event}`); threshold {scorer.threshold:.4f}.",
            "",
            *table(
                ["metric", "value"],
                [
                    *([k, metrics[k]] for k in HOLDOUT_METRICS),
                    [f"cost per customer ({spec.costs.unit})", metrics["cost_per_customer"]],
                ],
            ),
            "",
            "Confusion matrix: "
            + ", ".join(f"{k.upper()} {v}" for k, v in metrics["confusion"].items()),
        ],
    )
    log(f"{spec.name}: hold-out roc_auc {metrics['roc_auc']:.4f}, recall {metrics['recall']:.4f}")

    profile_frame, profile_scores = holdout, scored
    unlabeled = unlabeled_frame(spec, scorer.amount_cap)
    if len(unlabeled):
        results = score_in_chunks(scorer, unlabeled, f"{spec.name} unlabeled")
        written["results"] = out / "results.csv"
        columns = [spec.id_column, "probability", "prediction", "risk_tier", "reasons"]
        columns += ["adverse_reasons", "warnings"]
        results = with_protected(
            spec, results[columns].copy(), unlabeled, "the unlabeled customers"
        )
        results.to_csv(written["results"], index=False)
        profile_frame, profile_scores = unlabeled, results

    who = "unlabeled customers" if len(unlabeled) else "inference hold-out"
    written["segments"] = write_markdown(
        out / "segments.md",
        f"{spec.name}: risk segments of the {who}",
        scorer,
        spec,
        [
            f"Tiers: low < {spec.tiers.medium:g} <= medium < {spec.tiers.high:g} <= high.",
            "",
            *segment_profiles(spec, profile_scores, profile_frame),
        ],
    )

    if spec.action_list is not None:
        listed = action_list(spec, profile_scores, profile_frame)
        criteria = spec.action_list
        written["action_list"] = out / f"{criteria.name}.csv"
        listed.to_csv(written["action_list"], index=False)
        write_markdown(
            out / f"{criteria.name}.md",
            f"{criteria.title} ({len(listed)} of {len(profile_frame)} {who})",
            scorer,
            spec,
            [
                f"Criteria: probability of `{spec.target.event}` >= {criteria.min_probability:g} "
                f"AND at least {criteria.min_rules} of these facts:",
                "",
                *[f"- {r.describe()}" for r in criteria.rules],
                "",
                *table(listed.columns, listed.itertuples(index=False), fmt=".3f"),
            ],
        )
        log(f"{spec.name}: {len(listed)} customers on the {criteria.name}")
    for name, path in written.items():
        log(f"{spec.name}: wrote {name} -> {path}")
    return written


def score_file(
    use_case: str | Path, records: Path, output: Path, transactions: Path | None = None
) -> Path:
    """Score a user's CSV (id + profile features; raw transactions where the model needs
    them) with the stored model; write one answer per customer."""
    spec = load_spec(use_case, check_data=False)
    scorer = Scorer.from_store(f"{spec.name}:latest")
    frame = pd.read_csv(records, dtype={spec.id_column: "string"})
    if spec.data.transactions is not None:
        if transactions is None:
            raise ValueError(f"{spec.name} scores from raw transactions: pass --transactions")
        raw = pd.read_csv(
            transactions, dtype={spec.data.transactions.columns.customer_id: "string"}
        )
        frame = customer_features(spec, frame, raw, scorer.amount_cap)[0]
    missing = [c for c in [spec.id_column, *spec.feature_names] if c not in frame]
    if missing:
        raise ValueError(f"{records}: columns {missing} are missing (expected the spec's features)")
    answers = score_in_chunks(scorer, frame, f"{spec.name} {records.name}")
    answers = with_protected(spec, answers, frame, str(records))
    output.parent.mkdir(parents=True, exist_ok=True)
    answers.to_csv(output, index=False)
    log(f"{spec.name}: wrote {len(answers)} answers -> {output}")
    return output
