"""Shared fixtures. Data is generated into a per-session temp project, never into the repo."""

import contextlib
import importlib.util
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from prometheus_client import REGISTRY
from starlette.testclient import TestClient

import datagen
from core.names import PROJECT_ROOT, USECASES_DIRNAME
from core.settings import get_settings
from core.spec import Spec, load_spec

_STORE_ENV = "BENTOML_HOME"


def pytest_configure(config: pytest.Config) -> None:
    # Before anything touches BentoML: tests write models into a throwaway store,
    # never into the user's ~/bentoml.
    config.stash[_store_key] = tempfile.mkdtemp(prefix="riskbento-bentoml-")
    os.environ[_STORE_ENV] = config.stash[_store_key]
    # ... and servers started by tests log their predictions there too, not into the repo.
    os.environ["RISKBENTO_PREDICTION_LOG_DIR"] = os.path.join(
        config.stash[_store_key], "monitoring"
    )
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(config.stash.get(_store_key, ""), ignore_errors=True)


_store_key = pytest.StashKey[str]()

TIERS = ("unit", "data", "http", "integration")
# Fixtures that put a test in a tier: an in-process client, or a real process.
_HTTP_FIXTURES = {"serve", "client"}
_PROCESS_FIXTURES = {"server", "run_smoke", "small_log", "served", "traffic", "chromium"}


def _tier(item: pytest.Item) -> str:
    if Path(item.path).parent.name == "data":
        return "data"
    fixtures = set(getattr(item, "fixturenames", ()))
    if fixtures & _PROCESS_FIXTURES:
        return "integration"
    if fixtures & _HTTP_FIXTURES:
        return "http"
    return "unit"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test gets exactly one tier marker (`-m integration`, `-m "not http"`, ...):
    its own where it declares one, else from its folder and fixtures."""
    for item in items:
        declared = [m.name for m in item.iter_markers() if m.name in TIERS]
        if len(set(declared)) > 1:
            raise pytest.UsageError(f"{item.nodeid}: more than one tier marker {declared}")
        if not declared:
            item.add_marker(getattr(pytest.mark, _tier(item)))


@pytest.fixture(scope="session")
def tmp_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway copy of the project layout: `data/` and `usecases/` side by side."""
    root = tmp_path_factory.mktemp("project")
    shutil.copytree(PROJECT_ROOT / USECASES_DIRNAME, root / USECASES_DIRNAME)
    (root / "data").mkdir()
    return root


@pytest.fixture(scope="session")
def generated(tmp_project: Path) -> Callable[[str], Path]:
    """`generated("credit_risk")` -> folder holding that use case's CSVs (made once a session)."""
    done: dict[str, Path] = {}

    def _get(use_case: str) -> Path:
        if use_case not in done:
            datagen.generate(use_case, tmp_project / "data")
            done[use_case] = tmp_project / "data" / use_case
        return done[use_case]

    return _get


@pytest.fixture(scope="session")
def builtin_spec(tmp_project: Path, generated: Callable[[str], Path]) -> Callable[[str], Spec]:
    """`builtin_spec("churn")` -> the shipped spec, loaded over freshly generated data."""

    def _get(use_case: str) -> Spec:
        generated(use_case)
        return load_spec(tmp_project / USECASES_DIRNAME / f"{use_case}.yaml")

    return _get


@pytest.fixture(scope="session")
def trained_reports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where `trained_tag` writes each model's reports: `<this folder>/<use case>/`."""
    return tmp_path_factory.mktemp("trained") / "reports"


@pytest.fixture(scope="session")
def trained_tag(
    tmp_project: Path, generated: Callable[[str], Path], trained_reports: Path
) -> Callable[[str], str]:
    """`trained_tag("credit_risk")` -> tag of a quick-budget model in this session's store."""
    from training.train import QUICK, train_use_case

    done: dict[str, str] = {}
    out = trained_reports.parent

    def _get(use_case: str) -> str:
        if use_case not in done:
            generated(use_case)
            spec_file = tmp_project / USECASES_DIRNAME / f"{use_case}.yaml"
            report = train_use_case(spec_file, out / "reports", out / "outputs", QUICK)
            done[use_case] = report["model_tag"]
        return done[use_case]

    return _get


@pytest.fixture(scope="session")
def run_smoke() -> Callable[..., str]:
    """`run_smoke(module, spec_file, tag, out, timeout_s)`: `python -m <module> --smoke`."""
    return _run_smoke


def _run_smoke(module: str, spec_file: Path, tag: str, out: Path, timeout_s: int) -> str:
    """`python -m <module> --smoke` on a trained model; returns its stdout, fails with its log.

    The servers it starts inherit this session's throwaway BENTOML_HOME from the environment.
    """
    import subprocess
    import sys

    command = [
        sys.executable, "-m", module, "--use-case", str(spec_file),
        "--model-tag", tag, "--smoke", "--out", str(out),
    ]  # fmt: skip
    finished = subprocess.run(
        command, cwd=PROJECT_ROOT, env=dict(os.environ), capture_output=True, text=True,
        timeout=timeout_s, check=False,
    )  # fmt: skip
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    return finished.stdout


CHROMIUM = Path("/usr/bin/chromium")  # Debian's (`make install-browser`); Playwright's own
# browser download is not reachable. Without background networking Chromium makes no
# request of its own (update checks, sync) that the closed network would refuse.
BROWSER_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture(scope="session")
def chromium() -> Callable[..., Any]:
    """`with chromium(viewport=..., ...) as context:` a Playwright browser context in
    Debian's chromium with a fresh profile; skips where chromium or playwright is absent
    (`.ci/run` installs both)."""
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (`make install-browser`; .ci/run does)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (requirements.txt)"
    )

    @contextlib.contextmanager
    def _open(**options: Any) -> Iterator[Any]:
        with sync_api.sync_playwright() as playwright, tempfile.TemporaryDirectory() as profile:
            context = playwright.chromium.launch_persistent_context(
                profile, executable_path=str(CHROMIUM), args=BROWSER_ARGS, headless=True, **options
            )
            try:
                yield context
            finally:
                context.close()

    return _open


def _forget_bentoml_metrics() -> None:
    """Each app registers its metrics (BentoML's and ours) once per process; a second app in
    the same test process must not find them taken (a real server runs one app per process)."""
    for collector, names in list(REGISTRY._collector_to_names.items()):
        if any(name.startswith(("bentoml_", "riskbento_")) for name in names):
            REGISTRY.unregister(collector)


def _fresh_service_module(use_case: str) -> ModuleType:
    """service.py imported under its own name, so each use case keeps its own globals."""
    name = f"service_{use_case}"
    spec = importlib.util.spec_from_file_location(name, PROJECT_ROOT / "service.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def serve(trained_tag) -> Iterator:
    """`serve("credit_risk")` -> (TestClient, service module) for that use case's model."""
    opened: dict[str, tuple[TestClient, ModuleType]] = {}

    def _open(use_case: str) -> tuple[TestClient, ModuleType]:
        if use_case not in opened:
            _forget_bentoml_metrics()
            os.environ["RISKBENTO_MODEL_TAG"] = trained_tag(use_case)
            get_settings.cache_clear()
            module = _fresh_service_module(use_case)
            client = TestClient(module.RiskService.to_asgi())
            client.__enter__()
            opened[use_case] = (client, module)
        return opened[use_case]

    yield _open
    for client, _ in opened.values():
        client.__exit__(None, None, None)
    os.environ.pop("RISKBENTO_MODEL_TAG", None)
    get_settings.cache_clear()
