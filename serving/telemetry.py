"""The service's own Prometheus metrics, beside BentoML's `bentoml_service_*` ones.

What a risk team watches on a live model: the score distribution, the tier mix, the
fields that arrive outside what the model learned from, which model answers, and the
training-time reference to compare the live tier mix and mean score with.

Create `Telemetry` inside the worker (the service's `__init__`), not at import:
BentoML sets `PROMETHEUS_MULTIPROC_DIR` when a worker starts, after the service
module is imported, and `prometheus_client` reads it on first import. Label sets are
made once here, so recording a batch is a few dictionary lookups and counter adds.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from core.metrics import tier_shares
from core.names import TIER_NAMES

SCORE_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
WARNING_KINDS = ("out_of_range", "unseen_level", "imputed_blank")

# Every metric name this module exports (the dashboard and alert tests read this).
METRICS = (
    "riskbento_score",
    "riskbento_predictions_total",
    "riskbento_warnings_total",
    "riskbento_model_info",
    "riskbento_reference_tier_share",
    "riskbento_reference_score_mean",
    "riskbento_prediction_log_failures",
)
# ... and with a shadow challenger (`ShadowTelemetry`).
SHADOW_METRICS = (
    "riskbento_shadow_info",
    "riskbento_shadow_disagreement",
    "riskbento_shadow_score_difference",
    "riskbento_shadow_failures",
    "riskbento_shadow_skipped",
)
DIFFERENCE_BUCKETS = (-0.5, -0.2, -0.1, -0.05, -0.02, -0.01, 0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5)


class Telemetry:
    """Metrics for one served model; `observe` is called once per scored batch."""

    def __init__(
        self,
        use_case: str,
        model_tag: str,
        family: str,
        fields: Iterable[str],
        reference_scores: np.ndarray,
        tiers: tuple[float, float],
    ) -> None:
        import prometheus_client as prom  # after BentoML set the multiprocess folder

        self.score = prom.Histogram(
            "riskbento_score",
            "Probability of the risk event answered, per record",
            ["use_case"],
            buckets=SCORE_BUCKETS,
        ).labels(use_case)
        predictions = prom.Counter(
            "riskbento_predictions", "Records scored, by risk tier", ["use_case", "tier"]
        )
        self.per_tier = [predictions.labels(use_case, tier) for tier in TIER_NAMES]
        warnings = prom.Counter(
            "riskbento_warnings",
            "Answers carrying a warning, by field and kind",
            ["use_case", "field", "kind"],
        )
        self.per_warning = {
            (field, kind): warnings.labels(use_case, field, kind)
            for field in fields
            for kind in WARNING_KINDS
        }
        prom.Gauge(
            "riskbento_model_info",
            "The model answering (always 1)",
            ["use_case", "model_tag", "family"],
            multiprocess_mode="max",
        ).labels(use_case, model_tag, family).set(1)
        share = prom.Gauge(
            "riskbento_reference_tier_share",
            "Share of each risk tier on the test split at training",
            ["use_case", "tier"],
            multiprocess_mode="max",
        )
        for tier, value in tier_shares(reference_scores, *tiers).items():
            share.labels(use_case, tier).set(value)
        self.log_failures = prom.Counter(
            "riskbento_prediction_log_failures",
            "Answered or refused records whose prediction-log row could not be written",
            ["use_case"],
        ).labels(use_case)
        prom.Gauge(
            "riskbento_reference_score_mean",
            "Mean probability on the test split at training",
            ["use_case"],
            multiprocess_mode="max",
        ).labels(use_case).set(float(np.mean(reference_scores)))

    def observe(
        self, p: np.ndarray, tiers: np.ndarray, warnings: dict[tuple[str, str], int]
    ) -> None:
        observe_all(self.score, p)
        for index, count in enumerate(np.bincount(tiers, minlength=len(TIER_NAMES)).tolist()):
            if count:
                self.per_tier[index].inc(count)
        for key, count in warnings.items():
            self.per_warning[key].inc(count)


def observe_all(histogram: Any, values: np.ndarray) -> None:
    """`histogram.observe(v)` for every value, as one add per bucket and one to the sum.

    A labelled `prometheus_client` histogram in multiprocess mode writes a memory-mapped
    file on every observe, twice: 1,000 observes took ~1.5 ms of a 1,000-record request.
    This reads the histogram's bucket bounds and values (not public, so the version is
    pinned and tests/serving/test_telemetry.py compares it with observe)."""
    bounds = np.asarray(histogram._upper_bounds)
    counts = np.bincount(np.searchsorted(bounds, values, side="left"), minlength=len(bounds))
    for bucket, count in zip(histogram._buckets, counts.tolist(), strict=True):
        if count:
            bucket.inc(count)
    histogram._sum.inc(float(np.sum(values)))


class ShadowTelemetry:
    """How a shadow challenger compares with the champion on the same records."""

    def __init__(self, use_case: str, model_tag: str) -> None:
        import prometheus_client as prom  # after BentoML set the multiprocess folder

        prom.Gauge(
            "riskbento_shadow_info",
            "The shadow challenger scoring beside the champion (always 1)",
            ["use_case", "model_tag"],
            multiprocess_mode="max",
        ).labels(use_case, model_tag).set(1)
        disagreement = prom.Counter(
            "riskbento_shadow_disagreement",
            "Records where the challenger's decision or tier differs from the champion's",
            ["use_case", "kind"],
        )
        self.disagree_decision = disagreement.labels(use_case, "decision")
        self.disagree_tier = disagreement.labels(use_case, "tier")
        self.score_difference = prom.Histogram(
            "riskbento_shadow_score_difference",
            "Challenger's probability minus the champion's, per record",
            ["use_case"],
            buckets=DIFFERENCE_BUCKETS,
        ).labels(use_case)
        self.failures = prom.Counter(
            "riskbento_shadow_failures",
            "Records the challenger failed to score (the callers got the champion's answers)",
            ["use_case"],
        ).labels(use_case)
        self.skipped = prom.Counter(
            "riskbento_shadow_skipped",
            "Records not shadow-scored because the challenger's queue was full",
            ["use_case"],
        ).labels(use_case)


def from_model(model: Any, scorer: Any) -> Telemetry:
    """Telemetry for a stored model, its reference read from the files stored with it."""
    from model import store

    return Telemetry(
        use_case=scorer.spec.name,
        model_tag=str(model.tag),
        family=scorer.card.champion.family,
        fields=scorer.spec.feature_names,
        reference_scores=store.test_scores(model),
        tiers=(scorer.tiers.medium, scorer.tiers.high),
    )
