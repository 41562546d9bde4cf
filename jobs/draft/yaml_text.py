"""The draft's YAML text, rendered from what the profiling found: quoting that reads back
exactly, comments wrapped to the line length, one block per feature, the transactions
section, and placeholder costs, tiers and selection metric derived from the base rate. Each
line a person must check carries `# REVIEW:`.
"""

from __future__ import annotations

import json
import re
import textwrap

import numpy as np

from core.names import BUILTIN_USE_CASES
from core.spec import SLUG
from jobs.draft.findings import REVIEW, SHOWN, Column, TransactionsDraft, _ceil_sig, _show

LINE = 100  # comments are wrapped to this width
_YAML_WORDS = {"true", "false", "null", "yes", "no", "on", "off", "y", "n", "~"}


def _q(text: str) -> str:
    """A YAML double-quoted string (JSON's escapes are YAML's)."""
    return json.dumps(str(text), ensure_ascii=False)


def _key(text: str) -> str:
    plain = re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", text) and text.lower() not in _YAML_WORDS
    return text if plain else _q(text)


def _num(x: float) -> str:
    """A number as YAML reads it back exactly (whole numbers without a decimal point)."""
    if float(x).is_integer() and abs(x) < 1e15:
        return str(int(x))
    return np.format_float_positional(float(x), trim="-")


def _comment(indent: int, text: str) -> list[str]:
    """`# text` wrapped to the line length, at the given indent."""
    pad = " " * indent + "# "
    return textwrap.wrap(text, width=LINE - len(pad), initial_indent=pad, subsequent_indent=pad)


def _slug(stem: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", stem.lower()).strip("_")
    if not re.match(SLUG, slug):
        slug = f"use_case_{slug}".rstrip("_")
    return f"my_{slug}" if slug in BUILTIN_USE_CASES else slug


def _feature_lines(col: Column) -> list[str]:
    assert col.type is not None
    out = []
    if col.leak:
        out += _comment(2, f"WARNING: {col.leak}. {REVIEW} drop it unless it is known at scoring")
    out += [f"  - name: {_key(col.name)}", f"    type: {col.type.value}"]
    for note in col.notes:
        out += _comment(4, note)
    if col.integer:
        out.append("    integer: true")
    if col.bounds is not None:
        out += [f"    min: {_num(col.bounds[0])}", f"    max: {_num(col.bounds[1])}"]
    if col.levels is not None:
        flow = f"    levels: [{', '.join(_q(v) for v in col.levels)}]"
        out += (
            [flow]
            if len(flow) <= LINE
            else ["    levels:", *(f"      - {_q(v)}" for v in col.levels)]
        )
    if col.missing_note:
        out += _comment(4, col.missing_note)
    out.append(f"    missing: {col.missing.value}")
    review = f"  # {REVIEW} what it means, with its unit" if col.from_table else ""
    out.append(f"    description: {_q(col.description)}{review}")
    return out


def _transaction_lines(tx: TransactionsDraft, header: str) -> list[str]:
    roles = tx.roles
    out = [
        "  transactions:",
        f"    path: {_q(roles.path)}  # {tx.rows:,} rows",
        "    columns:",
    ]
    for role, column in roles.columns.present().items():
        out.append(f"      {role}: {_q(column)}  # {REVIEW} guessed: {tx.role_notes[role]}")
    if tx.unused:
        out += _comment(4, f"Not read by the aggregation: {', '.join(tx.unused)}.")
    if roles.columns.type is not None:
        seen = ", ".join(tx.type_values[:SHOWN])
        out += _comment(4, f"{roles.columns.type} values seen (compared lowercased): {seen}.")
        if tx.unclassified:
            out += _comment(
                4,
                f"{REVIEW} neither debit nor credit: {', '.join(tx.unclassified)} (the "
                "amount's own sign is kept for them)",
            )
        out += [
            f"    debit_values: [{', '.join(_q(v) for v in roles.debit_values)}]"
            f"  # {REVIEW} money out",
            f"    credit_values: [{', '.join(_q(v) for v in roles.credit_values)}]"
            f"  # {REVIEW} money in",
        ]
    else:
        out += _comment(
            4,
            f"{REVIEW} no debit/credit column found: the amount's sign says the direction "
            "(negative = money out)",
        )
    if roles.columns.status is not None:
        declined = ", ".join(_q(v) for v in roles.declined_values)
        out.append(f"    declined_values: [{declined}]  # {REVIEW} count, but move no money")
    out += _comment(
        4,
        f"{REVIEW} max_amount: no genuine transaction is larger; a larger one is an entry "
        "error, dropped and counted. Unset, training learns a fence from the data (here "
        f"about {_show(tx.cap)}); the largest |amount| is {_show(tx.largest)}, 99.9 % are at "
        f"most {_show(tx.p999)}"
        + (": the largest are likely entry errors." if tx.largest > 10 * tx.p999 else "."),
    )
    out += _comment(
        4,
        f"{REVIEW} merchant categories: the default keyword map (core/catalogue.py) applies; "
        f"write categories: {{name: [keywords]}} to match {header}'s description text.",
    )
    return out


def _render(
    *,
    name: str,
    source: str,
    rel_table: str,
    id_column: str,
    id_note: str,
    target: str,
    positive: str | int | float | bool,
    rows: int,
    labeled: int,
    rate: float,
    columns: list[Column],
    tx: TransactionsDraft | None,
    tx_name: str,
) -> str:
    features = [c for c in columns if c.type is not None]
    dropped = [c for c in columns if c.type is None]
    leaks = [c for c in [*features, *(tx.columns if tx else [])] if c.leak]
    if isinstance(positive, bool):
        shown_positive = "true" if positive else "false"
    elif isinstance(positive, str):
        shown_positive = _q(positive)
    else:
        shown_positive = _num(positive)
    lines = _comment(
        0,
        f"Draft spec for {source}, written by `python -m riskbento init`. The data chose "
        "every value below; what it cannot know (what the columns mean, what a mistake "
        f"costs) is a guess or a placeholder, on the lines marked `{REVIEW}`. Check them, then "
        "run `make quality USE_CASE=<this file>` and `make train USE_CASE=<this file>`.",
    )
    for c in leaks:
        lines += _comment(0, f"WARNING: {c.leak}.")
    lines += [
        f"name: {name}  # {REVIEW} the model's name in the store and its folder under reports/",
        f"purpose: {_q(f'Probability that {target} == {positive}.')}  # {REVIEW} in one sentence",
        "",
        "data:",
        f"  table: {_q(rel_table)}  # {rows:,} rows; relative to this file",
    ]
    if tx is not None:
        lines += _transaction_lines(tx, tx_name)
    lines += [
        "",
        *_comment(0, id_note),
        f"id_column: {_key(id_column)}",
        "",
        "target:",
        f"  column: {_key(target)}",
        f"  # {labeled:,} labeled rows, {rate:.1%} of them the risk event; "
        f"{rows - labeled:,} blank (unlabeled: scored, not trained on).",
        f"  positive: {shown_positive}",
        f"  description: {_q(f'{target} == {positive}')}  # {REVIEW} the risk event in words",
        "",
        "features:",
    ]
    if features:
        lines.append(f"  # From {source}.")
    for col in features:
        lines += _feature_lines(col)
    if tx is not None:
        lines += [""]
        lines += _comment(
            2,
            f"Per-customer aggregates of {tx_name} (features/transactions.py), computed by "
            "training and by /score_transactions; remove the ones the model should not use. "
            "missing: reject, because the aggregation writes 0 for a customer without "
            "transactions: a blank can only be a caller's mistake.",
        )
        by_reason: dict[str, list[str]] = {}
        for name_, why in tx.omitted.items():
            by_reason.setdefault(why, []).append(name_)
        for why, names in by_reason.items():
            lines += _comment(2, f"Not listed, {why}: {', '.join(names)}.")
        for col in tx.columns:
            lines += _feature_lines(col)
    lines += [""]
    if dropped:
        lines += ["drop:"]
        for c in dropped:
            lines += _comment(2, f"{REVIEW} {c.why_dropped}")
            lines.append(f"  - {_key(c.name)}")
    else:
        lines += ["drop: []  # no id-like, constant or free-text column besides the id"]
    missed = _ceil_sig((1 - rate) / rate)
    medium = min(0.8, max(0.01, round(rate, 2)))
    high = min(0.9, max(0.5, round(3 * rate, 2), medium + 0.1))
    metric = "pr_auc" if rate < 0.10 else "roc_auc"
    lines += [
        "",
        f"# {REVIEW} placeholders, not your numbers: a missed event costs (1 - rate) / rate times",
        f"# a false alarm, which puts the break-even probability at the base rate ({rate:.1%}):",
        "# anyone riskier than average is flagged. Write what each mistake really costs.",
        "costs:",
        f"  missed_event: {_num(missed)}  # {REVIEW} cost of a risk event the model missed",
        f"  false_alarm: 1  # {REVIEW} cost of flagging a customer who was fine",
        f"  unit: EUR  # {REVIEW} currency of both costs",
        "",
        f"# {REVIEW} placeholders: medium from the base rate, high where the event is more likely",
        "# than not (or three times the base rate, if higher).",
        "tiers:",
        f"  medium: {_num(medium)}  # {REVIEW} from here up: medium",
        f"  high: {_num(round(high, 2))}  # {REVIEW} from here up: high",
        "",
        f"# {REVIEW} pr_auc when the risk event is rare (under 10 %) and the top of the ranking",
        "# matters most; roc_auc otherwise.",
        f"selection_metric: {metric}",
    ]
    return "\n".join(lines) + "\n"
