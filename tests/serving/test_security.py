"""Security: the bearer token, the request body limit, model file hashes and what never
leaves the server (the token in answers and logs, secrets in the bento)."""

import asyncio
import hmac
import json
import logging
import os
import secrets
import shutil
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import bentoml
import pathspec
import pytest
import yaml
from bentoml._internal.models.model import ModelStore
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from core.datafiles import file_sha256
from core.names import PROJECT_ROOT
from core.settings import Settings
from loadtest.process import ServerProcess, bentoml_serve, free_port
from model import store
from serving import security

TOKEN = secrets.token_urlsafe(32)
NEAR_MISS = TOKEN[:-1] + ("A" if TOKEN[-1] != "A" else "B")
SCORING = ("/predict", "/predict_batch", "/score_transactions")
LIMIT, TRANSACTIONS_LIMIT = 1_000, 5_000
CONTRACT = json.loads((PROJECT_ROOT / "examples" / "credit_risk.json").read_text())
_ENV = ("AUTH_TOKEN", "AUTH_TOKEN_FILE", "MAX_BODY_BYTES", "MAX_TRANSACTIONS_BODY_BYTES")


@pytest.fixture(autouse=True)
def _no_security_env(monkeypatch):
    for name in _ENV:
        monkeypatch.delenv(f"RISKBENTO_{name}", raising=False)


async def _echo(request: Request) -> JSONResponse:
    body = await request.body()
    return JSONResponse({"path": request.url.path, "bytes": len(body), "body": body.decode()})


def tiny_app(token: str | None = TOKEN) -> security.App:
    """A stand-in for the service: every path the real one has, answering what it received,
    behind the middlewares in the order `security.middlewares` gives them."""
    paths = [*SCORING, "/livez", "/readyz", "/healthz", "/metrics", "/model", "/docs", "/"]
    app = Starlette(routes=[Route(p, _echo, methods=["GET", "POST"]) for p in paths])
    wrapped = security.BodyLimit(
        app, max_bytes=LIMIT, route_max_bytes={"/score_transactions": TRANSACTIONS_LIMIT}
    )
    return wrapped if token is None else security.BearerAuth(wrapped, token=SecretStr(token))


@pytest.fixture
def client() -> TestClient:
    return TestClient(tiny_app())


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# ---------------------------------------------------------------- bearer token


@pytest.mark.parametrize("path", SCORING)
def test_scoring_without_a_token_gets_401_with_a_bearer_challenge(client, path):
    response = client.post(path, json=CONTRACT)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "Authorization: Bearer <token>" in response.json()["error"]


@pytest.mark.parametrize(
    "header",
    [f"Bearer {NEAR_MISS}", f"Bearer {TOKEN}x", "Bearer ", TOKEN, f"Basic {TOKEN}"],
    ids=["near-miss", "longer", "empty", "no-scheme", "basic-scheme"],
)
def test_a_wrong_token_gets_401_that_never_echoes_what_was_sent(client, header):
    response = client.post("/predict", json=CONTRACT, headers={"Authorization": header})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert TOKEN not in response.text and NEAR_MISS not in response.text


def test_invalid_token_is_named_in_the_challenge(client):
    response = client.post("/predict", json=CONTRACT, headers=bearer(NEAR_MISS))
    assert response.json() == {"error": "invalid bearer token"}
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


@pytest.mark.parametrize("path", SCORING)
def test_the_right_token_reaches_the_endpoint_with_the_body_intact(client, path):
    response = client.post(path, json=CONTRACT, headers=bearer(TOKEN))
    assert response.status_code == 200
    assert json.loads(response.json()["body"]) == CONTRACT


def test_scheme_is_case_insensitive(client):
    headers = {"Authorization": f"bearer {TOKEN}"}
    assert client.post("/predict", json=CONTRACT, headers=headers).status_code == 200


@pytest.mark.parametrize(
    "method,path",
    [("GET", p) for p in ("/livez", "/readyz", "/healthz", "/metrics", "/model", "/docs", "/")]
    + [("POST", "/readyz")],
)
def test_probes_metrics_and_api_pages_stay_open(client, method, path):
    assert client.request(method, path).status_code == 200


@pytest.mark.parametrize("method,path", [("POST", "/model"), ("POST", "/"), ("GET", "/nope")])
def test_anything_not_listed_open_needs_the_token(client, method, path):
    assert client.request(method, path).status_code == 401


def test_the_token_is_compared_in_constant_time(client, monkeypatch):
    calls, real = [], hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(security.hmac, "compare_digest", spy)
    assert client.post("/predict", json=CONTRACT, headers=bearer(NEAR_MISS)).status_code == 401
    assert client.post("/predict", json=CONTRACT, headers=bearer(TOKEN)).status_code == 200
    assert calls == [(NEAR_MISS.encode(), TOKEN.encode()), (TOKEN.encode(), TOKEN.encode())]


def test_rejections_are_logged_without_the_token(client, caplog):
    caplog.set_level(logging.DEBUG)
    client.post("/predict", json=CONTRACT, headers=bearer(NEAR_MISS))
    client.post("/predict", json=CONTRACT, headers={"Authorization": TOKEN})
    client.post("/predict", json=CONTRACT, headers=bearer(TOKEN))
    assert "401 POST /predict" in caplog.text and "invalid bearer token" in caplog.text
    assert TOKEN not in caplog.text and NEAR_MISS not in caplog.text


# ---------------------------------------------------------------- token settings


def test_no_token_setting_means_no_auth_middleware_at_all():
    chain = security.middlewares(Settings())
    assert [middleware for middleware, _ in chain] == [security.BodyLimit]


def test_with_a_token_auth_runs_before_the_body_limit(monkeypatch):
    monkeypatch.setenv("RISKBENTO_AUTH_TOKEN", TOKEN)
    chain = security.middlewares(Settings())
    assert [middleware for middleware, _ in chain] == [security.BearerAuth, security.BodyLimit]
    assert chain[0][1]["token"].get_secret_value() == TOKEN
    assert TOKEN not in repr(chain)  # a logged or printed service config shows no token


def test_token_from_a_mounted_file_loses_its_trailing_newline(monkeypatch, tmp_path):
    secret = tmp_path / "token"
    secret.write_text(TOKEN + "\n")
    monkeypatch.setenv("RISKBENTO_AUTH_TOKEN_FILE", str(secret))
    assert security.auth_token(Settings()).get_secret_value() == TOKEN


@pytest.mark.parametrize(
    "env,file_text,fragments",
    [
        ({"RISKBENTO_AUTH_TOKEN": TOKEN}, TOKEN, ["both", "set only one"]),
        ({}, None, ["RISKBENTO_AUTH_TOKEN_FILE", "expected a readable", "FileNotFoundError"]),
        ({}, "\n", ["RISKBENTO_AUTH_TOKEN_FILE", "got an empty value"]),
        ({"RISKBENTO_AUTH_TOKEN": ""}, False, ["RISKBENTO_AUTH_TOKEN:", "got an empty value"]),
        ({"RISKBENTO_AUTH_TOKEN": "short-secret"}, False, ["at least 16 characters, got 12"]),
        ({"RISKBENTO_AUTH_TOKEN": "a token with spaces"}, False, ["visible ASCII"]),
    ],
    ids=["both", "file-missing", "file-empty", "env-empty", "too-short", "spaces"],
)
def test_unusable_token_settings_refuse_to_start(monkeypatch, tmp_path, env, file_text, fragments):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    if file_text is not False:
        secret = tmp_path / "token"
        if file_text is not None:
            secret.write_text(file_text)
        monkeypatch.setenv("RISKBENTO_AUTH_TOKEN_FILE", str(secret))
    with pytest.raises(security.AuthConfigError) as err:
        security.middlewares(Settings())
    for fragment in fragments:
        assert fragment in str(err.value)
    assert TOKEN not in str(err.value) and "short-secret" not in str(err.value)


# ---------------------------------------------------------------- body limit


def test_a_body_over_the_limit_by_content_length_gets_413_naming_limit_and_size():
    received = []

    async def app(scope, receive, send):
        received.append(scope["path"])

    client = TestClient(security.BodyLimit(app, max_bytes=LIMIT))
    response = client.post("/predict", content=b"x" * (LIMIT + 1))
    assert response.status_code == 413
    assert response.json()["error"] == (
        "request body too large: /predict accepts at most 1,000 bytes, got 1,001 (Content-Length)"
    )
    assert received == []  # refused before the endpoint, its body never read


def test_a_body_at_the_limit_passes(client):
    response = client.post("/predict", content=b"y" * LIMIT, headers=bearer(TOKEN))
    assert response.status_code == 200 and response.json()["bytes"] == LIMIT


def test_score_transactions_has_its_own_limit(client):
    body = b"z" * (LIMIT * 3)
    assert client.post("/predict", content=body, headers=bearer(TOKEN)).status_code == 413
    response = client.post("/score_transactions", content=body, headers=bearer(TOKEN))
    assert response.status_code == 200 and response.json()["bytes"] == len(body)
    too_big = b"z" * (TRANSACTIONS_LIMIT + 1)
    response = client.post("/score_transactions", content=too_big, headers=bearer(TOKEN))
    assert response.status_code == 413 and "at most 5,000 bytes" in response.json()["error"]


async def _call(app, headers: list[tuple[bytes, bytes]], receive=None) -> list[dict]:
    """One raw ASGI POST /predict: headers and a body stream a client library would not send."""
    sent = []

    async def one_body():
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/predict", "headers": headers,
             "query_string": b"", "client": ("127.0.0.1", 1)}  # fmt: skip
    await app(scope, receive or one_body, send)
    return sent


def _chunks(total: int, size: int = 300):
    sent = 0
    while sent < total:
        chunk = b"c" * min(size, total - sent)
        sent += len(chunk)
        yield chunk


def test_a_chunked_body_over_the_limit_gets_413(client):
    response = client.post("/predict", content=_chunks(LIMIT * 5), headers=bearer(TOKEN))
    assert response.status_code == 413
    error = response.json()["error"]
    assert "at most 1,000 bytes, got at least" in error and "chunked" in error


def test_a_chunked_body_is_read_no_further_than_the_limit():
    """A client streaming without end is cut off once it passes the limit."""
    reads = []

    async def endless():
        reads.append(300)
        return {"type": "http.request", "body": b"c" * 300, "more_body": True}

    sent = asyncio.run(_call(tiny_app(None), [], receive=endless))
    assert sent[0]["status"] == 413 and len(reads) == 4
    assert "got at least 1,200" in json.loads(sent[1]["body"])["error"]


def test_a_chunked_body_under_the_limit_arrives_whole(client):
    response = client.post("/predict", content=_chunks(LIMIT - 1), headers=bearer(TOKEN))
    assert response.status_code == 200
    assert response.json()["body"] == "c" * (LIMIT - 1)


def test_a_content_length_that_is_not_a_number_gets_400():
    sent = asyncio.run(_call(tiny_app(None), [(b"content-length", b"lots")]))
    assert sent[0]["status"] == 400
    assert json.loads(sent[1]["body"]) == {
        "error": "expected Content-Length to be a number of bytes, got 'lots'"
    }


def test_default_limits_take_the_largest_legal_bodies_with_room():
    settings = Settings()
    for example in (PROJECT_ROOT / "examples").glob("*.json"):
        record = json.loads(example.read_text())
        if "transactions" in record:
            body = {
                "transactions": record["transactions"]
                * (100_000 // len(record["transactions"]) + 1)
            }
            limit = settings.max_transactions_body_bytes
        else:
            body, limit = {"records": [record] * 1_000}, settings.max_body_bytes
        assert 1.3 * len(json.dumps(body, indent=1)) < limit, example.name


# ---------------------------------------------------------------- nothing secret in the bento


def test_the_bento_packs_code_and_specs_only_and_sets_no_secret_env():
    config = yaml.safe_load((PROJECT_ROOT / "bentofile.yaml").read_text())
    included = pathspec.PathSpec.from_lines("gitwildmatch", config["include"])
    for secret_file in (".env", "token", "secrets/auth_token", "deploy/token.txt", "auth.key"):
        assert not included.match_file(secret_file), secret_file
    names = [e["name"] if isinstance(e, dict) else str(e) for e in config.get("envs", [])]
    assert not [n for n in names if "TOKEN" in n or "SECRET" in n or "PASSWORD" in n]


# ---------------------------------------------------------------- model file hashes


@pytest.fixture
def model_copy(trained_tag, tmp_path) -> tuple[ModelStore, str]:
    """A copy of the session's credit_risk model in a store of this test's own."""
    original = bentoml.models.get(trained_tag("credit_risk"))
    own = ModelStore(tmp_path / "models")
    shutil.copytree(original.path, tmp_path / "models" / original.tag.name / original.tag.version)
    return own, str(original.tag)


@pytest.mark.slow
def test_training_records_the_sha256_of_every_file_it_writes(trained_tag):
    model = bentoml.models.get(trained_tag("credit_risk"))
    recorded = store.card(model).file_sha256
    written = {p.name for p in Path(model.path).iterdir()} - {"model.yaml"}
    assert set(recorded) == written and store.PIPELINE_FILE in written
    store.verify(model)  # untouched: accepted


@pytest.mark.slow
def test_a_changed_pipeline_file_is_refused_with_a_log_line(model_copy, caplog):
    own, tag = model_copy
    model = own.get(tag)
    pipeline = Path(model.path) / store.PIPELINE_FILE
    expected = store.card(model).file_sha256[store.PIPELINE_FILE]
    with pipeline.open("ab") as f:
        f.write(b"\0")
    with pytest.raises(store.ModelFilesChanged) as err:
        store.load_pipeline(model)
    assert store.PIPELINE_FILE in str(err.value) and expected in str(err.value)
    line = next(r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)
    assert str(pipeline) in line and f"expected sha256 {expected}" in line
    assert file_sha256(pipeline) in line


@pytest.mark.slow
def test_a_missing_file_is_refused(model_copy):
    own, tag = model_copy
    model = own.get(tag)
    (Path(model.path) / store.SPLITS_FILE).unlink()
    with pytest.raises(store.ModelFilesChanged, match=f"{store.SPLITS_FILE} .*got missing"):
        store.load_pipeline(model)


@pytest.mark.slow
def test_a_model_saved_without_hashes_is_refused_with_how_to_retrain(model_copy):
    own, tag = model_copy
    model_yaml = Path(own.get(tag).path) / "model.yaml"
    info = yaml.safe_load(model_yaml.read_text())
    del info["metadata"]["file_sha256"]
    model_yaml.write_text(yaml.safe_dump(info))
    with pytest.raises(store.ModelFilesChanged, match="make train USE_CASE=credit_risk"):
        store.load_pipeline(ModelStore(model_yaml.parents[2]).get(tag))


# ---------------------------------------------------------------- a real server


def _request(url: str, body: bytes | None = None, headers: dict | None = None):
    """(status, headers, text) of one request; an HTTP error status is an answer."""
    request = urllib.request.Request(url, data=body, method="POST" if body else "GET")
    for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read().decode()


def _announce_body(port: int, path: str, length: int, token: str) -> str:
    """The answer to a request whose headers promise `length` bytes, none of them sent (the
    server answers a body it refuses without reading it, then closes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {token}\r\nContent-Length: {length}\r\n\r\n".encode()
        )
        answer = b""
        while not answer.endswith(b"}") and (chunk := sock.recv(65_536)):
            answer += chunk
        return answer.decode(errors="replace")


@pytest.mark.integration
@pytest.mark.slow
def test_real_server_with_a_token(trained_tag, tmp_path):
    env = {
        **os.environ,
        "RISKBENTO_MODEL_TAG": trained_tag("credit_risk"),
        "RISKBENTO_AUTH_TOKEN": TOKEN,
        "RISKBENTO_ACCESS_LOG": "true",  # request lines too: none may carry the token
    }
    log = tmp_path / "serve.log"
    server = ServerProcess("bentoml serve", bentoml_serve(free_port()), env, log)
    body = json.dumps(CONTRACT).encode()
    try:
        server.wait_ready()
        status, headers, text = _request(f"{server.url}/predict", body)
        assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
        assert _request(f"{server.url}/predict", body, bearer(NEAR_MISS))[0] == 401
        status, _, text = _request(f"{server.url}/predict", body, bearer(TOKEN))
        assert status == 200 and json.loads(text)["customer_id"] == "CUST001"
        for probe in ("/readyz", "/livez", "/metrics", "/model"):
            assert _request(f"{server.url}{probe}")[0] == 200, probe
        head = _announce_body(server.port, "/predict_batch", 3_000_000, TOKEN)
        assert head.startswith("HTTP/1.1 413") and "at most 2,097,152 bytes" in head
    finally:
        server.stop()
    served = log.read_text(errors="replace")
    assert "401 POST /predict" in served  # the rejections were logged...
    assert TOKEN not in served and NEAR_MISS not in served  # ...and nothing held the token


@pytest.mark.integration
@pytest.mark.slow
def test_server_refuses_to_start_when_the_token_file_is_missing(trained_tag, tmp_path):
    missing = tmp_path / "no-such-token"
    env = {**os.environ, "RISKBENTO_MODEL_TAG": trained_tag("credit_risk"),
           "RISKBENTO_AUTH_TOKEN_FILE": str(missing)}  # fmt: skip
    finished = subprocess.run(
        [sys.executable, "-c", "import service"], cwd=PROJECT_ROOT, env=env,
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert finished.returncode != 0
    assert f"RISKBENTO_AUTH_TOKEN_FILE ({missing}): expected a readable" in finished.stderr
