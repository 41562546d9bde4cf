"""Every generator: byte-identical files on every run; clean tables obey their specs."""

import pandas as pd
import pytest

import datagen
from core.names import BUILTIN_USE_CASES
from jobs.quality import schema_findings


@pytest.mark.parametrize("use_case", BUILTIN_USE_CASES)
def test_generation_is_byte_identical(tmp_path, use_case):
    first = datagen.generate(use_case, tmp_path / "a")
    second = datagen.generate(use_case, tmp_path / "b")
    assert [p.name for p in first] == [p.name for p in second]
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name


@pytest.mark.parametrize("use_case", ["filing_dropoff", "default", "churn"])
def test_clean_tables_obey_their_spec(builtin_spec, use_case):
    """Types, ranges, levels and whole numbers: these tables have no injected garbage."""
    spec = builtin_spec(use_case)
    table = pd.read_csv(spec.resolve(spec.data.table))
    assert schema_findings(table, spec, "table") == []
