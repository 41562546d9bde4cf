"""A prediction log written by the real `PredictionLog`, for the jobs that read it."""

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from core.names import PROJECT_ROOT
from core.settings import get_settings

LOG_USE_CASE = "filing_dropoff"  # small, and has numeric, categorical and binary features

# A filing_dropoff record and answer, logged by `script` (which sees `log`, `record`,
# `answer`, `spec`, `sys`) in a fresh process: BentoML keeps one monitor path per name and
# process, so each log gets its own.
_PRELUDE = """
import sys
from serving.predlog import PredictionLog
from core.spec import load_spec
spec = load_spec(sys.argv[1], check_data=False)
log = PredictionLog(spec, "filing_dropoff:abc", sys.argv[2])
record = {"user_id": "U1", "age": 30, "income": 1000.5, "employment_type": "student",
          "marital_status": None, "time_spent_on_platform": 5.0, "number_of_sessions": 2,
          "fields_filled_percentage": 50.0, "previous_year_filing": 1,
          "device_type": "mobile", "referral_source": "friend_referral"}
answer = {"probability": 0.25, "prediction": 1, "risk_tier": "medium", "reasons": [],
          "warnings": ["a warning is not logged"]}
"""


@pytest.fixture(scope="session")
def log_in_fresh_process() -> Callable[[Path, str], str]:
    """`log_in_fresh_process(root, script)` -> the stderr of a process that logged
    `script`'s records under `root`."""

    def _run(root: Path, script: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", _PRELUDE + script, LOG_USE_CASE, str(root)],
            cwd=PROJECT_ROOT, env=dict(os.environ), capture_output=True, text=True,
            timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stderr

    return _run


@pytest.fixture
def no_pushgateway(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """RISKBENTO_PUSHGATEWAY_URL unset for the test (a job then pushes nothing)."""
    monkeypatch.delenv("RISKBENTO_PUSHGATEWAY_URL", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
