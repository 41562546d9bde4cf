"""Pictures for the quality report: each feature by class, labeled rows vs the rows to be
scored where there are any, and for transaction use cases the amount per merchant category
and the transactions per customer.

Every picture is drawn from aggregates computed first (`distribution`, `amount_by_category`:
shares and quantiles, which the tests check), so drawing costs the same on 3,000 rows as on
millions. Matplotlib (Agg, files only) is imported only to draw. Text and date features
are not drawn.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from core.spec import Feature, FeatureType, Spec, Target
from core.stats import shares, tukey_fence
from features.transactions import aggregate, amount_cap, categorise, clean_transactions

if TYPE_CHECKING:  # typing only: matplotlib is imported when drawing
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

PLOTS_DIRNAME = "quality"  # reports/<use case>/quality/*.png
BLANK = "(blank)"
NO_CATEGORY = "(no category)"
HISTOGRAM_BINS = 30
MAX_VALUES = 20  # numbers with at most this many distinct values get one bar per value
MAX_LEVELS = 20  # beyond, the largest levels keep a bar and the rest share one
AMOUNT_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)  # whisker, box, median, box, whisker
LABELED, TO_SCORE = "labeled", "to be scored"
DRAWN_TYPES = (FeatureType.numeric, FeatureType.binary, FeatureType.categorical)
TX_AMOUNT_FILE = "transactions_amount_by_category.png"
TX_PER_CUSTOMER_FILE = "transactions_per_customer.png"
EVENT_WIDTH = 48  # characters of the target description shown in a legend
TITLE_WIDTH = 160  # characters of a feature's description in its plot's title
TITLE_CHARS_PER_INCH = 13  # where the title wraps
DPI = 80


@dataclass
class Shares:
    """One variable per group over shared bars: each group's share of rows per level, value
    or histogram bin, blanks being a bar of their own (last, where any group has one)."""

    kind: Literal["bars", "histogram"]
    table: pd.DataFrame  # index: bar labels; columns: groups; each non-empty column sums to 1
    rows: dict[str, int]
    blanks: dict[str, int]
    edges: np.ndarray | None = None  # histogram: the bin edges every group shares
    clipped: int = 0  # histogram: values beyond the range drawn, counted in the end bins

    @property
    def has_blank(self) -> bool:
        return BLANK in self.table.index


@dataclass
class Panel:
    """One side of a figure: shares per group, each group's colour and legend text."""

    title: str
    shares: Shares
    colours: dict[str, str]
    legend: dict[str, str]


@dataclass
class Plot:
    file: str  # relative to the report's folder
    title: str
    caption: str


@dataclass(frozen=True)
class ClassNames:
    """The two classes as the spec words them: `negative` / `positive` in captions,
    legends add the risk event from the target's description."""

    negative: str
    positive: str
    event: str

    @property
    def legends(self) -> dict[str, str]:
        return {
            self.negative: f"{self.negative}: otherwise",
            self.positive: f"{self.positive}: {self.event}",
        }

    @property
    def colours(self) -> dict[str, str]:
        return {self.negative: "tab:blue", self.positive: "tab:red"}

    def split(self, values: pd.Series, positive: np.ndarray) -> dict[str, pd.Series]:
        """Values by class (`positive`: the risk-event mask, aligned by position)."""
        return {self.negative: values[~positive], self.positive: values[positive]}


def class_names(target: Target) -> ClassNames:
    """`defaulted ≠ 1` / `defaulted = 1`, and the event in words (the description without
    a leading `column == value:`, up to its first sentence or clause)."""
    text = re.sub(r"^[^:]*==[^:]*:\s*", "", target.description.strip())
    text = re.split(r"[.;](?:\s|$)", text, maxsplit=1)[0].strip()
    event = textwrap.shorten(text, EVENT_WIDTH, placeholder=" …") if text else "risk event"
    return ClassNames(
        f"{target.column} ≠ {target.positive}", f"{target.column} = {target.positive}", event
    )


# ---------------------------------------------------------------- aggregates


def distribution(
    groups: dict[str, pd.Series], feature_type: FeatureType, levels: list[str] | None = None
) -> Shares:
    """Shares of each group's rows over bars every group shares: levels (categorical,
    binary), one bar per value (numbers with few distinct values), else histogram bins."""
    rows = {g: len(v) for g, v in groups.items()}
    blanks = {g: int(v.isna().sum()) for g, v in groups.items()}
    if feature_type is FeatureType.numeric:
        present = {g: pd.to_numeric(v, errors="coerce").dropna() for g, v in groups.items()}
        pooled = pd.concat(present.values(), ignore_index=True)
        if pooled.nunique() > MAX_VALUES:
            return _histogram(present, pooled, rows, blanks)
        text = {g: v.map(_number) for g, v in present.items()}
        order = [_number(v) for v in np.sort(pooled.unique())]
    else:
        text = {g: _as_levels(v.dropna(), feature_type) for g, v in groups.items()}
        order = ["0", "1"] if feature_type is FeatureType.binary else list(levels or [])
    counts = pd.DataFrame({g: v.value_counts() for g, v in text.items()}).fillna(0)
    counts = counts.reindex(columns=list(groups))
    unexpected = set(counts.index) - set(order)
    order += sorted(unexpected, key=lambda lv: (-counts.loc[lv].sum(), lv))
    counts = _fold_levels(counts.reindex(order, fill_value=0))
    return Shares("bars", _with_blanks(counts, blanks), rows, blanks)


def _number(value: float) -> str:
    return f"{value:g}"


def _as_levels(present: pd.Series, feature_type: FeatureType) -> pd.Series:
    """Levels as text; a binary flag read as a number where it is one (1.0 -> "1")."""
    if feature_type is FeatureType.binary:
        numbers = pd.to_numeric(present, errors="coerce")
        return numbers.map(_number, na_action="ignore").fillna(present.astype(str))
    return present.astype(str)


def _fold_levels(counts: pd.DataFrame) -> pd.DataFrame:
    """At most MAX_LEVELS bars: the largest levels keep theirs (in order), the rest one."""
    if len(counts) <= MAX_LEVELS:
        return counts
    kept = counts.sum(axis=1).nlargest(MAX_LEVELS - 1).index
    rest = counts.index.difference(kept)
    folded = counts.loc[[lv for lv in counts.index if lv in kept]]
    folded.loc[f"other ({len(rest)} levels)"] = counts.loc[rest].sum()
    return folded


def _with_blanks(counts: pd.DataFrame, blanks: dict[str, int]) -> pd.DataFrame:
    """A blank bar where any group has a blank, then each column as shares of its total."""
    if any(blanks.values()):
        counts.loc[BLANK] = [blanks[g] for g in counts.columns]
    return counts.apply(lambda col: pd.Series(shares(col.to_numpy(float)), index=col.index))


def _histogram(
    present: dict[str, pd.Series],
    pooled: pd.Series,
    rows: dict[str, int],
    blanks: dict[str, int],
) -> Shares:
    """Bins shared by every group over the pooled values' range, within Tukey's far-out
    fences (the report's outlier rule); values beyond go into the end bins."""
    low, high = tukey_fence(pooled)
    lo, hi = max(pooled.min(), low), min(pooled.max(), high)
    if lo >= hi:  # mostly one value (IQR 0): the central 99 %
        lo, hi = pooled.quantile([0.005, 0.995])
    if lo >= hi:
        lo, hi = pooled.min(), pooled.max()
    if (pooled == np.floor(pooled)).all():  # whole numbers: bins of whole widths
        lo, hi = np.floor(lo), np.ceil(hi)
        width = np.ceil((hi - lo + 1) / HISTOGRAM_BINS)
        edges = lo - 0.5 + width * np.arange(int(np.ceil((hi - lo + 1) / width)) + 1)
    else:
        edges = np.linspace(lo, hi, HISTOGRAM_BINS + 1)
    counts = pd.DataFrame(
        {
            g: np.histogram(np.clip(v.to_numpy(float), edges[0], edges[-1]), edges)[0]
            for g, v in present.items()
        },
        index=[f"[{a:.4g}, {b:.4g})" for a, b in pairwise(edges)],
    ).reindex(columns=list(present))
    clipped = int(((pooled < edges[0]) | (pooled > edges[-1])).sum())
    return Shares("histogram", _with_blanks(counts, blanks), rows, blanks, edges, clipped)


def amount_by_category(
    clean: pd.DataFrame, classes: pd.Series, categories: dict[str, list[str]]
) -> pd.DataFrame:
    """Quantiles of |amount| per merchant category and class, over cleaned transactions
    (features.transactions) with a non-zero amount of customers in `classes` (customer id ->
    class). Categories are the features' keyword matches (`categorise`): a transaction that
    names two counts in both; one that names none is in NO_CATEGORY."""
    who = clean["customer_id"].map(classes).astype(object)
    magnitude = clean["amount"].abs()
    keep = (who.notna() & (magnitude > 0)).to_numpy()
    flags = categorise(clean["description"], categories)
    flags[NO_CATEGORY] = ~flags.any(axis=1)
    rows = []
    for name in flags.columns:
        mask = flags[name].to_numpy() & keep
        if not mask.any():
            continue
        grouped = magnitude[mask].groupby(who[mask].to_numpy())
        quantiles = grouped.quantile(list(AMOUNT_QUANTILES)).unstack()
        for group, n in grouped.size().items():
            rows.append(
                {"category": name, "group": group, "transactions": int(n)}
                | dict(zip(("p5", "q1", "median", "q3", "p95"), quantiles.loc[group], strict=True))
            )
    return pd.DataFrame(
        rows, columns=["category", "group", "transactions", "p5", "q1", "median", "q3", "p95"]
    )


def transactions_per_customer(raw: pd.DataFrame, customer_column: str, ids: pd.Series) -> pd.Series:
    """Raw transaction rows per customer of `ids` (0 for none), in the order of `ids`, as the
    report's coverage section counts them."""
    counts = raw[customer_column].value_counts()
    return pd.Series(
        counts.reindex(ids.astype(str)).fillna(0).to_numpy(dtype=float), index=ids.index
    )


# ---------------------------------------------------------------- the whole set


def write_plots(
    spec: Spec,
    table: pd.DataFrame,
    scoring_rows: pd.DataFrame,
    transactions: pd.DataFrame | None,
    scoring_transactions: pd.DataFrame | None,
    folder: Path,
) -> list[Plot]:
    """Draw every picture into `folder` (older PNGs there removed); return them in order.

    `table` is the customer table (its labeled rows are drawn by class), `scoring_rows` the
    rows to be scored (empty: no side-by-side), the transactions are raw files as read.
    Features built from transactions are computed as training builds them."""
    folder.mkdir(parents=True, exist_ok=True)
    names = class_names(spec.target)
    target = spec.target.column
    labeled = table[table[target].notna()]
    positive = spec.target.is_positive(labeled[target]).to_numpy()
    roles = spec.data.transactions
    clean = scoring_clean = None
    if roles is not None and transactions is not None:
        cust = roles.columns.customer_id
        amounts = pd.to_numeric(transactions[roles.columns.amount], errors="coerce")
        cap = roles.max_amount or amount_cap(
            amounts[transactions[cust].isin(labeled[spec.id_column])]
        )
        clean = clean_transactions(transactions, roles, cap)[0]
        scoring_clean = clean
        if scoring_transactions is not None and scoring_transactions is not transactions:
            scoring_clean = clean_transactions(scoring_transactions, roles, cap)[0]
    labeled_values = _feature_values(spec, labeled, clean)
    scoring_values = _feature_values(spec, scoring_rows, scoring_clean)

    plots = []
    for feature in spec.features:
        if feature.type not in DRAWN_TYPES:
            continue
        to_score = scoring_values[feature.name] if len(scoring_rows) else None
        panels = feature_panels(feature, labeled_values[feature.name], positive, names, to_score)
        file = f"feature_{feature.name}.png"
        title = f"{feature.name}: {textwrap.shorten(feature.description, TITLE_WIDTH)}"
        _draw(folder / file, title, feature.name, panels)
        built = " (built from the transactions)" if feature.name not in table else ""
        parts = [_counts(group, panels[0].shares) for group in panels[0].shares.rows]
        parts += [_counts(TO_SCORE, panel.shares) for panel in panels[1:]]
        caption = f"`{feature.name}`{built}: " + "; ".join(parts) + "."
        plots.append(Plot(f"{PLOTS_DIRNAME}/{file}", feature.name, caption))

    if roles is not None and transactions is not None and clean is not None:
        classes = pd.Series(
            np.where(positive, names.positive, names.negative),
            index=labeled[spec.id_column].astype(str).to_numpy(),
        )
        classes = classes[~classes.index.duplicated()]
        plots.append(_per_customer_plot(folder, names, labeled, positive, transactions, spec))
        if roles.columns.description is not None:
            stats = amount_by_category(clean, classes, roles.categories)
            if not stats.empty:
                plots.append(_amount_plot(folder, names, stats))

    written = {Path(p.file).name for p in plots}
    for old in folder.glob("*.png"):
        if old.name not in written:
            old.unlink()
    return plots


def feature_panels(
    feature: Feature,
    values: pd.Series,
    positive: np.ndarray,
    names: ClassNames,
    to_score: pd.Series | None,
) -> list[Panel]:
    """The labeled rows by class; beside them, where there are rows to score (`to_score`),
    the labeled rows vs those."""
    panels = [
        Panel(
            "by class (labeled rows)",
            distribution(names.split(values, positive), feature.type, feature.levels),
            names.colours,
            names.legends,
        )
    ]
    if to_score is not None:
        cohorts = {LABELED: values, TO_SCORE: to_score}
        panels.append(
            Panel(
                "labeled vs to be scored",
                distribution(cohorts, feature.type, feature.levels),
                {LABELED: "tab:gray", TO_SCORE: "tab:purple"},
                {LABELED: LABELED, TO_SCORE: TO_SCORE},
            )
        )
    return panels


def _feature_values(
    spec: Spec, rows: pd.DataFrame, clean: pd.DataFrame | None
) -> dict[str, pd.Series]:
    """Each feature's values on `rows`: the table's column, else the transaction aggregate
    (features.transactions.aggregate; table columns win a name clash, as in training)."""
    built = [f.name for f in spec.features if f.name not in rows]
    aggregates = pd.DataFrame()
    if built and clean is not None and spec.data.transactions is not None:
        aggregates = aggregate(clean, rows[spec.id_column], spec.data.transactions)
    out = {}
    for feature in spec.features:
        if feature.name in rows:
            out[feature.name] = rows[feature.name].reset_index(drop=True)
        elif feature.name in aggregates:
            out[feature.name] = pd.Series(aggregates[feature.name].to_numpy(dtype=float))
        else:
            out[feature.name] = pd.Series(np.nan, index=range(len(rows)))
    return out


def _counts(group: str, s: Shares) -> str:
    return f"`{group}` {s.rows[group]:,} rows, {s.blanks[group]:,} blank"


def _per_customer_plot(
    folder: Path,
    names: ClassNames,
    labeled: pd.DataFrame,
    positive: np.ndarray,
    transactions: pd.DataFrame,
    spec: Spec,
) -> Plot:
    assert spec.data.transactions is not None
    per = transactions_per_customer(
        transactions, spec.data.transactions.columns.customer_id, labeled[spec.id_column]
    ).reset_index(drop=True)
    groups = names.split(per, positive)
    panel = Panel(
        "by class", distribution(groups, FeatureType.numeric), names.colours, names.legends
    )
    _draw(
        folder / TX_PER_CUSTOMER_FILE,
        "Transactions per customer (raw rows, labeled customers)",
        "transactions per customer",
        [panel],
    )
    parts = [
        f"`{g}` {len(v):,} customers, median {v.median():g}, {int((v == 0).sum()):,} with none"
        for g, v in groups.items()
    ]
    caption = "Transactions per customer (raw rows, as counted for coverage): "
    caption += "; ".join(parts) + "."
    return Plot(f"{PLOTS_DIRNAME}/{TX_PER_CUSTOMER_FILE}", "transactions per customer", caption)


def _amount_plot(folder: Path, names: ClassNames, stats: pd.DataFrame) -> Plot:
    _draw_amounts(folder / TX_AMOUNT_FILE, names, stats)
    by_group = stats.groupby("group")["transactions"].sum()
    none = stats.loc[stats["category"] == NO_CATEGORY, "transactions"].sum()
    parts = [f"`{g}` {int(by_group.get(g, 0)):,}" for g in (names.negative, names.positive)]
    caption = (
        "Absolute amount by merchant category (the features' keyword map; cleaned "
        "transactions with a non-zero amount, a transaction naming two categories counts in "
        "both; boxes: quartiles, whiskers: 5th-95th percentiles): category matches per class "
        + ", ".join(parts)
        + f"; {int(none):,} in no category."
    )
    return Plot(f"{PLOTS_DIRNAME}/{TX_AMOUNT_FILE}", "amount by merchant category", caption)


# ---------------------------------------------------------------- drawing


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only, no screen
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Figure, path: Path) -> None:
    plt = _pyplot()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def _draw(path: Path, title: str, xlabel: str, panels: list[Panel]) -> None:
    """One figure, panels side by side; a histogram's blank share gets a narrow axis."""
    plt = _pyplot()
    widths: list[float] = []
    for panel in panels:
        widths += (
            [5.0, 0.8] if panel.shares.kind == "histogram" and panel.shares.has_blank else [5.0]
        )
    bars = max(panel.shares.table.size for panel in panels)
    tall = any(panel.shares.kind == "bars" for panel in panels)
    height = min(12.0, max(3.4, 0.2 * bars + 1.8)) if tall else 3.6
    width = sum(widths) + 0.6 * len(panels)
    fig = plt.figure(figsize=(width, height), layout="constrained")
    grid = fig.add_gridspec(1, len(widths), width_ratios=widths)
    column = 0
    axes = []
    for panel in panels:
        ax = fig.add_subplot(grid[0, column])
        axes.append(ax)
        column += 1
        if panel.shares.kind == "bars":
            _bars(ax, panel, xlabel)
        else:
            _hist(ax, panel, xlabel)
            if panel.shares.has_blank:
                _blank_axis(fig.add_subplot(grid[0, column], sharey=ax), panel)
                column += 1
        ax.set_title(panel.title, fontsize=9)
    fig.suptitle(textwrap.fill(title, int(width * TITLE_CHARS_PER_INCH)), fontsize=10)
    _legend_below(fig, axes)
    _save(fig, path)


def _bars(ax: Axes, panel: Panel, label: str) -> None:
    table = panel.shares.table
    y = np.arange(len(table))[::-1]
    height = 0.8 / len(table.columns)
    for i, group in enumerate(table.columns):
        offset = (len(table.columns) - 1) / 2 - i
        ax.barh(
            y + offset * height,
            table[group].to_numpy(),
            height=height,
            color=panel.colours[group],
            label=panel.legend[group],
        )
    ax.set_yticks(y, [textwrap.shorten(str(lv), 32, placeholder="…") for lv in table.index])
    ax.tick_params(axis="y", labelsize=7)
    ax.set(xlabel="share of the group's rows", ylabel=label)


def _hist(ax: Axes, panel: Panel, label: str) -> None:
    s = panel.shares
    assert s.edges is not None
    binned = s.table.drop(index=BLANK, errors="ignore")
    for group in s.table.columns:
        values, colour = binned[group].to_numpy(), panel.colours[group]
        ax.stairs(values, s.edges, fill=True, alpha=0.3, color=colour)
        ax.stairs(values, s.edges, color=colour, linewidth=1.2, label=panel.legend[group])
    if s.clipped:
        label += f"\n(end bins hold {s.clipped:,} values beyond the far-out fences)"
    ax.set(xlabel=label, ylabel="share of the group's rows")


def _legend_below(fig: Figure, axes: list[Axes]) -> None:
    """One legend under the figure, a column per panel (under it)."""
    handles, labels = [], []
    for ax in axes:
        h, lab = ax.get_legend_handles_labels()
        handles += h
        labels += lab
    fig.legend(
        handles, labels, loc="outside lower center", ncol=len(axes), fontsize=7, frameon=False
    )


def _blank_axis(ax: Axes, panel: Panel) -> None:
    groups = list(panel.shares.table.columns)
    ax.bar(
        range(len(groups)),
        panel.shares.table.loc[BLANK].to_numpy(),
        color=[panel.colours[g] for g in groups],
    )
    ax.set_xticks([])
    ax.set_xlabel(BLANK)
    ax.tick_params(axis="y", labelleft=False)


def _draw_amounts(path: Path, names: ClassNames, stats: pd.DataFrame) -> None:
    """Horizontal boxes of |amount| per category, one per class, on a log scale."""
    plt = _pyplot()
    categories = list(dict.fromkeys(stats["category"]))
    colours, legends = names.colours, names.legends
    fig, ax = plt.subplots(
        figsize=(8, min(12.0, 0.5 * len(categories) + 1.8)), layout="constrained"
    )
    y = {c: len(categories) - 1 - i for i, c in enumerate(categories)}
    for i, group in enumerate((names.negative, names.positive)):
        rows = stats[stats["group"] == group]
        if rows.empty:
            continue
        boxes = [
            {
                "whislo": r.p5,
                "q1": r.q1,
                "med": r.median,
                "q3": r.q3,
                "whishi": r.p95,
                "fliers": [],
                "label": r.category,
            }
            for r in rows.itertuples()
        ]
        artists = ax.bxp(
            boxes,
            positions=[y[r.category] + (0.18 if i == 0 else -0.18) for r in rows.itertuples()],
            widths=0.3,
            orientation="horizontal",
            patch_artist=True,
            showfliers=False,
            manage_ticks=False,
        )
        for box in artists["boxes"]:
            box.set(facecolor=colours[group], alpha=0.5)
        artists["boxes"][0].set_label(legends[group])
    ax.set_yticks(list(y.values()), list(y))
    ax.set_xscale("log")
    ax.set(xlabel="|amount| per transaction (log scale)", ylabel="merchant category")
    ax.set_title("Amount by merchant category and class", fontsize=10)
    _legend_below(fig, [ax])
    _save(fig, path)
