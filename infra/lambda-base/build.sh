#!/usr/bin/env bash
# Build an offline stand-in for the AWS Lambda base image public.ecr.aws/lambda/python:3.11-x86_64,
# from Debian packages and PyPI only, so `sam local invoke|start-api --skip-pull-image` works
# on a machine that cannot reach a container registry. A TEST FIXTURE: see README.md.
#
#   infra/docker/start-dockerd.sh && sudo infra/lambda-base/build.sh
#
# Cheap when repeated: nothing happens when the image tag exists already, and the finished
# root filesystem is cached as a tarball (keyed by this script's content), so re-creating the
# image after `docker rmi` or on a fresh engine is a single `docker import`.
#
# Environment:
#   MAAS_LAMBDA_BASE_CACHE  cache dir for rootfs tarballs (default /var/cache/maas-lambda-base)
#   MAAS_LAMBDA_BASE_FORCE  1 = rebuild the image even when the tag exists (the cache still counts)
#   DEBIAN_MIRROR           Debian mirror for debootstrap (default http://deb.debian.org/debian)
#   PYTHON                  a CPython 3.11 with pip, to install the runtime packages (default python3.11)
set -euo pipefail

IMAGE="public.ecr.aws/lambda/python:3.11-x86_64"
SUITE="bookworm"                   # Debian 12: python3 is CPython 3.11, the runtime's ABI
# The runtime client and the SDK the real image ships in /var/runtime (pinned ranges).
RUNTIME_REQUIREMENTS=("awslambdaric>=3.1,<5" "boto3>=1.34,<2")

CACHE_DIR="${MAAS_LAMBDA_BASE_CACHE:-/var/cache/maas-lambda-base}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
PYTHON="${PYTHON:-python3.11}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

log() { echo "lambda-base: $*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
    log "must run as root (debootstrap and a root-owned rootfs need it)"
    exit 1
fi
if [ "$(uname -m)" != "x86_64" ]; then
    log "only builds the x86_64 image (this host is $(uname -m))"
    exit 1
fi
if ! docker info >/dev/null 2>&1; then
    log "no Docker engine answers; run infra/docker/start-dockerd.sh first"
    exit 1
fi

if [ "${MAAS_LAMBDA_BASE_FORCE:-0}" != 1 ] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
    log "$IMAGE exists already; nothing to do (MAAS_LAMBDA_BASE_FORCE=1 rebuilds it)"
    exit 0
fi

mkdir -p "$CACHE_DIR"
KEY="$(sha256sum "$HERE/build.sh" | cut -c1-16)"
ROOTFS_TAR="$CACHE_DIR/python3.11-x86_64-$KEY.tar"
DEBOOTSTRAP_TAR="$CACHE_DIR/debootstrap-$SUITE-minbase-python3.tar"

import_image() {
    log "docker import $ROOTFS_TAR -> $IMAGE"
    # The same environment as the real image where it matters to a Python function.
    docker import \
        --platform linux/amd64 \
        --change 'WORKDIR /var/task' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'ENV TZ=:/etc/localtime' \
        --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin:/opt/bin' \
        --change 'ENV LAMBDA_TASK_ROOT=/var/task' \
        --change 'ENV LAMBDA_RUNTIME_DIR=/var/runtime' \
        --message "maas offline Lambda python3.11 base (test fixture, infra/lambda-base)" \
        "$ROOTFS_TAR" "$IMAGE" >/dev/null
    log "built $IMAGE ($(docker image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}'))"
}

if [ -s "$ROOTFS_TAR" ]; then
    log "using the cached root filesystem"
    import_image
    exit 0
fi

WORK="$(mktemp -d /var/tmp/maas-lambda-base.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
ROOTFS="$WORK/rootfs"
mkdir -p "$ROOTFS"

# 1. A minimal Debian with python3 (3.11) - cached, since it is the slow step.
if [ -s "$DEBOOTSTRAP_TAR" ]; then
    log "using the cached debootstrap rootfs"
    tar -xf "$DEBOOTSTRAP_TAR" -C "$ROOTFS"
else
    if ! command -v debootstrap >/dev/null 2>&1; then
        log "installing debootstrap"
        apt-get update -qq || log "apt-get update reported errors; trying the install anyway"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
    fi
    log "debootstrap $SUITE from $MIRROR (a few minutes the first time)"
    debootstrap --variant=minbase --include=python3,ca-certificates "$SUITE" "$ROOTFS" "$MIRROR" \
        >"$WORK/debootstrap.log" 2>&1 || { tail -n 30 "$WORK/debootstrap.log" >&2; exit 1; }
    # Nothing in the image needs apt's caches, the docs or the man pages.
    rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/* \
        "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/locale/*
    tar -cf "$DEBOOTSTRAP_TAR.tmp" -C "$ROOTFS" . && mv "$DEBOOTSTRAP_TAR.tmp" "$DEBOOTSTRAP_TAR"
fi

# 2. The Lambda runtime interface client and boto3, where the real image keeps them.
#    Wheels for CPython 3.11 / manylinux x86_64, whatever the host Python's patch version.
log "pip install ${RUNTIME_REQUIREMENTS[*]} into /var/runtime"
"$PYTHON" -m pip install --quiet --disable-pip-version-check --no-cache-dir --no-compile --no-warn-conflicts --root-user-action=ignore \
    --only-binary=:all: --platform manylinux2014_x86_64 --implementation cp \
    --python-version 3.11 --abi cp311 \
    --target "$ROOTFS/var/runtime" "${RUNTIME_REQUIREMENTS[@]}"
mkdir -p "$ROOTFS/var/task" "$ROOTFS/opt" "$ROOTFS/tmp"

# 3. The bootstrap the Runtime Interface Emulator (/var/rapid/aws-lambda-rie, added by SAM)
#    looks for; the handler name arrives in $_HANDLER. The path order mirrors the real image:
#    function code, then layers (/opt/python and the per-version site-packages), then runtime.
cat >"$ROOTFS/var/runtime/bootstrap" <<'EOF'
#!/bin/sh
export PYTHONPATH=/var/task:/opt/python:/opt/python/lib/python3.11/site-packages:/var/runtime
exec /usr/bin/python3 -m awslambdaric "$_HANDLER"
EOF
chmod 0755 "$ROOTFS/var/runtime/bootstrap"

tar -cf "$ROOTFS_TAR.tmp" -C "$ROOTFS" . && mv "$ROOTFS_TAR.tmp" "$ROOTFS_TAR"
# Older rootfs tarballs (from previous versions of this script) are dead weight.
find "$CACHE_DIR" -maxdepth 1 -name 'python3.11-x86_64-*.tar' ! -name "$(basename "$ROOTFS_TAR")" -delete
import_image
