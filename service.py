"""The riskbento HTTP service: one use case's stored model behind typed APIs.

Pick the model with `RISKBENTO_USE_CASE` (default credit_risk) or an exact
`RISKBENTO_MODEL_TAG`. The request and answer models are generated from the
schema stored with the model, which is why this module reads the model's
card when it is imported: BentoML needs the API types at class definition.
"""

import asyncio
import gc
import logging
import threading
from contextvars import ContextVar
from typing import Annotated, Any

import bentoml
import orjson
from bentoml.exceptions import ServiceUnavailable
from pydantic import AfterValidator, Field, ValidationError
from starlette.applications import Starlette
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from threadpoolctl import threadpool_limits

from core.errors import UserError
from core.settings import get_settings
from model import store
from model.scorer import Scorer, find_model, model_card
from serving import (
    bentoml_private,
    dashboard,
    drain,
    predlog,
    schemas,
    security,
    shadow,
    telemetry,
)
from serving.predlog import SOURCE_HEADER, SOURCES, PredictionLog, PredictionLogWriteError

logger = logging.getLogger("riskbento.service")
SETTINGS = get_settings()
# Adaptive batching sends what is queued as soon as a worker is free (no learnt holding,
# which idled the workers under steady load): see its docstring.
bentoml_private.dispatch_without_holding()
try:
    MODEL = find_model(SETTINGS.serving_tag)
    CARD = store.card(MODEL)
except UserError as err:  # no model, or one saved before the card format: one line, no trace
    raise SystemExit(f"error: {err}") from None
SPEC = CARD.spec
FROM_TRANSACTIONS = set(CARD.transaction_features)
try:
    SHADOW = shadow.find_shadow(SETTINGS.shadow_tag, SPEC.name)
    difference = SHADOW and shadow.compatibility(CARD, store.card(SHADOW))
except UserError as err:
    raise SystemExit(f"error: shadow challenger (RISKBENTO_SHADOW_TAG): {err}") from None
if difference:
    raise SystemExit(
        f"error: shadow challenger {SHADOW.tag} cannot read {MODEL.tag}'s records: {difference}"
    )

# The request's source (`predlog.SOURCES`) when it sent SOURCE_HEADER (the dashboard's
# what-if and CSV calls), None for production traffic; set by `RequireJSON`.
SOURCE: ContextVar[str | None] = ContextVar("riskbento_source", default=None)
SOURCE_KEY = "__riskbento_source__"  # a marked batch record's source, until it is scored


class MarkedRecords:
    """How the source of a marked /predict_batch request reaches the batched call.

    Adaptive batching scores records of several requests together in the dispatcher's
    task, where the request's context is gone. So each record of a marked request is
    stamped while it is validated (in the request), and the batched call takes the stamps
    off again. It looks for them only while stamped records are waiting: production
    batches do no extra work."""

    def __init__(self) -> None:
        self.waiting = 0
        self.lock = threading.Lock()

    def stamp(self, records: list[Any]) -> list[Any]:
        source = SOURCE.get()
        if source is not None:
            for record in records:
                record.__dict__[SOURCE_KEY] = source
            with self.lock:
                self.waiting += len(records)
        return records

    def take(self, rows: list[dict[str, Any]]) -> list[str | None]:
        """The source of each row (None: production), stamps removed."""
        sources = [row.pop(SOURCE_KEY, None) for row in rows]
        taken = sum(source is not None for source in sources)
        with self.lock:
            self.waiting = max(0, self.waiting - taken)
        return sources


MARKED = MarkedRecords()
Record = schemas.record_model(SPEC)
Prediction = schemas.prediction_model(SPEC)
Records = Annotated[
    list[schemas.record_model(SPEC, explained=False)],  # type: ignore[misc]
    Field(min_length=1, max_length=SETTINGS.max_batch_records, description="records to score"),
    AfterValidator(MARKED.stamp),
]
JSON_ROUTES = ("/predict", "/predict_batch", "/score_transactions")
READ = ("GET", "HEAD")
MAX_TRANSACTIONS = 100_000  # per /score_transactions request
YOUNG_OBJECTS = 20_000  # new objects between two young garbage collections (Python: 700)

if SPEC.data.transactions is not None:
    TransactionsRequest = schemas.transactions_request_model(
        SPEC, [f for f in SPEC.feature_names if f not in FROM_TRANSACTIONS], MAX_TRANSACTIONS
    )


class RecordsBody(bentoml.IODescriptor):
    """`/predict_batch`'s body, `{"records": [...]}`: validated by pydantic-core without a
    Python call per record, its errors then saying what arrived (`schemas.Explained`)."""

    records: Records

    @classmethod
    async def from_http_request(cls, request: Any, serde: Any) -> Any:
        try:
            return await super().from_http_request(request, serde)
        except ValidationError as err:
            raise schemas.with_received(err, field_at=2) from None


class RequireJSON:
    """415 with a clear message for a POST body that is not JSON (BentoML would guess).

    It also reads the request's source header (one look-up in the headers it reads anyway)
    and refuses an unknown source with a 400. `GET /` (BentoML's
    API page, which loads a tag manager from the internet) goes to `/docs`."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in JSON_ROUTES:
            headers = dict(scope["headers"])
            content_type = headers.get(b"content-type", b"").decode("latin-1")
            if content_type.split(";")[0].strip().lower() != "application/json":
                got = content_type or "no Content-Type header"
                message = {"error": f"expected Content-Type: application/json, got {got!r}"}
                await JSONResponse(message, status_code=415)(scope, receive, send)
                return
            source = headers.get(SOURCE_HEADER)
            if source is not None:
                await self._marked(source.decode("latin-1"), scope, receive, send)
                return
        elif scope["type"] == "http" and scope["path"] == "/" and scope["method"] in READ:
            await RedirectResponse(url="/docs")(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _marked(self, source: str, scope: dict, receive: Any, send: Any) -> None:
        if source not in SOURCES:
            name = SOURCE_HEADER.decode()
            message = {"error": f"{name}: expected one of {list(SOURCES)}, got {source[:40]!r}"}
            await JSONResponse(message, status_code=400)(scope, receive, send)
            return
        token = SOURCE.set(None if source == predlog.PRODUCTION else source)
        try:
            await self.app(scope, receive, send)
        finally:
            SOURCE.reset(token)


class JSONErrors:
    """Starlette's plain-text 404 and 405 as JSON naming the path (and the methods it
    takes), like every other error of the API."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        replaced = False

        async def send_json(message: dict) -> None:
            nonlocal replaced
            if replaced:
                return  # the plain-text body of a replaced answer
            status = message.get("status")
            if message["type"] == "http.response.start" and status in (404, 405):
                headers = dict(message.get("headers", []))
                if headers.get(b"content-type", b"").startswith(b"text/plain"):
                    replaced = True
                    allowed = headers.get(b"allow", b"").decode("latin-1").split(",")
                    allow = ", ".join(sorted(m.strip() for m in allowed if m.strip()))
                    error = (
                        f"{scope['method']} is not allowed on {scope['path']}; use {allow}"
                        if status == 405
                        else f"no such path: {scope['path']}"
                    )
                    extra = {"Allow": allow} if allow else None
                    await JSONResponse({"error": error}, status, extra)(scope, receive, send)
                    return
            await send(message)

        await self.app(scope, receive, send_json)


def json_response(answer: Any) -> Response:
    """Answers built by the scorer to the `Prediction` schema (tested), as JSON.

    The scorer never puts NaN or infinity in an answer (it refuses a non-finite
    probability; a blank value is None), so orjson's NaN-as-null never applies."""
    return Response(
        orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY), media_type="application/json"
    )


class Answers(bentoml_private.io_descriptor(list[Prediction])):  # type: ignore[misc]
    """`/predict_batch`'s answer: `list[Prediction]` in the API schema and for clients,
    sent as JSON directly. BentoML would validate every answer of a body against the
    schema again, dump them twice and encode them with the standard library, for
    answers the scorer already builds to the schema (cost: loadtest/README.md)."""

    media_type = "application/json"  # else BentoML builds the JSON schema per response

    @classmethod
    async def to_http_response(cls, obj: Any, serde: Any) -> Response:
        if isinstance(obj, list):
            return json_response(obj)
        return await super().to_http_response(obj, serde)


async def _model_card(_: Any) -> JSONResponse:
    return JSONResponse(model_card(MODEL, CARD))


class Coalescer:
    """Scores the /predict records that arrive in the same event-loop turn in one call.

    Scoring one record is nearly all fixed cost per call (numpy on tiny arrays); under
    concurrency the records parsed in one turn share that cost. Nothing
    waits: a lone request is scored on the next turn. A failing batch is retried record
    by record, so one bad record cannot fail the others; the answers are then logged in
    one block, once, before any of them is returned."""

    def __init__(self, score: Any, log: Any) -> None:
        self.score = score
        self.log = log
        self.pending: list[tuple[dict[str, Any], asyncio.Future]] = []

    async def submit(self, record: dict[str, Any]) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.pending.append((record, future))
        if len(self.pending) == 1:
            loop.call_soon(self.flush)
        return await future

    def flush(self) -> None:
        batch, self.pending = self.pending, []
        scored = self._score_each(batch)
        try:
            self.log([record for record, _, _ in scored], [answer for _, answer, _ in scored])
        except Exception as err:
            for _, _, future in scored:
                future.set_exception(err)
            return
        for _, answer, future in scored:
            future.set_result(answer)

    def _score_each(self, batch: list[tuple[dict[str, Any], asyncio.Future]]) -> list[Any]:
        """(record, answer, future) of the records scored; a record that fails alone gets
        its error now."""
        try:
            answers = self.score([record for record, _ in batch])
            return [(r, a, f) for (r, f), a in zip(batch, answers, strict=True)]
        except Exception as err:
            if len(batch) == 1:
                batch[0][1].set_exception(err)
                return []
        scored = []
        for record, future in batch:
            try:
                scored.append((record, self.score([record])[0], future))
            except Exception as one:
                future.set_exception(one)
        return scored


@bentoml.service(
    name="riskbento",
    workers=SETTINGS.workers,
    traffic={"timeout": SETTINGS.request_timeout_s},
    logging={"access": {"enabled": SETTINGS.access_log}},
    # The tracing middleware runs on every request even when nothing is sampled.
    tracing={"excluded_urls": list(JSON_ROUTES)},
    # Prediction log (`serving/predlog.py`): JSON lines under the folder below, one file
    # per worker; `make drift` reads them. OTLP instead: see README "Monitoring".
    monitoring={
        "enabled": SETTINGS.prediction_log,
        "type": predlog.MONITOR_CLASS,
        "options": {"log_path": str(SETTINGS.prediction_log_dir)},
    },
)
class RiskService:
    model = bentoml.models.BentoModel(str(MODEL.tag))
    if SHADOW is not None:  # declared, so that the bento packs it
        shadow_model = bentoml.models.BentoModel(str(SHADOW.tag))

    def __init__(self) -> None:
        self.scorer = Scorer.from_store(str(self.model.tag))
        self.telemetry = telemetry.from_model(MODEL, self.scorer)  # MODEL is self.model
        self.scorer.observer = self.telemetry
        self.predlog = (
            PredictionLog(SPEC, str(self.model.tag), sample_rate=SETTINGS.prediction_log_sample)
            if SETTINGS.prediction_log
            else None
        )
        self.shadow = None
        if SHADOW is not None:
            metrics = telemetry.ShadowTelemetry(SPEC.name, str(SHADOW.tag))
            challenger = Scorer.from_store(str(SHADOW.tag))
            self.shadow = shadow.Shadow(
                challenger, self.predlog, metrics, SETTINGS.shadow_max_pending
            )
        self.coalescer = Coalescer(self.answers, self.log)
        drain.install(SETTINGS.drain_delay_s)
        # One core per worker (workers = cores): numpy's BLAS would otherwise run its
        # matrix products on a thread per core, spinning on the other workers' cores
        # (1,000-record bodies of an XGBoost use case ran a third slower).
        threadpool_limits(1)
        # The loaded model lives as long as the process: keep the garbage collector from
        # walking it on every gen-2 pass, and make those passes rarer (long p99 tails under
        # load otherwise; see `Settings.gc_full_every`). A young collection waits for
        # YOUNG_OBJECTS new objects, not Python's 700: a 1,000-record body's answers are
        # ~20,000 objects, walked ~28 times while they were built (~10 % of its CPU).
        gc.collect()
        gc.freeze()
        _, middle, _ = gc.get_threshold()
        gc.set_threshold(YOUNG_OBJECTS, middle, SETTINGS.gc_full_every)

    def answers(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return self.scorer.score_records(records, explain=SETTINGS.reasons)

    def log(
        self,
        records: list[dict[str, Any]],
        answers: list[dict[str, Any]],
        source: str | None = None,
    ) -> None:
        """Each record with its answer in the prediction log, before the answer leaves;
        then handed to the shadow challenger, if any (it never holds the answer up). A
        marked request's records (`source`) are logged as such and not shadow-scored."""
        if records and self.predlog is not None:
            self._write_log(records, answers, source)
        if records and self.shadow is not None and source is None:
            self.shadow.submit(records, answers)

    def _write_log(
        self, records: list[dict[str, Any]], answers: list[dict[str, Any]], source: str | None
    ) -> None:
        """A block that cannot be written is refused with a 503 or counted, as configured."""
        try:
            if source is None:
                self.predlog.log(records, answers)
            else:
                self.predlog.log(records, answers, source=source)
        except PredictionLogWriteError as err:
            self.telemetry.log_failures.inc(len(records))
            refuse = SETTINGS.prediction_log_on_failure == "refuse"
            logger.error("%s (%s; %s)", err, err.__cause__, "refused" if refuse else "answered")
            if refuse:
                raise ServiceUnavailable(
                    "the prediction log cannot be written, and no answer is given without "
                    "its record (RISKBENTO_PREDICTION_LOG_ON_FAILURE=refuse); retry later"
                ) from err

    def score(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Answers for flat records, each logged with its inputs when the log is on."""
        answers = self.answers(records)
        self.log(records, answers)
        return answers

    @bentoml.api(route="/predict", input_spec=Record, output_spec=Prediction)
    async def predict(self, **record: Any) -> Prediction:  # type: ignore[valid-type]
        """Score one customer: probability of the risk event, decision, tier and reasons.

        `async`: scoring takes well under a millisecond, less than a hop to the thread
        pool would add; concurrent requests are scored together (`Coalescer`). The answer
        is built by the scorer to the `Prediction` schema (tested) and sent as JSON
        directly, not validated and serialised a second time by pydantic."""
        source = SOURCE.get()
        if source is None:
            return json_response(await self.coalescer.submit(record))
        answers = self.answers([record])  # the dashboard's: rare, scored alone
        self.log([record], answers, source)
        return json_response(answers[0])

    @bentoml.api(
        route="/predict_batch",
        input_spec=RecordsBody,
        output_spec=Answers,
        batchable=True,
        max_batch_size=SETTINGS.batch_max_size,
        max_latency_ms=SETTINGS.batch_max_latency_ms,
    )
    def predict_batch(self, records: Records) -> list[Prediction]:  # type: ignore[valid-type]
        """Score many customers; answers come back in the order sent."""
        # Flat records: a validated record's __dict__ is its model_dump, read, not copied.
        rows = [r.__dict__ for r in records]
        if MARKED.waiting:
            return self._score_marked(rows)
        return self.score(rows)

    def _score_marked(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """A batch holding records of marked requests: each run of one source logged as such."""
        sources = MARKED.take(rows)
        answers = self.answers(rows)
        start = 0
        for end in range(1, len(rows) + 1):
            if end == len(rows) or sources[end] != sources[start]:
                self.log(rows[start:end], answers[start:end], sources[start])
                start = end
        return answers

    if SPEC.data.transactions is not None:

        @bentoml.api(route="/score_transactions", input_spec=TransactionsRequest)
        def score_transactions(
            self, transactions: list[Any], customers: list[Any] | None = None
        ) -> dict[str, Any]:
            """Raw transactions (and profile records where the model needs them) to answers,
            with the features computed for each customer by the training code."""
            rows = [t.model_dump() for t in transactions]
            profiles = None if customers is None else [c.model_dump() for c in customers]
            answer = self.scorer.score_transactions(rows, profiles)
            scored = answer["customers"]
            records = [{SPEC.id_column: a[SPEC.id_column], **a["features"]} for a in scored]
            self.log(records, scored, SOURCE.get())  # the request's context: anyio copies it
            return answer


# README "Security": the bearer token (only when configured) and the request body limit,
# added before RequireJSON so a caller without the token learns nothing else (401 first).
for _middleware, _options in security.middlewares(SETTINGS):
    RiskService.add_asgi_middleware(_middleware, **_options)
RiskService.add_asgi_middleware(RequireJSON)
RiskService.add_asgi_middleware(JSONErrors)
RiskService.add_asgi_middleware(drain.ReadyUntilDrain)
RiskService.mount_asgi_app(Starlette(routes=[Route("/", _model_card)]), path="/model")
RiskService.mount_asgi_app(Starlette(routes=[Route("/", dashboard.api_page)]), path="/docs")
RiskService.mount_asgi_app(
    dashboard.app(CARD, SETTINGS, token_required=security.auth_token(SETTINGS) is not None),
    path=dashboard.MOUNT_PATH,
)
