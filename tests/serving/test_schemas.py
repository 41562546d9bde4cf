"""The request models generated from a spec: strict JSON types, widened only by the spec."""

import json

import pytest
from pydantic import ValidationError

from core.spec import Feature, load_spec
from serving.schemas import record_model

CONTRACT = {
    "customer_id": "C1", "num_transactions": 12, "total_debit": -100.0, "total_credit": 50.0,
    "avg_amount": 12.5, "has_rent": 1, "has_salary": 0,
}  # fmt: skip


def _model(**widen: dict):
    spec = load_spec("credit_risk", check_data=False)
    features = [f.model_copy(update=widen.get(f.name, {})) for f in spec.features]
    return record_model(spec.model_copy(update={"features": features}))


def _read(model, **change):
    return model.model_validate_json(json.dumps({**CONTRACT, **change}))


def test_strict_by_default():
    model = _model()
    for change in ({"avg_amount": "12.5"}, {"avg_amount": True}, {"has_rent": True}):
        with pytest.raises(ValidationError, match=next(iter(change))):
            _read(model, **change)


def test_the_spec_can_accept_numbers_in_text_and_booleans_for_binary_features():
    model = _model(avg_amount={"accept_text_numbers": True}, has_rent={"accept_booleans": True})
    record = _read(model, avg_amount="12.5", has_rent=True)
    assert record.avg_amount == 12.5 and record.has_rent == 1 and type(record.has_rent) is int
    with pytest.raises(ValidationError, match="not a boolean"):
        _read(model, avg_amount=True)  # text allowed, booleans still not
    with pytest.raises(ValidationError, match="not a string"):
        _read(model, has_rent="1")  # booleans allowed, text still not


@pytest.mark.parametrize(
    ("feature", "message"),
    [
        ({"type": "binary", "accept_text_numbers": True}, "accept_text_numbers applies to numeric"),
        ({"type": "numeric", "accept_booleans": True}, "accept_booleans applies to binary"),
    ],
)
def test_a_widening_on_the_wrong_type_of_feature_is_refused(feature, message):
    with pytest.raises(ValidationError, match=message):
        Feature(name="x", description="x", **feature)
