"""The FastAPI peers `loadtest.bench` measures riskbento against, on the same model.

Each is an app factory for `uvicorn --factory`, reading the model from the BentoML
store (`RISKBENTO_BENCH_MODEL_TAG`, default `<RISKBENTO_USE_CASE>:latest`), and
validating the body with the same generated request model riskbento uses
(`serving.schemas.record_model`):

- `plain_app`: how a team typically ships a scikit-learn model: a sync endpoint,
  `pd.DataFrame([record])` -> the fitted pipeline -> `predict_proba` per request,
  uvicorn with its defaults (access log on). Answers id, probability, prediction.
- `tuned_app`: hand-tuned on riskbento's fast path: an `async` endpoint,
  `columns_from_records` -> `Scorer.fast.probabilities`, the answer serialised in
  one call, `gc.freeze()` after loading; served with uvloop + httptools and no
  access log. Answers id, probability, prediction, risk tier.
- `tuned_full_app`: the tuned app answering exactly what riskbento's `/predict`
  answers (`Scorer.score_records`: reasons and warnings included), to separate
  the cost of the framework from the cost of the answer.

`command(name, port, workers)` is the uvicorn command line `loadtest.bench` starts.
"""

import gc
import json
import os
import sys
from typing import Any

PEERS = ("plain", "tuned", "tuned_full")
TAG_ENV = "RISKBENTO_BENCH_MODEL_TAG"


def _tag() -> str:
    use_case = os.environ.get("RISKBENTO_USE_CASE", "credit_risk")
    return os.environ.get(TAG_ENV) or f"{use_case}:latest"


def command(name: str, port: int, workers: int) -> list[str]:
    """`uvicorn` for one peer on 127.0.0.1:port with `workers` processes."""
    if name not in PEERS:
        raise ValueError(f"unknown peer {name!r}; one of {PEERS}")
    base = [
        sys.executable, "-m", "uvicorn", f"loadtest.peers:{name}_app", "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
    ]  # fmt: skip
    if name == "plain":
        return base  # uvicorn's defaults, access log included
    return [*base, "--loop", "uvloop", "--http", "httptools", "--no-access-log",
            "--log-level", "warning"]  # fmt: skip


def plain_app() -> Any:
    import bentoml
    import pandas as pd
    from fastapi import FastAPI

    from features.tabular import prepare_frame
    from model import store
    from serving import schemas

    model = bentoml.models.get(_tag())
    pipeline = store.load_pipeline(model)
    card = store.card(model)
    spec, threshold = card.spec, card.threshold.value
    Record = schemas.record_model(spec)
    id_column = spec.id_column
    app = FastAPI(title=f"plain peer: {model.tag}")

    @app.post("/predict")
    def predict(record: Record) -> dict:  # type: ignore[valid-type]
        row = record.model_dump()  # type: ignore[attr-defined]
        frame = prepare_frame(pd.DataFrame([row]), spec)
        probability = float(pipeline.predict_proba(frame)[0, 1])
        return {
            id_column: row[id_column],
            "probability": probability,
            "prediction": int(probability >= threshold),
        }

    return app


def _tuned(full_answer: bool) -> Any:
    from fastapi import FastAPI
    from fastapi.responses import Response

    from features.tabular import columns_from_records
    from model.scorer import Scorer
    from serving import schemas

    scorer = Scorer.from_store(_tag())
    spec = scorer.spec
    Record = schemas.record_model(spec)
    id_column, threshold, tiers = spec.id_column, scorer.threshold, scorer.tiers
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    gc.collect()
    gc.freeze()  # the loaded model is never freed: keep gen-2 passes from walking it
    app = FastAPI(title=f"tuned peer: {scorer.tag}", docs_url=None, redoc_url=None)

    if full_answer:

        @app.post("/predict")
        async def predict_full(record: Record) -> Response:  # type: ignore[valid-type]
            answer = scorer.score_records([record.__dict__])[0]  # type: ignore[attr-defined]
            return Response(dumps(answer), media_type="application/json")

        return app

    @app.post("/predict")
    async def predict(record: Record) -> Response:  # type: ignore[valid-type]
        row = record.__dict__  # type: ignore[attr-defined]
        p = float(scorer.probabilities(columns_from_records([row], spec))[0])
        tier = "high" if p >= tiers.high else "medium" if p >= tiers.medium else "low"
        answer = {
            id_column: row[id_column],
            "probability": p,
            "prediction": int(p >= threshold),
            "risk_tier": tier,
        }
        return Response(dumps(answer), media_type="application/json")

    return app


def tuned_app() -> Any:
    return _tuned(full_answer=False)


def tuned_full_app() -> Any:
    return _tuned(full_answer=True)
