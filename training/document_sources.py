"""What the model document reads, gathered once: the spec, the stored model's card, the
training and fairness reports (the ones that describe this model), the store's versions
of the use case and the alert rules (`training/document.py` writes the document)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

import bentoml
import yaml

from core.card import ModelCard
from core.errors import UserError
from core.names import (
    FAIRNESS_REPORT_STEM,
    MODEL_DOCUMENT_STEM,
    PROJECT_ROOT,
)
from core.spec import Spec, load_spec, spec_path
from model import store
from model.scorer import ModelNotFound, find_model
from training.report import REPORT_STEM as TRAINING_STEM

ALERTS_FILE = PROJECT_ROOT / "deploy" / "prometheus" / "alerts.yml"
RETRAIN_DIRNAME = "retrain"  # training/retrain.py's run folders: reports/<name>/retrain/<run>/


class DocumentError(UserError):
    """The model document cannot be built: a report it reads is missing or describes
    another model."""


def shown_path(path: Path) -> str:
    """A path relative to the project where it lies inside it, else absolute."""
    path = Path(path).resolve()
    try:
        return path.relative_to(PROJECT_ROOT).as_posix()
    except ValueError:
        return str(path)


def document_paths(name: str, reports_dir: Path, fairness: bool = True) -> dict[str, str]:
    """The model card's `documents`: where its reports are, relative to the project (the
    fairness report only where the spec declares protected attributes)."""
    folder = Path(reports_dir) / name
    paths = {
        "model_document": shown_path(folder / f"{MODEL_DOCUMENT_STEM}.md"),
        "fairness_report": shown_path(folder / f"{FAIRNESS_REPORT_STEM}.md"),
        "training_report": shown_path(folder / f"{TRAINING_STEM}.md"),
    }
    return paths if fairness else {k: v for k, v in paths.items() if k != "fairness_report"}


# ---------------------------------------------------------------- what the document reads


@dataclass
class Version:
    tag: str
    stored_at: str  # when the store saved it (a promotion is a new save)
    card: ModelCard | None
    problem: str | None = None


@dataclass
class Sources:
    spec: Spec  # as it is now: use, misuse, limits, monitoring thresholds
    spec_file: str
    tag: str
    card: ModelCard  # the model as trained: features, costs, threshold
    training: dict[str, Any]
    training_path: Path
    fairness: dict[str, Any] | None
    fairness_path: Path
    fairness_note: str | None  # why `fairness` is None
    versions: list[Version]
    alerts: list[dict[str, Any]]
    out_dir: Path


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


def _report_folders(reports_dir: Path, tag: str, card: ModelCard) -> list[Path]:
    """Where this model's training report may be: its use case's folder and, for a
    promoted model, the challenger's (top level or inside a retrain run)."""
    folders = [reports_dir / tag.split(":")[0]]
    if card.promoted_from:
        origin = card.promoted_from.split(":")[0]
        if card.retrain and card.retrain.get("report"):
            folders.append(Path(card.retrain["report"]).parent / origin)
        folders.append(reports_dir / origin)
        folders += sorted((reports_dir / card.use_case / RETRAIN_DIRNAME).glob(f"*/{origin}"))
    return folders


def find_training_report(reports_dir: Path, tag: str, card: ModelCard) -> tuple[Path, dict]:
    """The training.json written when this model (or, promoted, its challenger) trained."""
    wanted = {tag, card.promoted_from} - {None}
    seen = []
    for folder in _report_folders(reports_dir, tag, card):
        path = folder / f"{TRAINING_STEM}.json"
        report = _read_json(path)
        if report is None:
            continue
        if report.get("model_tag") in wanted:
            return path, report
        seen.append(f"{shown_path(path)} (model {report.get('model_tag')})")
    raise DocumentError(
        f"no training report for model {tag} under {reports_dir}: expected a "
        f"{TRAINING_STEM}.json whose model_tag is one of {sorted(wanted)}, found "
        f"{', '.join(seen) or 'none'}; retrain it (`make train USE_CASE={card.use_case}`) or "
        "pass the model tag the reports describe"
    )


def _fairness(folder: Path, spec: Spec, card: ModelCard, tag: str):
    path = folder / f"{FAIRNESS_REPORT_STEM}.json"
    if not (spec.protected or card.spec.protected):
        return None, path, "the spec declares no protected attributes (`protected:`)"
    report = _read_json(path)
    if report is None:
        return None, path, f"no fairness report at {shown_path(path)}"
    if report.get("model_tag") not in {tag, card.promoted_from}:
        return (
            None,
            path,
            (f"{shown_path(path)} describes model {report.get('model_tag')}, not {tag}: not used"),
        )
    return report, path, None


def store_versions(name: str) -> list[Version]:
    """Every stored version of `name`, oldest first, with its card where it reads."""
    versions = []
    for model in bentoml.models.list(name):
        try:
            card, problem = store.card(model), None
        except store.StaleModel as err:
            card, problem = None, str(err).split(";")[0]
        stored = model.info.creation_time.astimezone(UTC).isoformat(timespec="seconds")
        versions.append(Version(str(model.tag), stored, card, problem))
    return sorted(versions, key=lambda v: v.stored_at)


def read_alerts(path: Path = ALERTS_FILE) -> list[dict[str, Any]]:
    """Every alert rule: group, name, expr, for, severity, summary."""
    if not path.exists():
        return []
    rules = []
    for group in yaml.safe_load(path.read_text(encoding="utf-8")).get("groups", []):
        for rule in group.get("rules", []):
            if "alert" in rule:
                rules.append(
                    {
                        "group": group["name"],
                        "name": rule["alert"],
                        "expr": " ".join(str(rule["expr"]).split()),
                        "for": rule.get("for", "0s"),
                        "severity": rule.get("labels", {}).get("severity", ""),
                        "summary": str(rule.get("annotations", {}).get("summary", "")),
                    }
                )
    return rules


def gather(
    use_case_or_spec: str | Path | Spec, reports_dir: Path, model_tag: str | None = None
) -> Sources:
    if isinstance(use_case_or_spec, Spec):
        spec, spec_file = use_case_or_spec, None
    else:
        spec_file = str(spec_path(use_case_or_spec))
        spec = load_spec(use_case_or_spec, check_data=False)
    try:
        model = find_model(model_tag or f"{spec.name}:latest")
    except ModelNotFound as err:
        raise DocumentError(str(err)) from None
    tag, card = str(model.tag), store.card(model)
    training_path, training = find_training_report(Path(reports_dir), tag, card)
    fairness, fairness_path, note = _fairness(training_path.parent, spec, card, tag)
    return Sources(
        spec=spec,
        spec_file=shown_path(Path(spec_file or card.spec_file)),
        tag=tag,
        card=card,
        training=training,
        training_path=training_path,
        fairness=fairness,
        fairness_path=fairness_path,
        fairness_note=note,
        versions=store_versions(spec.name),
        alerts=read_alerts(),
        out_dir=Path(reports_dir) / spec.name,
    )
