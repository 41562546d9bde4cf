"""A shadow challenger: a second model scores every record the champion answered, off
the answer's path, and both answers go to the prediction log.

The caller only ever gets the champion's answer, and it never waits for the challenger:
`Shadow.submit` hands the records (already answered and logged) to one background thread
and returns. The challenger cannot change an answer (it sees copies of what was
answered), cannot fail one (its errors are counted and logged, never raised), and cannot
queue up without bound: past `max_pending` blocks waiting, records are not shadow-scored
and are counted as skipped. What it can take is CPU: its cost is measured in `make bench`.

The challenger must read the same inputs: `compatibility(champion, challenger)` names
the first difference, and the service refuses to start on one.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import bentoml
import numpy as np

from core.card import ModelCard
from core.names import CHALLENGER_SUFFIX, SHADOW_CHALLENGER
from model.scorer import Scorer, find_model
from serving.predlog import SHADOW, PredictionLog

logger = logging.getLogger(__name__)


def find_shadow(setting: str | None, use_case: str) -> bentoml.Model | None:
    """The shadow challenger `RISKBENTO_SHADOW_TAG` names (`challenger`: the newest
    `<use case>_challenger`), or None when unset; ModelNotFound names the tag."""
    if not setting:
        return None
    tag = f"{use_case}{CHALLENGER_SUFFIX}:latest" if setting == SHADOW_CHALLENGER else setting
    return find_model(tag)


def compatibility(champion: ModelCard, challenger: ModelCard) -> str | None:
    """None when the challenger reads the champion's records; else the first difference."""
    ours, theirs = champion.spec, challenger.spec
    if ours.id_column != theirs.id_column:
        return f"id column {theirs.id_column!r}, the champion's is {ours.id_column!r}"
    mine = {f.name: f.type.value for f in ours.features}
    other = {f.name: f.type.value for f in theirs.features}
    if mine.keys() != other.keys():
        missing, extra = sorted(mine.keys() - other.keys()), sorted(other.keys() - mine.keys())
        return f"other features: lacks {missing}, adds {extra}"
    changed = {name: (mine[name], other[name]) for name in mine if mine[name] != other[name]}
    if changed:
        return f"features of another type (champion, challenger): {changed}"
    return None


class Shadow:
    """Scores answered records with the challenger in a background thread."""

    def __init__(
        self, scorer: Scorer, predlog: PredictionLog | None, metrics: Any, max_pending: int
    ) -> None:
        self.scorer = scorer
        self.predlog = predlog
        self.metrics = metrics
        self.max_pending = max_pending
        self._pending = 0
        self._lock = threading.Lock()
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shadow")

    def submit(self, records: list[dict[str, Any]], answers: list[dict[str, Any]]) -> None:
        with self._lock:
            if self._pending >= self.max_pending:
                self.metrics.skipped.inc(len(records))
                return
            self._pending += 1
        self._thread.submit(self._score, records, [dict(a) for a in answers])

    def _score(self, records: list[dict[str, Any]], answered: list[dict[str, Any]]) -> None:
        try:
            answers = self.scorer.score_records(records, explain=False)
            if self.predlog is not None:
                self.predlog.log(records, answers, self.scorer.tag, SHADOW)
            self._compare(answered, answers)
        except Exception:  # the challenger's failure is counted, never the caller's
            self.metrics.failures.inc(len(records))
            logger.exception("shadow %s failed on %d record(s)", self.scorer.tag, len(records))
        finally:
            with self._lock:
                self._pending -= 1

    def _compare(self, champion: list[dict[str, Any]], challenger: list[dict[str, Any]]) -> None:
        pairs = list(zip(champion, challenger, strict=True))
        decisions = sum(a["prediction"] != b["prediction"] for a, b in pairs)
        tiers = sum(a["risk_tier"] != b["risk_tier"] for a, b in pairs)
        self.metrics.disagree_decision.inc(decisions)
        self.metrics.disagree_tier.inc(tiers)
        p_champion = np.array([a["probability"] for a in champion])
        p_challenger = np.array([b["probability"] for b in challenger])
        for difference in (p_challenger - p_champion).tolist():
            self.metrics.score_difference.observe(difference)
