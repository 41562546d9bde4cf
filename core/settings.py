"""Runtime settings, read from `RISKBENTO_*` environment variables; nothing happens at import."""

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import NonNegativeFloat, PositiveInt, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.names import DEFAULT_USE_CASE, PROJECT_ROOT, USECASES_DIRNAME


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RISKBENTO_")

    data_dir: Path = PROJECT_ROOT / "data"
    reports_dir: Path = PROJECT_ROOT / "reports"
    outputs_dir: Path = PROJECT_ROOT / "outputs"
    usecases_dir: Path = PROJECT_ROOT / USECASES_DIRNAME

    # Serving: which model answers, and how the server runs it.
    use_case: str = DEFAULT_USE_CASE
    model_tag: str | None = None  # default `<use_case>:latest`
    # Defaults below were chosen by `make bench`'s settings sweep on 2 cores; the measured
    # numbers are in loadtest/README.md and docs/deployment.md.
    workers: int = 2  # one per core
    # Reason codes in every answer (the default). Off, answers carry `reasons: []`: for a
    # deployment that never shows them; `make bench` measures what they cost.
    reasons: bool = True
    # Adverse-action reasons (the factors that raise risk, with their codes): for flagged
    # customers only (`flagged`, what a decline notice needs) or for everyone (`all`).
    adverse_reasons: Literal["flagged", "all"] = "flagged"
    access_log: bool = False  # a log line per request costs server CPU; on for debugging
    request_timeout_s: float = 10.0
    # On SIGTERM: seconds a worker keeps serving with /readyz at 503 before it drains, so a
    # load balancer stops sending first (serving/drain.py). 0: drain at once (Kubernetes'
    # preStop pause plays this part in deploy/k8s).
    drain_delay_s: NonNegativeFloat = 0.0
    # Young-generation collections between two full garbage collections (Python: 10). A full
    # one walks every live request, and BentoML's timeout middleware keeps each request's
    # context alive for `request_timeout_s`, so under load each full pass is a long pause
    # and the p99 tail grows with it.
    gc_full_every: PositiveInt = 100
    max_batch_records: int = 1_000  # per /predict_batch request body
    # Adaptive batching: records merged into one model call (a larger body is cut into
    # sequential calls, so keep it at the body limit), and the deadline after
    # which a queued request is shed with a 503 (not a wait window: keep it at the timeout).
    batch_max_size: int = 1_000
    batch_max_latency_ms: int = 10_000
    # Security (README "Security"). A bearer token on every path but the probes, metrics and
    # API pages, from the variable or a mounted secret file (never both); off when neither is set.
    auth_token: SecretStr | None = None
    auth_token_file: Path | None = None
    # Request bodies: room for a full body (max_batch_records records, or the
    # /score_transactions cap of raw transactions) of the widest built-in use case.
    max_body_bytes: PositiveInt = 2 * 1024 * 1024
    max_transactions_body_bytes: PositiveInt = 64 * 1024 * 1024
    # Monitoring: where the service's file exporter writes prediction logs (and where
    # `make drift` reads them by default); drift metrics are pushed only when a URL is set.
    prediction_log_dir: Path = PROJECT_ROOT / "monitoring"
    prediction_log: bool = True  # every answer logged with its inputs, for drift checks
    prediction_log_sample: float = 1.0  # share of records logged (below 1 on very hot paths)
    # A block that cannot be written (disk full, permission): "refuse" answers 503, so no
    # decision leaves without its record (the default: for a lender the log is the record
    # of every decision); "answer" answers anyway and counts the records not logged in
    # riskbento_prediction_log_failures_total (alert: RiskbentoPredictionLogFailing).
    prediction_log_on_failure: Literal["refuse", "answer"] = "refuse"
    pushgateway_url: str | None = None
    # Shadow challenger (serving/shadow.py): a model tag, or "challenger" for the newest
    # `<use case>_challenger` (`make retrain`); unset, no shadow. Past `shadow_max_pending`
    # blocks waiting for it, records are not shadow-scored (counted).
    shadow_tag: str | None = None
    shadow_max_pending: PositiveInt = 8

    @property
    def serving_tag(self) -> str:
        return self.model_tag or f"{self.use_case}:latest"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
