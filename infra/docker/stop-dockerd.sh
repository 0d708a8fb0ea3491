#!/usr/bin/env bash
# Stop the Docker engine that start-dockerd.sh started, and nothing else.
#
# Containers left behind (e.g. by an interrupted `sam local` run) are removed first, but only
# in an engine this script owns; an engine someone else started is not touched. Images are
# kept, so the next run does not have to rebuild the offline Lambda base image.
set -euo pipefail

STATE_DIR="${MAAS_DOCKERD_STATE:-/var/run/maas-dockerd}"
PIDFILE="$STATE_DIR/dockerd.pid"

log() { echo "stop-dockerd: $*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi
}

if [ ! -s "$PIDFILE" ]; then
    log "no engine started by start-dockerd.sh (no $PIDFILE); nothing to stop"
    exit 0
fi
pid="$(cat "$PIDFILE")"
if ! as_root kill -0 "$pid" 2>/dev/null; then
    log "dockerd pid $pid is gone already; removing the stale pidfile"
    as_root rm -f "$PIDFILE"
    exit 0
fi

if docker info >/dev/null 2>&1; then
    leftovers="$(docker ps -aq)"
    if [ -n "$leftovers" ]; then
        log "removing leftover containers: $(echo "$leftovers" | tr '\n' ' ')"
        # shellcheck disable=SC2086  # one id per word
        docker rm -f $leftovers >/dev/null
    fi
fi

log "stopping dockerd (pid $pid)"
as_root kill -TERM "$pid"
for _ in $(seq 1 60); do
    if ! as_root kill -0 "$pid" 2>/dev/null; then
        as_root rm -f "$PIDFILE"
        log "stopped"
        exit 0
    fi
    sleep 0.5
done
log "dockerd pid $pid still alive after 30s; sending SIGKILL"
as_root kill -KILL "$pid" 2>/dev/null || true
as_root rm -f "$PIDFILE"
