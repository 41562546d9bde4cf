"""Deployment artefacts: Kubernetes manifests (deploy/k8s), Prometheus alerts
(deploy/prometheus), the Grafana dashboard (deploy/grafana) and the CI/CD workflow
(.github/workflows). They are only worth something if they point at what the service really
serves: probe paths, ports, settings, metric names and Makefile targets are checked against
the code, and (slow tier) against a real `bentoml serve` configured like the manifests."""

import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from core.names import PROJECT_ROOT
from core.settings import Settings
from core.spec import load_spec
from loadtest.process import ServerProcess, bentoml_serve, free_port

DEPLOY = PROJECT_ROOT / "deploy"
K8S = DEPLOY / "k8s"
BASE = K8S / "base"
OVERLAYS = ("staging", "production")
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
ALERTS_TEST = DEPLOY / "prometheus" / "alerts_test.yml"
ADAPTER = DEPLOY / "prometheus" / "adapter-rules.yaml"
DASHBOARD = DEPLOY / "grafana" / "riskbento.json"
WORKFLOWS = PROJECT_ROOT / ".github" / "workflows"
MAKEFILE = PROJECT_ROOT / "Makefile"

PROBES = {"readinessProbe": "/readyz", "livenessProbe": "/livez"}
KUSTOMIZE_KINDS = {"Kustomization", "Component"}
# The interface agreed with jobs/drift.py's author (its DRIFT_METRICS).
AGREED_DRIFT_METRICS = {
    "riskbento_drift_psi",
    "riskbento_drift_detected",
    "riskbento_drift_last_run_timestamp_seconds",
}
SEVERITIES = {"warning", "critical"}
DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")
GRAFANA_BUILTINS = {"__rate_interval", "__interval", "__range", "__all"}
# Labels Prometheus adds to every scraped series on Kubernetes (not in /metrics itself).
SCRAPE_LABELS = {"job", "instance", "namespace", "pod"}


# --- reading the artefacts ---------------------------------------------------------------


def _yaml_docs(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def _k8s_files() -> list[Path]:
    return sorted(K8S.rglob("*.yaml"))


def _base_objects() -> list[dict]:
    """The base's resources as written (kustomize adds only names and the ConfigMap)."""
    kustomization = _yaml_docs(BASE / "kustomization.yaml")[0]
    return [doc for name in kustomization["resources"] for doc in _yaml_docs(BASE / name)]


def _one(objects: list[dict], kind: str) -> dict:
    found = [o for o in objects if o["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def _config_literals(kustomization: Path) -> dict[str, str]:
    out = {}
    for generator in _yaml_docs(kustomization)[0].get("configMapGenerator", []):
        for literal in generator.get("literals", []):
            key, _, value = literal.partition("=")
            out[key] = value
    return out


def _kustomize() -> list[str] | None:
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    return None


def _render(overlay: str) -> list[dict]:
    command = _kustomize()
    if command is None:
        pytest.skip("neither kustomize nor kubectl is installed")
    done = subprocess.run(
        [*command, str(K8S / "overlays" / overlay)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc is not None]


def _alert_rules() -> list[dict]:
    return [rule for group in _yaml_docs(ALERTS)[0]["groups"] for rule in group["rules"]]


def _dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def _panels(dashboard: dict) -> Iterator[dict]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])  # panels folded into a collapsed row


def _dashboard_exprs(dashboard: dict) -> list[str]:
    return [t["expr"] for p in _panels(dashboard) for t in p.get("targets", []) if "expr" in t]


def _template_queries(dashboard: dict) -> list[str]:
    queries = []
    for variable in dashboard["templating"]["list"]:
        if variable["type"] != "query":
            continue
        query = variable["query"]
        queries.append(query["query"] if isinstance(query, dict) else query)
    return queries


def _adapter_queries() -> list[str]:
    return [rule["seriesQuery"] for rule in _yaml_docs(ADAPTER)[0]["rules"]["custom"]]


def _workflows() -> list[tuple[Path, dict]]:
    return [(path, _yaml_docs(path)[0]) for path in sorted(WORKFLOWS.glob("*.y*ml"))]


def _makefile_targets() -> set[str]:
    return set(re.findall(r"^([a-zA-Z0-9_.-]+)\s*:(?!=)", MAKEFILE.read_text(), re.MULTILINE))


# --- metric names in PromQL --------------------------------------------------------------

_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_NAME = re.compile(r"(?<![\w:.$])[a-zA-Z_:][a-zA-Z0-9_:]*")
_KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "bool", "offset", "inf", "nan", "atan2",
}  # fmt: skip


def promql_metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (functions, keywords, labels left out)."""
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGES.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    names = set()
    for match in _NAME.finditer(text):
        if match.group() in _KEYWORDS or text[match.end() :].lstrip().startswith("("):
            continue
        names.add(match.group())
    return names


def _label_values_metrics(query: str) -> set[str]:
    """`label_values(<selector>, <label>)` (Grafana's variable query) -> metric names."""
    match = re.fullmatch(r"\s*label_values\((.*),\s*\w+\s*\)\s*", query)
    assert match, f"expected a label_values(metric, label) query, got {query!r}"
    return promql_metric_names(match.group(1))


def _referenced_metrics() -> dict[str, set[str]]:
    """{metric name: where it is used} over alerts, dashboard and adapter rules."""
    used: dict[str, set[str]] = {}
    dashboard = _dashboard()
    sources = [(r["expr"], f"alert {r['alert']}") for r in _alert_rules()]
    sources += [(e, "dashboard") for e in _dashboard_exprs(dashboard)]
    sources += [(q, "adapter-rules.yaml") for q in _adapter_queries()]
    for expr, where in sources:
        for name in promql_metric_names(expr):
            used.setdefault(name, set()).add(where)
    for query in _template_queries(dashboard):
        for name in _label_values_metrics(query):
            used.setdefault(name, set()).add("dashboard variable")
    return used


def _exposition_names(text: str) -> set[str]:
    """Sample names in Prometheus text format (histograms as _bucket, _sum, _count)."""
    return {
        re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group()
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


def _exposition_labels(text: str) -> dict[str, set[str]]:
    """{sample name: label names seen on it} in Prometheus text format."""
    out: dict[str, set[str]] = {}
    for line in text.splitlines():
        match = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s", line)
        if match and not line.startswith("#"):
            labels = set(re.findall(r'(\w+)="', match.group(2) or ""))
            out.setdefault(match.group(1), set()).update(labels)
    return out


def _labels_used(expr: str) -> tuple[dict[str, set[str]], set[str]]:
    """({metric: label names in its matchers}, label names in by/on/without/ignoring)."""
    text = _STRING.sub('""', expr)
    matchers: dict[str, set[str]] = {}
    for name, body in re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}", text):
        matchers.setdefault(name, set()).update(re.findall(r"(\w+)\s*[=!]", body))
    grouping = set()
    for clause in re.findall(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", text):
        grouping |= {label.strip() for label in clause.split(",") if label.strip()}
    return matchers, grouping


# Metrics pushed by offline jobs, by name prefix; every other name is the server's.
JOB_PREFIXES = ("riskbento_drift_", "riskbento_outcome_")


def _job_prefix(name: str) -> str | None:
    return next((p for p in JOB_PREFIXES if name.startswith(p)), None)


def _assert_labels_exist(labels: dict[str, set[str]], prefix: str | None) -> None:
    """Label names in matchers and in by/on clauses of every alert, panel and adapter query
    exist on the metrics they touch (one job's, by `prefix`, or the server's with None): a
    typo there silently selects nothing."""
    exprs = [r["expr"] for r in _alert_rules()] + _dashboard_exprs(_dashboard())
    for expr in exprs + _adapter_queries():
        matchers, grouping = _labels_used(expr)
        names = {n for n in promql_metric_names(expr) if _job_prefix(n) == prefix}
        for name, used in matchers.items():
            if name in names:
                assert used <= labels[name], (expr, name, used - labels[name])
        if names and grouping:
            known = set().union(*(labels[n] for n in names))
            assert grouping <= known, (expr, grouping - known)


def _drift_exposition() -> str:
    """What the drift job writes and pushes, for a run with two columns."""
    from prometheus_client import generate_latest

    from jobs import drift

    # Only the attributes metrics_registry reads; building a real run needs a model and a log.
    run = SimpleNamespace(
        use_case="credit_risk",
        detected=True,
        written_at=datetime.now(UTC),
        columns=[SimpleNamespace(name="score", psi=0.3), SimpleNamespace(name="x", psi=0.01)],
    )
    return generate_latest(drift.metrics_registry(run)).decode()


def _drift_metric_names() -> set[str]:
    from jobs.drift import DRIFT_METRICS

    return set(DRIFT_METRICS)


def _outcome_exposition() -> str:
    """What the outcomes job writes and pushes, for one judged week and one comparison."""
    from prometheus_client import generate_latest

    from core.spec import Outcomes
    from jobs import outcomes

    # Only the attributes metrics_registry reads; a real run needs labels and a log.
    week = {
        "vintage": "2026-W40",
        "model_tag": "credit_risk:a",
        "role": "champion",
        "rows": 120,
        "status": outcomes.OK,
        "roc_auc": 0.8,
        "calibration_gap": 0.01,
    }
    comparison = SimpleNamespace(
        champion="credit_risk:a",
        shadow="credit_risk_challenger:b",
        decision=SimpleNamespace(promote=True),
    )
    run = SimpleNamespace(
        use_case="credit_risk", vintages=[week, {**week, "vintage": outcomes.ALL}],
        floors=Outcomes(), written_at=datetime.now(UTC), comparisons=[comparison],
    )  # fmt: skip
    return generate_latest(outcomes.metrics_registry(run)).decode()


def _outcome_metric_names() -> set[str]:
    from jobs.outcomes import OUTCOME_METRICS

    return set(OUTCOME_METRICS)


def test_promql_metric_names_finds_metrics_not_functions_labels_or_durations():
    expr = (
        'histogram_quantile(0.99, sum by (le, endpoint) (rate(a_bucket{endpoint=~"/p|/q",'
        'le!="x"}[5m]))) / on (use_case) group_left max by (use_case) (b) - 1 > 0.5 '
        "and on (use_case) time() - c_seconds offset 1h > 2 * 86400 and sum(d[1h:5m]) > 1e-3"
    )
    assert promql_metric_names(expr) == {"a_bucket", "b", "c_seconds", "d"}
    assert _label_values_metrics("label_values(riskbento_model_info, use_case)") == {
        "riskbento_model_info"
    }
    assert _labels_used(
        'sum by (use_case, le) (rate(x{a="1", b!~"{2}"}[5m])) / on (use_case) group_left y'
    ) == ({"x": {"a", "b"}}, {"use_case", "le"})


# --- Kubernetes --------------------------------------------------------------------------


def test_every_manifest_parses_and_every_kustomize_path_exists():
    files = _k8s_files()
    assert BASE / "deployment.yaml" in files
    for path in files:
        docs = _yaml_docs(path)
        assert docs, f"{path}: expected at least one YAML document, got none"
        for doc in docs:
            assert isinstance(doc, dict), f"{path}: expected a mapping, got {type(doc)}"
            assert doc.get("apiVersion") and doc.get("kind"), f"{path}: apiVersion/kind missing"
            if doc["kind"] in KUSTOMIZE_KINDS:
                refs = doc.get("resources", []) + doc.get("components", [])
                refs += [p["path"] for p in doc.get("patches", []) if "path" in p]
                for ref in refs:
                    assert (path.parent / ref).exists(), f"{path}: {ref} does not exist"
            else:
                assert doc.get("metadata", {}).get("name"), f"{path}: metadata.name missing"


def _check_wiring(objects: list[dict]) -> None:
    """Probes, ports, selectors and references inside one set of objects agree."""
    deployment = _one(objects, "Deployment")
    pod = deployment["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    pod_labels = pod["metadata"]["labels"]

    # The port the containerized image serves on: BentoML's default (BENTOML_PORT).
    from bentoml._internal.configuration.containers import BentoMLContainer

    assert ports == {"http": BentoMLContainer.http.port.get()}
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(ports["http"])
    assert pod["metadata"]["annotations"]["prometheus.io/path"] == "/metrics"
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    for probe, path in PROBES.items():
        action = container[probe]["httpGet"]
        assert action["path"] == path, f"{probe}: expected {path}, got {action['path']}"
        assert action["port"] in ("http", ports["http"]), f"{probe}: port {action['port']}"
    startup = container["startupProbe"]["httpGet"]
    assert startup["path"] in PROBES.values() and startup["port"] in ("http", ports["http"])

    service = _one(objects, "Service")
    assert service["spec"]["selector"].items() <= pod_labels.items()
    for port in service["spec"]["ports"]:
        assert port["targetPort"] in (*ports, *ports.values()), port
    hpa = _one(objects, "HorizontalPodAutoscaler")
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    pdb = _one(objects, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()

    # One worker per requested core: the sizing the load test measured.
    env = _container_env(objects, container)
    cpu = container["resources"]["requests"]["cpu"]
    cores = float(cpu[:-1]) / 1000 if cpu.endswith("m") else float(cpu)
    assert int(env["RISKBENTO_WORKERS"]) == cores, (env["RISKBENTO_WORKERS"], cpu)

    for route in (o for o in objects if o["kind"] == "HTTPRoute"):
        for rule in route["spec"]["rules"]:
            for backend in rule["backendRefs"]:
                assert backend["name"] == service["metadata"]["name"]
                assert backend["port"] in [p["port"] for p in service["spec"]["ports"]]
    for policy in (o for o in objects if o["kind"] == "HealthCheckPolicy"):
        check = policy["spec"]["default"]["config"]["httpHealthCheck"]
        assert check["requestPath"] == "/readyz" and check["port"] == ports["http"]
        assert policy["spec"]["targetRef"]["name"] == service["metadata"]["name"]


def _container_env(objects: list[dict], container: dict) -> dict[str, str]:
    """The container's environment: its ConfigMaps (or, unrendered, the generator's
    literals) and its own `env`."""
    env: dict[str, str] = {}
    maps = {o["metadata"]["name"]: o.get("data", {}) for o in objects if o["kind"] == "ConfigMap"}
    for source in container.get("envFrom", []):
        name = source["configMapRef"]["name"]
        env |= maps[name] if maps else _config_literals(BASE / "kustomization.yaml")
    env |= {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
    return env


def test_base_probes_ports_and_selectors_point_at_the_service():
    _check_wiring(_base_objects())


@pytest.mark.integration
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_rendered_overlay_is_wired_and_configured(overlay):
    objects = _render(overlay)
    _check_wiring(objects)
    deployment = _one(objects, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"].split(":")[0].rsplit("/", 1)[-1] == "riskbento"
    namespaces = {o["metadata"].get("namespace") for o in objects}
    assert len(namespaces) == 1 and None not in namespaces, namespaces
    env = _container_env(objects, container)
    secret_mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
    assert str(Path(env["RISKBENTO_AUTH_TOKEN_FILE"]).parent) in secret_mounts
    hpa = _one(objects, "HorizontalPodAutoscaler")
    kinds = {m["type"] for m in hpa["spec"]["metrics"]}
    if overlay == "production":
        assert hpa["spec"]["minReplicas"] >= 2  # the PodDisruptionBudget needs a second pod
        assert kinds == {"Resource", "Pods"}
    else:
        assert kinds == {"Resource"}


def test_config_names_real_settings_with_valid_values():
    fields = {f"RISKBENTO_{name.upper()}": name for name in Settings.model_fields}
    sources = [K8S / "base" / "kustomization.yaml"]
    sources += [K8S / "overlays" / o / "kustomization.yaml" for o in OVERLAYS]
    env = {}
    for source in sources:
        env |= {k: v for k, v in _config_literals(source).items() if k.startswith("RISKBENTO_")}
    for path in _k8s_files():
        for doc in _yaml_docs(path):
            for container in (
                doc.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
            ):
                env |= {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
    unknown = sorted(set(env) - set(fields))
    assert not unknown, f"expected RISKBENTO_* names from core/settings.py, got {unknown}"
    # Validates types (workers an int, access log a bool) the way the server will read them.
    Settings.model_validate({fields[k]: v for k, v in env.items()})
    # `make image` bakes these into the image; set here they would override its own model.
    assert not {"RISKBENTO_USE_CASE", "RISKBENTO_MODEL_TAG"} & set(env), sorted(env)


# --- Prometheus and Grafana --------------------------------------------------------------


def test_alert_rules_are_well_formed():
    groups = _yaml_docs(ALERTS)[0]["groups"]
    assert groups and all(g["name"] and g["rules"] for g in groups)
    names = [rule["alert"] for rule in _alert_rules()]
    assert len(names) == len(set(names)), f"duplicate alert names in {names}"
    for rule in _alert_rules():
        where = f"alert {rule.get('alert')!r}"
        assert set(rule) == {"alert", "expr", "for", "labels", "annotations"}, where
        assert isinstance(rule["expr"], str) and promql_metric_names(rule["expr"]), where
        assert DURATION.match(rule["for"]), f"{where}: for {rule['for']!r}"
        assert rule["labels"]["severity"] in SEVERITIES, where
        assert {"summary", "description"} <= set(rule["annotations"]), where
    covered = " ".join(r["expr"] for r in _alert_rules())
    for metric in (
        "bentoml_service_request_duration_seconds_bucket",  # p99 latency
        "bentoml_service_request_total",  # error rate
        "riskbento_drift_detected",  # drift
        "riskbento_reference_score_mean",  # score shift
        "riskbento_reference_tier_share",  # tier mix
        "riskbento_prediction_log_failures_total",  # the decision log
    ):
        assert metric in covered, f"no alert on {metric}"


def _promtool() -> str:
    path = shutil.which("promtool") or shutil.which("promtool", path=Path(sys.executable).parent)
    if path is None:
        pytest.skip("promtool not installed: make install-promtool")
    return path


@pytest.mark.integration
def test_promtool_accepts_the_alert_rules():
    done = subprocess.run(
        [_promtool(), "check", "rules", str(ALERTS)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.integration
def test_alerts_fire_on_bad_traffic_and_stay_quiet_on_good_traffic():
    """deploy/prometheus/alerts_test.yml: synthetic series through promtool's rule engine."""
    done = subprocess.run(
        [_promtool(), "test", "rules", ALERTS_TEST.name],
        cwd=ALERTS_TEST.parent, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    tested = set(re.findall(r"alertname: (\w+)", ALERTS_TEST.read_text()))
    assert tested == {rule["alert"] for rule in _alert_rules()}, "an alert has no unit test"


def test_dashboard_is_a_valid_grafana_dashboard():
    dashboard = _dashboard()
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 36
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert "datasource" in variables
    panels = list(_panels(dashboard))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24 and grid["h"] > 0, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            used = set(re.findall(r"\$\{?(\w+)", target["expr"]))
            assert used <= variables | GRAFANA_BUILTINS, (panel["title"], used - variables)


@pytest.mark.integration
def test_dashboard_promql_parses(tmp_path):
    """Each panel's query (variables filled in) as a recording rule through promtool."""
    promtool = _promtool()
    exprs = [
        e.replace("$__rate_interval", "5m").replace("$use_case", ".*")
        for e in _dashboard_exprs(_dashboard())
    ]
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{i}", "expr": e} for i, e in enumerate(exprs)
    ]}]}  # fmt: skip
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump(rules))
    done = subprocess.run(
        [promtool, "check", "rules", str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_drift_metric_names_match_the_drift_module():
    """The alerts and dashboard use jobs/drift.py's names, the ones agreed with its
    author."""
    drift = _drift_metric_names()
    assert drift == AGREED_DRIFT_METRICS, f"drift.py exports {sorted(drift)}"
    written = _drift_exposition()
    assert _exposition_names(written) == drift
    used = {n for n in _referenced_metrics() if n.startswith("riskbento_drift_")}
    assert used and used <= drift, f"unknown drift metrics {sorted(used - drift)}"
    # Pushed metrics get the Pushgateway's job and instance labels on top of their own.
    labels = {n: found | {"job", "instance"} for n, found in _exposition_labels(written).items()}
    _assert_labels_exist(labels, "riskbento_drift_")


def test_outcome_metric_names_match_the_outcomes_module():
    """The alerts and dashboard use jobs/outcomes.py's names and labels."""
    names = _outcome_metric_names()
    written = _outcome_exposition()
    assert _exposition_names(written) == names
    used = {n for n in _referenced_metrics() if n.startswith("riskbento_outcome_")}
    assert used and used <= names, f"unknown outcome metrics {sorted(used - names)}"
    labels = {n: found | {"job", "instance"} for n, found in _exposition_labels(written).items()}
    _assert_labels_exist(labels, "riskbento_outcome_")


# --- CI/CD -------------------------------------------------------------------------------


def _run_steps(workflow: dict) -> Iterator[tuple[str, str]]:
    for job_name, job in workflow["jobs"].items():
        for step in job.get("steps", []):
            if "run" in step:
                yield job_name, step["run"]


def test_workflow_make_targets_exist_in_the_makefile():
    targets = _makefile_targets()
    called = set()
    for path, workflow in _workflows():
        for job, script in _run_steps(workflow):
            for target in re.findall(r"(?<![\w-])make\s+([a-zA-Z0-9_.-]+)", script):
                assert target in targets, f"{path.name} job {job}: `make {target}` not in Makefile"
                called.add(target)
    assert {"lint", "test", "train", "image", "image-smoke"} <= called, called


PIPELINE = ("lint", "test", "train", "image", "deploy-staging", "smoke-staging", "promote")


def _upstream(jobs: dict, name: str, seen: frozenset = frozenset()) -> set[str]:
    """Every job `name` waits for, directly or not."""
    assert name not in seen, f"cycle through job {name}"
    needs = jobs[name].get("needs", [])
    needs = [needs] if isinstance(needs, str) else needs
    out = set(needs)
    for need in needs:
        assert need in jobs, f"job {name} needs unknown job {need}"
        out |= _upstream(jobs, need, seen | {name})
    return out


def test_workflow_runs_the_pipeline_in_order_with_a_gate_before_production():
    workflows = _workflows()
    assert workflows, "no workflow under .github/workflows"
    for path, workflow in workflows:
        jobs = workflow["jobs"]
        assert workflow.get("on", workflow.get(True)), f"{path.name}: no triggers"  # YAML 1.1: on
        for earlier, later in itertools.pairwise(PIPELINE):
            assert earlier in _upstream(jobs, later), f"{path.name}: {later} before {earlier}"
        environment = jobs["promote"]["environment"]
        name = environment["name"] if isinstance(environment, dict) else environment
        assert name == "production", f"{path.name}: promote runs in {name!r}"
        for job in jobs.values():
            for step in job.get("steps", []):
                if "uses" in step:
                    assert re.search(r"@v\d+|@[0-9a-f]{40}$", step["uses"]), step["uses"]


# --- a real server, configured like the manifests ------------------------------------------


def _request(url: str, body: dict | None = None, token: str | None = None) -> tuple[int, str]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="GET" if body is None else "POST")
    if body is not None:
        request.add_header("Content-Type", "application/json")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


@pytest.fixture(scope="module")
def served(trained_tag, tmp_path_factory) -> Iterator[tuple[str, str]]:
    """(url, token) of `bentoml serve` with the production overlay's settings and token file."""
    folder = tmp_path_factory.mktemp("deploy")
    token = "deploy-test-token-0123456789"
    (folder / "token").write_text(token + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISKBENTO_")}
    env |= _config_literals(BASE / "kustomization.yaml")
    env |= {
        "RISKBENTO_MODEL_TAG": trained_tag("credit_risk"),  # what `make image` bakes in
        "RISKBENTO_AUTH_TOKEN_FILE": str(folder / "token"),
    }
    server = ServerProcess("bentoml serve", bentoml_serve(free_port()), env, folder / "log")
    try:
        server.wait_ready()
        yield server.url, token
    finally:
        server.stop()


@pytest.mark.slow
def test_probes_answer_on_a_server_configured_like_the_deployment(served):
    """The kubelet sends no token: every probe path in the Deployment must answer 200."""
    url, _ = served
    (container,) = _one(_base_objects(), "Deployment")["spec"]["template"]["spec"]["containers"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        path = container[probe]["httpGet"]["path"]
        assert _request(f"{url}{path}")[0] == 200, f"{probe} {path}"


@pytest.mark.slow
def test_every_metric_in_alerts_dashboard_and_adapter_is_exported(served):
    url, token = served
    contract = json.loads((PROJECT_ROOT / "examples" / "credit_risk.json").read_text())
    spec = load_spec(PROJECT_ROOT / "usecases" / "credit_risk.yaml", check_data=False)
    top = next(f.max for f in spec.features if f.name == "num_transactions")
    odd = {**contract, "customer_id": "ODD", "num_transactions": int(top)}  # beyond training
    for record in (contract, odd):
        status, text = _request(f"{url}/predict", record, token)
        assert status == 200, text
    assert json.loads(text)["warnings"], "expected a warning for the out-of-range value"
    status, text = _request(f"{url}/predict_batch", {"records": [contract] * 3}, token)
    assert status == 200, text
    assert _request(f"{url}/predict", contract)[0] == 401  # the token is really required

    status, metrics = _request(f"{url}/metrics")  # Prometheus scrapes without a token
    assert status == 200
    exported = _exposition_names(metrics)
    jobs = {
        "riskbento_drift_": _drift_metric_names(),
        "riskbento_outcome_": _outcome_metric_names(),
    }
    missing = {
        name: sorted(where)
        for name, where in _referenced_metrics().items()
        if name not in jobs.get(_job_prefix(name), exported)
    }
    assert not missing, f"referenced but not exported: {missing}"

    labels = {name: found | SCRAPE_LABELS for name, found in _exposition_labels(metrics).items()}
    _assert_labels_exist(labels, None)
    warned = [
        line
        for line in metrics.splitlines()
        if line.startswith("riskbento_warnings_total{")
        and 'field="num_transactions"' in line
        and 'kind="out_of_range"' in line
    ]
    assert warned and float(warned[0].rsplit(" ", 1)[1]) >= 1, warned
