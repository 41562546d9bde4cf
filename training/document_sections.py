"""The model document's sections, one renderer each: Markdown lines from the gathered
`Sources`, every number read from the file and key the section's *Source:* line names."""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from core.card import ModelCard
from core.datafiles import data_files, file_sha256
from core.markdown import cell, table
from core.names import (
    BUILTIN_USE_CASES,
)
from core.rawfiles import raw_parts
from core.settings import get_settings
from core.spec import Spec
from training.document_sources import ALERTS_FILE, Sources, shown_path

CI_METRICS = ("roc_auc", "pr_auc", "brier", "ece", "cost_per_customer")
AT_THRESHOLD = ("precision", "recall", "f1", "flagged_share", "cost_per_customer")
SMALL_TEST_EVENTS = 100  # fewer risk events in the test split: its metrics are noisy
TOP_PROXIES = 5
NO_MONOTONE = "none declared"
SECTIONS = (
    "Purpose and intended use",
    "Out-of-scope use",
    "Data",
    "Features",
    "Method and why this champion",
    "Performance with uncertainty",
    "Calibration",
    "Threshold and its cost rationale",
    "Tiers",
    "Fairness findings",
    "Limitations and assumptions",
    "Monitoring plan",
    "Change log",
)


# ---------------------------------------------------------------- sections


def _source(*parts: str) -> list[str]:
    return ["", "*Source: " + "; ".join(parts) + ".*"]


def _training_key(s: Sources, *keys: str) -> str:
    return f"`{shown_path(s.training_path)}` " + ", ".join(f"`{k}`" for k in keys)


def _image(s: Sources, name: str, alt: str) -> list[str]:
    path = s.training_path.parent / name
    if not path.exists():
        return ["", f"({alt}: {name} not found next to the training report.)"]
    return ["", f"![{alt}]({Path(os.path.relpath(path, s.out_dir)).as_posix()})"]


def _ci(entry: dict[str, Any] | None, fmt: str = ".4f") -> str:
    if not entry:
        return "n/a"
    return f"{cell(entry['low'], fmt)} to {cell(entry['high'], fmt)}"


def section_purpose(s: Sources) -> list[str]:
    doc = s.spec.document
    lines = [
        f"**Purpose.** {s.card.purpose}",
        "",
        f"**Risk event.** `{s.card.risk_event}`"
        + (f": {s.card.spec.target.description}" if s.card.spec.target.description else "."),
        "",
        "**Intended use.** "
        + (doc.intended_use or "not stated: the spec has no `document.intended_use`."),
    ]
    if doc.owner:
        lines += ["", f"**Owner.** {doc.owner}"]
    return lines + _source(
        f"spec `{s.spec_file}` keys `purpose`, `document.intended_use`, `document.owner`",
        "model card `risk_event`",
    )


def section_out_of_scope(s: Sources) -> list[str]:
    items = s.spec.document.out_of_scope
    lines = [f"- {item}" for item in items] or [
        "None stated: the spec has no `document.out_of_scope`. A reviewer should ask for it."
    ]
    return lines + _source(f"spec `{s.spec_file}` key `document.out_of_scope`")


def data_period(spec: Spec) -> str:
    """First and last date of the transactions' timestamp column, or why there is none."""
    tx = spec.data.transactions
    column = tx.columns.timestamp if tx else None
    if column is None:
        return "not dated (the spec names no timestamp column)"
    values = []
    for part in raw_parts(spec.resolve(tx.path)):
        if part.suffix == ".csv":
            values.append(pd.read_csv(part, usecols=[column], dtype="string")[column])
        else:
            values.append(pd.read_parquet(part, columns=[column])[column].astype("string"))
    stamps = pd.to_datetime(pd.concat(values), errors="coerce", utc=True, format="mixed")
    unread = int(stamps.isna().sum())
    if stamps.notna().sum() == 0:
        return f"not dated (no value of `{column}` reads as a date)"
    first, last = stamps.min().date().isoformat(), stamps.max().date().isoformat()
    return f"{first} to {last} (transactions `{column}`; {unread} value(s) unreadable)"


def _flat(prefix: str, value: Any) -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [row for k, v in value.items() for row in _flat(f"{prefix}.{k}" if prefix else k, v)]
    return [(prefix, value)]


def section_data(s: Sources) -> list[str]:
    recorded = s.training["data_sha256"]
    files = data_files(s.spec)
    rows = []
    all_match = True
    for key, sha in recorded.items():
        path = files.get(key)
        now = file_sha256(path) if path is not None and path.exists() else None
        all_match &= now == sha
        state = (
            "matches"
            if now == sha
            else ("file missing" if now is None else "changed since training")
        )
        rows.append([key, f"`{shown_path(path)}`" if path else "n/a", f"`{sha}`", state])
    period = data_period(s.spec) if all_match else "not shown: the data changed since training"
    r = s.training["rows"]
    held_out = r["labeled"] - r["train"] - r["test"]
    cleaning = _flat("", s.training.get("cleaning", {}))
    return [
        *table(["spec key", "file", "sha256 at training", "file today"], rows),
        "",
        f"**Period.** {period}.",
        "",
        *table(
            ["labeled customers", "train", "test", "inference hold-out (never fitted on)"],
            [[r["labeled"], r["train"], r["test"], held_out]],
        ),
        "",
        "**Cleaning counts.**",
        "",
        *(table(["rule", "count"], cleaning) if cleaning else ["None recorded."]),
        *_source(
            _training_key(s, "data_sha256", "rows", "cleaning"),
            "files hashed and the period read from the data at render time",
        ),
    ]


def _monotone(spec: Spec, name: str) -> str:
    return spec.feature(name).monotone or NO_MONOTONE


def section_features(s: Sources) -> list[str]:
    spec = s.card.spec
    from_tx = set(s.card.transaction_features)
    rows = []
    for f in s.card.features:
        declared = f"[{cell(f.min, 'g')}, {cell(f.max, 'g')}]" if f.type == "numeric" else ""
        if f.levels:
            declared = ", ".join(f.levels)
        observed = (
            f"[{cell(f.train_min, 'g')}, {cell(f.train_max, 'g')}]"
            if f.train_min is not None
            else ""
        )
        missing = f.missing.value + (f" ({f.fill_value})" if f.fill_value is not None else "")
        rows.append(
            [
                f"`{f.name}`" + (" (from transactions)" if f.name in from_tx else ""),
                f.type.value,
                f.description.strip(),
                declared,
                observed,
                missing,
                _monotone(spec, f.name),
            ]
        )
    has_monotone = any(row[-1] != NO_MONOTONE for row in rows)
    lines = [
        *table(
            ["feature", "type", "description", "allowed", "train range", "missing", "monotone"],
            rows,
        ),
        "",
    ]
    if not has_monotone:
        lines += ["Monotone constraints: none declared (the spec has no `monotone` key).", ""]
    protected = spec.protected or s.spec.protected
    if protected:
        lines += [
            "**Protected attributes.**",
            "",
            *table(
                ["column", "a feature of the model", "why", "bands"],
                [
                    [
                        f"`{p.column}`",
                        "yes" if p.use_as_feature else "no",
                        p.why or "",
                        ", ".join(cell(b, "g") for b in p.bands or []),
                    ]
                    for p in protected
                ],
            ),
        ]
    else:
        lines.append("Protected attributes: none declared (the spec has no `protected:`).")
    return lines + _source(
        "model card `features` (spec as trained, with `train_min` / `train_max` from the "
        "training split), `transaction_features`, `spec.protected`, `spec.monotone`"
    )


def section_method(s: Sources) -> list[str]:
    t = s.training
    metric = t["selection_metric"]
    champion, challenger = t["champion"], t["challenger"]
    rows = [
        [
            c["candidate"],
            c["family"],
            c["imbalance"],
            f"{cell(c['cv_mean'])} ± {cell(c['cv_std'])}",
            c["cv_brier"],
            c["cv_ece"],
        ]
        for c in t["candidates"]
    ]
    base = t["baselines"]
    single = base["best_single_feature"]
    selection = t.get("selection")
    rule = (
        f"{selection['rule']} (best by score: `{selection['best_by_score']}`, standard error "
        f"{cell(selection['standard_error'])}; within it: "
        + ", ".join(f"`{label}`" for label in selection["within"])
        + ")"
        if selection
        else f"the family winner with the best mean CV `{metric}`"
    )
    held = [f"{family}: {why}" for family, why in t.get("constraint_notes", {}).items()]
    return [
        f"Each model family's settings were searched under {t['cv_folds']}-fold stratified "
        f"cross-validation on {t['search_rows']} training rows; for each family's best "
        "settings, no rebalancing, class weights and undersampling were compared; the soft "
        f"vote of the family winners is one more candidate. **Selection rule:** {rule}; the "
        "runner-up is the challenger.",
        "",
        *([f"Monotone constraints: {'; '.join(held)}.", ""] if held else []),
        f"**Champion:** `{champion['candidate']}`, CV {metric} {cell(champion['cv_mean'])} ± "
        f"{cell(champion['cv_std'])}. **Challenger:** `{challenger['candidate']}`, CV "
        f"{cell(challenger['cv_mean'])} ± {cell(challenger['cv_std'])}.",
        "",
        *table(
            ["candidate", "family", "imbalance", f"CV {metric} mean ± std", "CV brier", "CV ece"],
            rows,
        ),
        "",
        f"Baselines on the test split ({metric}): majority class "
        f"{cell(base['majority_class'][metric])}; best single feature "
        f"(`{single['feature']}`) {cell(single[metric])}; champion {cell(t['test'][metric])}.",
        *_source(
            _training_key(
                s,
                "cv_folds",
                "search_rows",
                "selection_metric",
                "selection",
                "constraint_notes",
                "champion",
                "challenger",
                "candidates",
                "baselines",
                "test",
            )
        ),
    ]


def section_performance(s: Sources) -> list[str]:
    t = s.training
    test, ci = t["test"], t.get("test_ci")
    unit = t["costs"]["unit"]
    names = {"cost_per_customer": f"cost per customer ({unit})"}
    if ci:
        first = next(iter(ci.values()))
        level = f"{first.get('level', 0.95):.0%}"
        intro = (
            f"Test split: {test['rows']} customers, {cell(test['positive_rate'])} risk-event "
            f"rate. Intervals: {level} percentile bootstrap, {first['resamples']} stratified "
            f"resamples of the test customers (seed {first.get('seed', 'n/a')})."
        )
        rows = [
            [names.get(m, m), test.get(m), _ci(ci.get(m)), ci[m]["resamples"] if m in ci else ""]
            for m in CI_METRICS
        ]
        body = table(["metric", "test", "95% interval", "resamples"], rows)
    else:
        intro = (
            "This training report has no bootstrap intervals (`test_ci`): it predates them; "
            "retrain to add them."
        )
        body = table(["metric", "test"], [[names.get(m, m), test.get(m)] for m in CI_METRICS])
    challenger = t["challenger"].get("test", {})
    return [
        intro,
        "",
        *body,
        "",
        "At the threshold (no interval): "
        + ", ".join(f"{m} {cell(test.get(m))}" for m in AT_THRESHOLD[:3])
        + f". Challenger on the same split: ROC-AUC {cell(challenger.get('roc_auc'))}, "
        f"PR-AUC {cell(challenger.get('pr_auc'))}.",
        *_image(s, "roc.png", "ROC curve, test split"),
        *_image(s, "pr.png", "Precision-recall curve, test split"),
        *_source(_training_key(s, "test", "test_ci", "challenger.test")),
    ]


def section_calibration(s: Sources) -> list[str]:
    t = s.training
    test, ci = t["test"], t.get("test_ci") or {}
    fitted = t.get("calibration")
    chosen = (
        [
            f"Calibrator: **{fitted['method']}**, chosen by {fitted['folds']}-fold "
            "cross-validated log-loss on the champion's out-of-fold training scores ("
            + ", ".join(f"{m} {cell(v)}" for m, v in fitted["cv_log_loss"].items())
            + "), stored inside the model. Test-split ECE before calibration "
            f"{cell(fitted['test_ece']['before'])}, after {cell(fitted['test_ece']['after'])}.",
            "",
        ]
        if fitted
        else []
    )
    return [
        *chosen,
        f"Expected calibration error on the test split {cell(test['ece'])} (95% interval "
        f"{_ci(ci.get('ece'))}); Brier score {cell(test['brier'])} ({_ci(ci.get('brier'))}); "
        f"the champion's out-of-fold ECE in CV {cell(t['champion']['cv_ece'])}. Rebalanced "
        "candidates' probabilities are mapped back to the true prior before any of these.",
        *_image(s, "calibration.png", "Calibration, test split"),
        *_source(
            _training_key(s, "calibration", "test.ece", "test.brier", "test_ci", "champion.cv_ece")
        ),
    ]


def section_threshold(s: Sources) -> list[str]:
    t = s.training
    costs, threshold, test = t["costs"], t["threshold"], t["test"]
    oof = threshold["out_of_fold"]
    unit = costs["unit"]
    missed, alarm = costs["missed_event"], costs["false_alarm"]
    conf = test["confusion"]
    rows = [
        [r["threshold"], r["precision"], r["recall"], r["f1"], r["flagged_share"],
         r["cost_per_customer"]]
        for r in t["threshold_table"]
    ]  # fmt: skip
    return [
        f"A missed risk event costs {cell(missed, 'g')} {unit}; a false alarm "
        f"{cell(alarm, 'g')} {unit}. Flagging pays from the break-even probability "
        f"false alarm / (false alarm + missed event) = {alarm / (alarm + missed):.4f}.",
        "",
        f"**Threshold {cell(threshold['value'])}**: the cut-off with the lowest expected cost "
        "on the champion's out-of-fold training scores. There: precision "
        f"{cell(oof['precision'])}, recall {cell(oof['recall'])}, flagged "
        f"{cell(oof['flagged_share'])}, cost {cell(oof['cost_per_customer'])} {unit} per "
        f"customer. On the test split: precision {cell(test['precision'])}, recall "
        f"{cell(test['recall'])}, cost {cell(test['cost_per_customer'])} {unit} per customer; "
        f"TN {conf['tn']}, FP {conf['fp']}, FN {conf['fn']}, TP {conf['tp']}.",
        "",
        *table(
            ["threshold", "precision", "recall", "f1", "flagged", f"cost / customer ({unit})"],
            rows,
        ),
        *_source(
            _training_key(s, "costs", "threshold", "test", "threshold_table"),
            "break-even computed from `costs`",
        ),
    ]


def section_tiers(s: Sources) -> list[str]:
    t = s.training
    tiers = t["tiers"]
    return [
        f"Low below {cell(tiers['medium'], 'g')}, medium from {cell(tiers['medium'], 'g')}, "
        f"high from {cell(tiers['high'], 'g')} (probability).",
        "",
        *table(
            ["tier", "probability", "customers", "share", "risk-event rate"],
            [
                [r["tier"], r["range"], r["customers"], r["share"], r["risk_event_rate"]]
                for r in t.get("tiers_test", [])
            ],
        ),
        *_source(_training_key(s, "tiers", "tiers_test")),
    ]


def _group_rows(attribute: dict[str, Any]) -> list[list[Any]]:
    rows = []
    for g in attribute["groups"]:
        rows.append(
            [
                g["group"],
                g["rows"],
                g.get("events"),
                "too small" if g.get("too_small") else "",
                g.get("flag_rate"),
                _ci(dict(zip(("low", "high"), g["flag_rate_ci"], strict=True)))
                if g.get("flag_rate_ci")
                else "",
                g.get("adverse_impact_ratio"),
                _ci(dict(zip(("low", "high"), g["air_ci"], strict=True)))
                if g.get("air_ci")
                else "",
                {True: "yes", False: "NO"}.get(g.get("four_fifths_ok"), "n/a"),
                g.get("tpr"),
                g.get("fpr"),
                g.get("mean_predicted"),
                g.get("observed_rate"),
            ]
        )
    return rows


def section_fairness(s: Sources) -> list[str]:
    f = s.fairness
    if f is None:
        where = f"spec `protected`; `{shown_path(s.fairness_path)}`"
        return [f"No fairness findings: {s.fairness_note}.", *_source(where)]
    settings = f.get("settings", {})
    lines = [
        f"Split `{f.get('split')}`, {f.get('rows')} customers, at threshold "
        f"{cell(f.get('threshold'))}. Favourable decision: `{settings.get('favourable')}`; "
        f"adverse impact ratio (AIR) = a group's favourable rate over the most favoured "
        f"group's; four-fifths floor {cell(settings.get('four_fifths'), 'g')}; groups under "
        f"{settings.get('min_group_rows')} rows are reported as too small; intervals "
        f"(bootstrap) below {settings.get('bootstrap_below_rows')} rows.",
    ]
    for a in f.get("attributes", []):
        used = "a feature of the model" + (f" ({a['why']})" if a.get("why") else "")
        lines += [
            "",
            f"### `{a['column']}`",
            "",
            f"{used if a.get('use_as_feature') else 'Not a feature of the model.'} Most "
            f"favoured group: `{a.get('most_favoured')}`; rows without a value: "
            f"{a.get('missing_rows')}" + (f"; bands {a['bands']}" if a.get("bands") else "") + ".",
            "",
            *table(
                [
                    "group",
                    "rows",
                    "events",
                    "",
                    "flag rate",
                    "interval",
                    "AIR",
                    "interval",
                    "four-fifths",
                    "TPR",
                    "FPR",
                    "mean predicted",
                    "observed",
                ],
                _group_rows(a),
            ),
        ]
        small = [g["group"] for g in a["groups"] if g.get("too_small")]
        failing = [g["group"] for g in a["groups"] if g.get("four_fifths_ok") is False]
        lines += [
            "",
            f"Below the four-fifths floor: {', '.join(map(str, failing)) or 'none'}. "
            f"Too small to judge: {', '.join(map(str, small)) or 'none'}.",
        ]
        raised = [g for g in a["groups"] if g.get("own_value_raises") is not None]
        if raised:
            counts = "; ".join(
                f"`{g['group']}` {g['own_value_raises']} of {g['rows']}" for g in raised
            )
            lines += [
                "",
                f"Customers whose own `{a['column']}` raises their probability (re-scored with "
                f"the typical value; Regulation B forbids it for applicants 62 or older when "
                f"the attribute is age): {counts}.",
            ]
        proxies = sorted(
            (p for p in f.get("proxies", []) if p["attribute"] == a["column"]),
            key=lambda p: -abs(p["value"]),
        )[:TOP_PROXIES]
        if proxies:
            lines += [
                "",
                f"Strongest proxies of `{a['column']}` among the features:",
                "",
                *table(
                    ["feature", "measure", "value"],
                    [[p["feature"], p["measure"], p["value"]] for p in proxies],
                ),
            ]
    summary = f.get("summary")
    if summary:
        lines += ["", "**Summary.**", "", *table(["key", "value"], _flat("", summary))]
    return lines + _source(
        f"`{shown_path(s.fairness_path)}` keys `settings`, `attributes`, `proxies`, `summary`"
    )


def _generator(s: Sources) -> str | None:
    """The built-in generator's own first line, when the data is a built-in's."""
    name = s.spec.name
    table_path = s.spec.resolve(s.spec.data.table)
    builtin_folder = table_path.parent.name == name and (
        table_path.parent.parent.name == "data"
        or table_path.parent == get_settings().data_dir / name
    )
    if name not in BUILTIN_USE_CASES or not builtin_folder:
        return None
    module = importlib.import_module(f"datagen.{name}")
    return (module.__doc__ or "").strip().splitlines()[0]


def section_limitations(s: Sources) -> list[str]:
    t = s.training
    items = list(s.spec.document.limitations)
    made = _generator(s)
    if made:
        items.append(
            f"The data is the built-in data set written by `datagen/{s.spec.name}.py`, which "
            f'describes it as: "{made}" Numbers here say how the method performs on it, not '
            "how it would on a lender's own customers."
        )
    test = t["test"]
    events = round(test["rows"] * test["positive_rate"])
    ci = (t.get("test_ci") or {}).get("roc_auc")
    width = f"; its ROC-AUC interval spans {cell(ci['high'] - ci['low'])}" if ci else ""
    small = (
        f" (under {SMALL_TEST_EVENTS}: every test metric is noisy)"
        if events < SMALL_TEST_EVENTS
        else ""
    )
    items.append(
        f"The test split holds {test['rows']} customers and {events} risk events{small}{width}."
    )
    if all(_monotone(s.card.spec, f.name) == NO_MONOTONE for f in s.card.spec.features):
        items.append(
            "No monotone constraints are declared: nothing forces the score to move in the "
            "expected direction with any feature beyond what the data taught it."
        )
    if s.fairness:
        small_groups = [
            f"{a['column']}={g['group']} ({g['rows']} rows)"
            for a in s.fairness.get("attributes", [])
            for g in a["groups"]
            if g.get("too_small")
        ]
        if small_groups:
            items.append("Groups too small to judge fairness: " + ", ".join(small_groups) + ".")
    elif s.fairness_note:
        items.append(f"No fairness analysis: {s.fairness_note}.")
    if s.card.published:
        items.append(
            f"Published numbers ({s.card.published.source}) were measured elsewhere on other "
            "splits: shown in the training report beside ours, never mixed in."
        )
    items.append(
        "Labels mature after the outcome window: until then, only drift (inputs and score) "
        "can be watched, not performance."
    )
    return [f"- {item}" for item in items] + _source(
        f"spec `{s.spec_file}` key `document.limitations`",
        _training_key(s, "test.rows", "test.positive_rate", "test_ci.roc_auc"),
        "the data folder and `datagen/`, the fairness report's `too_small` groups",
    )


def _alert_scope(rule: dict[str, Any]) -> str:
    expr = rule["expr"]
    if "riskbento_drift_" in expr:
        fed = "the drift job (`python -m riskbento drift`, pushed to the Pushgateway)"
    elif "riskbento_outcome_" in expr:
        fed = "the outcomes job (`python -m riskbento outcomes`, pushed to the Pushgateway)"
    else:
        fed = "the service's /metrics"
    who = "this use case" if "use_case" in expr else "the whole service (every use case on it)"
    return f"{who}; fed by {fed}"


def _condition(expr: str) -> str:
    metrics_used = sorted(set(re.findall(r"\b(?:riskbento|bentoml)_[a-z_]+", expr)))
    metrics_used = [re.sub(r"_(bucket|sum|count|total)$", r"_\1", m) for m in metrics_used]
    tests = re.findall(r"(?:==|>=|<=|>|<)\s*[\d.]+(?:\s*[*/]\s*[\d.]+)*(?![\w.])", expr)
    return ", ".join(f"`{m}`" for m in metrics_used) + (f" ({'; '.join(tests)})" if tests else "")


def _summary(text: str, use_case: str) -> str:
    """An alert's summary with its template fields named: `{{ $labels.tier }}` -> <tier>."""
    text = re.sub(r"\{\{\s*\$labels\.use_case\s*\}\}", use_case, text)
    text = re.sub(r"\{\{\s*\$labels\.(\w+)\s*\}\}", r"<\1>", text)
    return re.sub(r"\{\{[^}]*\}\}", "<value>", text)


def section_monitoring(s: Sources) -> list[str]:
    drift, outcomes, name = s.spec.drift, s.spec.outcomes, s.spec.name
    rows = [
        [r["name"], r["severity"], r["for"], _condition(r["expr"]), _summary(r["summary"], name),
         _alert_scope(r)]
        for r in s.alerts
    ]  # fmt: skip
    return [
        f"**Drift** (inputs and score against the training reference stored with the model): "
        f"population stability index at or above {cell(drift.psi_warn, 'g')} is reported, at "
        f"or above {cell(drift.psi_alert, 'g')} is drift (exit 1, "
        f"`riskbento_drift_detected`); no judgement below {drift.min_rows} logged rows. "
        f"Command: `python -m riskbento drift {name}` (`make drift USE_CASE={name}`), daily.",
        "",
        f"**Performance on matured outcomes**: a prediction's outcome is final "
        f"{outcomes.window_days} days after it; a week with at least {outcomes.min_rows} "
        f"matured labels is below the floor when its ROC-AUC is under "
        f"{cell(outcomes.min_roc_auc, 'g')} (test split: {cell(s.training['test']['roc_auc'])}) "
        f"or |mean predicted - observed rate| exceeds "
        f"{cell(outcomes.max_calibration_gap, 'g')}. Command: `python -m riskbento outcomes "
        f"{name} --labels <labels.csv>`; a shadow challenger that beats the champion there is "
        f"promoted with `python -m riskbento promote {name}`, and this document is rewritten.",
        "",
        f"**Alerts** (`{shown_path(ALERTS_FILE)}`):",
        "",
        *(
            table(["alert", "severity", "for", "reads", "what it means", "applies to"], rows)
            if rows
            else [f"No alert rules found at `{shown_path(ALERTS_FILE)}`."]
        ),
        *_source(
            f"spec `{s.spec_file}` keys `drift`, `outcomes` (as the jobs read them: the spec as "
            "it is now)",
            f"`{shown_path(ALERTS_FILE)}` (`alert`, `expr`, `for`, `labels.severity`, "
            "`annotations.summary`)",
            _training_key(s, "test.roc_auc"),
        ),
    ]


def _decision(card: ModelCard | None) -> str:
    record = (card.retrain if card else None) or {}
    if not record:
        return ""
    decision = record.get("decision") or {}
    parts = [f"by {record.get('source', 'retrain')}"]
    if record.get("forced"):
        parts.append(f"forced: {record.get('reason')}")
    if decision.get("why"):
        parts.append(decision["why"])
    if record.get("promoted_at"):
        parts.append(f"at {record['promoted_at']}")
    return "; ".join(parts)


def section_change_log(s: Sources) -> list[str]:
    rows = []
    for v in s.versions:
        notes = [n for n, on in (("described here", v.tag == s.tag),
                                 ("latest", v is s.versions[-1])) if on]  # fmt: skip
        rows.append(
            [
                v.stored_at,
                v.card.created_at if v.card else "",
                f"`{v.tag}`",
                ", ".join(notes),
                f"`{v.card.promoted_from}`" if v.card and v.card.promoted_from else "",
                _decision(v.card) or (v.problem or ""),
            ]
        )
    return [
        *table(["stored", "trained", "tag", "", "promoted from", "promotion decision"], rows),
        *_source(
            f"the BentoML store: every version of `{s.spec.name}`, its creation time, and its "
            "card's `created_at`, "
            "`promoted_from` and `retrain` (the decision recorded by training/retrain.py or "
            "training/promote.py)"
        ),
    ]


SECTION_WRITERS: tuple[Callable[[Sources], list[str]], ...] = (
    section_purpose,
    section_out_of_scope,
    section_data,
    section_features,
    section_method,
    section_performance,
    section_calibration,
    section_threshold,
    section_tiers,
    section_fairness,
    section_limitations,
    section_monitoring,
    section_change_log,
)


def to_markdown(s: Sources, generated_at: str) -> str:
    hashes = ", ".join(f"{k} `{v}`" for k, v in s.training["data_sha256"].items())
    lines = [
        f"# Model document: {s.spec.name}",
        "",
        f"Model `{s.tag}`"
        + (f" (promoted from `{s.card.promoted_from}`)" if s.card.promoted_from else "")
        + f", trained {s.card.created_at}. Generated {generated_at} by "
        f"`python -m riskbento document {s.spec.name}`.",
        "",
        f"Data (sha256): {hashes}.",
        "",
        f"Read from: spec `{s.spec_file}`; training report `{shown_path(s.training_path)}`; "
        f"fairness report `{shown_path(s.fairness_path)}`"
        + ("" if s.fairness else " (not used)")
        + f"; the model card of `{s.tag}` in the BentoML store. Every number below is read "
        "from the file and key its section names.",
    ]
    for number, (title, writer) in enumerate(zip(SECTIONS, SECTION_WRITERS, strict=True), 1):
        lines += ["", f"## {number}. {title}", "", *writer(s)]
    return "\n".join(lines) + "\n"
