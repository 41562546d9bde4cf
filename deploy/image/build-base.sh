#!/usr/bin/env bash
# Builds the bento's base image from Debian packages, for machines that cannot pull
# python:3.11-slim from Docker Hub: Debian bookworm (mmdebstrap, with the apt sources this
# host uses), Python 3.11 from Debian, the CA certificates this host trusts beyond the
# standard bundle (so pip and uv work behind a TLS-inspecting proxy) and uv preinstalled.
# BentoML's generated Dockerfile still runs `apt-get install ca-certificates gnupg2 bash
# build-essential git` on any base, so those come preinstalled and that step is a no-op.
#
# Usage: deploy/image/build-base.sh            (skips the build if the image exists)
#        FORCE=1 deploy/image/build-base.sh    (rebuilds)
# Settings: BASE_TAG, UV_VERSION (keep it equal to requirements.txt), EXTRA_CA_DIR.
# Needs root, mmdebstrap (`apt-get install mmdebstrap`) and a running Docker engine.
set -euo pipefail

BASE_TAG=${BASE_TAG:-riskbento-base:bookworm-py3.11}
UV_VERSION=${UV_VERSION:-0.13.9}
EXTRA_CA_DIR=${EXTRA_CA_DIR:-/usr/local/share/ca-certificates}
SUITE=bookworm
HERE=$(cd "$(dirname "$0")" && pwd)
PACKAGES=python3.11,python3.11-venv,ca-certificates,gnupg2,bash,build-essential,git,curl

die() { echo "build-base: $*" >&2; exit 2; }

command -v docker >/dev/null || die "no docker CLI on PATH"
docker info >/dev/null 2>&1 || die "no Docker engine answers; start one with deploy/image/start-docker.sh"
if [[ -z "${FORCE:-}" ]] && docker image inspect "$BASE_TAG" >/dev/null 2>&1; then
    echo "build-base: $BASE_TAG exists ($(( $(docker image inspect -f "{{.Size}}" "$BASE_TAG") / 1000000 )) MB); FORCE=1 rebuilds"
    exit 0
fi
command -v mmdebstrap >/dev/null || die "mmdebstrap not found; install it with: apt-get install -y mmdebstrap"
[[ $(id -u) -eq 0 ]] || die "mmdebstrap needs root here (got uid $(id -u))"

# The apt sources this host uses (active files only; the image's apt-get needs them too).
sources=()
if grep -qsE '^[[:space:]]*deb' /etc/apt/sources.list; then sources+=(/etc/apt/sources.list); fi
for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [[ -f $f ]] && sources+=("$f")
done
[[ ${#sources[@]} -gt 0 ]] || die "no apt sources found in /etc/apt/sources.list(.d)"

# Only certificates: a file holding a private key is refused, never copied.
certs=()
if [[ -d $EXTRA_CA_DIR ]]; then
    while IFS= read -r -d '' f; do
        if grep -q 'PRIVATE KEY' "$f"; then die "$f holds a private key; expected certificates only"; fi
        certs+=("$f")
    done < <(find "$EXTRA_CA_DIR" -type f -name '*.crt' -print0)
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/certs"
for f in ${certs[@]+"${certs[@]}"}; do cp "$f" "$work/certs/"; done

# Run inside the chroot with a clean environment: the host's PIP_*/UV_* settings
# (indexes, find-links, tokens) must not reach the image.
in_chroot='chroot "$1" env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt PIP_CERT=/etc/ssl/certs/ca-certificates.crt'

echo "build-base: mmdebstrap $SUITE ($PACKAGES) from ${sources[*]}; ${#certs[@]} extra CA certificate(s)"
start=$SECONDS
mmdebstrap --variant=minbase --include="$PACKAGES" \
    --aptopt='APT::Install-Recommends "false"' \
    --aptopt="$HERE/apt-docker.conf" \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --setup-hook='mkdir -p "$1/etc/apt/trusted.gpg.d" "$1/etc/apt/keyrings"' \
    --setup-hook='cp -a /etc/apt/trusted.gpg.d/. "$1/etc/apt/trusted.gpg.d/"; if [ -d /etc/apt/keyrings ]; then cp -a /etc/apt/keyrings/. "$1/etc/apt/keyrings/"; fi' \
    --customize-hook="mkdir -p \"\$1/usr/local/share/ca-certificates/riskbento\" && cp -a $work/certs/. \"\$1/usr/local/share/ca-certificates/riskbento/\"" \
    --customize-hook="$in_chroot update-ca-certificates" \
    --customize-hook="$in_chroot sh -euc 'python3.11 -m venv /tmp/uv && /tmp/uv/bin/pip install --quiet --no-cache-dir --disable-pip-version-check uv==$UV_VERSION && cp /tmp/uv/bin/uv /tmp/uv/bin/uvx /usr/local/bin/ && rm -rf /tmp/uv /root/.cache'" \
    --customize-hook="$in_chroot uv --version" \
    "$SUITE" "$work/rootfs.tar" "${sources[@]}"
echo "build-base: rootfs built in $((SECONDS - start)) s"

certfile=/etc/ssl/certs/ca-certificates.crt
docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change "ENV SSL_CERT_FILE=$certfile PIP_CERT=$certfile REQUESTS_CA_BUNDLE=$certfile" \
    --change 'ENV UV_PYTHON_DOWNLOADS=never UV_PYTHON_PREFERENCE=only-system' \
    --change 'CMD ["python3.11"]' \
    --message "riskbento base: Debian $SUITE, Python 3.11 (Debian), uv $UV_VERSION" \
    "$work/rootfs.tar" "$BASE_TAG" >/dev/null
docker run --rm --network host "$BASE_TAG" python3.11 -c 'import ssl, sys; print("build-base: python", sys.version.split()[0])'
size=$(docker image inspect -f '{{.Size}}' "$BASE_TAG")
echo "build-base: $BASE_TAG $((size / 1000000)) MB in $((SECONDS - start)) s"
