"""Raw input files of any size, read the same way by every engine.

An input is one file or a folder of parts (CSV or Parquet). It is read either
whole (`read_raw`, one machine) or block by block (`plan_blocks` + `read_block`,
Dask and Spark): a CSV block is the lines that start inside a byte range, a
Parquet block is a row group. Both paths use pandas' own parser with one rule:
CSV columns are text (a blank, NA or null is missing), Parquet keeps numbers and
booleans and turns everything else into text; the id columns are `string`.
So an exact duplicate means the same text in every column, wherever it was read,
and a column never changes type from one block to the next.

Each block has an index in file order; `POSITION` (block index * 2**32 + row in
block) lets an engine put rows back in file order after a shuffle. CSV records
must not hold a newline inside quotes (the same limit as Dask's `read_csv`).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from core.errors import UserError

__all__ = [
    "POSITION",
    "BadInput",
    "Block",
    "plan_blocks",
    "raw_columns",
    "raw_parts",
    "read_block",
    "read_raw",
]

POSITION = "_position"
ROWS_PER_BLOCK_MAX = 2**32  # POSITION = block index * 2**32 + row in block
FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


class BadInput(UserError, ValueError):
    """An input the job cannot read: no such file, not CSV/Parquet, a column missing."""


@dataclass(frozen=True)
class Block:
    path: str
    fmt: str  # "csv" | "parquet"
    index: int  # order of the block in the input (files sorted by name, then offset)
    start: int = 0  # CSV: byte offset; Parquet: row group
    stop: int = -1  # CSV: byte offset (exclusive), -1 = end of file; Parquet: unused


def raw_parts(path: Path) -> list[Path]:
    """The files of an input: the file itself, or a folder's CSV/Parquet parts sorted by name."""
    path = Path(path)
    if path.is_dir():
        hidden = (".", "_")  # _SUCCESS, .crc and the like, as Spark and Dask skip them
        files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(hidden))
        if not files:
            raise BadInput(f"{path}: the folder holds no files")
    elif path.is_file():
        files = [path]
    else:
        raise BadInput(f"{path}: no such file or folder")
    for f in files:
        if f.suffix.lower() not in FORMATS:
            got = f.suffix or "no suffix"
            raise BadInput(f"{f}: expected a .csv or .parquet file, got {got!r}")
    kinds = {FORMATS[f.suffix.lower()] for f in files}
    if len(kinds) > 1:
        raise BadInput(f"{path}: mixes CSV and Parquet parts; use one format per input")
    return files


def _text(frame: pd.DataFrame, id_columns: tuple[str, ...]) -> pd.DataFrame:
    for c in id_columns:
        if c in frame:
            frame[c] = frame[c].astype("string")
    return frame


def _parquet_text(frame: pd.DataFrame) -> pd.DataFrame:
    for c in frame.columns:
        dtype = frame[c].dtype
        if not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)):
            frame[c] = frame[c].astype("str").where(frame[c].notna())
    return frame


def _read_csv(source: Path | io.BytesIO, where: Path, nrows: int | None = None) -> pd.DataFrame:
    try:
        return pd.read_csv(source, dtype="str", nrows=nrows)
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise BadInput(f"{where}: not a readable CSV file ({err})") from None


def _read_parquet_groups(path: Path, groups: list[int] | None) -> pd.DataFrame:
    import pyarrow.parquet as pq

    try:
        file = pq.ParquetFile(path)
        table = file.read_row_groups(groups) if groups is not None else file.read()
    except Exception as err:  # pyarrow raises ArrowInvalid, OSError, ... for a bad file
        raise BadInput(f"{path}: not a readable Parquet file ({err})") from None
    return _parquet_text(table.to_pandas())


def read_raw(path: Path, id_columns: tuple[str, ...] = ()) -> pd.DataFrame:
    """The whole input in one frame (file order), read by the rule above."""
    frames = []
    for f in raw_parts(path):
        if FORMATS[f.suffix.lower()] == "csv":
            frames.append(_read_csv(f, f))
        else:
            frames.append(_read_parquet_groups(f, None))
    frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    return _text(frame, id_columns)


def raw_columns(path: Path) -> dict[Path, list[str]]:
    """Each part's column names (a CSV's header line, a Parquet file's schema)."""
    columns = {}
    for f in raw_parts(path):
        if FORMATS[f.suffix.lower()] == "csv":
            columns[f] = list(_read_csv(f, f, nrows=0).columns) if f.stat().st_size else []
        else:
            import pyarrow.parquet as pq

            try:
                columns[f] = list(pq.read_schema(f).names)
            except Exception as err:
                raise BadInput(f"{f}: not a readable Parquet file ({err})") from None
    return columns


def plan_blocks(path: Path, block_bytes: int) -> list[Block]:
    """Blocks of about `block_bytes` (CSV) or one per row group (Parquet), in file order."""
    blocks: list[Block] = []
    for f in raw_parts(path):
        fmt = FORMATS[f.suffix.lower()]
        if fmt == "parquet":
            import pyarrow.parquet as pq

            try:
                groups = pq.ParquetFile(f).metadata.num_row_groups
            except Exception as err:
                raise BadInput(f"{f}: not a readable Parquet file ({err})") from None
            blocks += [Block(str(f), fmt, len(blocks) + g, g) for g in range(groups)]
            continue
        size = f.stat().st_size
        starts = range(0, max(size, 1), block_bytes)
        blocks += [
            Block(str(f), fmt, len(blocks) + k, s, min(s + block_bytes, size))
            for k, s in enumerate(starts)
        ]
    return blocks


def _csv_lines(block: Block) -> tuple[bytes, bytes]:
    """The header line and the lines that start in [start, stop)."""
    with open(block.path, "rb") as f:
        header = f.readline()
        if block.start <= len(header):
            f.seek(len(header))
        else:
            f.seek(block.start - 1)
            f.readline()  # the line that started before this block belongs to the one before
        begin = f.tell()
        chunk = io.BytesIO()
        while f.tell() < block.stop:
            line = f.readline()
            if not line:
                break
            chunk.write(line)
        if begin >= block.stop:
            return header, b""
        return header, chunk.getvalue()


def read_block(block: Block, id_columns: tuple[str, ...] = ()) -> pd.DataFrame:
    """One block's rows, read as `read_raw` reads the whole input, with their POSITION."""
    if block.fmt == "parquet":
        frame = _read_parquet_groups(Path(block.path), [block.start])
    else:
        header, lines = _csv_lines(block)
        frame = _read_csv(io.BytesIO(header + lines), Path(block.path))
    if len(frame) >= ROWS_PER_BLOCK_MAX:
        raise BadInput(f"{block.path}: a block of {len(frame):,} rows; use smaller blocks")
    frame = _text(frame, id_columns)
    frame[POSITION] = block.index * ROWS_PER_BLOCK_MAX + pd.RangeIndex(len(frame)).to_numpy()
    return frame
