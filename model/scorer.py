"""Scoring with a stored model: probabilities, decisions, tiers, reasons and warnings.

One `Scorer` serves `/predict`, `/predict_batch`, `/score_transactions` and the
batch outputs, so every path gives the same numbers for the same record.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Iterator
from typing import Any

import bentoml
import numpy as np
import pandas as pd

from core.card import CategoricalReference, ModelCard
from core.errors import UserError
from core.metrics import tier_index
from core.names import TIER_NAMES
from core.reasoncodes import catalogue, direction_of
from core.settings import get_settings
from core.spec import ORDERED, Feature, FeatureType, MissingRule
from features.customers import customer_features
from features.tabular import columns_from_frame, columns_from_records
from model import store
from model.ensemble import fitted_pipelines
from model.fastpath import Columns, Fast, NoFastForm, derive

logger = logging.getLogger(__name__)

REASONS_SHOWN = 3
ADVERSE_SHOWN = 4  # principal reasons on an adverse-action notice (Regulation B)
CHUNK_ROWS = 2_000  # rows explained at once by answer_table
ANSWER_FIELDS = (
    "probability",
    "prediction",
    "risk_tier",
    "reasons",
    "adverse_reasons",
    "model",
    "warnings",
)
MIN_EFFECT = 0.001  # smaller probability moves are not worth a reason


class ModelNotFound(UserError, LookupError):
    pass


def find_model(tag: str) -> bentoml.Model:
    """The stored model for a tag, or an error that says how to make it."""
    try:
        return bentoml.models.get(tag)
    except bentoml.exceptions.NotFound:
        name = tag.split(":")[0]
        raise ModelNotFound(
            f"no model {tag!r} in the BentoML store; train it with `make train USE_CASE={name}`"
        ) from None


def model_card(model: bentoml.Model, card: ModelCard) -> dict[str, Any]:
    """What GET /model answers: the stored card without the bulky reference distributions,
    and the catalogue of reason codes its answers may carry."""
    shown = card.to_metadata(exclude={"reference"})
    codes = [reason.as_dict() for reason in catalogue(card.spec).values()]
    return {
        "tag": str(model.tag),
        "created_at": model.info.creation_time.isoformat(),
        **shown,
        "reason_codes": codes,
    }


def _shown(value: Any) -> Any:
    """JSON-friendly: NaN/None -> None, numpy scalars -> Python."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def _fast_path(pipeline: Any) -> tuple[Fast | None, str | None]:
    """The numpy path where every step has one; else the pipeline, and why."""
    if pipeline is None:
        return None, "no pipeline loaded"
    for member in fitted_pipelines(pipeline):
        inner = member.steps[-1][1].estimator_
        if hasattr(inner, "n_jobs"):
            inner.n_jobs = 1  # one request, one core: a thread pool per call costs more
    try:
        return derive(pipeline), None
    except NoFastForm as err:
        logger.warning("fast scoring path unavailable, using the full pipeline: %s", err)
        return None, str(err)


def _words(value: Any) -> str:
    """A value as a person reads it: 1250.5 -> '1,250.5', 1.0 -> '1', NaN -> 'blank'."""
    value = _shown(value)
    if value is None:
        return "blank"
    return _plain_words(value)


@functools.lru_cache(maxsize=4096, typed=True)
def _plain_words(value: Any) -> str:  # values repeat across records: each written once
    if isinstance(value, int | float):
        return format(value, ",.6g")
    return repr(value)


def _top(
    effects: np.ndarray, records: np.ndarray, shown: int, either_way: bool
) -> tuple[list[int], list[int], list[float], np.ndarray]:
    """The `shown` largest effects of each column of `effects` (features x `records`), by
    size (either way) or raising risk only, leaving out those under MIN_EFFECT: flat,
    record by record and largest first, as (record, feature, effect), with each record's
    count. Flat, so the reasons are built in one loop, not a loop per record."""
    ranked = -np.abs(effects) if either_way else -effects
    top = np.argsort(ranked, axis=0, kind="stable")[:shown].T
    top_effects = np.take_along_axis(effects.T, top, axis=1)
    keep = (np.abs(top_effects) if either_way else top_effects) >= MIN_EFFECT
    rows = records[np.nonzero(keep)[0]].tolist()
    return rows, top[keep].tolist(), top_effects[keep].tolist(), keep.sum(axis=1)


def _per_record(
    n: int, records: np.ndarray, flat: list[dict[str, Any]], counts: np.ndarray
) -> list[list[dict[str, Any]]]:
    """`flat` cut into one list per record of `records` (`counts` each), the other records
    of the n getting an empty list."""
    out: list[list[dict[str, Any]]] = [[] for _ in range(n)]
    ends = np.cumsum(counts).tolist()
    for i, start, end in zip(records.tolist(), [0, *ends][:-1], ends, strict=True):
        out[i] = flat[start:end]
    return out


class Scorer:
    """A stored model with everything needed to answer a request."""

    def __init__(self, tag: str, pipeline: Any, card: ModelCard):
        self.tag = tag
        self.pipeline = pipeline
        self.card = card
        self.spec = card.spec
        self.threshold = card.threshold.value
        self.tiers = self.spec.tiers
        self.amount_cap = card.amount_cap
        self.data_sha256 = dict(card.data_sha256)
        self.typical = {
            name: ref.mode if isinstance(ref, CategoricalReference) else ref.median
            for name, ref in card.reference.features.items()
        }
        self.typical_words = {name: _words(value) for name, value in self.typical.items()}
        # (name, typical value, and the text around the value) of each feature's reason
        self._reason_parts = {
            name: (name, value, f"{name} = ", f" (typical {self.typical_words[name]}) ")
            for name, value in self.typical.items()
        }
        # The features reasons are computed for: those with a typical value
        self.explained_names = [
            k for k in self.spec.feature_names if self.typical.get(k) is not None
        ]
        self.known_levels = {f.name: frozenset(f.levels or ()) for f in self.spec.features}
        self.codes = catalogue(self.spec)
        self.ordered = {f.name for f in self.spec.features if f.type in ORDERED}
        # Adverse reasons for flagged customers only, or for everyone (a setting).
        self.adverse_for_all = get_settings().adverse_reasons == "all"
        self.fast, self.fast_unavailable = _fast_path(pipeline)
        self.observer: Any = None  # the service's Telemetry: told about every scored batch
        self.train_range = {
            f.name: (f.train_min, f.train_max)
            for f in card.features
            if f.train_min is not None and f.train_max is not None
        }

    def __reduce__(self) -> tuple[type[Scorer], tuple[str, Any, ModelCard]]:
        """Pickled as what it is built from (the fast path is rebuilt on arrival, the
        observer stays behind): how a batch engine ships a scorer to its workers."""
        return type(self), (self.tag, self.pipeline, self.card)

    @classmethod
    def from_store(cls, tag: str) -> Scorer:
        model = find_model(tag)
        card = store.card(model)  # first: a model saved before the card format stops here
        return cls(str(model.tag), store.load_pipeline(model), card)

    @property
    def id_column(self) -> str:
        return self.spec.id_column

    # ------------------------------------------------------------ core

    def probabilities(self, columns: Columns) -> np.ndarray:
        if self.fast is not None:
            return self.fast.probabilities(columns)
        frame = pd.DataFrame({n: columns[n] for n in self.spec.feature_names})
        return self.pipeline.predict_proba(frame)[:, 1]

    def score_columns(
        self, ids: list[str], columns: Columns, explain: bool = True
    ) -> list[dict[str, Any]]:
        """One answer per customer, in order: the single scoring function every path uses."""
        names = self.explained_names if explain else []
        p, occluded = (
            self.occlusion(columns, names) if names else (self.probabilities(columns), None)
        )
        if not np.isfinite(p).all():  # a model fault, never the caller's: no answer at all
            raise ValueError(f"model {self.tag} returned a non-finite probability")
        n = len(ids)
        none: list[list[dict[str, Any]]] = [[] for _ in range(n)]
        reasons, adverse = (
            self.explanations(columns, p, names, occluded) if occluded is not None else (none, none)
        )
        tally: dict[tuple[str, str], int] = {}
        warnings = self.warnings(columns, n, tally)
        tiers = tier_index(p, self.tiers.medium, self.tiers.high)
        if self.observer is not None:
            self.observer.observe(p, tiers, tally)
        # Python values, not numpy scalars: indexing an array per record costs more
        decisions = (p >= self.threshold).astype(int).tolist()
        tier_names = [TIER_NAMES[t] for t in tiers.tolist()]
        return [
            {
                self.id_column: id_,
                "probability": probability,
                "prediction": decision,
                "risk_tier": tier,
                "reasons": reasons_,
                "adverse_reasons": adverse_,
                "model": self.tag,
                "warnings": warnings_,
            }
            for id_, probability, decision, tier, reasons_, adverse_, warnings_ in zip(
                ids, p.tolist(), decisions, tier_names, reasons, adverse, warnings, strict=True
            )
        ]

    def score_records(self, records: list[dict[str, Any]], explain: bool = True) -> list[dict]:
        ids = [str(r[self.id_column]) for r in records]
        return self.score_columns(ids, columns_from_records(records, self.spec), explain)

    def score_frame(self, frame: pd.DataFrame, explain: bool = True) -> list[dict[str, Any]]:
        ids = frame[self.id_column].astype(str).tolist()
        return self.score_columns(ids, columns_from_frame(frame, self.spec), explain)

    def answer_table(
        self, frame: pd.DataFrame, progress: Callable[[int, int], None] | None = None
    ) -> pd.DataFrame:
        """The answers for every row as a table (reasons and warnings as ' | '-joined text),
        scored CHUNK_ROWS at a time so explaining a large frame stays within memory;
        `progress(done, total)` after each chunk."""
        answers: list[dict[str, Any]] = []
        for start in range(0, len(frame), CHUNK_ROWS):
            answers += self.score_frame(frame.iloc[start : start + CHUNK_ROWS])
            if progress is not None:
                progress(min(start + CHUNK_ROWS, len(frame)), len(frame))
        columns = [self.id_column, *ANSWER_FIELDS]
        table = pd.DataFrame(answers, columns=columns)
        table["reasons"] = table["reasons"].map(lambda rs: " | ".join(r["text"] for r in rs))
        table["adverse_reasons"] = table["adverse_reasons"].map(
            lambda rs: " | ".join(f"{r['code']}: {r['text']} ({_words(r['value'])})" for r in rs)
        )
        table["warnings"] = table["warnings"].map(" | ".join)
        return table

    # ------------------------------------------------------------ explanations

    def occlusion(self, columns: Columns, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """The records' probabilities, and the same with each of `names` in turn set to
        its typical training value (median or most frequent level): len(names) x n, in
        one vectorised call (on the fast path, from one model call, by swapping that
        feature's encoded columns). It works the same for every model family."""
        if self.fast is not None:
            return self.fast.explained(columns, {k: self.typical[k] for k in names}, names)
        n = len(next(iter(columns.values())))
        stacked = {
            f: np.concatenate(
                [np.full(n, self.typical[f], dtype=col.dtype) if f == k else col for k in names]
            )
            for f, col in columns.items()
        }
        return self.probabilities(columns), self.probabilities(stacked)

    def explanations(
        self, columns: Columns, p: np.ndarray, names: list[str], occluded: np.ndarray
    ) -> tuple[list[list[dict[str, Any]]], list[list[dict[str, Any]]]]:
        """Per record, its reasons and its adverse-action reasons, from one occlusion
        (`occlusion`): the difference a feature's typical value makes is that feature's
        effect. Reasons: the largest effects either way. Adverse reasons: the largest
        effects that raise risk, with their codes, for flagged records (or all, by
        setting).
        """
        effects = p[None, :] - occluded.reshape(len(names), len(p))
        # Plain Python values from here on: per-element numpy scalars cost more than the text.
        values = [columns[name].tolist() for name in names]
        everyone = np.arange(len(p))
        reasons = _per_record(len(p), everyone, *self._reasons(names, values, everyone, effects))
        wanted = everyone if self.adverse_for_all else np.flatnonzero(p >= self.threshold)
        adverse = _per_record(
            len(p), wanted, *self._adverse_reasons(names, values, wanted, effects[:, wanted])
        )
        return reasons, adverse

    def _reasons(
        self, names: list[str], values: list[list], records: np.ndarray, effects: np.ndarray
    ) -> tuple[list[dict[str, Any]], np.ndarray]:
        """The largest effects either way, as reasons in words (`_top`)."""
        rows, features, sizes, counts = _top(effects, records, REASONS_SHOWN, either_way=True)
        parts = [self._reason_parts[name] for name in names]
        reasons = []
        for i, k, effect in zip(rows, features, sizes, strict=True):
            name, typical, head, middle = parts[k]
            value = values[k][i]
            if value is None or value != value:  # NaN: a blank
                value, words = None, "blank"
            else:
                words = _plain_words(value)
            direction = "raises" if effect > 0 else "lowers"
            reasons.append(
                {
                    "feature": name,
                    "value": value,
                    "typical": typical,
                    "effect": effect,
                    "text": f"{head}{words}{middle}{direction} the probability by "
                    f"{abs(effect) * 100:.1f} points",
                }
            )
        return reasons, counts

    def _adverse_reasons(
        self, names: list[str], values: list[list], records: np.ndarray, effects: np.ndarray
    ) -> tuple[list[dict[str, Any]], np.ndarray]:
        """The largest effects that raise risk, with their reason codes (`_top`)."""
        rows, features, sizes, counts = _top(effects, records, ADVERSE_SHOWN, either_way=False)
        reasons = []
        for i, k, effect in zip(rows, features, sizes, strict=True):
            name = names[k]
            value = values[k][i]
            if value is not None and value != value:  # NaN: a blank
                value = None
            reason = self.codes[name, direction_of(value, self.typical[name], name in self.ordered)]
            reasons.append(
                {
                    "code": reason.code,
                    "text": reason.text,
                    "feature": name,
                    "value": value,
                    "effect": effect,
                }
            )
        return reasons, counts

    def warnings(
        self, columns: Columns, n: int, tally: dict[tuple[str, str], int] | None = None
    ) -> list[list[str]]:
        """Values the model may handle poorly: outside the training range, unseen levels,
        blanks filled with a typical value. Vectorised: nothing to do for clean records.
        `tally`, when given, receives the count per (field, kind) for the metrics."""
        out: list[list[str]] = [[] for _ in range(n)]
        for feature, kind, mask in self._warning_masks(columns):
            hits = np.flatnonzero(mask)
            if tally is not None:
                tally[(feature.name, kind)] = int(hits.size)
            values = columns[feature.name]
            for i in hits:
                out[i].append(self._warning_text(feature, kind, values[i]))
        return out

    def _warning_masks(self, columns: Columns) -> Iterator[tuple[Feature, str, np.ndarray]]:
        """(feature, kind, which records) for every check that some record fails, in the
        spec's feature order. The number columns are checked together, as one matrix."""
        numbers = [f.name for f in self.spec.features if columns[f.name].dtype.kind == "f"]
        at = {name: j for j, name in enumerate(numbers)}
        if numbers:
            matrix = np.column_stack([columns[name] for name in numbers])
            blank = np.isnan(matrix)
            low, high = np.array(
                [self.train_range.get(name, (np.nan, np.nan)) for name in numbers]
            ).T
            with np.errstate(invalid="ignore"):
                outside = (matrix < low) | (matrix > high)  # a blank (or no range) is neither
            any_blank, any_outside = blank.any(axis=0), outside.any(axis=0)
        for feature in self.spec.features:
            values, j = columns[feature.name], at.get(feature.name)
            if feature.missing is MissingRule.impute:
                # Other rules give a blank a declared meaning; this one is a guess.
                if j is not None and any_blank[j]:
                    yield feature, "imputed_blank", blank[:, j]
                elif j is None and (mask := pd.isna(values)).any():
                    yield feature, "imputed_blank", mask
            if j is not None and any_outside[j]:
                yield feature, "out_of_range", outside[:, j]
            if feature.type is FeatureType.categorical:
                known = self.known_levels[feature.name]
                unseen = np.fromiter(
                    (not (v in known or v is None or v != v) for v in values), bool, len(values)
                )  # v != v: NaN, a blank
                if unseen.any():
                    yield feature, "unseen_level", unseen

    def _warning_text(self, feature: Feature, kind: str, value: Any) -> str:
        name = feature.name
        if kind == "imputed_blank":
            return f"{name} is blank: read as the typical training value"
        if kind == "out_of_range":
            low, high = self.train_range[name]
            return (
                f"{name} = {value:g} is outside the training range [{low:g}, {high:g}]: "
                "the model extrapolates"
            )
        return f"{name} = {value!r} is not a known level {feature.levels}: scored as none of them"

    # ------------------------------------------------------------ raw transactions

    def score_transactions(
        self, transactions: list[dict[str, Any]], customers: list[dict[str, Any]] | None
    ) -> dict[str, Any]:
        """Raw transactions (+ profile records where the model needs them) -> answers with
        the features computed for each customer, by the training code path."""
        roles = self.spec.data.transactions
        if roles is None:
            raise ValueError(f"use case {self.spec.name!r} is not scored from transactions")
        raw = pd.DataFrame.from_records(transactions)
        if customers is None:
            ids = raw[roles.columns.customer_id].astype(str).drop_duplicates()
            table = pd.DataFrame({self.id_column: ids.to_numpy()})
        else:
            table = pd.DataFrame.from_records(customers)
        table[self.id_column] = table[self.id_column].astype("string")
        frame, counts = customer_features(self.spec, table, raw, self.amount_cap)
        answers = self.score_frame(frame)
        whole = {f.name for f in self.spec.features if f.integer or f.type is FeatureType.binary}
        for answer, (_, row) in zip(answers, frame.iterrows(), strict=True):
            answer["features"] = {
                f: int(row[f]) if f in whole and pd.notna(row[f]) else _shown(row[f])
                for f in self.spec.feature_names
            }
        return {"customers": answers, "cleaning": counts.as_dict() if counts else {}}
