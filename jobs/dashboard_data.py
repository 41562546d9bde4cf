"""The risk dashboard's aggregates (`serving/dashboard.py` serves them), from the prediction log.

`python -m riskbento dashboard-data <use case> [--log DIR]` (also run by `make drift`)
reads the log with orjson and counts production traffic answered by the champion (rows
with another `source` or the `shadow` role are counted apart, and so are rows of other
models): the tier mix per day against the training-time tier shares, the score
histogram against the test-split scores stored with the model, the action list (the
spec's `action_list` criteria, or the high tier) with each customer's latest answer and
its reasons (re-scored by the same model: reasons are not logged), the features that
push high-tier customers up most often, and the latest drift run's PSI per column.

It writes `reports/<use case>/dashboard/data.json` at once (a temporary file renamed
over the old one), stamped with the model tag, the log files read and when.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from core.errors import UserError
from core.logs import get_logger
from core.metrics import tier_shares
from core.names import TIER_NAMES
from core.settings import get_settings
from core.spec import Spec, load_spec
from core.stats import files_sha256
from serving.dashboard import DATA_FORMAT, data_path
from serving.predlog import (
    MODEL_COLUMN,
    PRODUCTION,
    ROLE_COLUMN,
    SHADOW,
    SOURCE_COLUMN,
    TIMESTAMP_COLUMN,
    log_files,
    logged_name,
    read_rows,
)

SCORE_BINS = 20  # equal-width bins of the probability, 0 to 1
ACTION_LIST_SHOWN = 500  # customers listed, highest probability first (all are counted)
DRIFT_DIRNAME, DRIFT_FILE = "drift", "drift.json"  # jobs/drift.py's report (not imported:
# it loads the plotting code)

log = get_logger("dashboard")


class NoTraffic(UserError):
    """A prediction log with no production row of this use case's champion."""


# ---------------------------------------------------------------- reading


def split_rows(
    rows: list[dict[str, Any]], use_case: str, model_tag: str | None
) -> tuple[list[dict[str, Any]], str | None, dict[str, Any]]:
    """(production champion rows of one model, its tag, what was left out and why).

    The model is the one asked for, else the one that answered the latest production
    row of this use case."""
    excluded: dict[str, Any] = {"shadow": 0, "not_production": Counter(), "other_models": Counter()}
    traffic = []
    for row in rows:
        if row.get(ROLE_COLUMN) == SHADOW:
            excluded["shadow"] += 1
        elif (row.get(SOURCE_COLUMN) or PRODUCTION) != PRODUCTION:
            excluded["not_production"][str(row[SOURCE_COLUMN])] += 1
        else:
            traffic.append(row)
    if model_tag is None:
        ours = [r for r in traffic if str(r.get(MODEL_COLUMN, "")).split(":")[0] == use_case]
        if ours:
            latest = max(ours, key=lambda r: str(r.get(TIMESTAMP_COLUMN, "")))
            model_tag = str(latest[MODEL_COLUMN])
    kept = []
    for row in traffic:
        if str(row.get(MODEL_COLUMN)) == model_tag:
            kept.append(row)
        else:
            excluded["other_models"][str(row.get(MODEL_COLUMN))] += 1
    excluded["not_production"] = dict(excluded["not_production"])
    excluded["other_models"] = dict(excluded["other_models"])
    return kept, model_tag, excluded


# ---------------------------------------------------------------- the aggregates


def tier_mix(rows: list[dict[str, Any]], training: dict[str, float]) -> dict[str, Any]:
    """Answers per day (the log's local date) and tier, with the training-time shares."""
    days: dict[str, Counter] = defaultdict(Counter)
    for row in rows:
        day = str(row.get(TIMESTAMP_COLUMN) or "")[:10] or "unknown"
        days[day][str(row.get("risk_tier"))] += 1
    table = []
    for day in sorted(days):
        counts = {tier: int(days[day].get(tier, 0)) for tier in TIER_NAMES}
        table.append({"day": day, **counts, "total": sum(counts.values())})
    return {"tiers": list(TIER_NAMES), "training_shares": training, "days": table}


def score_histogram(
    rows: list[dict[str, Any]], reference: np.ndarray | None, threshold: float, tiers: Any
) -> dict[str, Any]:
    edges = np.linspace(0.0, 1.0, SCORE_BINS + 1)
    scores = np.array(
        [float(r["probability"]) for r in rows if isinstance(r.get("probability"), int | float)]
    )
    observed = np.histogram(scores, bins=edges)[0] if scores.size else np.zeros(SCORE_BINS)
    out: dict[str, Any] = {
        "edges": [round(float(e), 6) for e in edges],
        "observed": [int(c) for c in observed],
        "observed_share": [float(c / max(scores.size, 1)) for c in observed],
        "threshold": threshold,
        "tiers": {"medium": tiers.medium, "high": tiers.high},
        "training_rows": 0,
        "training_share": None,
    }
    if reference is not None and reference.size:
        counts = np.histogram(np.clip(reference, 0.0, 1.0), bins=edges)[0]
        out["training_rows"] = int(reference.size)
        out["training_share"] = [float(c / reference.size) for c in counts]
    return out


def latest_per_customer(rows: list[dict[str, Any]], id_name: str) -> list[dict[str, Any]]:
    """Each customer's latest logged answer (by timestamp; the later line on a tie)."""
    latest: dict[str, tuple[str, int, dict[str, Any]]] = {}
    for i, row in enumerate(rows):
        key = str(row.get(id_name))
        stamp = str(row.get(TIMESTAMP_COLUMN) or "")
        if key not in latest or (stamp, i) >= latest[key][:2]:
            latest[key] = (stamp, i, row)
    return [row for _, _, row in latest.values()]


def listed(spec: Spec, customers: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str]:
    """The customers the action list holds, and its criterion in words."""
    criteria = spec.action_list
    if criteria is None:
        return [c for c in customers if c.get("risk_tier") == "high"], "risk tier high"
    out = []
    for row in customers:
        p = row.get("probability")
        if not isinstance(p, int | float) or p < criteria.min_probability:
            continue
        holding = 0
        for rule in criteria.rules:
            value = row.get(logged_name(rule.feature))
            if isinstance(value, int | float) and _holds(rule.op, float(value), rule.value):
                holding += 1
        if holding >= criteria.min_rules:
            out.append(row)
    rules = "; ".join(rule.describe() for rule in criteria.rules)
    words = f"probability ≥ {criteria.min_probability:g}"
    if criteria.rules:
        words += f" and at least {criteria.min_rules} of: {rules}"
    return out, f"{criteria.title}: {words}"


def _holds(op: str, value: float, limit: float) -> bool:
    return {
        ">=": value >= limit,
        ">": value > limit,
        "<=": value <= limit,
        "<": value < limit,
        "==": value == limit,
    }[op]


def explain(scorer: Any, spec: Spec, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The answers of the logged records, re-scored with reasons by the model that
    answered them (the log keeps the inputs and the probability, not the reasons)."""
    if not rows:
        return []
    records = [
        {
            spec.id_column: row.get(logged_name(spec.id_column)),
            **{f.name: row.get(logged_name(f.name)) for f in spec.features},
        }
        for row in rows
    ]
    return scorer.score_records(records, explain=True)


def action_entry(row: dict[str, Any], answer: dict[str, Any], id_name: str) -> dict[str, Any]:
    entry = {
        "id": row.get(id_name),
        "probability": row.get("probability"),
        "prediction": row.get("prediction"),
        "risk_tier": row.get("risk_tier"),
        "answered_at": row.get(TIMESTAMP_COLUMN),
        "reasons": answer.get("reasons", []),
    }
    if "adverse_reasons" in answer:
        entry["adverse_reasons"] = answer["adverse_reasons"]
    return entry


def top_reasons(answers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Features among the reasons that raise high-tier customers' probability, most often
    first, with the mean rise (probability points) where they do."""
    counts: Counter = Counter()
    rises: dict[str, list[float]] = defaultdict(list)
    for answer in answers:
        for reason in answer.get("reasons", []):
            if reason.get("effect", 0) > 0:
                counts[reason["feature"]] += 1
                rises[reason["feature"]].append(float(reason["effect"]))
    n = max(len(answers), 1)
    return [
        {
            "feature": feature,
            "customers": int(count),
            "share": count / n,
            "mean_effect": float(np.mean(rises[feature])),
        }
        for feature, count in counts.most_common()
    ]


def latest_drift(reports_dir: Path, use_case: str) -> dict[str, Any]:
    """The latest drift run's PSI per column, largest first, with when it ran."""
    path = reports_dir / use_case / DRIFT_DIRNAME / DRIFT_FILE
    if not path.is_file():
        why = f"no drift run yet: expected {path} (`python -m riskbento drift {use_case}`)"
        return {"available": False, "why": why}
    report = json.loads(path.read_text(encoding="utf-8"))
    columns = [
        {"column": c["column"], "type": c["type"], "psi": c["psi"], "status": c["status"]}
        for c in report["columns"]
    ]
    columns.sort(key=lambda c: -c["psi"])
    return {
        "available": True,
        "written_at": report.get("written_at"),
        "model_tag": report.get("model_tag"),
        "rows": report.get("rows"),
        "window": report.get("window"),
        "thresholds": report.get("thresholds"),
        "drift_detected": report.get("drift_detected"),
        "columns": columns,
    }


# ---------------------------------------------------------------- one run


def compute(
    use_case: str | Path,
    log_path: Path | str,
    model_tag: str | None = None,
    reports_dir: Path | None = None,
) -> dict[str, Any]:
    """Every aggregate the dashboard shows, as one JSON-ready dict."""
    from model import store
    from model.scorer import Scorer, find_model

    spec = load_spec(use_case, check_data=False)
    reports_dir = reports_dir or get_settings().reports_dir
    files = log_files(log_path, spec.name)
    rows, skipped = read_rows(files)
    kept, tag, excluded = split_rows(rows, spec.name, model_tag)
    if tag is None:
        raise NoTraffic(
            f"{spec.name}: no production row answered by a {spec.name} model in "
            f"{', '.join(map(str, files))} ({len(rows):,} rows read): nothing to show yet"
        )
    model = find_model(tag)
    card = store.card(model)
    model_spec = card.spec
    reference = store.test_scores(model)
    tiers = card.tiers
    id_name = logged_name(model_spec.id_column)
    customers = latest_per_customer(kept, id_name)
    on_list, criterion = listed(spec, customers)  # the action list as the spec says now
    on_list.sort(key=lambda r: -float(r.get("probability") or 0.0))
    high = [c for c in customers if c.get("risk_tier") == "high"]
    scorer = Scorer(str(model.tag), store.load_pipeline(model), card)
    shown = on_list[:ACTION_LIST_SHOWN]
    explained = {
        str(a[model_spec.id_column]): a for a in explain(scorer, model_spec, [*shown, *high])
    }
    return {
        "format": DATA_FORMAT,
        "use_case": spec.name,
        "model_tag": tag,
        "computed_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "log": {
            "path": str(log_path),
            "files": [str(f) for f in files],
            "sha256": files_sha256(files),
            "lines_read": len(rows),
            "skipped_lines": skipped,
            "rows_counted": len(kept),
            "excluded": excluded,
            "first": min((str(r.get(TIMESTAMP_COLUMN)) for r in kept), default=None),
            "last": max((str(r.get(TIMESTAMP_COLUMN)) for r in kept), default=None),
        },
        "customers": len(customers),
        "tier_mix": tier_mix(kept, tier_shares(reference, tiers.medium, tiers.high)),
        "scores": score_histogram(kept, reference, card.threshold.value, tiers),
        "action_list": {
            "criterion": criterion,
            "total": len(on_list),
            "shown": len(shown),
            "customers": [
                action_entry(r, explained.get(str(r.get(id_name)), {}), id_name) for r in shown
            ],
        },
        "top_reasons": {
            "high_tier_customers": len(high),
            "features": top_reasons([explained.get(str(c.get(id_name)), {}) for c in high]),
        },
        "drift": latest_drift(reports_dir, spec.name),
    }


def write_atomically(data: dict[str, Any], path: Path) -> Path:
    """The JSON in a temporary file beside `path`, then renamed over it: a reader sees the
    old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY))
        os.chmod(temporary, 0o644)  # mkstemp's is 0600: the server may run as another user
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def run_dashboard_data(
    use_case: str | Path,
    log_path: Path | str,
    out: Path | None = None,
    model_tag: str | None = None,
) -> int:
    """`python -m riskbento dashboard-data`: compute and write; returns the exit code."""
    settings = get_settings()
    data = compute(use_case, log_path, model_tag, settings.reports_dir)
    path = write_atomically(data, out or data_path(settings.reports_dir, data["use_case"]))
    counted = data["log"]["rows_counted"]
    log.info(
        f"{data['use_case']} ({data['model_tag']}): {counted:,} production rows, "
        f"{data['customers']:,} customers, {data['action_list']['total']:,} on the action "
        f"list -> {path}"
    )
    return 0
