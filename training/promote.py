"""Promotion from live evidence: the shadow challenger becomes the champion when the
outcomes report (`python -m riskbento outcomes`) says so, by the rule `make retrain`
promotes by (`core.decision.decide`: the paired bootstrap on the same customers), or by
hand with `--force` and a reason, which the promoted model's card records.

Promotion saves the challenger as a new version of the use case, so it is `latest`: a
server started without `RISKBENTO_MODEL_TAG` serves it from its next start (a rolling
restart in Kubernetes, docs/deployment.md)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from core.errors import UserError
from core.settings import get_settings
from model import store
from model.scorer import find_model
from training import retrain
from training.document import rewrite_document


class NotPromoted(UserError):
    """The outcomes report does not support promoting, and no reason to force was given."""


def read_report(path: Path, use_case: str) -> dict[str, Any]:
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(
            f"no outcomes report at {path}: run `python -m riskbento outcomes {use_case} "
            "--labels <labels.csv> --log <log folder>` first"
        ) from None
    if report.get("use_case") != use_case:
        raise UserError(
            f"{path} is the outcomes report of {report.get('use_case')!r}, not of {use_case!r}"
        )
    return report


def pick_comparison(report: dict[str, Any], shadow_tag: str | None) -> dict[str, Any]:
    """The champion-vs-shadow comparison of `shadow_tag`, or the report's only one."""
    comparisons = report.get("comparisons") or []
    shadows = [c["shadow"] for c in comparisons]
    if shadow_tag is not None:
        comparisons = [c for c in comparisons if c["shadow"] == shadow_tag]
    if len(comparisons) != 1:
        wanted = f" for {shadow_tag}" if shadow_tag else ""
        raise UserError(
            f"expected one champion-vs-shadow comparison{wanted} in the outcomes report, found "
            f"{len(comparisons)} (shadows compared: {shadows or 'none'}); "
            + (
                "pass --shadow <tag>"
                if len(comparisons) > 1
                else "serve a shadow challenger "
                "(RISKBENTO_SHADOW_TAG) until its outcomes mature, then rerun `outcomes`"
            )
        )
    return comparisons[0]


def promote_shadow(
    use_case: str,
    report_path: Path,
    shadow_tag: str | None = None,
    force_reason: str | None = None,
    reports_dir: Path | None = None,
) -> str:
    """Promote the shadow of the report's comparison and rewrite the use case's model
    document for it; returns the new champion's tag."""
    report = read_report(report_path, use_case)
    comparison = pick_comparison(report, shadow_tag)
    decision = comparison.get("decision")
    supported = bool(decision and decision.get("promote"))
    if not supported and not force_reason:
        raise NotPromoted(
            f"{comparison['shadow']} is not promoted: {comparison['recommendation']}. To "
            "promote it anyway, pass --force --reason '<why>' (recorded in the model)"
        )
    challenger = find_model(comparison["shadow"])
    spec_raw = yaml.safe_load((Path(challenger.path) / store.SPEC_FILE).read_text(encoding="utf-8"))
    record = {
        "source": "outcomes",
        "report": str(report_path),
        "report_written_at": report.get("written_at"),
        "labels_sha256": report.get("labels", {}).get("sha256"),
        "champion": comparison["champion"],
        "paired_labels": comparison.get("paired"),
        "decision": decision,
        "forced": not supported,
        "reason": force_reason,
        "promoted_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    folder = reports_dir or get_settings().reports_dir
    tag = retrain.promote(
        use_case, challenger, spec_raw, record, by="`riskbento promote`", reports_dir=folder
    )
    rewrite_document(use_case, folder, tag)
    return tag
