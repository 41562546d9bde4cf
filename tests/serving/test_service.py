"""The HTTP service in-process (`to_asgi()` + Starlette's TestClient): every endpoint,
every class of bad input, and agreement between the scoring paths and training."""

import json

import bentoml
import numpy as np
import pandas as pd
import pytest
from starlette.testclient import TestClient

from core.names import PROJECT_ROOT
from features.tabular import prepare_frame
from model import store
from training.train import assemble

pytestmark = pytest.mark.slow  # trains quick models first

CONTRACT = json.loads((PROJECT_ROOT / "examples" / "credit_risk.json").read_text())
FILING = {
    "user_id": "U1",
    "age": 35,
    "income": 42000.0,
    "employment_type": "full_time",
    "marital_status": "single",
    "time_spent_on_platform": 45.0,
    "number_of_sessions": 3,
    "fields_filled_percentage": 60.0,
    "previous_year_filing": 1,
    "device_type": "mobile",
    "referral_source": "organic_search",
}


def post(client: TestClient, path: str, body: object) -> tuple[int, dict]:
    response = client.post(path, json=body)
    return response.status_code, response.json()


def error_text(answer: object) -> str:
    return json.dumps(answer)


# ---------------------------------------------------------------- the contract and the paths


def test_credit_risk_contract(serve, trained_tag):
    client, _ = serve("credit_risk")
    status, answer = post(client, "/predict", CONTRACT)
    assert status == 200
    assert answer["customer_id"] == "CUST001"
    assert 0.0 <= answer["probability"] <= 1.0
    assert answer["prediction"] in (0, 1)
    assert answer["model"] == trained_tag("credit_risk")
    threshold = store.card(bentoml.models.get(answer["model"])).threshold.value
    assert answer["prediction"] == int(answer["probability"] >= threshold)
    assert answer["risk_tier"] in ("low", "medium", "high")


def test_reasons_name_the_feature_and_the_value_sent(serve):
    client, _ = serve("credit_risk")
    _, answer = post(client, "/predict", CONTRACT)
    assert 0 < len(answer["reasons"]) <= 3
    for reason in answer["reasons"]:
        assert reason["value"] == pytest.approx(CONTRACT[reason["feature"]])
        assert reason["text"].startswith(reason["feature"] + " = ")
        assert ("raises" in reason["text"]) == (reason["effect"] > 0)


def test_a_flagged_answer_states_its_adverse_reasons(serve):
    """The example applicant made riskier (no salary, spending more than earned) is declined
    with coded principal reasons, strongest first, each one raising the probability."""
    client, _ = serve("credit_risk")
    risky = {**CONTRACT, "has_salary": 0, "total_credit": 300.0, "avg_amount": -80.0}
    _, answer = post(client, "/predict", risky)
    assert answer["prediction"] == 1, answer
    reasons = answer["adverse_reasons"]
    assert 0 < len(reasons) <= 4
    assert [r["effect"] for r in reasons] == sorted((r["effect"] for r in reasons), reverse=True)
    assert all(r["effect"] > 0 and r["code"].startswith("CR") for r in reasons)
    assert {r["feature"]: r["value"] for r in reasons}.items() <= risky.items()
    _, safe = post(client, "/predict", CONTRACT)
    assert safe["prediction"] == 0 and safe["adverse_reasons"] == []


def test_reasons_switched_off_leave_the_score_and_the_schema(serve, monkeypatch):
    """RISKBENTO_REASONS=false: the same probability, decision and tier, `reasons: []`."""
    client, module = serve("credit_risk")
    _, explained = post(client, "/predict", CONTRACT)
    monkeypatch.setattr(module, "SETTINGS", module.SETTINGS.model_copy(update={"reasons": False}))
    status, plain = post(client, "/predict", CONTRACT)
    assert status == 200
    assert explained["reasons"] and plain["reasons"] == plain["adverse_reasons"] == []
    explanations = ("reasons", "adverse_reasons")
    assert {k: v for k, v in plain.items() if k not in explanations} == {
        k: v for k, v in explained.items() if k not in explanations
    }
    status, batch = post(client, "/predict_batch", {"records": [CONTRACT]})
    assert status == 200 and batch == [plain]


def _test_split(use_case: str, tag: str, builtin_spec) -> tuple[pd.DataFrame, pd.DataFrame]:
    spec = builtin_spec(use_case)
    data = assemble(spec)
    frame = data.frame[(data.split == "test").to_numpy()]
    records = prepare_frame(frame, spec).astype(object).where(lambda f: f.notna(), None)
    records.insert(0, spec.id_column, frame[spec.id_column].astype(str))
    expected = store.read_csv(bentoml.models.get(tag), store.TEST_SCORES_FILE)
    return records, expected


@pytest.mark.parametrize("use_case", ["credit_risk", "filing_dropoff"])
def test_served_scores_equal_training_time_test_scores(serve, trained_tag, builtin_spec, use_case):
    client, _ = serve(use_case)
    records, expected = _test_split(use_case, trained_tag(use_case), builtin_spec)
    body = records.head(200).to_dict(orient="records")
    status, answers = post(client, "/predict_batch", {"records": body})
    assert status == 200
    served = [a["probability"] for a in answers]
    np.testing.assert_allclose(served, expected["probability"].head(200), rtol=0, atol=1e-12)


def test_predict_and_predict_batch_agree(serve, trained_tag, builtin_spec):
    client, _ = serve("filing_dropoff")
    records, _ = _test_split("filing_dropoff", trained_tag("filing_dropoff"), builtin_spec)
    body = records.head(20).to_dict(orient="records")
    _, batch = post(client, "/predict_batch", {"records": body})
    single = [post(client, "/predict", r)[1] for r in body]
    assert [a["user_id"] for a in batch] == [r["user_id"] for r in body]
    # Same numbers up to floating-point summation order (a matrix vs a single row).
    np.testing.assert_allclose(
        [a["probability"] for a in batch], [a["probability"] for a in single], rtol=0, atol=1e-12
    )
    texts = [[r["text"] for r in a["reasons"]] for a in batch]
    assert texts == [[r["text"] for r in a["reasons"]] for a in single]


@pytest.mark.parametrize("use_case", ["credit_risk", "offboarding"])
def test_score_transactions_equals_predict_on_the_features_it_computed(
    serve, generated, builtin_spec, use_case
):
    client, _ = serve(use_case)
    spec = builtin_spec(use_case)
    roles = spec.data.transactions
    table = pd.read_csv(spec.resolve(spec.data.table), dtype={spec.id_column: str})
    raw = pd.read_csv(spec.resolve(roles.path), dtype={roles.columns.customer_id: str})
    ids = table[spec.id_column].drop_duplicates().head(5).tolist()
    picked = raw[raw[roles.columns.customer_id].isin(ids)]
    transactions = picked.astype(object).where(picked.notna(), None).to_dict(orient="records")
    body: dict = {"transactions": transactions}
    profile = [f for f in spec.feature_names if f in table.columns]
    if profile:
        rows = table[table[spec.id_column].isin(ids)][[spec.id_column, *profile]]
        body["customers"] = rows.astype(object).where(rows.notna(), None).to_dict("records")
    status, answer = post(client, "/score_transactions", body)
    assert status == 200, answer
    assert answer["cleaning"]["rows_in"] == len(picked)
    for customer in answer["customers"]:
        record = {spec.id_column: customer[spec.id_column], **customer["features"]}
        _, direct = post(client, "/predict", record)
        assert direct["probability"] == customer["probability"]


def test_model_card_and_docs(serve, trained_tag):
    client, _ = serve("credit_risk")
    card = client.get("/model").json()
    assert card["tag"] == trained_tag("credit_risk")
    assert set(card) >= {"created_at", "data_sha256", "test", "threshold", "tiers", "features"}
    assert [f["name"] for f in card["features"]] == [k for k in CONTRACT if k != "customer_id"]
    assert "reference" not in card
    codes = {(c["feature"], c["direction"]): c for c in card["reason_codes"]}
    assert codes["has_salary", "below"]["code"] == "CR11" and codes["has_salary", "below"]["text"]
    assert len({c["code"] for c in card["reason_codes"]}) == len(card["reason_codes"])
    docs = client.get("/docs")
    assert docs.status_code == 200 and "<html" in docs.text.lower()
    schema = client.get("/docs.json").json()
    fields = schema["components"]["schemas"]["CreditRiskRecord"]["properties"]
    assert "description" in fields["total_debit"] and fields["has_rent"]["enum"] == [0, 1]


def test_warnings_for_unseen_level_and_out_of_training_range(serve):
    client, _ = serve("filing_dropoff")
    status, answer = post(
        client, "/predict", {**FILING, "referral_source": "tiktok", "income": 5_000_000}
    )
    assert status == 200
    text = " ".join(answer["warnings"])
    assert "referral_source = 'tiktok' is not a known level" in text
    assert "income = 5e+06 is outside the training range" in text


# ---------------------------------------------------------------- bad input: 4xx, never 500


@pytest.mark.parametrize(
    ("change", "field", "fragment"),
    [
        ({"age": "old"}, "age", "got 'old'"),
        ({"age": 150}, "age", "less than or equal to 100"),
        ({"employment_type": "astronaut"}, "employment_type", "got 'astronaut'"),
        ({"previous_year_filing": 2}, "previous_year_filing", "Input should be 0 or 1; got 2"),
        ({"user_id": ""}, "user_id", "got ''"),
        ({"shoe_size": 44}, "shoe_size", "Extra inputs are not permitted"),
    ],
)
def test_bad_field_gets_400_naming_field_expectation_and_value(serve, change, field, fragment):
    client, _ = serve("filing_dropoff")
    status, answer = post(client, "/predict", {**FILING, **change})
    assert status == 400
    problems = {tuple(d["loc"]): d["msg"] for d in answer["detail"]}
    assert fragment in problems[(field,)]


def test_blank_is_refused_where_the_spec_rejects_blanks(serve):
    client, _ = serve("credit_risk")
    status, answer = post(client, "/predict", {**CONTRACT, "has_salary": None})
    assert status == 400
    assert answer["detail"][0]["loc"] == ["has_salary"]
    assert "got None" in answer["detail"][0]["msg"]


def test_blank_is_scored_with_a_warning_where_the_spec_imputes(serve):
    client, _ = serve("filing_dropoff")
    status, answer = post(client, "/predict", {**FILING, "age": None})
    assert status == 200
    assert "age is blank: read as the typical training value" in answer["warnings"]


def test_missing_field_is_named(serve):
    client, _ = serve("filing_dropoff")
    body = {k: v for k, v in FILING.items() if k != "income"}
    status, answer = post(client, "/predict", body)
    assert status == 400
    assert answer["detail"][0]["loc"] == ["income"]
    assert answer["detail"][0]["msg"] == "Field required"


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_inf_are_rejected(serve, literal):
    client, _ = serve("credit_risk")
    raw = json.dumps(CONTRACT).replace("150.03", literal)
    response = client.post("/predict", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert "avg_amount" in response.text and "finite number" in response.text


def test_empty_and_oversized_batches_state_the_limit(serve):
    client, module = serve("credit_risk")
    status, answer = post(client, "/predict_batch", {"records": []})
    assert status == 400 and "at least 1 item" in error_text(answer)
    limit = module.SETTINGS.max_batch_records
    status, answer = post(client, "/predict_batch", {"records": [CONTRACT] * (limit + 1)})
    assert status == 400 and f"at most {limit} items" in error_text(answer)


def test_malformed_json_wrong_content_type_and_wrong_shape(serve):
    client, _ = serve("credit_risk")
    bad_json = client.post(
        "/predict", content="{oops", headers={"content-type": "application/json"}
    )
    assert bad_json.status_code == 400 and "Invalid JSON" in bad_json.text
    as_text = client.post(
        "/predict", content=json.dumps(CONTRACT), headers={"content-type": "text/plain"}
    )
    assert as_text.status_code == 415
    assert "expected Content-Type: application/json, got 'text/plain'" in as_text.text
    as_list = client.post("/predict", json=[CONTRACT])
    assert as_list.status_code == 400


def test_bad_raw_transaction_is_named(serve):
    client, _ = serve("credit_risk")
    status, answer = post(
        client,
        "/score_transactions",
        {"transactions": [{"customer_id": "C1", "amount": "ten pounds", "type": "debit"}]},
    )
    assert status == 400
    assert answer["detail"][0]["loc"] == ["transactions", 0, "amount"]
    assert "got 'ten pounds'" in answer["detail"][0]["msg"]


@pytest.mark.parametrize(
    "use_case", ["filing_dropoff", "offboarding", "default", "churn", "credit_risk"]
)
def test_every_use_case_serves_its_readme_example(serve, use_case):
    client, module = serve(use_case)
    body = json.loads((PROJECT_ROOT / "examples" / f"{use_case}.json").read_text())
    status, answer = post(client, "/predict", body)
    assert status == 200, answer
    assert answer[module.SPEC.id_column] == body[module.SPEC.id_column]
    assert answer["risk_tier"] in ("low", "medium", "high")
    # /predict sends the scorer's answer as JSON itself: it must be exactly the documented
    # schema (no missing or extra field, right types), as /predict_batch's validated one is.
    assert module.Prediction.model_validate(answer).model_dump(mode="json") == answer
    status, batch = post(client, "/predict_batch", {"records": [body]})
    assert status == 200 and batch == [answer]


def test_readme_transactions_example_is_cleaned_and_scored(serve):
    client, _ = serve("credit_risk")
    body = json.loads((PROJECT_ROOT / "examples" / "credit_risk_transactions.json").read_text())
    status, answer = post(client, "/score_transactions", body)
    assert status == 200
    assert answer["cleaning"]["exact_duplicates_dropped"] == 1
    assert answer["cleaning"]["sign_fixed_from_type"] == 1  # the RENT debit sent as +950
    first = {c["customer_id"]: c for c in answer["customers"]}["CUST001"]
    assert first["features"]["has_rent"] == 1 and first["features"]["has_salary"] == 1
    assert first["features"]["total_debit"] == pytest.approx(-45.50 - 950.00 - 12.99)


# ---------------------------------------------------------------- strict types


def _type_mistakes(spec) -> list[tuple[str, object, str]]:
    """(field, value sent, what the 400 must say) for every numeric and binary feature:
    a JSON boolean or a number in a string is never read as a number."""
    mistakes: list[tuple[str, object, str]] = []
    for feature in spec.features:
        if feature.type.value not in ("numeric", "binary"):
            continue
        mistakes += [
            (feature.name, True, "got True"),
            (feature.name, "1", "got '1'"),
        ]
        if feature.integer:
            mistakes.append((feature.name, 2.5, "got 2.5"))
    return mistakes


@pytest.mark.parametrize(
    "use_case", ["filing_dropoff", "offboarding", "default", "churn", "credit_risk"]
)
def test_booleans_and_numbers_in_strings_are_refused_where_numbers_are_expected(serve, use_case):
    client, module = serve(use_case)
    body = json.loads((PROJECT_ROOT / "examples" / f"{use_case}.json").read_text())
    mistakes = _type_mistakes(module.SPEC)
    assert mistakes, f"{use_case} has no numeric or binary feature to check"
    for field, value, fragment in mistakes:
        status, answer = post(client, "/predict", {**body, field: value})
        assert status == 400, (field, value, answer)
        message = {tuple(d["loc"]): d["msg"] for d in answer["detail"]}[(field,)]
        assert "number" in message and message.endswith(fragment)  # expected, then what came
    # The same record in a batch: named with its position.
    field, value, fragment = mistakes[0]
    status, answer = post(client, "/predict_batch", {"records": [body, {**body, field: value}]})
    assert status == 400
    assert fragment in {tuple(d["loc"]): d["msg"] for d in answer["detail"]}[("records", 1, field)]


def test_whole_numbers_sent_as_floats_are_read_as_integers(serve):
    """A pandas column with a blank holds floats: 36.0 is the integer 36 (JSON Schema agrees)."""
    client, _ = serve("filing_dropoff")
    floats = {**FILING, "age": 35.0, "previous_year_filing": 1.0}
    status, as_float = post(client, "/predict", floats)
    assert status == 200
    assert as_float == post(client, "/predict", FILING)[1]


@pytest.mark.parametrize(
    ("use_case", "customers"), [("credit_risk", []), ("offboarding", []), ("offboarding", None)]
)
def test_score_transactions_without_customers_to_score_is_a_400_naming_customers(
    serve, use_case, customers
):
    client, _ = serve(use_case)
    body = json.loads((PROJECT_ROOT / "examples" / "credit_risk_transactions.json").read_text())
    if use_case == "offboarding":
        body = {"transactions": [{"customer_id": "C1", "amount": -10.0}]}
    status, answer = post(client, "/score_transactions", {**body, "customers": customers})
    assert status == 400, answer
    assert [d["loc"][-1] for d in answer["detail"]] == ["customers"]


@pytest.mark.parametrize("amount", [False, "12.5"])
def test_a_boolean_or_text_amount_in_a_raw_transaction_is_refused(serve, amount):
    client, _ = serve("credit_risk")
    body = {"transactions": [{"customer_id": "C1", "amount": amount, "type": "debit"}]}
    status, answer = post(client, "/score_transactions", body)
    assert status == 400
    assert answer["detail"][0]["loc"] == ["transactions", 0, "amount"]
    assert f"got {amount!r}" in answer["detail"][0]["msg"]


def test_unknown_paths_and_methods_get_json_naming_them(serve):
    client, _ = serve("credit_risk")
    wrong_method = client.put("/livez")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"] == "PUT is not allowed on /livez; use GET, HEAD"
    assert wrong_method.headers["allow"] == "GET, HEAD"
    assert client.get("/nope").status_code == 404
    assert client.get("/nope").json() == {"error": "no such path: /nope"}
