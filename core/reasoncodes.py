"""Adverse-action reason codes: a stable code and an applicant-facing sentence for each
way a feature can raise a customer's risk (US Regulation B "principal reasons").

A feature raises risk by its value against the typical training value: `above` or
`below` it (numbers, 0/1 flags), by its `level` (categories), or by being `blank`.
The spec's `reason_codes` may declare a code per feature (any direction) or per
direction; every other (feature, direction) gets a generated code that depends on
the feature's name and the direction only, so it stays the same across retraining.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # typing only: the spec imports this module to check generated codes
    from core.spec import Feature, Spec

ABOVE, BELOW, LEVEL, BLANK = "above", "below", "level", "blank"
GENERATED_PREFIX = "G"
GENERATED_CODE = r"G[0-9A-F]{5}"  # what generated_code gives; a declared code may not

_GENERATED_TEXT = {
    ABOVE: "{label} is higher than for typical customers",
    BELOW: "{label} is lower than for typical customers",
    LEVEL: "{label} has a value associated with higher risk",
    BLANK: "{label} was not provided",
}


@dataclass(frozen=True)
class CodedReason:
    code: str
    text: str
    feature: str
    direction: str
    declared: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def generated_code(feature: str, direction: str) -> str:
    """`G` + 5 hex digits of sha256("feature:direction"): the same in every run."""
    digest = hashlib.sha256(f"{feature}:{direction}".encode()).hexdigest()
    return GENERATED_PREFIX + digest[:5].upper()


_FLAG_TEXT = {  # a 0/1 feature: "above" is 1 where typical customers have 0
    ABOVE: "{label}: yes, unlike typical customers",
    BELOW: "{label}: no, unlike typical customers",
}


def directions(feature: Feature) -> tuple[str, ...]:
    """The ways this feature can differ from its typical value."""
    ordered = (ABOVE, BELOW) if feature.type.value in ("numeric", "binary") else (LEVEL,)
    return ordered if feature.missing.value == "reject" else (*ordered, BLANK)


def _label(name: str) -> str:
    words = name.replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def catalogue(spec: Spec) -> dict[tuple[str, str], CodedReason]:
    """(feature, direction) -> its reason, declared or generated, for every feature."""
    out: dict[tuple[str, str], CodedReason] = {}
    for feature in spec.features:
        entry = spec.reason_codes.get(feature.name)
        declared = entry.declared() if entry is not None else {}
        for direction in directions(feature):
            reason = declared.get(direction) or declared.get("any")
            if reason is not None:
                out[feature.name, direction] = CodedReason(
                    reason.code, reason.text, feature.name, direction, True
                )
            else:
                texts = _FLAG_TEXT if feature.type.value == "binary" else _GENERATED_TEXT
                text = texts.get(direction, _GENERATED_TEXT[direction])
                text = text.format(label=_label(feature.name))
                code = generated_code(feature.name, direction)
                out[feature.name, direction] = CodedReason(
                    code, text, feature.name, direction, False
                )
    return out


def direction_of(value: Any, typical: Any, numeric: bool) -> str:
    """How a value that raised risk differs from the typical one."""
    if value is None or value != value:  # NaN: a blank
        return BLANK
    if not numeric:
        return LEVEL
    return ABOVE if value > typical else BELOW
