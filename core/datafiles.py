"""Reading a spec's files the same way everywhere (ids as text, blanks as missing)."""

from pathlib import Path

import pandas as pd

from core.spec import Spec
from core.stats import file_sha256

__all__ = ["data_files", "data_fingerprint", "file_sha256", "read_table", "read_transactions"]


def read_table(spec: Spec, unlabeled: bool = False) -> pd.DataFrame:
    """The customer table (or the unlabeled one), with the id column read as text."""
    rel = spec.data.unlabeled_table if unlabeled else spec.data.table
    if rel is None:
        raise ValueError(f"spec {spec.name!r} declares no unlabeled_table")
    return pd.read_csv(spec.resolve(rel), dtype={spec.id_column: "string"})


def read_transactions(spec: Spec, unlabeled: bool = False) -> pd.DataFrame:
    """Raw transactions (or the unlabeled cohort's), ids read as text."""
    tx = spec.data.transactions
    if tx is None:
        raise ValueError(f"spec {spec.name!r} declares no transactions")
    rel = tx.unlabeled_path if unlabeled else tx.path
    if rel is None:
        raise ValueError(f"spec {spec.name!r} declares no unlabeled transactions")
    text_roles = [tx.columns.customer_id, tx.columns.transaction_id]
    return pd.read_csv(spec.resolve(rel), dtype={c: "string" for c in text_roles if c})


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
