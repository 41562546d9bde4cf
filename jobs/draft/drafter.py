"""The entry points: `draft_spec` reads the CSV files, profiles the table's columns (and the
transaction file, if given), renders the YAML and validates it with the spec loader against
the data, returning a `Draft` with the text and what was found; `write_draft` writes it,
never over an existing file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from core.names import SPEC_SUFFIXES
from core.spec import MissingRule, Target, check_against_data, parse_spec
from jobs.draft.findings import REVIEW, Column, DraftError
from jobs.draft.table_columns import (
    _choose_id,
    _id_like,
    _positive,
    _profile,
    _unique_per_row,
    _values_seen,
)
from jobs.draft.transaction_file import _transactions
from jobs.draft.yaml_text import _render, _slug

MIN_EVENTS = 30  # fewer labeled risk events: warned that a model cannot be trained and tested


@dataclass
class Draft:
    """A validated draft: the YAML text and what it found, ready to be written."""

    path: Path
    text: str
    name: str
    rows: int
    labeled: int
    positive_rate: float
    features: list[str]
    from_transactions: list[str]
    dropped: dict[str, str]
    native: list[str]
    warnings: list[str]

    @property
    def review_lines(self) -> int:
        return sum(REVIEW in line for line in self.text.splitlines())

    def summary(self) -> list[str]:
        """A few console lines: what was drafted and what to review."""
        table = len(self.features) - len(self.from_transactions)
        tx = f" + {len(self.from_transactions)} from transactions" if self.from_transactions else ""
        dropped = ", ".join(f"{k} ({v.split(':')[0]})" for k, v in self.dropped.items())
        lines = [
            f"wrote {self.path}: spec {self.name!r}, features: {table} from the table{tx}; "
            f"{self.labeled:,} labeled rows of {self.rows:,}, risk event in "
            f"{self.positive_rate:.1%}",
            f"dropped: {dropped or 'nothing'}",
            f"missing: native (blanks informative) for: {', '.join(self.native) or 'none'}",
            f"review the {self.review_lines} lines marked REVIEW (descriptions, bounds, levels, "
            "costs and tiers are guesses or placeholders)",
            f"then: make quality USE_CASE={self.path} && make train USE_CASE={self.path}",
        ]
        return lines


def _read_csv(path: Path, what: str) -> pd.DataFrame:
    if not path.is_file():
        raise DraftError(f"{what}: expected a CSV file, got {str(path)!r} (no such file)")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DraftError(f"{what}: expected a CSV file, could not read {path}: {err}") from None
    if frame.empty:
        raise DraftError(f"{what}: expected rows of data, {path} has a header only")
    return frame


def _out_path(data: Path, out: Path | None) -> Path:
    path = out if out is not None else data.parent / f"{data.stem}.yaml"
    if path.suffix not in SPEC_SUFFIXES:
        raise DraftError(f"--out: expected a .yaml or .yml file, got {str(path)!r}")
    if path.exists():
        raise DraftError(
            f"{path} already exists; not overwriting a spec (remove it, or pass --out)"
        )
    return path


def draft_spec(
    data: Path,
    target: str,
    positive: str,
    id_column: str | None = None,
    transactions: Path | None = None,
    out: Path | None = None,
) -> Draft:
    """Read the data, draft the spec and validate it against the data; nothing is written."""
    data = Path(data)
    path = _out_path(data, Path(out) if out is not None else None)
    table = _read_csv(data, "data")
    if target not in table:
        raise DraftError(
            f"--target: column {target!r} is not in {data.name} "
            f"(columns: {', '.join(table.columns)})"
        )
    values = table[target]
    if values.notna().sum() == 0:
        raise DraftError(f"--target: expected labels in column {target!r}, every row is blank")
    value = _positive(values, positive, target)
    labeled = values.notna()
    is_positive = Target(column=target, positive=value).is_positive(values)
    positive_rows = is_positive[labeled]
    if positive_rows.all():
        raise DraftError(
            f"--positive: every labeled row of {target!r} is {positive!r}; expected a value "
            f"that marks the risk event against others (values seen: {_values_seen(values)})"
        )
    chosen_id = _choose_id(table, id_column, target, data.name)
    distinct = table.drop_duplicates()
    repeats = len(table) - len(distinct)
    warnings: list[str] = []
    if _unique_per_row(distinct[chosen_id]):
        id_note = f"The id: unique per row ({distinct[chosen_id].nunique():,} values)"
    else:
        id_note = (
            f"{REVIEW} not unique per row: training drops every row of an id whose rows disagree"
        )
        warnings.append(f"id column {chosen_id!r} is not unique per row")
    if repeats:
        id_note += f"; {repeats:,} rows repeat another verbatim (training keeps one)"
    if positive_rows.sum() < MIN_EVENTS:
        warnings.append(
            f"only {int(positive_rows.sum())} labeled rows are the risk event: too few to train "
            f"and test a model on (expected at least {MIN_EVENTS})"
        )
    if positive_rows.mean() > 0.5:
        warnings.append(
            f"the risk event {target} == {value!r} is the majority of labeled rows "
            f"({positive_rows.mean():.1%}): is --positive the risk event?"
        )

    columns = []
    for name in table.columns:
        if name in (target, chosen_id):
            continue
        if _id_like(name, distinct[name]):
            columns.append(Column(name=name, why_dropped="id-like: unique per row"))
            continue
        columns.append(_profile(name, table[name], labeled, positive_rows, data.name))

    tx = None
    if transactions is not None:
        tx = _transactions(
            Path(transactions), path.parent, table, chosen_id, labeled, positive_rows
        )
    features = [c for c in columns if c.type is not None] + (tx.columns if tx else [])
    if not features:
        raise DraftError(
            f"{data.name}: expected at least one usable feature column besides the id and "
            f"the target; all were dropped ({', '.join(c.name for c in columns) or 'none left'})"
        )
    warnings += [c.leak for c in features if c.leak]

    rel_table = Path(os.path.relpath(data.resolve(), path.parent.resolve())).as_posix()
    rate = float(positive_rows.mean())
    text = _render(
        name=_slug(path.stem),
        source=data.name,
        rel_table=rel_table,
        id_column=chosen_id,
        id_note=id_note,
        target=target,
        positive=value,
        rows=len(table),
        labeled=int(labeled.sum()),
        rate=rate,
        columns=columns,
        tx=tx,
        tx_name=Path(transactions).name if transactions is not None else "",
    )
    spec = parse_spec(yaml.safe_load(text), str(path), path.parent.resolve())
    check_against_data(spec, str(path))
    return Draft(
        path=path,
        text=text,
        name=spec.name,
        rows=len(table),
        labeled=int(labeled.sum()),
        positive_rate=rate,
        features=spec.feature_names,
        from_transactions=[c.name for c in tx.columns] if tx else [],
        dropped={c.name: c.why_dropped for c in columns if c.type is None},
        native=[f.name for f in spec.features if f.missing is MissingRule.native],
        warnings=warnings,
    )


def write_draft(draft: Draft) -> Path:
    """Write the draft; an existing file is never overwritten."""
    draft.path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(draft.path, "x", encoding="utf-8") as handle:
            handle.write(draft.text)
    except FileExistsError:
        raise DraftError(
            f"{draft.path} already exists; not overwriting a spec (remove it, or pass --out)"
        ) from None
    return draft.path
