"""Reading a spec's files the same way everywhere (ids as text, blanks as missing)."""

from pathlib import Path

import pandas as pd

from core.rawfiles import read_raw
from core.spec import Spec, Transactions
from core.stats import file_sha256

__all__ = [
    "data_files",
    "data_fingerprint",
    "file_sha256",
    "read_table",
    "read_transactions",
    "transaction_id_columns",
]


def read_table(spec: Spec, unlabeled: bool = False) -> pd.DataFrame:
    """The customer table (or the unlabeled one), with the id column read as text."""
    rel = spec.data.unlabeled_table if unlabeled else spec.data.table
    if rel is None:
        raise ValueError(f"spec {spec.name!r} declares no unlabeled_table")
    return pd.read_csv(spec.resolve(rel), dtype={spec.id_column: "string"})


def read_transactions(spec: Spec, unlabeled: bool = False) -> pd.DataFrame:
    """Raw transactions (or the unlabeled cohort's): a CSV/Parquet file or a folder of parts,
    every column as text (core.rawfiles), ids as `string`."""
    tx = spec.data.transactions
    if tx is None:
        raise ValueError(f"spec {spec.name!r} declares no transactions")
    rel = tx.unlabeled_path if unlabeled else tx.path
    if rel is None:
        raise ValueError(f"spec {spec.name!r} declares no unlabeled transactions")
    return read_raw(spec.resolve(rel), transaction_id_columns(tx))


def transaction_id_columns(roles: Transactions) -> tuple[str, ...]:
    """The columns read as `string` ids: customer and transaction id."""
    return tuple(c for c in (roles.columns.customer_id, roles.columns.transaction_id) if c)


def data_files(spec: Spec) -> dict[str, Path]:
    """Every data file the spec points to, keyed by its spec key."""
    files = {"data.table": spec.data.table, "data.unlabeled_table": spec.data.unlabeled_table}
    if spec.data.transactions is not None:
        files["data.transactions.path"] = spec.data.transactions.path
        files["data.transactions.unlabeled_path"] = spec.data.transactions.unlabeled_path
    return {key: spec.resolve(rel) for key, rel in files.items() if rel is not None}


def data_fingerprint(spec: Spec) -> dict[str, str]:
    """sha256 per data file: names the exact data a report or model came from."""
    return {key: file_sha256(path) for key, path in data_files(spec).items()}
