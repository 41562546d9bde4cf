"""`make image` / `make image-smoke` without Docker: the per-use-case build file, the
Dockerfile BentoML generates from it, and the smoke script's answer checker."""

import io
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from bentoml._internal.bento.bento import ImageInfo
from bentoml._internal.bento.build_config import BentoBuildConfig

from core.errors import UserError
from core.names import PROJECT_ROOT
from deploy.image import bento, smoke

CONTRACT = {
    "customer_id": "CUST001",
    "num_transactions": 15,
    "total_debit": -1250.5,
    "total_credit": 3500.0,
    "avg_amount": 150.03,
    "has_rent": 1,
    "has_salary": 1,
}
TAG = "credit_risk:kba5vzxgb6zegax4"
RIGHT = {
    "customer_id": "CUST001",
    "probability": 0.0588,
    "prediction": 0,
    "risk_tier": "low",
    "reasons": [],
    "model": TAG,
    "warnings": [],
}


def _template() -> dict:
    return yaml.safe_load(bento.BENTOFILE.read_text())


def _build_config(config: dict) -> BentoBuildConfig:
    """What `bentoml build -f` makes of the file (it rejects unknown or mistyped keys)."""
    return BentoBuildConfig.from_yaml(io.StringIO(yaml.safe_dump(config))).with_defaults()


def _dockerfile(config: dict, tmp_path: Path) -> str:
    """The Dockerfile `bentoml build` writes for this build file (bento v2, no lock step)."""
    from _bentoml_impl.docker import generate_dockerfile
    from _bentoml_sdk.images import populate_image_from_build_config

    build_config = _build_config(config)
    image = populate_image_from_build_config(None, build_config, str(PROJECT_ROOT))
    info = ImageInfo(
        base_image=image.base_image,
        python_version=image.python_version,
        commands=image.commands,
        python_requirements="",
        post_commands=image.post_commands,
        build_include=[],
    )
    return generate_dockerfile(
        info, tmp_path, enable_buildkit=False, envs=build_config.envs, secret_envs=[]
    )


def test_top_level_bentofile_stays_valid_for_a_plain_build():
    config = _build_config(_template())
    assert config.service == "service:RiskService"
    assert config.docker.python_version == bento.PYTHON_VERSION
    assert config.docker.base_image is None  # python:3.11-slim unless `make image` says otherwise


def test_local_base_build_file_bakes_the_use_case_and_the_exact_model():
    config = bento.bentofile_for(_template(), "churn", "churn:abc123", bento.LOCAL_BASE_IMAGE)
    built = _build_config(config)
    assert built.docker.base_image == "riskbento-base:bookworm-py3.11"
    assert built.docker.python_version == "3.11"
    envs = {e.name: e.value for e in built.envs}
    assert envs == {"RISKBENTO_USE_CASE": "churn", "RISKBENTO_MODEL_TAG": "churn:abc123"}
    assert built.labels == {"project": "riskbento", "use_case": "churn"}
    # The rest of the template is untouched: same service, code and requirements.
    assert built.service == "service:RiskService"
    assert built.include == _template()["include"]
    assert built.python.requirements_txt == "./requirements-serve.txt"


def test_slim_build_file_keeps_bentomls_default_base():
    config = bento.bentofile_for(_template(), "credit_risk", TAG, bento.base_image_for("slim"))
    assert "base_image" not in config["docker"]
    assert config["docker"]["python_version"] == "3.11"


def test_rebuilding_replaces_baked_envs_instead_of_stacking_them():
    first = bento.bentofile_for(_template(), "churn", "churn:v1", None)
    again = bento.bentofile_for(first, "default", "default:v2", "my/base:1")
    assert again["envs"] == [
        {"name": "RISKBENTO_USE_CASE", "value": "default"},
        {"name": "RISKBENTO_MODEL_TAG", "value": "default:v2"},
    ]
    assert again["docker"]["base_image"] == "my/base:1"


def test_generated_dockerfile_serves_the_use_case_as_non_root_on_the_bases_python(tmp_path):
    config = bento.bentofile_for(_template(), "credit_risk", TAG, bento.LOCAL_BASE_IMAGE)
    dockerfile = _dockerfile(config, tmp_path)
    assert "FROM riskbento-base:bookworm-py3.11 AS base-container" in dockerfile
    assert "ENV RISKBENTO_USE_CASE=$RISKBENTO_USE_CASE" in dockerfile
    assert f"ARG RISKBENTO_MODEL_TAG={TAG}" in dockerfile
    assert "uv venv --python 3.11 /app/.venv" in dockerfile
    # The legacy builder (no buildx) cannot parse BuildKit-only syntax.
    assert "--mount=" not in dockerfile
    assert dockerfile.rstrip().splitlines()[-3:-2] == ["USER bentoml"]


def test_slim_dockerfile_starts_from_python_slim(tmp_path):
    config = bento.bentofile_for(_template(), "credit_risk", TAG, None)
    assert "FROM python:3.11-slim AS base-container" in _dockerfile(config, tmp_path)


def test_model_tag_of_another_use_case_is_refused():
    with pytest.raises(UserError, match=r"expected churn:<version>, got 'credit_risk:abc'"):
        bento.bentofile_for(_template(), "churn", "credit_risk:abc", None)


@pytest.mark.parametrize(
    ("base", "expected"),
    [("slim", None), ("local", "riskbento-base:bookworm-py3.11"), ("my/base:1", "my/base:1")],
)
def test_base_choice(base, expected):
    assert bento.base_image_for(base) == expected


def test_empty_base_is_refused_with_the_choices():
    with pytest.raises(UserError, match=r"--base: expected 'slim', 'local' or an image.*got ' '"):
        bento.base_image_for(" ")


def test_bento_tag_is_read_from_build_output():
    out = "some log line\n__tag__:riskbento-credit_risk:zbezt7hgdgxkeax4\n"
    assert bento.bento_tag_from(out) == "riskbento-credit_risk:zbezt7hgdgxkeax4"
    with pytest.raises(RuntimeError, match="printed no '__tag__:' line"):
        bento.bento_tag_from("Successfully built\n")


@pytest.mark.parametrize(("buildx_rc", "expected"), [(1, "0"), (0, None)])
def test_legacy_builder_only_without_buildx(monkeypatch, buildx_rc, expected):
    monkeypatch.delenv("DOCKER_BUILDKIT", raising=False)
    seen = []

    def fake_run(cmd, **_):
        seen.append(cmd)
        return SimpleNamespace(returncode=buildx_rc)

    monkeypatch.setattr(bento.subprocess, "run", fake_run)
    assert bento.docker_build_env().get("DOCKER_BUILDKIT") == expected
    assert seen == [["docker", "buildx", "version"]]


def test_smoke_accepts_the_contract_answer():
    assert smoke.check_answer(CONTRACT, RIGHT, "customer_id", TAG) == []


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"customer_id": "CUST002"}, "customer_id: expected 'CUST001' echoed, got 'CUST002'"),
        ({"probability": 1.3}, "probability: expected a number in [0, 1], got 1.3"),
        ({"probability": "0.5"}, "probability: expected a number in [0, 1], got '0.5'"),
        ({"prediction": 2}, "prediction: expected 0 or 1, got 2"),
        ({"prediction": True}, "prediction: expected 0 or 1, got True"),
        ({"risk_tier": "severe"}, "risk_tier: expected one of ('low', 'medium', 'high')"),
        ({"model": "churn:x"}, f"model: expected {TAG!r} (the image's), got 'churn:x'"),
    ],
)
def test_smoke_rejects_a_wrong_answer(change, problem):
    problems = smoke.check_answer(CONTRACT, {**RIGHT, **change}, "customer_id", TAG)
    assert len(problems) == 1
    assert problems[0].startswith(problem)


def test_smoke_rejects_a_non_object_and_a_missing_field():
    assert smoke.check_answer(CONTRACT, [RIGHT], "customer_id", TAG) == [
        f"answer: expected a JSON object, got {[RIGHT]!r}"
    ]
    missing = {k: v for k, v in RIGHT.items() if k != "probability"}
    assert smoke.check_answer(CONTRACT, missing, "customer_id", TAG) == [
        "probability: expected a number in [0, 1], got None"
    ]


def test_smoke_flags_image_variables_that_look_like_secrets():
    env = [
        "PATH=/usr/bin",
        "RISKBENTO_USE_CASE=churn",
        "RISKBENTO_AUTH_TOKEN=0123456789abcdef",
        "RISKBENTO_AUTH_TOKEN_FILE=/run/secrets/token",
        "AWS_SECRET_ACCESS_KEY=y",
    ]
    assert smoke.secret_like_envs(env) == ["RISKBENTO_AUTH_TOKEN", "AWS_SECRET_ACCESS_KEY"]


@pytest.mark.integration
def test_make_image_passes_use_case_and_base():
    done = subprocess.run(
        ["make", "-n", "image", "USE_CASE=churn", "IMAGE_BASE=local"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    lines = done.stdout.splitlines()
    assert "deploy/image/build-base.sh" in lines
    assert any(
        line.endswith("-m deploy.image.bento --use-case churn --base local") for line in lines
    )


@pytest.mark.integration
def test_smoke_script_runs_without_the_project_on_the_path():
    """It is stdlib only: `--help` works from a bare interpreter outside the repo."""
    script = PROJECT_ROOT / "deploy" / "image" / "smoke.py"
    done = subprocess.run(
        [sys.executable, "-I", str(script), "--help"], cwd="/", capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "--image" in done.stdout
