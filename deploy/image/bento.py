"""`make image`: one use case's bento (`bentoml build`) and its container image
(`bentoml containerize`), then the image tag and size.

    python -m deploy.image.bento --use-case credit_risk [--base slim|local|<image>]

The top-level `bentofile.yaml` is the template; each build writes a copy that bakes
`RISKBENTO_USE_CASE` and the exact `RISKBENTO_MODEL_TAG` into the bento's envs, so the
container serves the model packed inside it with no settings, and picks the base image:
`slim` is BentoML's default `python:3.11-slim` (Docker Hub), `local` the Debian base that
`deploy/image/build-base.sh` builds without Docker Hub, anything else an image reference.
"""

from __future__ import annotations

import argparse
import copy
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from core.errors import UserError
from core.names import DEFAULT_USE_CASE, PROJECT_ROOT

BENTOFILE = PROJECT_ROOT / "bentofile.yaml"
PYTHON_VERSION = "3.11"  # the Debian base's Python; `uv venv --python` must find it there
SLIM = "slim"
LOCAL = "local"
LOCAL_BASE_IMAGE = "riskbento-base:bookworm-py3.11"
USE_CASE_ENV = "RISKBENTO_USE_CASE"
MODEL_TAG_ENV = "RISKBENTO_MODEL_TAG"
BAKED_ENVS = (USE_CASE_ENV, MODEL_TAG_ENV)
USE_CASE_LABEL = "use_case"
TAG_PREFIX = "__tag__:"  # how `bentoml build -o tag` prints the bento's tag


def base_image_for(base: str) -> str | None:
    """The `docker.base_image` for a --base choice; None keeps BentoML's python:3.11-slim."""
    if not base or not base.strip():
        raise UserError(f"--base: expected {SLIM!r}, {LOCAL!r} or an image reference, got {base!r}")
    if base == SLIM:
        return None
    if base == LOCAL:
        return LOCAL_BASE_IMAGE
    return base


def bento_name(use_case: str) -> str:
    """One bento name (and image repository) per use case: `riskbento-credit_risk`."""
    return f"riskbento-{use_case}"


def bentofile_for(
    template: dict[str, Any], use_case: str, model_tag: str, base_image: str | None
) -> dict[str, Any]:
    """The build file for one use case: the template plus the baked envs and the base."""
    if not model_tag.startswith(f"{use_case}:"):
        raise UserError(f"model tag: expected {use_case}:<version>, got {model_tag!r}")
    config = copy.deepcopy(template)
    envs = [e for e in config.get("envs") or [] if e.get("name") not in BAKED_ENVS]
    envs += [
        {"name": USE_CASE_ENV, "value": use_case},
        {"name": MODEL_TAG_ENV, "value": model_tag},
    ]
    config["envs"] = envs
    config["labels"] = {**(config.get("labels") or {}), USE_CASE_LABEL: use_case}
    docker = {k: v for k, v in (config.get("docker") or {}).items() if k != "base_image"}
    docker["python_version"] = PYTHON_VERSION
    if base_image is not None:
        docker["base_image"] = base_image
    config["docker"] = docker
    return config


def bento_tag_from(output: str) -> str:
    """The bento tag from `bentoml build -o tag` output."""
    for line in output.splitlines():
        if line.startswith(TAG_PREFIX):
            return line[len(TAG_PREFIX) :].strip()
    raise RuntimeError(f"`bentoml build -o tag` printed no {TAG_PREFIX!r} line:\n{output}")


def docker_build_env() -> dict[str, str]:
    """BentoML builds with BuildKit, which the docker CLI runs through the buildx plugin;
    without that plugin the build fails, and the legacy builder works."""
    env = dict(os.environ)
    has_buildx = subprocess.run(["docker", "buildx", "version"], capture_output=True).returncode
    if has_buildx != 0 and "DOCKER_BUILDKIT" not in env:
        env["DOCKER_BUILDKIT"] = "0"
    return env


def _check_docker(base_image: str | None) -> None:
    try:
        info = subprocess.run(["docker", "info"], capture_output=True, text=True)
    except FileNotFoundError:
        raise UserError("no docker CLI on PATH; install Docker (Debian: docker.io)") from None
    if info.returncode != 0:
        raise UserError(
            "no Docker engine answers `docker info`; start one "
            "(on Debian without systemd: deploy/image/start-docker.sh)"
        )
    image = base_image or f"python:{PYTHON_VERSION}-slim"
    if subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode == 0:
        return
    if base_image == LOCAL_BASE_IMAGE:
        raise UserError(f"no image {base_image!r}; build it with `make image-base`")
    pulled = subprocess.run(["docker", "pull", image], capture_output=True, text=True)
    if pulled.returncode != 0:
        raise UserError(
            f"base image {image!r} is neither local nor pullable ({pulled.stderr.strip()}); "
            "without Docker Hub use `make image IMAGE_BASE=local` (a Debian-packages base)"
        )


def _model_tag(use_case: str) -> tuple[str, str]:
    """The use case's name and its newest stored model's exact tag."""
    from core.spec import load_spec
    from model.scorer import find_model

    name = load_spec(use_case, check_data=False).name
    return name, str(find_model(f"{name}:latest").tag)


def bento_contents(bento_tag: str) -> list[str]:
    """What the bento carries: each top-level entry of its code with its file count, and
    the models it packs."""
    import bentoml

    bento = bentoml.bentos.get(bento_tag)
    src = Path(bento.path) / "src"
    lines = []
    for entry in sorted(src.iterdir()):
        files = [f for f in entry.rglob("*") if f.is_file()] if entry.is_dir() else [entry]
        lines.append(f"{entry.name}{'/' if entry.is_dir() else ''} ({len(files)} files)")
    lines += [f"model {m.tag}" for m in bento.info.all_models]
    return lines


def _step(label: str, started: float) -> float:
    now = time.perf_counter()
    print(f"[image] {label} in {now - started:.1f} s", flush=True)
    return now


def build(use_case: str, base: str, network: str) -> str:
    """Build the bento and its image; returns the image tag."""
    base_image = base_image_for(base)
    _check_docker(base_image)
    name, model_tag = _model_tag(use_case)
    template = yaml.safe_load(BENTOFILE.read_text())
    config = bentofile_for(template, name, model_tag, base_image)
    bentoml_cli = str(Path(sys.executable).parent / "bentoml")
    shown_base = base_image or f"python:{PYTHON_VERSION}-slim"
    print(f"[image] {name}: model {model_tag}, base {shown_base}", flush=True)

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="riskbento-image-") as tmp:
        bentofile = Path(tmp) / "bentofile.yaml"
        bentofile.write_text(yaml.safe_dump(config, sort_keys=False))
        # The service declares its model at import: the build packs the one these envs name.
        env = {**os.environ, USE_CASE_ENV: name, MODEL_TAG_ENV: model_tag}
        cmd = [bentoml_cli, "build", "-f", str(bentofile), "--name", bento_name(name)]
        done = subprocess.run(
            [*cmd, "-o", "tag", str(PROJECT_ROOT)], env=env, capture_output=True, text=True
        )
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise UserError(f"`bentoml build` failed (exit {done.returncode}); its output is above")
    bento_tag = bento_tag_from(done.stdout)
    started = _step(f"bentoml build -> bento {bento_tag}", started)
    print(f"[image] bento contents: {'; '.join(bento_contents(bento_tag))}", flush=True)

    image_tag = bento_tag
    cmd = [bentoml_cli, "containerize", bento_tag, "-t", image_tag]
    cmd += ["--opt", f"network={network}"]
    env = docker_build_env()
    if env.get("DOCKER_BUILDKIT") == "0":
        print("[image] no docker buildx plugin: using the legacy builder (DOCKER_BUILDKIT=0)")
    if subprocess.run(cmd, env=env).returncode != 0:
        raise UserError(f"`bentoml containerize {bento_tag}` failed; its output is above")
    latest = f"{bento_name(name)}:latest"
    subprocess.run(["docker", "tag", image_tag, latest], check=True)
    started = _step("bentoml containerize", started)

    size = subprocess.run(
        ["docker", "image", "inspect", "-f", "{{.Size}}", image_tag],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    print(f"[image] image {image_tag} (also {latest}): {int(size) / 1e6:,.0f} MB")
    return image_tag


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.image.bento", description=__doc__)
    parser.add_argument("--use-case", default=DEFAULT_USE_CASE, help="built-in name or spec path")
    parser.add_argument(
        "--base",
        default=SLIM,
        help=f"{SLIM!r} (python:3.11-slim), {LOCAL!r} ({LOCAL_BASE_IMAGE}) or an image",
    )
    parser.add_argument(
        "--network",
        default="host",
        help="network for the build's RUN steps (host works on a daemon without a bridge)",
    )
    args = parser.parse_args(argv)
    try:
        build(args.use_case, args.base, args.network)
    except (UserError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
