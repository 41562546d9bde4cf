"""Deterministic data for the built-in use cases: one module per use case.

Each module exposes `generate(out_dir: Path) -> list[Path]`, writes its CSV
files into `out_dir` and returns their paths. Same code, same files, on every
run and machine: fixed seeds, no downloads.
"""

import importlib
from pathlib import Path

from core.names import BUILTIN_USE_CASES


def generate(use_case: str, data_dir: Path) -> list[Path]:
    """Write one built-in use case's data under `data_dir/<use_case>/`."""
    if use_case not in BUILTIN_USE_CASES:
        raise ValueError(f"expected one of {BUILTIN_USE_CASES}, got {use_case!r}")
    module = importlib.import_module(f"datagen.{use_case}")
    out_dir = data_dir / use_case
    out_dir.mkdir(parents=True, exist_ok=True)
    return module.generate(out_dir)
