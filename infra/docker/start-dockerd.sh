#!/usr/bin/env bash
# Start a Docker engine for `sam local` on a machine that has none (CI, the dev VM).
#
# - Installs Debian's docker.io when `dockerd` is missing (needs root and the Debian mirror).
# - Starts dockerd WITHOUT a bridge network and without touching iptables: every container
#   must run with `--docker-network host`, so all traffic stays on 127.0.0.1.
# - Idempotent: when an engine already answers `docker info`, it is left alone (and
#   stop-dockerd.sh will not stop it either, because this script did not start it).
# - Records what it started under $MAAS_DOCKERD_STATE (pidfile + log) for stop-dockerd.sh.
#
# Environment:
#   MAAS_DOCKERD_STATE           state dir (default /var/run/maas-dockerd)
#   MAAS_DOCKER_STORAGE_DRIVER   e.g. vfs when overlay2 is unavailable (nested containers)
#   MAAS_DOCKERD_WAIT            seconds to wait for the engine (default 60)
set -euo pipefail

STATE_DIR="${MAAS_DOCKERD_STATE:-/var/run/maas-dockerd}"
PIDFILE="$STATE_DIR/dockerd.pid"
LOGFILE="$STATE_DIR/dockerd.log"
WAIT_S="${MAAS_DOCKERD_WAIT:-60}"

log() { echo "start-dockerd: $*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi
}

if docker info >/dev/null 2>&1; then
    log "a Docker engine is already running; leaving it as it is"
    exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
    log "dockerd not found: installing Debian docker.io"
    as_root apt-get update -qq || log "apt-get update reported errors (an unreachable extra source?); trying the install anyway"
    # policy-rc.d keeps the package's init script from starting a default engine (with a
    # bridge network and iptables rules) behind our back; restore whatever was there.
    policy=/usr/sbin/policy-rc.d
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
        as_root chmod +x "$policy"
        trap 'as_root rm -f "$policy"' EXIT
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        docker.io >/dev/null
fi

as_root mkdir -p "$STATE_DIR"

if [ -s "$PIDFILE" ] && as_root kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    log "dockerd (pid $(cat "$PIDFILE")) was started earlier and is still coming up; waiting"
else
    args=(--bridge=none --iptables=false --ip-masq=false --pidfile "$PIDFILE"
          --host unix:///var/run/docker.sock)
    if [ -n "${MAAS_DOCKER_STORAGE_DRIVER:-}" ]; then
        args+=(--storage-driver "$MAAS_DOCKER_STORAGE_DRIVER")
    fi
    log "starting dockerd ${args[*]} (log: $LOGFILE)"
    # setsid: the engine must outlive this script and the shell/job that ran it.
    as_root setsid dockerd "${args[@]}" >>"$LOGFILE" 2>&1 </dev/null &
fi

for _ in $(seq 1 "$((WAIT_S * 2))"); do
    if docker info >/dev/null 2>&1; then
        log "engine ready: $(docker version --format 'server {{.Server.Version}}, API {{.Server.APIVersion}}')"
        exit 0
    fi
    sleep 0.5
done

log "dockerd did not answer within ${WAIT_S}s; last lines of $LOGFILE:"
as_root tail -n 30 "$LOGFILE" >&2 || true
exit 1
