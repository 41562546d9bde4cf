"""The score histogram filled a batch at a time counts what one observe per value counts."""

import numpy as np
import prometheus_client as prom
import pytest

from serving.telemetry import SCORE_BUCKETS, observe_all


def _histogram(registry: prom.CollectorRegistry) -> prom.Histogram:
    return prom.Histogram(
        "riskbento_score", "test", ["use_case"], buckets=SCORE_BUCKETS, registry=registry
    ).labels("toy")


def _samples(registry: prom.CollectorRegistry) -> dict[tuple[str, str], float]:
    return {
        (s.name, s.labels.get("le", "")): s.value
        for family in registry.collect()
        for s in family.samples
        if not s.name.endswith("_created")
    }


@pytest.mark.parametrize("batches", [1, 3])
def test_observe_all_counts_every_value_in_its_bucket(batches):
    # values on the bounds (a bound is inclusive), between them, 0 and 1
    values = np.concatenate(
        [np.array([0.0, *SCORE_BUCKETS]), np.random.default_rng(0).random(500), [0.30000001]]
    )
    one, all_ = prom.CollectorRegistry(), prom.CollectorRegistry()
    each, together = _histogram(one), _histogram(all_)
    for part in np.array_split(values, batches):
        for value in part.tolist():
            each.observe(value)
        observe_all(together, part)
    expected, got = _samples(one), _samples(all_)
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-12), key
    assert got["riskbento_score_count", ""] == len(values)
