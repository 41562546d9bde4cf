"""A job's metrics to the Pushgateway at `RISKBENTO_PUSHGATEWAY_URL`, when one is set."""

from __future__ import annotations

import logging
from typing import Any

from core.settings import get_settings


def push_if_set(job: str, registry: Any, use_case: str, log: logging.Logger) -> None:
    """Grouped by use case, replacing that use case's last run. A gateway that cannot be
    reached is a warning: the job's exit code still says what it found, and a dashboard
    sees the stale last-run timestamp."""
    url = get_settings().pushgateway_url
    if not url:
        return
    from prometheus_client import push_to_gateway

    try:
        grouping = {"use_case": use_case}
        push_to_gateway(url, job=job, registry=registry, grouping_key=grouping, timeout=10)
        log.info(f"metrics pushed to {url}")
    except OSError as err:
        log.warning(f"could not push the metrics to {url}: {err}")
