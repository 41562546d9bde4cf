"""Runtime settings, read from `RISKBENTO_*` environment variables; nothing happens at import."""

from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from riskbento.constants import DEFAULT_USE_CASE, PROJECT_ROOT, USECASES_DIRNAME


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RISKBENTO_")

    data_dir: Path = PROJECT_ROOT / "data"
    reports_dir: Path = PROJECT_ROOT / "reports"
    outputs_dir: Path = PROJECT_ROOT / "outputs"
    usecases_dir: Path = PROJECT_ROOT / USECASES_DIRNAME

    # Serving: which model answers, and how the server runs it.
    use_case: str = DEFAULT_USE_CASE
    model_tag: str | None = None  # default `<use_case>:latest`
    workers: int = 1
    access_log: bool = False  # per-request log lines cost ~10 % of server CPU; on for debugging
    request_timeout_s: float = 10.0
    max_batch_records: int = 1_000  # per /predict_batch request body
    batch_max_size: int = 64  # requests merged into one model call by adaptive batching
    batch_max_latency_ms: int = 1_000  # adaptive batching sheds requests that would wait longer

    @property
    def serving_tag(self) -> str:
        return self.model_tag or f"{self.use_case}:latest"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
