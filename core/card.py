"""The model card: everything training hands to serving about one stored model.

Training builds a `ModelCard`, `model/store.py` writes it as the BentoML model's
metadata and reads it back, and every consumer (service, scorer, telemetry, drift,
retrain, load tests) reads its attributes. `CARD_FORMAT` is written with it: a model
whose metadata holds another format (or none: saved before the card existed) is
refused by the store with how to retrain it.

Numbers that are not finite (a metric undefined on one class, say) are None in a card.
The store's metadata takes neither NaN nor None: `to_metadata` omits None keys and
writes None inside a list as "n/a", and a typed field left out reads back as None.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.spec import Costs, Feature, Published, Spec, Tiers

CARD_FORMAT = 3  # bump when a card written by this code cannot be read by the previous one
# Formats this code reads. 2 added the spec's governance keys (reason codes, protected
# attributes, fairness, document) and the fairness summary; 3 the spec's monotone and
# training keys, the calibration, the selection rule and the refit. An older card reads
# as one without them.
READABLE_FORMATS = (1, 2, 3)
FORMAT_KEY = "format"  # the metadata key (and field) that holds it
IN_A_LIST = "n/a"  # how the store's metadata shows None inside a list

# A free-form table of numbers or words, shown and never read by code. The store omits a
# None inside one (typed fields read it back as None).
Table = dict[str, Any]


def _plain(value: Any, *, for_store: bool) -> Any:
    """The one place that handles non-finite numbers and None: NaN/inf -> None, numpy
    scalars -> Python; with `for_store`, None keys are omitted and None in a list is
    written as IN_A_LIST (the store's metadata takes neither NaN nor None)."""
    if isinstance(value, BaseModel):
        return value
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        out = {k: _plain(v, for_store=for_store) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not None} if for_store else out
    if isinstance(value, list | tuple):
        items = [_plain(v, for_store=for_store) for v in value]
        return [IN_A_LIST if v is None else v for v in items] if for_store else items
    return value


class _Part(BaseModel):
    """A piece of the card: non-finite numbers anywhere inside become None."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _finite(cls, data: Any) -> Any:
        return _plain(data, for_store=False)


class FeatureSchema(Feature):
    """A spec feature as trained, with the range seen on the training split (numeric
    features stored as floats): the API's request model and its out-of-range warnings."""

    train_min: float | None = None
    train_max: float | None = None

    @model_validator(mode="before")
    @classmethod
    def _finite(cls, data: Any) -> Any:
        return _plain(data, for_store=False)


class AtThreshold(_Part):
    """`core.metrics.at_threshold`: the decisions at one threshold."""

    model_config = ConfigDict(extra="allow")  # a later metric is shown without a new format

    threshold: float
    precision: float | None = None
    recall: float | None = None
    f1: float | None = None
    flagged_share: float | None = None
    cost_per_customer: float | None = None


class Metrics(AtThreshold):
    """`core.metrics.evaluate` on one set of predictions at the chosen threshold: the
    decisions there (`AtThreshold`) and the threshold-free metrics."""

    rows: int
    positive_rate: float | None = None
    roc_auc: float | None = None
    pr_auc: float | None = None
    brier: float | None = None
    log_loss: float | None = None
    ece: float | None = None
    confusion: dict[str, int] = Field(default_factory=dict)


class CandidateSummary(_Part):
    """One model family's best settings and its cross-validated scores."""

    candidate: str
    family: str
    params: Table = Field(default_factory=dict)
    imbalance: str
    members: list[str] = Field(default_factory=list)
    cv_mean: float | None = None
    cv_std: float | None = None
    cv_brier: float | None = None
    cv_ece: float | None = None
    seconds: float | None = None
    serving_us: Table | None = None  # fast path, µs per record: single, and in a batch of 1,000
    test: Metrics | None = None  # the challenger's, on the test split


class Threshold(_Part):
    """The cost-minimising threshold, chosen on the champion's out-of-fold scores."""

    value: float
    out_of_fold: AtThreshold


class NumericReference(_Part):
    """A numeric column's training distribution: decile bins (-inf, e1], ..., (ek, inf)."""

    type: Literal["numeric"] = "numeric"
    missing: float
    edges: list[float] = Field(default_factory=list)
    shares: list[float] = Field(default_factory=list)
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    median: float | None = None
    std: float | None = None


class CategoricalReference(_Part):
    """A categorical column's training distribution: the share of each level."""

    type: Literal["categorical"] = "categorical"
    missing: float
    shares: dict[str, float] = Field(default_factory=dict)
    mode: str | None = None


ColumnReference = Annotated[NumericReference | CategoricalReference, Field(discriminator="type")]


class Reference(_Part):
    """Reference distributions for drift checks and reasons: each input feature on the
    training split, the score on the test split (training/reference.py)."""

    features: dict[str, ColumnReference]
    score: NumericReference

    def tables(self) -> dict[str, Any]:
        """As plain dicts, a blank statistic left out (what the drift checks read)."""
        return self.model_dump(mode="json", exclude_none=True)


class ModelCard(_Part):
    """What training stores with a model, and all that serving reads about it."""

    format: int = CARD_FORMAT
    use_case: str
    purpose: str
    created_at: str
    spec_file: str
    spec: Spec  # exactly as trained (a promoted model: named after its use case)
    data_sha256: dict[str, str]
    id_column: str
    risk_event: str
    features: list[FeatureSchema]
    selection_metric: str
    champion: CandidateSummary
    challenger: CandidateSummary
    threshold: Threshold
    tiers: Tiers
    costs: Costs
    test: Metrics
    cleaning: Table = Field(default_factory=dict)
    amount_cap: float | None = None  # transactions: the training split's amount cap
    transaction_features: list[str] = Field(default_factory=list)
    packages: dict[str, str] = Field(default_factory=dict)
    published: Published | None = None
    reference: Reference
    file_sha256: dict[str, str] = Field(default_factory=dict)  # file -> sha256, by the store
    promoted_from: str | None = None  # a promoted model: the challenger's tag
    retrain: Table | None = None  # a promoted model: the decision and both scores
    fairness: Table | None = None  # training/fairness.summary: protected groups at the threshold
    # Its reports, relative to the project: model_document, fairness_report, training_report.
    documents: dict[str, str] | None = None
    calibration: Table | None = None  # the method chosen, its CV log-loss, the fitted numbers
    selection: Table | None = None  # the rule, the best by score, the candidates within it
    refit: Table | None = None  # small data: refit on train + test before storing

    def to_metadata(self, exclude: set[str] | None = None) -> dict[str, Any]:
        """The card as the store's metadata (and GET /model) holds it: JSON types, no
        None, no NaN."""
        return _plain(self.model_dump(mode="json", exclude=exclude), for_store=True)

    @classmethod
    def from_metadata(cls, metadata: dict[str, Any]) -> ModelCard:
        return cls.model_validate(dict(metadata))
