"""Use-case specs: the single declarative source of truth for one risk model.

A spec is a YAML file (see `usecases/`). `load_spec` parses it with pydantic
(unknown keys, bad types and inconsistent values are rejected) and then checks
it against the data it points to (every named column must exist). Every error
names the key that is wrong, what was expected and what arrived.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from core.catalogue import DEFAULT_CATEGORIES, aggregate_catalogue
from core.errors import UserError
from core.names import BUILTIN_USE_CASES, SELECTION_METRICS, SPEC_SUFFIXES
from core.reasoncodes import GENERATED_CODE
from core.settings import get_settings

SLUG = r"^[a-z][a-z0-9_]*$"
REASON_CODE = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,15}$"


class SpecError(UserError, ValueError):
    """A spec that cannot be used; the message lists every problem found."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid spec {source}: {len(problems)} problem(s)\n{lines}")


class SpecProblems(ValueError):
    """Several problems found by one check across keys (args[0]: the list)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)


class FeatureType(StrEnum):
    numeric = "numeric"
    categorical = "categorical"
    binary = "binary"
    text = "text"
    datetime = "datetime"


class MissingRule(StrEnum):
    impute = "impute"  # learned on the training split (median / most frequent)
    constant = "constant"  # a blank means a known value, given as fill_value
    native = "native"  # kept as NaN for models that handle it (XGBoost), imputed otherwise
    reject = "reject"  # a blank is an input error


ORDERED = (FeatureType.numeric, FeatureType.binary)  # features with a direction


class Feature(_Strict):
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    type: FeatureType
    description: str = Field(min_length=1)
    min: float | None = None
    max: float | None = None
    integer: bool = False
    levels: list[str] | None = None
    unseen: Literal["reject", "accept"] = "reject"
    missing: MissingRule = MissingRule.impute
    fill_value: float | str | None = None
    # The API takes JSON numbers for numeric features and 0 / 1 for binary ones; these two
    # widen that for a caller that cannot change what it sends (never on by default).
    accept_text_numbers: bool = False  # numeric: "12.5" is read as 12.5
    accept_booleans: bool = False  # binary: true / false are read as 1 / 0
    # The direction the risk must follow as this feature grows, whatever else is equal:
    # models that can be held to it are; the others are not candidates.
    monotone: Literal["increasing", "decreasing"] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Feature:
        numeric = self.type is FeatureType.numeric
        if self.accept_text_numbers and not numeric:
            raise ValueError(
                f"accept_text_numbers applies to numeric features, not {self.type.value}"
            )
        if self.accept_booleans and self.type is not FeatureType.binary:
            raise ValueError(f"accept_booleans applies to binary features, not {self.type.value}")
        if not numeric and (self.min is not None or self.max is not None or self.integer):
            raise ValueError(f"min/max/integer apply to numeric features, not {self.type.value}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        if self.type is FeatureType.categorical:
            if not self.levels:
                raise ValueError("a categorical feature needs a non-empty list of levels")
            if len(set(self.levels)) != len(self.levels):
                raise ValueError(f"levels repeat a value: {self.levels}")
        elif self.levels is not None:
            raise ValueError(f"levels apply to categorical features, not {self.type.value}")
        if (self.missing is MissingRule.constant) != (self.fill_value is not None):
            raise ValueError("fill_value is required with missing: constant, and only with it")
        if self.monotone is not None and self.type not in ORDERED:
            raise ValueError(
                f"monotone applies to numeric and binary features, not {self.type.value}"
            )
        return self

    @property
    def direction(self) -> int:
        """+1 increasing, -1 decreasing, 0 unconstrained (XGBoost's monotone_constraints)."""
        return {"increasing": 1, "decreasing": -1, None: 0}[self.monotone]


class Target(_Strict):
    column: str
    positive: str | int | float | bool = Field(description="value that marks the risk event")
    description: str = ""

    @property
    def event(self) -> str:
        """The risk event in words, e.g. `defaulted == 1`."""
        return f"{self.column} == {self.positive!r}"

    def is_positive(self, values: pd.Series) -> pd.Series:
        """Boolean mask of the risk event; NaN (unlabeled) is never positive."""
        if isinstance(self.positive, bool | int | float):
            return pd.to_numeric(values, errors="coerce") == float(self.positive)
        return values.astype("string").str.strip() == self.positive


class Costs(_Strict):
    missed_event: PositiveFloat = Field(description="cost of a risk event the model missed")
    false_alarm: PositiveFloat = Field(description="cost of flagging a customer who was fine")
    unit: str = "EUR"


class Tiers(_Strict):
    """Probability cut-offs: below `medium` is low, at or above `high` is high."""

    medium: float = Field(gt=0, lt=1)
    high: float = Field(gt=0, lt=1)

    @model_validator(mode="after")
    def _ordered(self) -> Tiers:
        if self.medium >= self.high:
            raise ValueError(f"medium ({self.medium}) must be below high ({self.high})")
        return self


class Published(_Strict):
    """Numbers someone else reported for this problem, shown beside ours (never mixed in)."""

    source: str = Field(min_length=1)
    metrics: dict[Literal["roc_auc", "pr_auc", "precision", "recall", "f1", "brier"], float]


class Rule(_Strict):
    """A fact about a customer, e.g. `declined_share >= 0.08`."""

    feature: str
    op: Literal[">=", ">", "<=", "<", "=="]
    value: float
    label: str = Field(min_length=1, description="the fact in plain words")

    def holds(self, values: pd.Series) -> pd.Series:
        ops = {
            ">=": values.ge,
            ">": values.gt,
            "<=": values.le,
            "<": values.lt,
            "==": values.eq,
        }
        return ops[self.op](self.value).fillna(False)

    def describe(self) -> str:
        return f"{self.label} ({self.feature} {self.op} {self.value:g})"


class ActionList(_Strict):
    """Customers to act on (e.g. off-boarding): a model criterion and transaction rules,
    stated at the top of the list; each listed customer gets the facts that put them there."""

    name: str = Field(pattern=SLUG, description="file stem under outputs/<use case>/")
    title: str = Field(min_length=1)
    min_probability: float = Field(gt=0, lt=1)
    rules: list[Rule] = []
    min_rules: int = Field(default=1, ge=0)

    @model_validator(mode="after")
    def _reachable(self) -> ActionList:
        if self.min_rules > len(self.rules):
            raise ValueError(f"min_rules ({self.min_rules}) exceeds the {len(self.rules)} rules")
        return self


class Drift(_Strict):
    """When `make drift` calls logged traffic shifted from the training data (PSI per
    feature and for the score: at or above `psi_warn` reported, at or above `psi_alert`
    drift), and how many logged rows it needs before judging at all."""

    psi_warn: PositiveFloat = 0.1
    psi_alert: PositiveFloat = 0.25
    min_rows: int = Field(default=200, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> Drift:
        if self.psi_warn >= self.psi_alert:
            raise ValueError(
                f"psi_warn ({self.psi_warn}) must be below psi_alert ({self.psi_alert})"
            )
        return self


class Outcomes(_Strict):
    """How `python -m riskbento outcomes` judges logged predictions against their matured
    labels: a prediction's outcome is final `window_days` after it was made; a week
    (vintage) of at least `min_rows` matured labels is below the floor when its ROC-AUC
    is under `min_roc_auc` or |mean predicted - observed event rate| exceeds
    `max_calibration_gap`."""

    window_days: int = Field(default=90, ge=1)
    min_roc_auc: float = Field(default=0.6, gt=0, lt=1)
    max_calibration_gap: float = Field(default=0.1, gt=0, lt=1)
    min_rows: int = Field(default=50, ge=1)


class ReasonCode(_Strict):
    """A stable adverse-action code and the sentence an applicant reads (Regulation B)."""

    code: str = Field(pattern=REASON_CODE, description="stable id, e.g. R07")
    text: str = Field(min_length=1, description="applicant-facing sentence")


class FeatureReasons(_Strict):
    """The reason codes of one feature: one `code` + `text` whatever the direction, or
    `above` / `below` for a value above / below the typical one that raises risk, and
    `blank` for a blank that does (a direction left out gets a generated code)."""

    code: str | None = Field(default=None, pattern=REASON_CODE)
    text: str | None = Field(default=None, min_length=1)
    above: ReasonCode | None = None
    below: ReasonCode | None = None
    blank: ReasonCode | None = None

    @model_validator(mode="after")
    def _one_form(self) -> FeatureReasons:
        whole = self.code is not None or self.text is not None
        directed = any(r is not None for r in (self.above, self.below, self.blank))
        if whole and directed:
            raise ValueError("give either code + text, or above / below / blank, not both")
        if not whole and not directed:
            raise ValueError("give code + text, or above / below / blank")
        if whole and (self.code is None or self.text is None):
            raise ValueError("code and text go together")
        return self

    def declared(self) -> dict[str, ReasonCode]:
        """Direction ('any', 'above', 'below', 'blank') -> its declared code."""
        if self.code is not None and self.text is not None:
            return {"any": ReasonCode(code=self.code, text=self.text)}
        directed = (("above", self.above), ("below", self.below), ("blank", self.blank))
        return {d: r for d, r in directed if r is not None}


class Protected(_Strict):
    """A protected attribute (sex, age, marital status...): a column of `data.table`
    that the fairness report groups by. Not a feature unless `use_as_feature` says so,
    with `why` (the model document quotes it)."""

    column: str
    use_as_feature: bool = False
    why: str | None = Field(default=None, min_length=1)
    bands: list[float] | None = Field(
        default=None, description="a numeric column's group edges, e.g. [25, 40, 62]"
    )

    @model_validator(mode="after")
    def _explained(self) -> Protected:
        if self.use_as_feature and self.why is None:
            raise ValueError("use_as_feature needs `why`: the reason the model may read it")
        if self.bands is not None and (
            not self.bands or sorted(set(self.bands)) != list(self.bands)
        ):
            raise ValueError(f"bands must be increasing edges, got {self.bands}")
        return self


class Fairness(_Strict):
    """How the fairness report judges groups at the chosen threshold."""

    min_group_rows: int = Field(default=30, ge=1, description="smaller: reported as too small")
    bootstrap_below_rows: int = Field(
        default=1000, ge=0, description="groups smaller than this get bootstrap intervals"
    )
    four_fifths: float = Field(default=0.8, gt=0, le=1, description="adverse impact floor")
    favourable: Literal["not_flagged", "flagged"] = Field(
        default="not_flagged",
        description="which decision helps the customer: not flagged (a loan approved) or "
        "flagged (a retention offer)",
    )


class Document(_Strict):
    """What the model document says that no report can: use, misuse and limits."""

    intended_use: str | None = None
    out_of_scope: list[str] = []
    limitations: list[str] = []
    owner: str | None = None


class TransactionColumns(_Strict):
    """Which column of the transactions file plays which role."""

    customer_id: str
    amount: str
    transaction_id: str | None = None
    type: str | None = None
    description: str | None = None
    timestamp: str | None = None
    status: str | None = None

    def present(self) -> dict[str, str]:
        return {role: col for role, col in self.model_dump().items() if col is not None}


class Transactions(_Strict):
    path: str
    unlabeled_path: str | None = None
    columns: TransactionColumns
    debit_values: list[str] = ["debit"]
    credit_values: list[str] = ["credit"]
    declined_values: list[str] = ["declined", "reversed", "failed"]
    max_amount: PositiveFloat | None = Field(
        default=None,
        description="no genuine single transaction is larger: above it is an entry error "
        "(dropped and counted); unset, the fence is learned from the training data",
    )
    categories: dict[str, list[str]] = Field(default_factory=lambda: dict(DEFAULT_CATEGORIES))

    @field_validator("categories")
    @classmethod
    def _category_names(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for name, keywords in value.items():
            if not re.match(SLUG, name):
                raise ValueError(f"category name {name!r} must match {SLUG}")
            if not keywords or any(not k.strip() or k != k.lower() for k in keywords):
                raise ValueError(f"category {name!r} needs non-empty lowercase keywords")
        return value


class DataSource(_Strict):
    table: str = Field(description="one row per customer: id, target, profile columns")
    unlabeled_table: str | None = None
    transactions: Transactions | None = None


class Training(_Strict):
    """How the champion is fitted once chosen."""

    refit_with_test: bool = Field(
        default=True,
        description=(
            "below small_data_rows labeled rows, refit the chosen pipeline on train + test "
            "before storing it (the test metrics come from the train-only fit)"
        ),
    )
    small_data_rows: int = Field(default=5_000, ge=1)


class Spec(_Strict):
    name: str = Field(pattern=SLUG)
    purpose: str = Field(min_length=1)
    data: DataSource
    id_column: str
    target: Target
    features: list[Feature] = Field(min_length=1)
    drop: list[str] = []
    costs: Costs
    tiers: Tiers
    selection_metric: Literal[SELECTION_METRICS] = "roc_auc"  # type: ignore[valid-type]
    published: Published | None = None
    action_list: ActionList | None = None
    drift: Drift = Field(default_factory=Drift)
    outcomes: Outcomes = Field(default_factory=Outcomes)
    reason_codes: dict[str, FeatureReasons] = {}
    protected: list[Protected] = []
    fairness: Fairness = Field(default_factory=Fairness)
    document: Document = Field(default_factory=Document)
    training: Training = Field(default_factory=Training)

    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)

    @model_validator(mode="after")
    def _roles_do_not_overlap(self) -> Spec:
        names = [f.name for f in self.features]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"features repeat a name: {repeated}")
        reserved = {self.id_column: "id_column", self.target.column: "target.column"}
        reserved.update({col: "drop" for col in self.drop})
        clash = [f"{n!r} is also {reserved[n]}" for n in names if n in reserved]
        if clash:
            raise ValueError(f"a feature cannot be the id, the target or dropped: {clash}")
        known = set(names) | set(self.aggregate_catalogue())
        unknown = [r.feature for r in (self.action_list.rules if self.action_list else [])]
        unknown = [f for f in unknown if f not in known]
        if unknown:
            raise ValueError(f"action_list rules name unknown features: {unknown}")
        return self

    @field_validator("protected", mode="before")
    @classmethod
    def _protected_names(cls, value: Any) -> Any:
        """`protected: [sex, age_band]` is short for `[{column: sex}, {column: age_band}]`."""
        if isinstance(value, list):
            return [{"column": v} if isinstance(v, str) else v for v in value]
        return value

    @model_validator(mode="after")
    def _governance(self) -> Spec:
        """Reason codes name known features and are never shared; a protected attribute is
        a feature only where the spec says why."""
        names = set(self.feature_names)
        problems = [
            f"reason_codes.{name}: not a feature of this spec (features: {sorted(names)})"
            for name in self.reason_codes
            if name not in names
        ]
        owners: dict[str, str] = {}
        for name, entry in self.reason_codes.items():
            for direction, reason in entry.declared().items():
                key = f"reason_codes.{name}" + ("" if direction == "any" else f".{direction}")
                if reason.code in owners and owners[reason.code] != name:
                    problems.append(
                        f"{key}: code {reason.code!r} is already used by "
                        f"reason_codes.{owners[reason.code]}"
                    )
                owners.setdefault(reason.code, name)
                if re.fullmatch(GENERATED_CODE, reason.code):
                    problems.append(
                        f"{key}: code {reason.code!r} has the form of a generated code "
                        f"({GENERATED_CODE}); choose another"
                    )
            feature = next((f for f in self.features if f.name == name), None)
            unordered = feature is not None and feature.type in (
                FeatureType.categorical,
                FeatureType.text,
            )
            if unordered and (entry.above is not None or entry.below is not None):
                problems.append(
                    f"reason_codes.{name}: above / below apply to numbers and 0/1 flags; "
                    f"{name} is {feature.type.value}: give one code + text"
                )
            if (
                feature is not None
                and entry.blank is not None
                and feature.missing is MissingRule.reject
            ):
                problems.append(
                    f"reason_codes.{name}.blank: {name}'s missing rule is reject, so a blank "
                    "is refused and never scored"
                )
        columns = [p.column for p in self.protected]
        repeated = sorted({c for c in columns if columns.count(c) > 1})
        if repeated:
            problems.append(f"protected: columns repeat: {repeated}")
        for i, attribute in enumerate(self.protected):
            key = f"protected[{i}] ({attribute.column})"
            if attribute.column in (self.id_column, self.target.column):
                problems.append(f"{key}: the id or target column cannot be a protected attribute")
            elif attribute.column in names and not attribute.use_as_feature:
                problems.append(
                    f"{key}: is also a feature; a protected attribute is not a feature unless "
                    "the spec allows it (use_as_feature: true, why: ...)"
                )
        if problems:
            raise SpecProblems(problems)
        return self

    def resolve(self, relative: str) -> Path:
        """A path from the spec, relative to the spec file's folder."""
        return (self._base_dir / relative).resolve()

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    def feature(self, name: str) -> Feature:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(f"feature {name!r} is not in spec {self.name!r}")

    def aggregate_catalogue(self) -> dict[str, str]:
        """Features the transaction aggregation can build ({} without transactions)."""
        tx = self.data.transactions
        if tx is None:
            return {}
        return aggregate_catalogue(tx.categories, has_status=tx.columns.status is not None)


# ---------------------------------------------------------------- loading


class _SpecLoader(yaml.SafeLoader):
    """YAML 1.2 booleans (`yes`/`no` stay strings) and no silently repeated keys."""


_SpecLoader.yaml_implicit_resolvers = {
    key: [r for r in resolvers if r[0] != "tag:yaml.org,2002:bool"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_SpecLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _mapping_without_repeats(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict:
    keys = [loader.construct_object(k) for k, _ in node.value]
    repeated = sorted({str(k) for k in keys if keys.count(k) > 1})
    if repeated:
        raise yaml.constructor.ConstructorError(
            None, None, f"key(s) {repeated} appear more than once", node.start_mark
        )
    return loader.construct_mapping(node)


_SpecLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_repeats
)


def spec_path(name_or_path: str | Path) -> Path:
    """A built-in use case's spec file, or the given path to a user's spec."""
    text = str(name_or_path)
    if text in BUILTIN_USE_CASES or (re.match(SLUG, text) and not Path(text).exists()):
        candidate = get_settings().usecases_dir / f"{text}.yaml"
        if not candidate.exists():
            known = ", ".join(BUILTIN_USE_CASES)
            raise FileNotFoundError(f"no use case named {text!r}; built-in ones: {known}")
        return candidate
    path = Path(text)
    if path.suffix not in SPEC_SUFFIXES:
        raise SpecError(text, [f"expected a .yaml/.yml spec file, got suffix {path.suffix!r}"])
    if not path.exists():
        raise FileNotFoundError(f"spec file {path} does not exist")
    return path


def _loc(loc: tuple[Any, ...], raw: dict) -> str:
    """pydantic's error location as a spec key, e.g. `features[2] (income).min`."""
    parts: list[str] = []
    node: Any = raw
    for item in loc:
        if isinstance(item, int):
            entry = node[item] if isinstance(node, list) and item < len(node) else None
            # A feature by its name, a protected attribute by its column.
            name = entry.get("name", entry.get("column")) if isinstance(entry, dict) else None
            parts[-1] += f"[{item}]" + (f" ({name})" if isinstance(name, str) else "")
        else:
            parts.append(str(item))
        try:
            node = node[item]
        except (KeyError, IndexError, TypeError):
            node = None
    return ".".join(parts) or "(top level)"


def parse_spec(raw: Any, source: str, base_dir: Path) -> Spec:
    """Validate a parsed YAML document; raise SpecError naming every bad key."""
    if not isinstance(raw, dict):
        raise SpecError(source, [f"expected a mapping at the top level, got {type(raw).__name__}"])
    try:
        spec = Spec.model_validate(raw)
    except ValidationError as err:
        problems = []
        for e in err.errors():
            cause = e.get("ctx", {}).get("error")
            if not e["loc"] and isinstance(cause, ValueError):
                # A check across keys: its message names them; the whole spec is no help.
                problems += cause.args[0] if isinstance(cause, SpecProblems) else [str(cause)]
                continue
            got = "" if e["type"] == "missing" else f" (got {e.get('input')!r})"
            msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
            problems.append(f"{_loc(e['loc'], raw)}: {msg}{got}")
        raise SpecError(source, problems) from None
    spec._base_dir = base_dir
    return spec


def load_spec(name_or_path: str | Path, check_data: bool = True) -> Spec:
    """Load and validate a spec by built-in name or path; optionally check it against its data."""
    path = spec_path(name_or_path)
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_SpecLoader)
    except yaml.YAMLError as err:
        raise SpecError(str(path), [f"not valid YAML: {err}"]) from None
    spec = parse_spec(raw, str(path), path.resolve().parent)
    if check_data:
        check_against_data(spec, str(path))
    return spec


# ---------------------------------------------------------------- data checks


def _header(path: Path) -> list[str]:
    return list(pd.read_csv(path, nrows=0).columns)


def _missing_file(key: str, path: Path) -> str:
    return f"{key}: file {path} does not exist (built-in data is written by `make data`)"


def check_against_data(spec: Spec, source: str) -> None:
    """Every column the spec names must exist in the files it points to."""
    problems: list[str] = []
    table_path = spec.resolve(spec.data.table)
    if not table_path.exists():
        raise SpecError(source, [_missing_file("data.table", table_path)])
    columns = _header(table_path)
    shown = ", ".join(columns)

    for key, col in [("id_column", spec.id_column), ("target.column", spec.target.column)]:
        if col not in columns:
            problems.append(f"{key}: column {col!r} is not in data.table (columns: {shown})")
    for i, col in enumerate(spec.drop):
        if col not in columns:
            problems.append(f"drop[{i}]: column {col!r} is not in data.table (columns: {shown})")
    for i, attribute in enumerate(spec.protected):
        if attribute.column not in columns:
            problems.append(
                f"protected[{i}] ({attribute.column}): column {attribute.column!r} is not in "
                f"data.table (columns: {shown})"
            )

    catalogue = spec.aggregate_catalogue()
    for i, feat in enumerate(spec.features):
        if feat.name in columns or feat.name in catalogue:
            continue
        where = "data.table" + (" nor the transaction aggregates" if catalogue else "")
        problems.append(
            f"features[{i}] ({feat.name}): not a column of {where} (table columns: {shown})"
        )

    if spec.target.column in columns:
        values = pd.read_csv(table_path, usecols=[spec.target.column])[spec.target.column]
        if not spec.target.is_positive(values).any():
            seen = sorted(map(str, values.dropna().unique()))[:10]
            problems.append(
                f"target.positive: value {spec.target.positive!r} never occurs in column "
                f"{spec.target.column!r} (values seen: {seen})"
            )

    if spec.data.unlabeled_table is not None:
        problems += _check_unlabeled(spec, columns)
    if spec.data.transactions is not None:
        problems += _check_transactions(spec.data.transactions, spec)
    if problems:
        raise SpecError(source, problems)


def _check_unlabeled(spec: Spec, labeled_columns: list[str]) -> list[str]:
    path = spec.resolve(spec.data.unlabeled_table or "")
    if not path.exists():
        return [_missing_file("data.unlabeled_table", path)]
    needed = [spec.id_column] + [f.name for f in spec.features if f.name in labeled_columns]
    missing = [c for c in needed if c not in _header(path)]
    return [f"data.unlabeled_table: columns {missing} are missing"] if missing else []


def _check_transactions(tx: Transactions, spec: Spec) -> list[str]:
    problems: list[str] = []
    for key, rel in [("path", tx.path), ("unlabeled_path", tx.unlabeled_path)]:
        if rel is None:
            continue
        path = spec.resolve(rel)
        if not path.exists():
            problems.append(_missing_file(f"data.transactions.{key}", path))
            continue
        header = _header(path)
        for role, col in tx.columns.present().items():
            if col not in header:
                problems.append(
                    f"data.transactions.columns.{role}: column {col!r} is not in {path.name} "
                    f"(columns: {', '.join(header)})"
                )
    return problems
