"""The transaction file: which column plays which role (customer id, amount, debit/credit,
id, timestamp, description, status), guessed from headers and values; which values mean
money out, money in or a declined transaction; and the per-customer aggregates the training
code builds from it, each profiled as a feature (aggregates constant in this data, or named
like a table column, are left out with the reason).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd

from core.catalogue import aggregate_catalogue
from core.rawfiles import read_raw
from core.spec import FeatureType, MissingRule, TransactionColumns, Transactions
from features.transactions import amount_cap, build_customer_features
from jobs.draft.findings import (
    DATE_SHARE,
    NUMBER_SHARE,
    Column,
    DraftError,
    TransactionsDraft,
    _show,
)
from jobs.draft.table_columns import _leak, _numeric

CUSTOMER_OVERLAP = 0.5  # the transactions' customer id: this share of its ids is in the table
ROLE_MAX_VALUES = 20  # a debit/credit or status column has at most this many distinct values
# Transaction roles: header patterns (on the lowercased header, spaces and dashes as _).
_ROLE_HEADERS = {
    "transaction_id": r"^(transaction|trans|txn|tx)_?(id|no|number|ref|reference)$|^id$",
    "amount": r"amount|^amt$|^value$|^sum$",
    "type": r"^(type|direction|transaction_type|txn_type|tx_type|trans_type|dc|debit_credit|"
    r"credit_debit|cr_dr|dr_cr|side|sign)$",
    "description": r"description|^desc$|narrative|memo|details|^text$|payee|merchant_name",
    "timestamp": r"timestamp|datetime|date|^time$|posted|booked",
    "status": r"status|^state$",
}
DEBIT_WORDS = {"debit", "dr", "d", "db", "out", "outgoing", "outflow", "withdrawal", "charge"}
CREDIT_WORDS = {"credit", "cr", "c", "in", "incoming", "inflow", "deposit", "refund"}
DECLINED_WORDS = {
    "declined", "reversed", "failed", "rejected", "cancelled", "canceled", "returned",
    "refused", "void", "voided", "bounced",
}  # fmt: skip


def _norm(header: str) -> str:
    return re.sub(r"[\s\-]+", "_", header.strip().lower())


def _lowered_values(values: pd.Series) -> list[str]:
    return sorted(values.dropna().astype(str).str.strip().str.lower().unique())


def _guess_roles(
    raw: pd.DataFrame, table_ids: pd.Series, id_column: str, source: str
) -> tuple[dict[str, str], dict[str, str]]:
    """Which column plays which role, and why each was chosen."""
    header = list(raw.columns)
    shown = ", ".join(header)
    ids = set(table_ids.astype(str))
    overlap = {}
    for c in header:
        distinct = raw[c].dropna().astype(str).drop_duplicates()
        overlap[c] = float(distinct.isin(ids).mean()) if len(distinct) else 0.0
    best = max(header, key=lambda c: (overlap[c], c == id_column))
    if overlap[best] < CUSTOMER_OVERLAP:
        example = next(iter(sorted(ids)), "")
        raise DraftError(
            f"{source}: expected a column holding the table's {id_column} values "
            f"(like {example!r}); none does (columns: {shown})"
        )
    roles = {"customer_id": best}
    why = {"customer_id": f"{overlap[best]:.0%} of its values are in the table's {id_column}"}

    def free(pattern: str) -> list[str]:
        return [c for c in header if c not in roles.values() and re.search(pattern, _norm(c))]

    numeric = {c: float(pd.to_numeric(raw[c], errors="coerce").notna().mean()) for c in header}
    amounts = [c for c in free(_ROLE_HEADERS["amount"]) if numeric[c] >= NUMBER_SHARE]
    if not amounts:
        raise DraftError(
            f"{source}: expected an amount column (a header like 'amount' holding numbers); "
            f"none found (columns: {shown})"
        )
    roles["amount"], why["amount"] = amounts[0], "header, holds numbers"

    small = [c for c in header if c not in roles.values() and raw[c].nunique() <= ROLE_MAX_VALUES]
    words = {c: set(_lowered_values(raw[c])) for c in small}
    by_value = [c for c in small if words[c] & DEBIT_WORDS and words[c] & CREDIT_WORDS]
    by_name = [c for c in free(_ROLE_HEADERS["type"]) if c in small]
    if by_value or by_name:
        roles["type"] = (by_value or by_name)[0]
        why["type"] = "values name debits and credits" if by_value else "header"

    ids_like = free(_ROLE_HEADERS["transaction_id"])
    if ids_like:
        roles["transaction_id"], why["transaction_id"] = ids_like[0], "header"

    for c in free(_ROLE_HEADERS["timestamp"]):
        sample = raw[c].dropna().astype(str).head(2_000)
        parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
        if len(sample) and parsed.notna().mean() >= DATE_SHARE:
            roles["timestamp"], why["timestamp"] = c, "header, holds dates and times"
            break

    descriptions = [c for c in free(_ROLE_HEADERS["description"]) if numeric[c] < NUMBER_SHARE]
    if descriptions:
        roles["description"], why["description"] = descriptions[0], "header, holds text"

    statuses = [c for c in free(_ROLE_HEADERS["status"]) if raw[c].nunique() <= ROLE_MAX_VALUES]
    if statuses:
        roles["status"], why["status"] = statuses[0], "header"
    return roles, why


def _aggregate_column(
    name: str, description: str, values: pd.Series, labeled: pd.Series, positive: pd.Series
) -> Column:
    """A catalogue aggregate: its type follows from what it counts, its range from the data."""
    col = Column(name=name, description=description, from_table=False)
    col.missing = MissingRule.reject
    if name.startswith("has_"):
        col.type = FeatureType.binary
    else:
        col.type = FeatureType.numeric
        if "share" in name.split("_"):
            lo, hi = float(values.min()), float(values.max())
            col.bounds = (0.0, 1.0)
            col.notes.append(f"observed {_show(lo)} to {_show(hi)}; a share: bounds 0 to 1")
        else:
            _numeric(col, values.astype(float))
    _leak(col, values[labeled], positive)
    return col


def _transactions(
    path: Path,
    spec_dir: Path,
    table: pd.DataFrame,
    id_column: str,
    labeled: pd.Series,
    positive: pd.Series,
) -> TransactionsDraft:
    if not path.is_file() or path.suffix.lower() != ".csv":
        why = "no such file" if not path.is_file() else "not a .csv"
        raise DraftError(f"--transactions: expected a CSV file, got {str(path)!r} ({why})")
    raw = read_raw(path)
    if raw.empty:
        raise DraftError(f"--transactions: expected rows of data, {path} has a header only")
    table_ids = table[id_column].astype("string")
    roles, why = _guess_roles(raw, table_ids, id_column, path.name)
    kwargs: dict = {}
    type_values: list[str] = []
    unclassified: list[str] = []
    if "type" in roles:
        type_values = _lowered_values(raw[roles["type"]])
        debit = [v for v in type_values if v in DEBIT_WORDS]
        credit = [v for v in type_values if v in CREDIT_WORDS]
        unclassified = [v for v in type_values if v not in DEBIT_WORDS | CREDIT_WORDS]
        kwargs |= {"debit_values": debit or ["debit"], "credit_values": credit or ["credit"]}
    if "status" in roles:
        declined = [v for v in _lowered_values(raw[roles["status"]]) if v in DECLINED_WORDS]
        if declined:
            kwargs["declined_values"] = declined
    rel = Path(os.path.relpath(path.resolve(), spec_dir.resolve())).as_posix()
    tx = Transactions(path=rel, columns=TransactionColumns(**roles), **kwargs)
    amounts = pd.to_numeric(raw[roles["amount"]], errors="coerce")
    cap = amount_cap(amounts)
    aggregates, _ = build_customer_features(raw, tx, table_ids, cap)
    catalogue = aggregate_catalogue(tx.categories, has_status=tx.columns.status is not None)
    columns, omitted = [], {}
    for name, description in catalogue.items():
        if name in table.columns:
            omitted[name] = "the table has a column of that name, which wins"
            continue
        values = pd.Series(aggregates[name].to_numpy(), index=table.index)
        if values.nunique() <= 1:
            omitted[name] = f"always {_show(float(values.iloc[0]))} in this data"
            continue
        columns.append(_aggregate_column(name, description, values, labeled, positive))
    return TransactionsDraft(
        roles=tx,
        rows=len(raw),
        role_notes=why,
        unused=[c for c in raw.columns if c not in roles.values()],
        type_values=type_values,
        unclassified=unclassified,
        cap=cap,
        largest=float(amounts.abs().max()),
        p999=float(amounts.abs().quantile(0.999)),
        columns=columns,
        omitted=omitted,
    )
