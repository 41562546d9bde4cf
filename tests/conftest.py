"""Shared fixtures. Data is generated into a per-session temp project, never into the repo."""

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from riskbento import datagen
from riskbento.constants import PROJECT_ROOT, USECASES_DIRNAME
from riskbento.spec import Spec, load_spec


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
