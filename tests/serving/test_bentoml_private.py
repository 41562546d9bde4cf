"""What riskbento relies on in BentoML's private APIs (serving/bentoml_private.py).

Each test names the behaviour used; a BentoML upgrade that changes one fails here,
before it fails in a served request. The behaviour end to end (answers, the log's
rows) is tested in test_service.py, test_server.py and test_drift.py."""

import inspect
from importlib import metadata
from pathlib import Path

import bentoml
import pytest
import yaml
from pydantic import BaseModel

from core.names import PROJECT_ROOT
from serving import bentoml_private
from serving.predlog import JsonLinesMonitor


def _pinned(package: str, requirements: Path) -> str:
    for line in requirements.read_text(encoding="utf-8").splitlines():
        if line.startswith(f"{package}=="):
            return line.split("==", 1)[1].strip()
    raise AssertionError(f"{package} is not pinned in {requirements}")


def test_the_installed_bentoml_is_the_pinned_one_these_checks_were_written_for():
    pin = _pinned("bentoml", PROJECT_ROOT / "requirements.txt")
    assert pin == _pinned("bentoml", PROJECT_ROOT / "requirements-serve.txt")
    assert metadata.version("bentoml") == pin, (
        "bentoml changed: re-check every private API in serving/bentoml_private.py"
    )


class _Answer(BaseModel):
    probability: float


def test_an_io_descriptor_subclass_can_render_its_own_http_response():
    """service.Answers overrides the async classmethod `to_http_response(obj, serde)` of
    the descriptor BentoML builds for `list[Prediction]`, and keeps its JSON schema."""
    descriptor = bentoml_private.io_descriptor(list[_Answer])
    hook = inspect.getattr_static(descriptor, "to_http_response")
    assert isinstance(hook, classmethod)
    assert inspect.iscoroutinefunction(descriptor.to_http_response)
    assert list(inspect.signature(descriptor.to_http_response).parameters) == ["obj", "serde"]
    schema = descriptor.model_json_schema()
    assert schema["type"] == "array"
    assert "probability" in str(schema)


def test_an_io_descriptor_subclass_can_parse_its_own_http_request():
    """service.RecordsBody overrides the async classmethod `from_http_request(request,
    serde)` of `bentoml.IODescriptor` to explain its validation errors."""
    hook = inspect.getattr_static(bentoml.IODescriptor, "from_http_request")
    assert isinstance(hook, classmethod)
    assert inspect.iscoroutinefunction(bentoml.IODescriptor.from_http_request)
    assert list(inspect.signature(bentoml.IODescriptor.from_http_request).parameters) == [
        "request",
        "serde",
    ]


def test_the_request_context_exposes_request_and_trace_ids():
    context = bentoml_private.trace_context
    assert hasattr(context, "request_id") and hasattr(context, "trace_id")


def test_the_default_monitor_has_the_hooks_the_json_lines_monitor_overrides():
    monitor = bentoml_private.DefaultMonitor
    for name in ("_init_logger", "export_data", "COLUMN_TIME", "COLUMN_RID", "COLUMN_TID"):
        assert hasattr(monitor, name), name
    init = inspect.signature(monitor.__init__).parameters
    assert "log_config_file" in init and "log_path" in init
    assert issubclass(JsonLinesMonitor, monitor)


def test_the_patched_logging_config_writes_data_rows_as_they_are():
    """The two changes to DefaultMonitor's logging config: its data handler is ours and
    uses a formatter that writes the message verbatim; everything else is BentoML's."""
    patched = bentoml_private.json_lines_logging_yaml("riskbento.Handler")
    original = bentoml_private.DEFAULT_CONFIG_YAML
    assert patched != original
    filled = {"data_filename": "/tmp/d.log", "schema_filename": "/tmp/s.log"}
    config = yaml.safe_load(patched.format(**filled))
    formatter = config["formatters"][bentoml_private.LINES_FORMATTER]
    assert formatter == {"format": "%(message)s"}
    data_handlers = [h for h in config["handlers"].values() if h.get("filename") == "/tmp/d.log"]
    assert [h["formatter"] for h in data_handlers] == [bentoml_private.LINES_FORMATTER]
    assert [h["class"] for h in data_handlers] == ["riskbento.Handler"]
    unchanged = yaml.safe_load(original.format(**filled))
    assert {k: v for k, v in config["handlers"].items() if v not in data_handlers} == {
        k: v for k, v in unchanged["handlers"].items() if v.get("filename") != "/tmp/d.log"
    }


def test_the_dispatcher_holds_batches_by_the_learnt_wait_which_stays_zero():
    """The dispatcher's hold rule reads `optimizer.wait`; BentoML learns it in
    `trigger_refresh` (the average wait of recent batches). After
    `dispatch_without_holding` the cost model is still learnt and the wait stays 0."""
    controller = inspect.getsource(bentoml_private.CorkDispatcher.controller)
    assert "self.optimizer.wait * decay" in controller
    bentoml_private.dispatch_without_holding()
    bentoml_private.dispatch_without_holding()  # a second call changes nothing
    optimizer = bentoml_private.Optimizer(max_latency=10.0)
    for n in (1, 2, 3, 4, 5, 6, 7, 8):
        optimizer.log_outbound(n=n, wait=0.5, duration=0.01 * n + 0.002)
    optimizer.trigger_refresh()
    assert optimizer.wait == 0
    assert optimizer.o_a == pytest.approx(0.01) and optimizer.o_b == pytest.approx(0.002)
