"""Runtime settings, read from `RISKBENTO_*` environment variables; nothing happens at import."""

from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from riskbento.constants import PROJECT_ROOT, USECASES_DIRNAME


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RISKBENTO_")

    data_dir: Path = PROJECT_ROOT / "data"
    reports_dir: Path = PROJECT_ROOT / "reports"
    outputs_dir: Path = PROJECT_ROOT / "outputs"
    usecases_dir: Path = PROJECT_ROOT / USECASES_DIRNAME


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
