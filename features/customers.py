"""The customer table joined with transaction features: the model's input rows."""

from __future__ import annotations

import pandas as pd

from core.spec import Spec
from features.transactions import CleaningCounts, build_customer_features


def customer_features(
    spec: Spec, table: pd.DataFrame, raw_transactions: pd.DataFrame | None, cap: float | None
) -> tuple[pd.DataFrame, CleaningCounts | None]:
    """`table` plus every transaction aggregate (table columns win a name clash).

    Without declared transactions the table is returned unchanged.
    """
    roles = spec.data.transactions
    if roles is None or raw_transactions is None:
        return table, None
    aggregates, counts = build_customer_features(
        raw_transactions, roles, table[spec.id_column], cap
    )
    new = [c for c in aggregates.columns if c not in table.columns]
    joined = pd.concat(
        [table.reset_index(drop=True), aggregates[new].reset_index(drop=True)], axis=1
    )
    return joined.set_axis(table.index), counts


def dedupe_table(table: pd.DataFrame, id_column: str) -> tuple[pd.DataFrame, dict[str, int]]:
    """Drop verbatim repeats; drop every row of an id whose rows disagree (no guessing)."""
    unique = table.drop_duplicates()
    repeated = unique[id_column].duplicated(keep=False)
    counts = {
        "rows_in": len(table),
        "exact_duplicates_dropped": len(table) - len(unique),
        "conflicting_id_rows_dropped": int(repeated.sum()),
    }
    return unique[~repeated], counts
