"""The layer order (README "Layout"): a package imports only packages below it, training
and serving never import each other, and serving a model loads no training code."""

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.names import PROJECT_ROOT

# Each package and what it may import, bottom to top. `service` is service.py.
# loadtest/ and deploy/ are tools: they may import anything, and nothing imports them.
ALLOWED = {
    "core": set(),
    "datagen": {"core"},
    "features": {"core"},
    "model": {"core", "features"},
    "training": {"core", "datagen", "features", "model"},
    "serving": {"core", "features", "model"},
    "service": {"core", "features", "model", "serving"},
    "jobs": {"core", "features", "model", "serving"},
    "scaleout": {"core", "features", "model"},
    "riskbento": {
        "core", "datagen", "features", "model", "training", "serving", "jobs", "scaleout",
    },
}  # fmt: skip
TOOLS = {"loadtest", "deploy"}
PROJECT = set(ALLOWED) | TOOLS | {"tests"}
# What a serving process must never load: training, data generation, offline jobs, the
# command line, plotting and load generation.
NOT_SERVED = ("training", "datagen", "jobs", "riskbento", "loadtest", "matplotlib", "locust")
# What a Dask or Spark worker must never load to build features and score: the same,
# plus the service.
NOT_ON_WORKERS = (*NOT_SERVED, "serving", "service")


def _package_of(path: Path) -> str:
    rel = path.relative_to(PROJECT_ROOT)
    return "service" if rel.as_posix() == "service.py" else rel.parts[0]


def _imported(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, top-level module) of every absolute import, at any depth: a function-level
    import is as much a dependency as a module-level one. Imports under
    `if TYPE_CHECKING:` are for type checkers only and are left out."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped |= {id(n) for child in node.body for n in ast.walk(child)}
    found = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def _sources() -> list[Path]:
    files = [PROJECT_ROOT / "service.py"]
    for package in [*ALLOWED, *TOOLS]:
        files += sorted((PROJECT_ROOT / package).rglob("*.py"))
    return [f for f in files if f.exists()]


def test_every_package_imports_only_the_layers_below_it():
    wrong = []
    for path in _sources():
        package = _package_of(path)
        if package in TOOLS:
            continue
        for line, module in _imported(ast.parse(path.read_text(encoding="utf-8"))):
            if module in PROJECT and module != package and module not in ALLOWED[package]:
                rel = path.relative_to(PROJECT_ROOT)
                allowed = sorted(ALLOWED[package]) or "nothing"
                wrong.append(f"{rel}:{line} imports {module} ({package} may import {allowed})")
    assert not wrong, "\n".join(wrong)


def test_no_package_imports_the_tools():
    wrong = [
        f"{path.relative_to(PROJECT_ROOT)}:{line} imports {module}"
        for path in _sources()
        if _package_of(path) not in TOOLS
        for line, module in _imported(ast.parse(path.read_text(encoding="utf-8")))
        if module in TOOLS
    ]
    assert not wrong, "\n".join(wrong)


def test_every_top_level_package_has_a_place_in_the_order():
    packages = {p.name for p in PROJECT_ROOT.iterdir() if (p / "__init__.py").exists()}
    assert packages - {"tests"} <= set(ALLOWED) | TOOLS, packages - set(ALLOWED) - TOOLS


def test_the_checker_sees_a_back_edge():
    """The rule can fail: a model module importing training, even inside a function, is
    caught; the same import under TYPE_CHECKING is not."""
    back = ast.parse("def f():\n    from training.train import assemble\n")
    assert (2, "training") in _imported(back)
    typing_only = ast.parse(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import training\n"
    )
    assert "training" not in [m for _, m in _imported(typing_only)]


@pytest.mark.integration
@pytest.mark.slow
def test_importing_the_service_loads_no_training_or_data_generation(trained_tag):
    """`import service` in a fresh interpreter, as `bentoml serve` does: none of the
    modules only training, data generation, jobs or plotting need is loaded."""
    tag = trained_tag("filing_dropoff")
    probe = (
        "import json, sys; import service; "
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    env = {**os.environ, "RISKBENTO_MODEL_TAG": tag, "RISKBENTO_USE_CASE": "filing_dropoff"}
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=PROJECT_ROOT, env=env, capture_output=True,
        text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert "model" in loaded and "serving" in loaded  # the probe really imported the service
    assert not loaded & set(NOT_SERVED), sorted(loaded & set(NOT_SERVED))


@pytest.mark.integration
def test_the_worker_functions_load_no_training_or_serving_code():
    """What an engine ships to its workers (scaleout.buckets: the feature function and the
    Scorer) imports in a fresh interpreter without training, serving or job code."""
    probe = (
        "import json, sys; import scaleout.buckets; "
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=PROJECT_ROOT, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert {"features", "model"} <= loaded
    assert not loaded & set(NOT_ON_WORKERS), sorted(loaded & set(NOT_ON_WORKERS))
