"""The model card (core/card.py): typed, stored and read back whole, and a model saved
before it refused with one line that says to retrain."""

import math
import os
import subprocess
import types
import typing
from pathlib import Path

import bentoml
import pytest
import yaml

from core.card import (
    CARD_FORMAT,
    FORMAT_KEY,
    CandidateSummary,
    CategoricalReference,
    FeatureSchema,
    Metrics,
    ModelCard,
    NumericReference,
    Reference,
    Threshold,
)
from core.datafiles import file_sha256
from core.names import PROJECT_ROOT, USECASES_DIRNAME
from core.spec import Spec, load_spec
from loadtest.process import bentoml_serve, free_port
from model import store
from model.scorer import Scorer, model_card
from riskbento.__main__ import main

STALE = "stale_card"  # the fake old model's name: never a use case other tests serve
# A pipeline pickled before the estimators moved to model/: it names training.rebalance.
OLD_PICKLE = b"\x80\x02ctraining.rebalance\nRebalancedClassifier\nq\x00)\x81q\x01."


def _spec() -> Spec:
    return load_spec(PROJECT_ROOT / USECASES_DIRNAME / "filing_dropoff.yaml", check_data=False)


def _metrics(**changed: float) -> dict:
    return {
        "rows": 100, "positive_rate": 0.3, "threshold": 0.25, "precision": 0.5,
        "recall": 0.8, "f1": 0.6, "flagged_share": 0.4, "cost_per_customer": 1.9,
        "roc_auc": 0.8, "pr_auc": 0.6, "brier": 0.15, "log_loss": 0.47, "ece": 0.03,
        "confusion": {"tn": 50, "fp": 20, "fn": 6, "tp": 24}, **changed,
    }  # fmt: skip


def _candidate(family: str, **extra) -> dict:
    return {
        "candidate": f"{family}()", "family": family, "params": {"C": 0.01},
        "imbalance": "weights", "members": [], "cv_mean": 0.81, "cv_std": 0.01,
        "cv_brier": float("nan"), "cv_ece": 0.03, "seconds": 0.3, **extra,
    }  # fmt: skip


def _card(spec: Spec) -> ModelCard:
    """A card as training builds it, with NaN where a metric is undefined."""
    numeric = {"type": "numeric", "missing": 0.0, "edges": [1.0], "shares": [0.5, 0.5]}
    features = {
        f.name: (
            {"type": "categorical", "missing": 0.1, "shares": {"a": 1.0}, "mode": "a"}
            if f.levels
            else {**numeric, "median": 2.0, "std": float("nan")}
        )
        for f in spec.features
    }
    return ModelCard(
        use_case=spec.name,
        purpose=spec.purpose,
        created_at="2026-01-01T00:00:00+00:00",
        spec_file="usecases/filing_dropoff.yaml",
        spec=spec.model_dump(mode="json"),
        data_sha256={"data.table": "0" * 64},
        id_column=spec.id_column,
        risk_event=spec.target.event,
        features=[
            {**f.model_dump(mode="json", exclude_none=True), "train_min": 0.0, "train_max": 9.0}
            if f.type == "numeric"
            else f.model_dump(mode="json", exclude_none=True)
            for f in spec.features
        ],
        selection_metric=spec.selection_metric,
        champion=_candidate("logistic_regression"),
        challenger=_candidate("soft_vote", test=_metrics(roc_auc=float("nan"))),
        threshold={
            "value": 0.25,
            "out_of_fold": {"threshold": 0.25, "precision": 0.5, "f1": float("nan")},
        },
        tiers=spec.tiers,
        costs=spec.costs,
        test=_metrics(pr_auc=float("nan")),
        cleaning={"table": {"rows_in": 100}},
        amount_cap=None,
        transaction_features=[],
        packages={"python": "3.11"},
        published=spec.published,
        reference={"features": features, "score": numeric},
    )


def test_non_finite_numbers_are_none_in_the_card_and_in_no_metadata():
    card = _card(_spec())
    assert card.format == CARD_FORMAT
    assert card.test.pr_auc is None and card.challenger.test.roc_auc is None
    assert card.champion.cv_brier is None and card.threshold.out_of_fold.f1 is None
    stored = card.to_metadata()
    assert stored[FORMAT_KEY] == CARD_FORMAT
    assert "pr_auc" not in stored["test"] and "f1" not in stored["threshold"]["out_of_fold"]
    text = yaml.safe_dump(stored)  # what model.yaml holds
    assert "null" not in text and ".nan" not in text
    assert ModelCard.from_metadata(yaml.safe_load(text)) == card
    # Free-form tables (candidate params, cleaning counts) have no schema to say a value was
    # there: a None inside one is omitted.
    blank = card.model_copy(update={"cleaning": {"table": {"rows_in": None, "rows": 3}}})
    assert ModelCard.from_metadata(blank.to_metadata()).cleaning == {"table": {"rows": 3}}


def test_every_field_serving_reads_is_typed():
    fields = ModelCard.model_fields
    typed = {
        "spec": Spec,
        "threshold": Threshold,
        "features": list[FeatureSchema],
        "champion": CandidateSummary,
        "challenger": CandidateSummary,
        "test": Metrics,
        "reference": Reference,
        "amount_cap": float | None,
        "data_sha256": dict[str, str],
        "transaction_features": list[str],
        "file_sha256": dict[str, str],
        "promoted_from": str | None,
    }
    for name, expected in typed.items():
        assert fields[name].annotation == expected, name
    assert Threshold.model_fields["value"].annotation is float
    assert CandidateSummary.model_fields["family"].annotation is str
    assert FeatureSchema.model_fields["train_min"].annotation == float | None
    column = typing.get_args(Reference.model_fields["features"].annotation)[1]
    assert set(typing.get_args(typing.get_args(column)[0])) == {
        NumericReference,
        CategoricalReference,
    }
    # Nothing a consumer reads is left as Any.
    for name in typed:
        assert typing.Any not in _leaves(fields[name].annotation), name


def _leaves(annotation) -> set:
    args = typing.get_args(annotation)
    if not args:
        return {annotation}
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) in (
        typing.Union,
        list,
        dict,
        typing.Annotated,
    ):
        return set().union(*(_leaves(a) for a in args))
    return {annotation}


@pytest.mark.slow
def test_a_trained_card_reads_back_as_built_and_feeds_the_scorer(trained_tag):
    model = bentoml.models.get(trained_tag("credit_risk"))
    card = store.card(model)
    again = ModelCard.from_metadata(card.to_metadata())
    assert again == card
    assert set(card.file_sha256) == {p.name for p in Path(model.path).iterdir()} - {"model.yaml"}
    assert card.amount_cap is not None and card.transaction_features
    scorer = Scorer.from_store(str(model.tag))
    assert scorer.card == card and scorer.threshold == card.threshold.value
    assert scorer.spec == card.spec and scorer.amount_cap == card.amount_cap
    shown = model_card(model, card)
    assert list(shown)[:2] == ["tag", "created_at"] and "reference" not in shown
    assert {"test", "threshold", "champion", "challenger", "spec", "features"} <= set(shown)
    assert shown["threshold"]["value"] == card.threshold.value
    assert all(not isinstance(v, float) or math.isfinite(v) for v in shown["test"].values())


def test_a_format_1_card_reads_without_the_governance_keys_and_a_newer_one_is_refused():
    """Format 2 added the spec's reason codes, protected attributes, fairness and document
    keys and the card's fairness summary: a format-1 card (none of them) still reads."""
    card = _card(_spec())
    stored = card.to_metadata()
    for key in ("reason_codes", "protected", "fairness", "document"):
        stored["spec"].pop(key, None)
    stored.pop("fairness", None)
    with bentoml.models.create("format_one", metadata={**stored, FORMAT_KEY: 1}) as ref:
        pass
    read = store.card(bentoml.models.get(ref.tag))
    assert read.spec.protected == [] and read.spec.reason_codes == {} and read.fairness is None
    with bentoml.models.create("format_next", metadata={**stored, FORMAT_KEY: 99}) as ref:
        pass
    with pytest.raises(store.StaleModel, match="saved by a newer riskbento"):
        store.card(bentoml.models.get(ref.tag))


def old_model(name: str = STALE) -> str:
    """A model as riskbento wrote it before the card: metadata without a format, and a
    pipeline that names training.rebalance. Returns its tag."""
    spec = _spec()
    metadata = {
        "use_case": name,
        "spec": spec.model_dump(mode="json", exclude_none=True),
        "threshold": {"value": 0.25},
        "champion": {"family": "logistic_regression"},
        "reference": {"features": {}, "score": {"type": "numeric", "missing": 0.0}},
    }
    with bentoml.models.create(name, labels={"use_case": name}, metadata=metadata) as ref:
        pipeline = Path(ref.path) / store.PIPELINE_FILE
        pipeline.write_bytes(OLD_PICKLE)
        ref.info.metadata["file_sha256"] = {store.PIPELINE_FILE: file_sha256(pipeline)}
    return str(ref.tag)


def _stale_message(tag: str) -> str:
    return (
        f"model {tag} was saved by an older riskbento (no model card format {CARD_FORMAT}); "
        f"retrain it: make train USE_CASE={STALE}"
    )


def test_a_model_saved_before_the_card_is_refused_with_how_to_retrain(tmp_path, capsys):
    tag = old_model()
    with pytest.raises(store.StaleModel) as err:
        Scorer.from_store(tag)
    assert str(err.value) == _stale_message(tag)
    # The command line: that one line, exit 2.
    spec = yaml.safe_load((PROJECT_ROOT / USECASES_DIRNAME / "filing_dropoff.yaml").read_text())
    spec_file = tmp_path / f"{STALE}.yaml"
    spec_file.write_text(yaml.safe_dump({**spec, "name": STALE}))
    (tmp_path / "records.csv").write_text("user_id\n1\n")
    code = main(["score-file", str(spec_file), str(tmp_path / "records.csv"), str(tmp_path / "o")])
    assert code == 2
    err_text = capsys.readouterr().err
    assert err_text == f"error: {_stale_message(tag)}\n"  # tag: {STALE}:latest, just made


def test_a_pipeline_naming_a_module_that_moved_is_refused_with_how_to_retrain():
    tag = old_model()
    model = bentoml.models.get(tag)
    # Give it a current card: only the pickle is old now.
    current = _card(_spec()).model_copy(update={"file_sha256": model.info.metadata["file_sha256"]})
    model.info.metadata.clear()
    model.info.metadata.update(current.to_metadata())
    with pytest.raises(store.StaleModel, match=r"names module 'training\.rebalance'.*retrain it"):
        store.load_pipeline(model)


@pytest.mark.slow
@pytest.mark.integration
def test_bentoml_serve_of_a_stale_model_ends_with_one_line_and_no_traceback():
    tag = old_model()
    env = {**os.environ, "RISKBENTO_MODEL_TAG": tag, "RISKBENTO_PREDICTION_LOG": "false"}
    finished = subprocess.run(
        bentoml_serve(free_port()), cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    output = finished.stdout + finished.stderr
    assert finished.returncode != 0, output
    assert f"error: {_stale_message(tag)}" in output.splitlines(), output
    assert "Traceback" not in output, output
