"""Every private BentoML API riskbento relies on, in one place, each with why.

BentoML is pinned (`requirements*.txt`). `tests/test_bentoml_private.py` checks each
name and the behaviour used here, so an upgrade that changes one fails there, loudly,
instead of in a served request. scikit-learn is used through public APIs only.
"""

from __future__ import annotations

from typing import Any

# An output spec that is `list[Prediction]` in the API schema and for BentoML's client,
# but whose response the service renders itself (`service.Answers`): the public output
# specs validate and serialise every answer again.
from _bentoml_sdk.io_models import ensure_io_descriptor

# The request and trace ids BentoML's own monitor adds to every prediction-log row.
from bentoml._internal.context import trace_context

# The model of adaptive batching's dispatcher: how long it holds a ready batch
# (`dispatch_without_holding`).
from bentoml._internal.marshal.dispatcher import CorkDispatcher, Optimizer

# The file monitor whose folders, daily rotation and row format the prediction log keeps,
# and its logging config, which the log changes in one place (`json_lines_logging_yaml`).
from bentoml._internal.monitoring.default import DEFAULT_CONFIG_YAML, DefaultMonitor

__all__ = [
    "CorkDispatcher",
    "DefaultMonitor",
    "Optimizer",
    "dispatch_without_holding",
    "io_descriptor",
    "json_lines_logging_yaml",
    "trace_context",
]

DATA_HANDLER_CLASS = "logging.handlers.TimedRotatingFileHandler"
_DATA_HANDLER = (
    f"    class: {DATA_HANDLER_CLASS}\n    level: INFO\n"
    "    formatter: bentoml_json\n    filename: '{data_filename}'"
)
LINES_FORMATTER = "riskbento_lines"


def io_descriptor(annotation: Any) -> type:
    """BentoML's IO descriptor class for a type, to subclass as an API's output spec."""
    return ensure_io_descriptor(annotation)


def json_lines_logging_yaml(handler_class: str) -> str:
    """DefaultMonitor's logging config with two changes to its data handler: it writes each
    message as it is (pre-rendered JSON lines), not through BentoML's JSON formatter, and
    it is `handler_class` (a subclass of BentoML's, same files and rotation)."""
    if _DATA_HANDLER not in DEFAULT_CONFIG_YAML:
        raise ImportError(
            "BentoML's DefaultMonitor logging config no longer has the data handler "
            f"riskbento rewrites ({_DATA_HANDLER!r}): check serving/bentoml_private.py"
        )
    handler = _DATA_HANDLER.replace("bentoml_json", LINES_FORMATTER)
    patched = DEFAULT_CONFIG_YAML.replace(
        _DATA_HANDLER, handler.replace(DATA_HANDLER_CLASS, handler_class)
    )
    return patched + f'  {LINES_FORMATTER}:\n    format: "%(message)s"\n'


def dispatch_without_holding() -> None:
    """Adaptive batching dispatches what is queued as soon as the model is free, and never
    holds it to wait for more: the dispatcher's learnt wait (`Optimizer.wait`) stays 0.

    BentoML's dispatcher holds the queued requests while `requests x (age of the newest +
    1 ms + cost per request) <= 0.95 x the average wait so far`, and that average counts
    the time requests queued behind the batch being scored. Under steady load it feeds on
    itself: two workers served 1,000-record bodies at 81,000 rows/s, then 70,500, 65,000
    and 65,000 in the next three runs of 7 s, the workers idling; without holding,
    81,667 to 78,667 (`loadtest/README.md`). Requests that arrive while a batch is scored
    still queue and go together in the next one, so 1-record bodies are still merged."""
    if getattr(Optimizer.trigger_refresh, "riskbento_no_hold", False):
        return
    learn = Optimizer.trigger_refresh

    def trigger_refresh(self: Optimizer) -> None:
        learn(self)  # the cost model (o_a, o_b) as BentoML fits it
        self.wait = 0

    trigger_refresh.riskbento_no_hold = True  # type: ignore[attr-defined]
    Optimizer.trigger_refresh = trigger_refresh  # type: ignore[method-assign]
