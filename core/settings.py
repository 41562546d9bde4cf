"""Runtime settings, read from `RISKBENTO_*` environment variables; nothing happens at import."""

from functools import lru_cache
from pathlib import Path

from pydantic import PositiveInt, SecretStr
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
    workers: int = 2  # one per core: 1,000-record bodies 53,200 rows/s vs 22,600 with 1 (bench)
    # Reason codes in every answer (the default). Off, answers carry `reasons: []`: for a
    # deployment that never shows them; `make bench` measures what they cost.
    reasons: bool = True
    access_log: bool = False  # per-request log lines cost ~10 % of server CPU; on for debugging
    request_timeout_s: float = 10.0
    # Young-generation collections between two full garbage collections (Python: 10). A full
    # one walks every live request, and BentoML's timeout middleware keeps each request's
    # context alive for `request_timeout_s`: 36-68 ms per full collection at ~2,000 req/s
    # per worker. Ten times rarer: 1-record /predict_batch bodies at c=32 p99 21.01 ms vs
    # 65.91 with Python's 10 (make bench sweep).
    gc_full_every: PositiveInt = 100
    max_batch_records: int = 1_000  # per /predict_batch request body
    # Adaptive batching: records merged into one model call (a larger body is cut into
    # sequential calls: 1,000 served 53,200 rows/s, 64 only 19,400), and the deadline after
    # which a queued request is shed with a 503 (not a wait window: keep it at the timeout).
    batch_max_size: int = 1_000
    batch_max_latency_ms: int = 10_000
    # Security (README "Security"). A bearer token on every path but the probes, metrics and
    # API pages, from the variable or a mounted secret file (never both); off when neither is set.
    auth_token: SecretStr | None = None
    auth_token_file: Path | None = None
    # Request bodies: 1,000 records of the widest built-in (default) are ~1.4 MB of JSON;
    # 100,000 raw offboarding transactions (the /score_transactions cap) are ~28 MB.
    max_body_bytes: PositiveInt = 2 * 1024 * 1024
    max_transactions_body_bytes: PositiveInt = 64 * 1024 * 1024
    # Monitoring: where the service's file exporter writes prediction logs (and where
    # `make drift` reads them by default); drift metrics are pushed only when a URL is set.
    prediction_log_dir: Path = PROJECT_ROOT / "monitoring"
    prediction_log: bool = True  # every answer logged with its inputs, for drift checks
    prediction_log_sample: float = 1.0  # share of records logged (logging ~30 µs a record)
    pushgateway_url: str | None = None

    @property
    def serving_tag(self) -> str:
        return self.model_tag or f"{self.use_case}:latest"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
