"""The fairness report: how the model's decisions at the chosen threshold fall on the groups
of each protected attribute the spec declares, on the test split.

Per group: rows, risk events, flag (selection) rate, the adverse impact ratio (AIR: the
group's favourable-outcome rate over that of the most favoured group, the four-fifths rule
marked), true and false positive rates and calibration (mean predicted vs observed event
rate). Groups smaller than `fairness.bootstrap_below_rows` get seeded bootstrap 95 %
intervals; groups smaller than `fairness.min_group_rows` are listed with their counts only
and never judged (nor chosen as the most favoured group). Proxies: the association of
each model feature with each protected attribute (bias-corrected Cramér's V), highest
first, so a feature that stands in for an attribute is seen even where the attribute is
not a feature.

`evaluate` computes, `summary` condenses for the model card, `write_report` writes
`reports/<name>/fairness.md` and `fairness.json` (the model document reads the JSON).
"""

from __future__ import annotations

import json
import math
import zlib
from dataclasses import asdict, dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.markdown import table
from core.spec import Feature, FeatureType, Protected, Spec
from core.stats import quantile_edges
from features.tabular import prepare_frame
from model.scorer import MIN_EFFECT

REPORT_STEM = "fairness"
SPLIT = "test"
SEED = 42
BOOTSTRAP_RESAMPLES = 500
CONFIDENCE = 0.95
PROXY_BINS = 10  # a numeric feature's decile bins for Cramér's V
BLANK = "blank"
OUT_OF_RANGE = "out of range"  # a banded value outside its feature's declared min / max


@dataclass
class GroupResult:
    """One group of one protected attribute at the threshold (rates None when too small)."""

    group: str
    rows: int
    events: int
    flagged: int
    too_small: bool
    flag_rate: float | None = None
    flag_rate_ci: list[float] | None = None
    favourable_rate: float | None = None
    adverse_impact_ratio: float | None = None
    air_ci: list[float] | None = None
    four_fifths_ok: bool | None = None
    tpr: float | None = None
    fpr: float | None = None
    mean_predicted: float | None = None
    observed_rate: float | None = None
    # An attribute the model reads: customers whose own value of it raises their
    # probability (against the typical value) by at least MIN_EFFECT, and the largest rise.
    own_value_raises: int | None = None
    own_value_max_effect: float | None = None


@dataclass
class AttributeResult:
    column: str
    use_as_feature: bool
    why: str | None
    bands: list[float] | None
    missing_rows: int
    most_favoured: str | None
    groups: list[GroupResult]


@dataclass
class Proxy:
    feature: str
    attribute: str
    value: float
    measure: str = "cramers_v"


@dataclass
class FairnessResult:
    use_case: str
    rows: int
    threshold: float
    min_group_rows: int
    bootstrap_below_rows: int
    four_fifths: float
    favourable: str
    attributes: list[AttributeResult]
    proxies: list[Proxy]
    proxy_split: str  # "train" or "labeled": the rows the proxies were measured on
    proxy_rows: int
    bootstrap: dict[str, Any] = field(
        default_factory=lambda: {
            "resamples": BOOTSTRAP_RESAMPLES,
            "confidence": CONFIDENCE,
            "seed": SEED,
        }
    )


# ---------------------------------------------------------------- groups


def band_labels(edges: list[float]) -> list[str]:
    """Edges [25, 40, 62] -> "<25", "25-40", "40-62", ">=62" (a band holds [low, high))."""
    inner = [f"{low:g}-{high:g}" for low, high in pairwise(edges)]
    return [f"<{edges[0]:g}", *inner, f">={edges[-1]:g}"]


def _value_text(value: Any) -> str:
    """0 / 1 read as floats (a column with blanks) show as 0 / 1, not 0.0 / 1.0."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def groups_of(values: pd.Series, attribute: Protected, feature: Feature | None = None) -> pd.Series:
    """The group label of every row: its band (numeric `bands`) or its value as text; a blank
    is the group "blank"; a banded value outside its feature's declared range is "out of
    range" (an entry error such as a 1900 birth date, not a customer of that age)."""
    blank = values.isna() | (values.astype("string").str.strip() == "")
    if attribute.bands is None:
        labels = values.map(_value_text, na_action="ignore").astype(object)
        return labels.where(~blank, BLANK)
    numbers = pd.to_numeric(values, errors="coerce")
    names = np.array(band_labels(attribute.bands), dtype=object)
    labels = pd.Series(
        names[np.searchsorted(attribute.bands, numbers.fillna(0).to_numpy(), side="right")],
        index=values.index,
        dtype=object,
    )
    unreadable = numbers.isna() & ~blank
    labels[unreadable] = values[unreadable].map(_value_text)
    if feature is not None:
        low = -np.inf if feature.min is None else feature.min
        high = np.inf if feature.max is None else feature.max
        labels[(numbers < low) | (numbers > high)] = OUT_OF_RANGE
    labels[blank] = BLANK
    return labels


def _order(labels: pd.Series, attribute: Protected) -> list[str]:
    """Bands in order (or values sorted), then any other label, blank last."""
    present = set(labels.unique())
    first = band_labels(attribute.bands) if attribute.bands is not None else []
    rest = sorted(present - set(first) - {BLANK})
    return [g for g in first if g in present] + rest + ([BLANK] if BLANK in present else [])


def _rate(numerator: float, denominator: float) -> float | None:
    return float(numerator / denominator) if denominator else None


def _interval(samples: np.ndarray) -> list[float] | None:
    samples = samples[np.isfinite(samples)]
    if samples.size == 0:
        return None
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail])
    return [float(low), float(high)]


def _rng(column: str, group: str) -> np.random.Generator:
    """A generator per (attribute, group): one group's interval never depends on the others."""
    return np.random.default_rng([SEED, zlib.crc32(f"{column}\0{group}".encode())])


def _flag_rates(rng: np.random.Generator, flagged: int, rows: int) -> np.ndarray:
    """Bootstrap flag rates of a group: resampling its rows with replacement draws the
    flagged count from Binomial(rows, observed rate), so that is drawn directly."""
    return rng.binomial(rows, flagged / rows, BOOTSTRAP_RESAMPLES) / rows


def _judged(
    group: str, y: np.ndarray, flagged: np.ndarray, p: np.ndarray, favour_flagged: bool
) -> GroupResult:
    rows, events = len(y), int(y.sum())
    flag_rate = float(flagged.mean())
    return GroupResult(
        group=group,
        rows=rows,
        events=events,
        flagged=int(flagged.sum()),
        too_small=False,
        flag_rate=flag_rate,
        favourable_rate=flag_rate if favour_flagged else 1 - flag_rate,
        tpr=_rate(np.sum(flagged & (y == 1)), events),
        fpr=_rate(np.sum(flagged & (y == 0)), rows - events),
        mean_predicted=float(p.mean()),
        observed_rate=float(y.mean()),
    )


def _attribute(
    spec: Spec,
    attribute: Protected,
    values: pd.Series,
    y: np.ndarray,
    flagged: np.ndarray,
    p: np.ndarray,
    own_effect: np.ndarray | None = None,
) -> AttributeResult:
    settings = spec.fairness
    favour_flagged = settings.favourable == "flagged"
    feature = next((f for f in spec.features if f.name == attribute.column), None)
    labels = groups_of(values, attribute, feature)
    groups: list[GroupResult] = []
    for name in _order(labels, attribute):
        inside = (labels == name).to_numpy()
        if inside.sum() < settings.min_group_rows:
            count = int(inside.sum())
            groups.append(
                GroupResult(name, count, int(y[inside].sum()), int(flagged[inside].sum()), True)
            )
        else:
            groups.append(_judged(name, y[inside], flagged[inside], p[inside], favour_flagged))
        if own_effect is not None:
            groups[-1].own_value_raises = int((own_effect[inside] >= MIN_EFFECT).sum())
            groups[-1].own_value_max_effect = float(own_effect[inside].max(initial=0.0))

    judged = [g for g in groups if not g.too_small]
    best = max(judged, key=lambda g: g.favourable_rate or 0.0, default=None)
    for g in judged:
        if best is not None and best.favourable_rate:
            g.adverse_impact_ratio = g.favourable_rate / best.favourable_rate
            g.four_fifths_ok = g.adverse_impact_ratio >= settings.four_fifths
        if g.rows < settings.bootstrap_below_rows:
            _bootstrap(attribute.column, g, best, favour_flagged)
    return AttributeResult(
        column=attribute.column,
        use_as_feature=attribute.use_as_feature,
        why=attribute.why,
        bands=attribute.bands,
        missing_rows=int((labels == BLANK).sum()),
        most_favoured=best.group if best is not None else None,
        groups=groups,
    )


def _bootstrap(
    column: str, group: GroupResult, best: GroupResult | None, favour_flagged: bool
) -> None:
    """95 % percentile intervals of the flag rate and, against the most favoured group
    (itself resampled), of the AIR; the most favoured group's own AIR is 1 by definition."""
    rng = _rng(column, group.group)
    rates = _flag_rates(rng, group.flagged, group.rows)
    group.flag_rate_ci = _interval(rates)
    if best is None or best is group or group.adverse_impact_ratio is None:
        return
    reference = _flag_rates(rng, best.flagged, best.rows)
    if favour_flagged:
        favourable, reference_favourable = rates, reference
    else:
        favourable, reference_favourable = 1 - rates, 1 - reference
    with np.errstate(divide="ignore", invalid="ignore"):
        group.air_ci = _interval(favourable / reference_favourable)


# ---------------------------------------------------------------- proxies


def cramers_v(a: pd.Series, b: pd.Series) -> float:
    """Bias-corrected Cramér's V (Bergsma 2013) of two label columns: 0 independent, 1 when
    one determines the other; 0 when either has a single level."""
    counts = pd.crosstab(a.to_numpy(), b.to_numpy()).to_numpy(dtype=float)
    n = counts.sum()
    r, k = counts.shape
    if r < 2 or k < 2 or n < 2:
        return 0.0
    expected = counts.sum(axis=1, keepdims=True) * counts.sum(axis=0, keepdims=True) / n
    phi2 = float(np.sum((counts - expected) ** 2 / expected)) / n
    phi2 = max(0.0, phi2 - (r - 1) * (k - 1) / (n - 1))
    r_corr = r - (r - 1) ** 2 / (n - 1)
    k_corr = k - (k - 1) ** 2 / (n - 1)
    denominator = min(r_corr - 1, k_corr - 1)
    return float(math.sqrt(min(phi2 / denominator, 1.0))) if denominator > 0 else 0.0


def feature_bins(values: pd.Series, feature: Feature) -> pd.Series:
    """A feature as labels for Cramér's V: numeric ones in decile bins, others by value;
    a blank is its own bin."""
    if feature.type is FeatureType.numeric:
        present = values.dropna().to_numpy(dtype=float)
        edges = quantile_edges(present, PROXY_BINS)
        bins = np.searchsorted(edges, values.fillna(0).to_numpy(dtype=float), side="left")
        labels = pd.Series(bins.astype(str), index=values.index, dtype=object)
    else:
        labels = values.map(_value_text, na_action="ignore").astype(object)
    return labels.where(values.notna(), BLANK)


def proxies(spec: Spec, frame: pd.DataFrame) -> list[Proxy]:
    """Every model feature against every protected attribute it is not itself, highest
    association first."""
    prepared = prepare_frame(frame, spec)
    binned = {f.name: feature_bins(prepared[f.name], f) for f in spec.features}
    found = []
    for attribute in spec.protected:
        feature = next((f for f in spec.features if f.name == attribute.column), None)
        groups = groups_of(frame[attribute.column], attribute, feature)
        for name, bins in binned.items():
            if name != attribute.column:
                found.append(Proxy(name, attribute.column, cramers_v(bins, groups)))
    return sorted(found, key=lambda x: (-x.value, x.feature, x.attribute))


# ---------------------------------------------------------------- the whole evaluation


def evaluate(
    spec: Spec,
    frame_test: pd.DataFrame,
    y_test: np.ndarray,
    p_test: np.ndarray,
    threshold: float,
    frame_train: pd.DataFrame | None = None,
    own_effects: dict[str, np.ndarray] | None = None,
) -> FairnessResult:
    """Every protected attribute's groups on the test split at `threshold` (flag when
    p >= threshold), and the proxies on `frame_train` (else on the test rows given).
    `own_effects` (`own_value_effects`): per attribute the model reads, each test row's
    probability change from its own value of it."""
    missing = [a.column for a in spec.protected if a.column not in frame_test.columns]
    if missing:
        raise ValueError(
            f"protected columns {missing} are not in the frame (columns: {list(frame_test)})"
        )
    y = np.asarray(y_test, dtype=int)
    p = np.asarray(p_test, dtype=float)
    if not len(y) == len(p) == len(frame_test):
        raise ValueError(
            f"expected one label and one probability per row ({len(frame_test)}), "
            f"got {len(y)} labels and {len(p)} probabilities"
        )
    flagged = p >= threshold
    own = own_effects or {}
    attributes = [
        _attribute(
            spec, a, frame_test[a.column].reset_index(drop=True), y, flagged, p, own.get(a.column)
        )
        for a in spec.protected
    ]
    proxy_frame = frame_test if frame_train is None else frame_train
    settings = spec.fairness
    return FairnessResult(
        use_case=spec.name,
        rows=len(y),
        threshold=float(threshold),
        min_group_rows=settings.min_group_rows,
        bootstrap_below_rows=settings.bootstrap_below_rows,
        four_fifths=settings.four_fifths,
        favourable=settings.favourable,
        attributes=attributes,
        proxies=proxies(spec, proxy_frame),
        proxy_split=SPLIT if frame_train is None else "train",
        proxy_rows=len(proxy_frame),
    )


def own_value_effects(
    spec: Spec, model: Any, X_test: pd.DataFrame, X_train: pd.DataFrame
) -> dict[str, np.ndarray]:
    """For each protected attribute the model reads: how much each test row's own value
    of it raises the probability against the typical training value (the median, or the
    most frequent level: the reasons' occlusion). Regulation B lets an empirically derived
    score read age only if applicants 62 or older never get a negative factor from it."""
    p = model.predict_proba(X_test)[:, 1]
    effects = {}
    for attribute in spec.protected:
        if not attribute.use_as_feature or attribute.column not in X_test:
            continue
        column = X_train[attribute.column]
        numeric = column.dtype.kind in "fiu"
        typical = column.median() if numeric else column.mode().iloc[0]
        occluded = X_test.copy()
        occluded[attribute.column] = typical
        effects[attribute.column] = p - model.predict_proba(occluded)[:, 1]
    return effects


def summary(result: FairnessResult) -> dict[str, Any]:
    """The few numbers the model card carries: per attribute, the groups, the most
    favoured one, the lowest AIR and the groups below four-fifths or too small."""
    attributes = {}
    for a in result.attributes:
        judged = [g for g in a.groups if g.adverse_impact_ratio is not None]
        lowest = min(judged, key=lambda g: g.adverse_impact_ratio or 0.0, default=None)
        attributes[a.column] = {
            "groups": len(a.groups),
            "most_favoured": a.most_favoured,
            "min_air": lowest.adverse_impact_ratio if lowest is not None else None,
            "min_air_group": lowest.group if lowest is not None else None,
            "below_four_fifths": [g.group for g in a.groups if g.four_fifths_ok is False],
            "too_small": [g.group for g in a.groups if g.too_small],
        }
    return {
        "split": SPLIT,
        "rows": result.rows,
        "threshold": result.threshold,
        "favourable": result.favourable,
        "four_fifths": result.four_fifths,
        "attributes": attributes,
    }


# ---------------------------------------------------------------- the report


def _finite(value: Any) -> Any:
    """NaN / inf -> None and numpy scalars -> Python, anywhere inside."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def to_json(result: FairnessResult, model_tag: str, data_sha256: dict[str, str]) -> dict:
    """fairness.json: the contract the model document reads."""
    return _finite(
        {
            "use_case": result.use_case,
            "model_tag": model_tag,
            "data_sha256": data_sha256,
            "split": SPLIT,
            "rows": result.rows,
            "threshold": result.threshold,
            "settings": {
                "min_group_rows": result.min_group_rows,
                "bootstrap_below_rows": result.bootstrap_below_rows,
                "four_fifths": result.four_fifths,
                "favourable": result.favourable,
            },
            "bootstrap": result.bootstrap,
            "attributes": [asdict(a) for a in result.attributes],
            "proxies": [
                {
                    "feature": x.feature,
                    "attribute": x.attribute,
                    "measure": x.measure,
                    "value": x.value,
                }
                for x in result.proxies
            ],
            "proxy_split": result.proxy_split,
            "proxy_rows": result.proxy_rows,
            "summary": summary(result),
        }
    )


def _ci(interval: list[float] | None) -> str:
    return "" if interval is None else f"[{interval[0]:.3f}, {interval[1]:.3f}]"


def _four_fifths(group: GroupResult) -> str:
    if group.too_small:
        return "too small"
    if group.four_fifths_ok is None:
        return "n/a"
    return "ok" if group.four_fifths_ok else "**below**"


GROUP_HEADER = [
    "group", "rows", "events", "flagged", "flag rate", "95 % CI", "favourable rate", "AIR",
    "AIR 95 % CI", "four-fifths", "TPR", "FPR", "mean predicted", "observed rate",
]  # fmt: skip


def _attribute_lines(a: AttributeResult) -> list[str]:
    if a.use_as_feature:
        role = f"A model feature, allowed by the spec: {a.why}"
    else:
        role = "Not a model feature: the model never reads it."
    bands = (
        f" Bands {', '.join(band_labels(a.bands))} (a band holds [low, high))." if a.bands else ""
    )
    most = f"`{a.most_favoured}`" if a.most_favoured is not None else "none (every group too small)"
    rows = [
        [
            g.group,
            g.rows,
            g.events,
            g.flagged,
            g.flag_rate,
            _ci(g.flag_rate_ci),
            g.favourable_rate,
            g.adverse_impact_ratio,
            _ci(g.air_ci),
            _four_fifths(g),
            g.tpr,
            g.fpr,
            g.mean_predicted,
            g.observed_rate,
        ]
        for g in a.groups
    ]
    return [
        f"## `{a.column}`",
        "",
        f"{role}{bands} Blank in {a.missing_rows} test rows. Most favoured group: {most}.",
        "",
        *table(GROUP_HEADER, rows, fmt=".3f"),
        "",
        *_own_value_lines(a),
    ]


def _own_value_lines(a: AttributeResult) -> list[str]:
    """For an attribute the model reads: whom its own value pushes up, per group."""
    if not any(g.own_value_raises is not None for g in a.groups):
        return []
    rows = [
        [g.group, g.rows, g.own_value_raises, g.own_value_max_effect]
        for g in a.groups
        if g.own_value_raises is not None
    ]
    return [
        f"Does `{a.column}` itself raise the risk? Each test customer re-scored with the "
        f"typical training value of `{a.column}` (the reasons' occlusion): customers whose "
        f"own value adds at least {MIN_EFFECT:g} to their probability, and the largest "
        "addition. (Regulation B: an age feature may not give applicants 62 or older a "
        "negative factor, so a count above 0 in such a group is a finding.)",
        "",
        *table(["group", "rows", "own value raises risk", "largest rise"], rows, fmt=".4f"),
        "",
    ]


def to_markdown(result: FairnessResult, model_tag: str, data_sha256: dict[str, str]) -> str:
    favourable = (
        "being flagged (the decision is an offer that helps the customer)"
        if result.favourable == "flagged"
        else "not being flagged (the customer is approved / left alone)"
    )
    boot = result.bootstrap
    proxy_rows = [[x.feature, x.attribute, x.value] for x in result.proxies]
    where = "training split" if result.proxy_split == "train" else f"{result.proxy_split} split"
    lines = [
        f"# Fairness report: {result.use_case}",
        "",
        f"Model `{model_tag}`, {SPLIT} split ({result.rows} customers), threshold "
        f"{result.threshold:.4f} (flagged when the probability is at or above it).",
        "",
        "Data (sha256): " + ", ".join(f"{k} `{v[:16]}`" for k, v in data_sha256.items()) + ".",
        "",
        f"The favourable outcome is {favourable}. The adverse impact ratio (AIR) is a group's "
        "favourable rate divided by that of the most favoured group; below "
        f"{result.four_fifths:g} it fails the four-fifths rule (**below**). Groups with fewer "
        f"than {result.min_group_rows} test rows are too small: counts only, never judged or "
        f"chosen as most favoured. Groups with fewer than {result.bootstrap_below_rows} rows "
        f"carry {boot['confidence']:.0%} bootstrap percentile intervals ({boot['resamples']} "
        f"resamples, seed {boot['seed']}; an AIR interval resamples the most favoured group too). "
        "TPR: share of risk events flagged; FPR: share of the others flagged; mean predicted "
        "vs observed rate: calibration within the group.",
        "",
    ]
    for a in result.attributes:
        lines += _attribute_lines(a)
    lines += [
        f"## Proxies ({where}, {result.proxy_rows} rows)",
        "",
        "Association of each model feature with each protected attribute, highest first: "
        "Cramér's V with Bergsma's bias correction (0 independent, 1 one determines the "
        f"other); numeric features in {PROXY_BINS} quantile bins, a blank its own bin. An "
        "attribute that is itself a feature is not paired with itself.",
        "",
        *table(["feature", "attribute", "Cramér's V"], proxy_rows, fmt=".3f"),
    ]
    return "\n".join(lines) + "\n"


def write_report(
    result: FairnessResult, folder: Path, model_tag: str, data_sha256: dict[str, str]
) -> dict[str, Path]:
    """Write fairness.md and fairness.json into `folder`; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": folder / f"{REPORT_STEM}.md", "json": folder / f"{REPORT_STEM}.json"}
    paths["markdown"].write_text(to_markdown(result, model_tag, data_sha256), encoding="utf-8")
    paths["json"].write_text(
        json.dumps(to_json(result, model_tag, data_sha256), indent=2), encoding="utf-8"
    )
    return paths
