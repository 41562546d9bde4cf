#!/usr/bin/env bash
# Starts a Docker engine by hand on a Debian machine without systemd (a container or a CI
# sandbox); does nothing when one already answers. Installs `docker.io` from Debian first
# if `dockerd` is missing. Safe to run again.
#
# The defaults suit a sandbox without iptables or a bridge: containers and builds then
# use host networking (`make image` and `make image-smoke` do). On a normal machine use
# your distribution's service instead, or set DOCKERD_FLAGS.
# Settings: DOCKERD_FLAGS, DOCKERD_LOG (default /var/log/riskbento-dockerd.log).
set -euo pipefail

DOCKERD_FLAGS=${DOCKERD_FLAGS:---storage-driver=overlay2 --iptables=false --ip6tables=false --bridge=none}
DOCKERD_LOG=${DOCKERD_LOG:-/var/log/riskbento-dockerd.log}
WAIT_S=60

if docker info >/dev/null 2>&1; then
    echo "start-docker: an engine already answers ($(docker info -f '{{.ServerVersion}}, {{.Driver}}'))"
    exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "start-docker: no engine answers and starting one needs root (got uid $(id -u))" >&2
    exit 2
fi
if ! command -v dockerd >/dev/null; then
    echo "start-docker: installing docker.io from Debian"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io >/dev/null ||
        { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io >/dev/null; }
fi
if [[ -S /var/run/docker.sock ]] && ! pgrep -x dockerd >/dev/null; then
    rm -f /var/run/docker.sock /var/run/docker.pid  # left by an engine that died
fi

echo "start-docker: dockerd $DOCKERD_FLAGS (log: $DOCKERD_LOG)"
# shellcheck disable=SC2086  # the flags are meant to split
setsid nohup dockerd $DOCKERD_FLAGS >>"$DOCKERD_LOG" 2>&1 </dev/null &
for _ in $(seq "$WAIT_S"); do
    if docker info >/dev/null 2>&1; then
        echo "start-docker: engine up ($(docker info -f '{{.ServerVersion}}, {{.Driver}}'), pid $(cat /var/run/docker.pid))"
        exit 0
    fi
    sleep 1
done
echo "start-docker: no answer after ${WAIT_S} s; last lines of $DOCKERD_LOG:" >&2
tail -n 20 "$DOCKERD_LOG" >&2
exit 1
