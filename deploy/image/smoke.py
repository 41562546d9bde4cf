"""`make image-smoke`: start a riskbento image on 127.0.0.1, wait for /readyz, send the
use case's example request, check the answer, stop the container.

    python deploy/image/smoke.py [--image riskbento-credit_risk:latest] [--use-case credit_risk]

Standard library, `docker` and nothing else, so it runs anywhere the image does. Besides the
answer it checks what the image promises: the model inside it is the one its envs name, the
server runs as a non-root user, and no variable in the image looks like a secret.
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TIERS = ("low", "medium", "high")
MODEL_TAG_ENV = "RISKBENTO_MODEL_TAG"
SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|CREDENTIAL", re.IGNORECASE)
READY_TIMEOUT_S = 180.0


class SmokeFailed(Exception):
    pass


def check_answer(request: dict[str, Any], answer: Any, id_column: str, model_tag: str) -> list[str]:
    """What is wrong with a /predict answer to `request` (empty when it is right)."""
    if not isinstance(answer, dict):
        return [f"answer: expected a JSON object, got {answer!r}"]
    problems = []
    if answer.get(id_column) != request.get(id_column):
        got = answer.get(id_column)
        problems.append(f"{id_column}: expected {request.get(id_column)!r} echoed, got {got!r}")
    probability = answer.get("probability")
    if (
        not isinstance(probability, int | float)
        or isinstance(probability, bool)
        or not 0.0 <= probability <= 1.0
    ):
        problems.append(f"probability: expected a number in [0, 1], got {probability!r}")
    prediction = answer.get("prediction")
    if prediction not in (0, 1) or isinstance(prediction, bool):
        problems.append(f"prediction: expected 0 or 1, got {prediction!r}")
    if answer.get("risk_tier") not in TIERS:
        problems.append(f"risk_tier: expected one of {TIERS}, got {answer.get('risk_tier')!r}")
    if answer.get("model") != model_tag:
        problems.append(f"model: expected {model_tag!r} (the image's), got {answer.get('model')!r}")
    return problems


def secret_like_envs(env: list[str]) -> list[str]:
    """Names of image variables that look like credentials (`NAME=value` entries); a
    `*_FILE` variable only points at a file mounted at run time, like
    RISKBENTO_AUTH_TOKEN_FILE."""
    names = [entry.split("=", 1)[0] for entry in env]
    return [n for n in names if SECRET_NAME.search(n) and not n.upper().endswith("_FILE")]


def _docker(*args: str) -> str:
    done = subprocess.run(["docker", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SmokeFailed(f"docker {' '.join(args)}: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout.strip()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _http(method: str, url: str, body: bytes | None = None) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json"} if body is not None else {}
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def _network_mode(choice: str) -> str:
    """`bridge` publishes 127.0.0.1:port; a daemon started without a bridge needs `host`."""
    if choice != "auto":
        return choice
    names = _docker("network", "ls", "--format", "{{.Name}}").split()
    return "bridge" if "bridge" in names else "host"


def _why(container: str) -> str:
    """The server's own error lines (a start-up failure ends in a long circus traceback)."""
    logs = subprocess.run(["docker", "logs", container], capture_output=True, text=True)
    lines = (logs.stdout + logs.stderr).splitlines()
    errors = list(dict.fromkeys(line for line in lines if "[ERROR]" in line))
    return "\n".join(errors[-5:] or lines[-15:])


def _wait_ready(base: str, container: str) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < READY_TIMEOUT_S:
        if _docker("inspect", "-f", "{{.State.Running}}", container) != "true":
            raise SmokeFailed(f"container exited before ready:\n{_why(container)}")
        try:
            if _http("GET", f"{base}/readyz")[0] == 200:
                return time.perf_counter() - started
        except OSError:
            pass
        time.sleep(0.5)
    raise SmokeFailed(f"{base}/readyz not 200 after {READY_TIMEOUT_S:.0f} s")


# Why serving needs each of the image's largest Python packages (`make image-smoke` lists
# the ten largest; one missing here is printed as unexplained: drop it or say why).
NEEDED_FOR = {
    "xgboost": "the XGBoost models (xgboost-cpu: no CUDA libraries)",
    "sklearn": "the fitted transformer and estimators inside every stored pipeline",
    "scipy": "scikit-learn's own import (sparse matrices, linear algebra)",
    "numpy": "the numpy scoring path and every model",
    "numpy.libs": "numpy's bundled BLAS",
    "scipy.libs": "scipy's bundled BLAS",
    "pandas": "/score_transactions features and the full-pipeline path",
    "bentoml": "the server",
    "_bentoml_impl": "the server (BentoML's implementation half)",
    "_bentoml_sdk": "the server (BentoML's SDK half)",
    "pydantic_core": "request validation",
    "pydantic": "request and answer models, the model card",
    "uvloop": "the server's event loop (faster than asyncio's)",
    "opentelemetry": "BentoML's tracing (a BentoML dependency)",
    "aiohttp": "BentoML's client and runner transport (a BentoML dependency)",
    "yaml": "BentoML's configuration, the spec schema",
    "orjson": "answers and the prediction log as JSON",
    "uv": "BentoML's image build installs packages with it",
    "pip": "the venv's installer (BentoML's image build)",
    "rich": "BentoML's command line (a BentoML dependency)",
    "pygments": "rich's highlighting (a BentoML dependency via rich)",
    "prometheus_client": "the /metrics endpoint",
    "starlette": "the ASGI app BentoML serves and riskbento's middleware",
    "httptools": "the server's HTTP parser (faster than h11)",
    "joblib": "loading the stored pipeline",
    "tzdata": "pandas' time zones",
    "pytz": "pandas' time zones",
}
LARGEST_SHOWN = 10


def largest_packages(image: str) -> list[tuple[str, int]]:
    """The image's largest top-level entries in its venv's site-packages, in kB."""
    script = (
        'cd "$(python -c "import sysconfig; print(sysconfig.get_paths()[\'purelib\'])")" '
        "&& du -sk -- * | sort -rn | head -n " + str(LARGEST_SHOWN * 3)
    )
    out = _docker("run", "--rm", "--entrypoint", "sh", image, "-c", script)
    entries = []
    for line in out.splitlines():
        size, name = line.split("\t", 1)
        if name.endswith((".dist-info", ".pth")) or name == "__pycache__":
            continue
        entries.append((name, int(size)))
    return entries[:LARGEST_SHOWN]


def smoke(image: str, use_case: str, network: str) -> None:
    config = json.loads(_docker("image", "inspect", "-f", "{{json .Config}}", image))
    env = config.get("Env") or []
    leaked = secret_like_envs(env)
    if leaked:
        raise SmokeFailed(f"image variables that look like secrets: {leaked}")
    model_tag = dict(e.split("=", 1) for e in env).get(MODEL_TAG_ENV)
    if not model_tag:
        raise SmokeFailed(f"image {image}: expected {MODEL_TAG_ENV} in its envs, found none")
    request_path = EXAMPLES / f"{use_case}.json"
    request = json.loads(request_path.read_text())

    mode = _network_mode(network)
    port = _free_port()
    run = ["run", "-d"]  # removed in `finally`, after its logs are read
    if mode == "host":
        run += ["--network", "host", image, "--host", "127.0.0.1", "--port", str(port)]
    else:
        run += ["-p", f"127.0.0.1:{port}:3000", image]
    started = time.perf_counter()
    container = _docker(*run)
    base = f"http://127.0.0.1:{port}"
    try:
        waited = _wait_ready(base, container)
        print(f"[smoke] {image} ready on {base} ({mode} network) after {waited:.1f} s")
        uid = _docker("exec", container, "id", "-u")
        if uid == "0":
            raise SmokeFailed("the server runs as root (uid 0); expected a non-root user")
        status, body = _http("GET", f"{base}/model")
        if status != 200:
            raise SmokeFailed(f"GET /model: expected 200, got {status} {body[:200]!r}")
        card = json.loads(body)
        if card.get("tag") != model_tag:
            raise SmokeFailed(f"GET /model: expected tag {model_tag!r}, got {card.get('tag')!r}")
        id_column = card["spec"]["id_column"]
        sent = json.dumps(request).encode()
        print(f"[smoke] POST /predict {sent.decode()}")
        status, body = _http("POST", f"{base}/predict", sent)
        print(f"[smoke] -> {status} {body.decode()}")
        if status != 200:
            raise SmokeFailed(f"POST /predict: expected 200, got {status}")
        problems = check_answer(request, json.loads(body), id_column, model_tag)
        if problems:
            raise SmokeFailed("wrong answer: " + "; ".join(problems))
        print(f"[smoke] ok: model {model_tag} inside the image, uid {uid}, answer checked")
        for name, kb in largest_packages(image):
            why = NEEDED_FOR.get(name, "NOT EXPLAINED: drop it from the image or say why")
            print(f"[smoke] package {name}: {kb / 1024:,.1f} MB, {why}")
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True)
        print(f"[smoke] container stopped; {time.perf_counter() - started:.1f} s in all")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--use-case", default="credit_risk", help="sends examples/<name>.json")
    parser.add_argument("--image", help="default riskbento-<use case>:latest (`make image`)")
    parser.add_argument("--network", choices=("auto", "host", "bridge"), default="auto")
    args = parser.parse_args(argv)
    image = args.image or f"riskbento-{args.use_case}:latest"
    try:
        smoke(image, args.use_case, args.network)
    except (SmokeFailed, FileNotFoundError) as err:
        print(f"[smoke] FAILED: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
