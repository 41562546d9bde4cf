"""The API's request and answer models, generated from a spec (never written by hand).

Named `schemas` on purpose: a local `schema.py` shadows a package BentoML needs.
Every field keeps the spec's type, range, levels and description, so the
OpenAPI page documents it; every validation message says what arrived.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    Strict,
    ValidationError,
    create_model,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from core.names import TIER_NAMES
from core.spec import Feature, FeatureType, MissingRule, Spec

MAX_SHOWN = 60  # characters of a received value echoed back in an error


UNCHANGED = frozenset({"missing", "extra_forbidden"})  # no value arrived to show


def with_received(err: ValidationError, field_at: int = 0) -> ValidationError:
    """pydantic's errors with the value that arrived: one error per field, its messages
    joined and the value appended (a missing or unexpected field keeps its own message).
    `field_at`: where an error's location names the field (0 in a record; 2 in
    `{"records": [...]}`, after the list's name and the record's position)."""
    order: list[InitErrorDetails | tuple] = []  # unchanged errors and fields, as they came
    fields: dict[tuple, tuple[list[str], Any]] = {}  # field -> (messages, the value sent)
    for error in err.errors():
        loc = error["loc"]
        if error["type"] in UNCHANGED or len(loc) <= field_at:
            detail = InitErrorDetails(type=error["type"], loc=loc, input=error["input"])
            if "ctx" in error:
                detail["ctx"] = error["ctx"]
            order.append(detail)
        elif (field := tuple(loc[: field_at + 1])) in fields:
            fields[field][0].append(error["msg"])
        else:
            fields[field] = ([error["msg"]], error["input"])
            order.append(field)
    return ValidationError.from_exception_data(
        err.title, [_field_error(e, *fields[e]) if isinstance(e, tuple) else e for e in order]
    )


def _field_error(field: tuple, messages: list[str], value: Any) -> InitErrorDetails:
    shown = repr(value)
    if len(shown) > MAX_SHOWN:
        shown = shown[:MAX_SHOWN] + "..."
    return InitErrorDetails(
        type=PydanticCustomError(
            "invalid_value",
            "{expected}; got {got}",
            {"expected": "; ".join(messages), "got": shown},
        ),
        loc=field,
        input=value,
    )


class Closed(BaseModel):
    """A request model that refuses unknown fields."""

    model_config = ConfigDict(extra="forbid")


class Explained(Closed):
    """A request model whose validation errors say what arrived (`with_received`).

    One wrap validator per record, not per field. A record inside a list (`/predict_batch`)
    is `Closed` instead, its request's errors explained once for the whole body: a wrap
    validator per record made pydantic-core hand each record to Python and back, ~40 %
    of validating a 1,000-record body."""

    @model_validator(mode="wrap")
    @classmethod
    def _explain(cls, data: Any, handler: ModelWrapValidatorHandler[Any]) -> Any:
        try:
            return handler(data)
        except ValidationError as err:
            raise with_received(err) from None


class ExplainedExport(Explained):
    """The same for rows of a raw export, whose extra columns are ignored."""

    model_config = ConfigDict(extra="ignore")


def _describe(feature: Feature) -> str:
    text = feature.description.rstrip(".") + "."
    if feature.type is FeatureType.numeric and (feature.min is not None or feature.max is not None):
        text += f" Valid range [{feature.min}, {feature.max}]."
    if feature.type is FeatureType.categorical:
        text += f" One of {feature.levels}"
        text += " (other values are scored, with a warning)." if feature.unseen == "accept" else "."
    if feature.missing is not MissingRule.reject:
        text += " null if unknown."
    return text


def _json_number(text: bool = False, booleans: bool = False, zero_one: bool = False) -> Any:
    """Refuses a JSON string or boolean where a number is expected, unless allowed, and
    with `zero_one` anything but 0 or 1."""
    refused = tuple(t for t, allowed in ((str, text), (bool, booleans)) if not allowed)

    def check(value: Any) -> Any:
        if isinstance(value, refused):
            kind = "boolean" if isinstance(value, bool) else "string"
            raise PydanticCustomError(
                "number_type", "Input should be a JSON number, not a {kind}", {"kind": kind}
            )
        if zero_one and value not in (0, 1):
            raise PydanticCustomError("literal_error", "Input should be 0 or 1")
        return value

    return BeforeValidator(check)


def _value_type(feature: Feature) -> Any:
    """Strict by default: a JSON boolean or a number in a string is refused where a number
    is expected, and an integer feature takes whole numbers only (3 or 3.0, never 3.5).
    The spec may widen a feature (`accept_text_numbers`, `accept_booleans`)."""
    match feature.type:
        case FeatureType.numeric:
            bounds = Field(ge=feature.min, le=feature.max, allow_inf_nan=False)
            if feature.integer or feature.accept_text_numbers:
                base = int if feature.integer else float
                return Annotated[base, bounds, _json_number(text=feature.accept_text_numbers)]
            return Annotated[float, bounds, Strict()]  # checked in pydantic-core, no Python call
        case FeatureType.binary:
            zero_one = Field(ge=0, le=1, json_schema_extra={"enum": [0, 1]})
            check = _json_number(booleans=feature.accept_booleans, zero_one=True)
            return Annotated[int, zero_one, check]
        case FeatureType.categorical if feature.unseen == "reject":
            return Literal[tuple(feature.levels or ())]
        case _:
            return Annotated[str, Field(min_length=1)]


def field_for(feature: Feature) -> tuple[Any, Any]:
    """(annotation, FieldInfo) for one feature. Blanks are allowed only where the spec
    says how to read them, and must be sent as an explicit null (never a silent default)."""
    annotation = _value_type(feature)
    if feature.missing is MissingRule.reject:
        return annotation, Field(..., description=_describe(feature))
    return annotation | None, Field(..., description=_describe(feature), json_schema_extra=nullable)


def nullable(schema: dict[str, Any]) -> None:
    """OpenAPI 3.0's mark for a field that takes null. BentoML's API page keeps only the
    first option of an `anyOf` (dropping `{"type": "null"}`): this mark, and null in a
    list of levels, say it where that page and generated clients read it."""
    schema["nullable"] = True
    for option in schema.get("anyOf", []):
        if "enum" in option and None not in option["enum"]:
            option["enum"] = [*option["enum"], None]


def _model_name(spec: Spec, suffix: str) -> str:
    return "".join(part.capitalize() for part in spec.name.split("_")) + suffix


def record_model(spec: Spec, explained: bool = True) -> type[BaseModel]:
    """One flat record: the id, then every feature at the top level. `explained=False`:
    a record of a list whose request explains the errors (`Explained`)."""
    id_field = (
        Annotated[str, Field(min_length=1, max_length=128)],
        Field(..., description="Customer id; echoed back in the answer."),
    )
    fields = {spec.id_column: id_field} | {f.name: field_for(f) for f in spec.features}
    return create_model(
        _model_name(spec, "Record"),
        __base__=Explained if explained else Closed,
        __doc__=spec.purpose,
        **fields,
    )


class Reason(BaseModel):
    """How one feature moved this customer's probability."""

    feature: str
    value: float | str | None = Field(description="the value this customer sent")
    typical: float | str | None = Field(description="a typical training customer's value")
    effect: float = Field(
        description="probability change against the typical value (+ raises risk)"
    )
    text: str = Field(description="the same in plain words")


class AdverseReason(BaseModel):
    """A factor that raises this customer's risk, as an adverse-action notice states it."""

    code: str = Field(description="stable reason code (the spec's, or generated)")
    text: str = Field(description="the applicant-facing sentence of the code")
    feature: str
    value: float | str | None = Field(description="the value that raised the risk")
    effect: float = Field(description="probability added against the typical value")


def prediction_model(spec: Spec) -> type[BaseModel]:
    """The answer: id, probability of the risk event, 0/1 decision, tier, reasons."""
    fields: dict[str, Any] = {
        spec.id_column: (str, Field(..., description="the id sent in the request")),
        "probability": (float, Field(..., description=f"probability of {spec.target.event}")),
        "prediction": (Literal[0, 1], Field(..., description="1 if probability >= threshold")),
        "risk_tier": (Literal[TIER_NAMES], Field(..., description="low / medium / high")),
        "reasons": (list[Reason], Field(..., description="largest effects first")),
        "adverse_reasons": (
            list[AdverseReason],
            Field(
                ...,
                description="up to four factors that raise the risk, strongest first, with "
                "their reason codes; empty below the threshold unless "
                "RISKBENTO_ADVERSE_REASONS=all",
            ),
        ),
        "model": (str, Field(..., description="model tag that answered")),
        "warnings": (list[str], Field(..., description="values the model is unsure about")),
    }
    return create_model(_model_name(spec, "Prediction"), **fields)


def transaction_model(spec: Spec) -> type[BaseModel]:
    """One raw transaction, with the column names of the spec's transactions file.

    Blanks are accepted here: the cleaning rules decide (and count) what they mean.
    Extra columns of a raw export are ignored.
    """
    roles = spec.data.transactions
    if roles is None:
        raise ValueError(f"spec {spec.name!r} declares no transactions")
    text = str | None
    fields: dict[str, Any] = {
        roles.columns.customer_id: (Annotated[str, Field(min_length=1)], ...),
        roles.columns.amount: (
            Annotated[float | None, Field(allow_inf_nan=False), Strict()],
            Field(..., description="amount; its sign is taken from the type column"),
        ),
    }
    for role in ("transaction_id", "type", "description", "timestamp", "status"):
        column = getattr(roles.columns, role)
        if column is not None:
            fields[column] = (text, Field(None, description=f"the {role} column"))
    return create_model(_model_name(spec, "Transaction"), __base__=ExplainedExport, **fields)


def profile_model(spec: Spec, profile_features: list[str]) -> type[BaseModel]:
    """A customer record holding the features that do not come from transactions
    (just the id when every feature does)."""
    kept = [f for f in spec.features if f.name in profile_features]
    return record_model(spec.model_copy(update={"features": kept, "name": f"{spec.name}_profile"}))


def transactions_request_model(
    spec: Spec, profile_features: list[str], max_rows: int
) -> type[BaseModel]:
    """The body of `/score_transactions`: raw transactions and the customers' profiles.

    `customers` is required when the model reads features that transactions cannot give
    (`profile_features`); otherwise it is optional and the customers are those found in
    the transactions. An empty list is refused either way: it names nobody to score."""
    rows = Field(min_length=1, max_length=max_rows)
    profiles = Annotated[list[profile_model(spec, profile_features)], rows]  # type: ignore[misc]
    customers: tuple[Any, Any] = (
        (profiles, Field(..., description="one profile record per customer to score"))
        if profile_features
        else (
            profiles | None,
            Field(
                None,
                description="customers to score; default: every customer sent",
                json_schema_extra=nullable,
            ),
        )
    )
    return create_model(
        _model_name(spec, "TransactionsRequest"),
        __config__=ConfigDict(extra="forbid"),
        transactions=(Annotated[list[transaction_model(spec)], rows], ...),  # type: ignore[misc]
        customers=customers,
    )
