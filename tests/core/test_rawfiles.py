"""Raw inputs read the same whole or block by block, and bad inputs are named."""

import numpy as np
import pandas as pd
import pytest

from core.rawfiles import POSITION, BadInput, plan_blocks, raw_parts, read_block, read_raw
from datagen.messy_transactions import write_parts

IDS = ("customer_id", "transaction_id")


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_blocks_put_together_are_the_whole_input_in_file_order(tmp_path, fmt):
    write_parts(tmp_path / "tx", 6_000, parts=3, fmt=fmt, seed=2)
    whole = read_raw(tmp_path / "tx", IDS)
    blocks = plan_blocks(tmp_path / "tx", block_bytes=50_000)
    assert len(blocks) >= 3
    parts = [read_block(b, IDS) for b in blocks]
    together = pd.concat(parts, ignore_index=True)
    assert np.all(np.diff(together[POSITION].to_numpy()) > 0)  # POSITION is file order
    pd.testing.assert_frame_equal(together.drop(columns=POSITION), whole)
    assert whole["customer_id"].dtype == "string" and len(whole) == 6_000


def test_csv_is_read_as_text_so_duplicates_are_the_same_text(tmp_path):
    path = tmp_path / "tx.csv"
    path.write_text("customer_id,amount\nC1,12.50\nC1,12.5\nC1,12.50\nC1,\nC1,NA\n")
    raw = read_raw(path, ("customer_id",))
    assert raw["amount"].tolist()[:3] == ["12.50", "12.5", "12.50"]
    assert raw["amount"].isna().tolist() == [False, False, False, True, True]
    assert raw.duplicated().tolist() == [False, False, True, False, True]


def test_csv_blocks_split_only_between_lines(tmp_path):
    path = tmp_path / "tx.csv"
    rows = [f"C{i},{i}.25,text number {i}" for i in range(500)]
    path.write_text("customer_id,amount,description\n" + "\n".join(rows) + "\n")
    for size in (1, 7, 64, 1000):
        blocks = plan_blocks(path, block_bytes=size)
        together = pd.concat([read_block(b) for b in blocks], ignore_index=True)
        assert together["customer_id"].tolist() == [f"C{i}" for i in range(500)], size


def test_bad_inputs_are_refused_by_name(tmp_path):
    with pytest.raises(BadInput, match="no such file"):
        raw_parts(tmp_path / "missing.csv")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(BadInput, match=r"expected a \.csv or \.parquet file, got '\.txt'"):
        raw_parts(tmp_path / "notes.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadInput, match="holds no files"):
        raw_parts(tmp_path / "empty")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    pd.DataFrame({"a": [1]}).to_csv(mixed / "a.csv", index=False)
    pd.DataFrame({"a": [1]}).to_parquet(mixed / "b.parquet")
    with pytest.raises(BadInput, match="mixes CSV and Parquet"):
        raw_parts(mixed)
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet at all")
    with pytest.raises(BadInput, match="not a readable Parquet file"):
        read_raw(broken)
    with pytest.raises(BadInput, match="not a readable Parquet file"):
        plan_blocks(broken, 1000)
