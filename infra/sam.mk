# SAM CLI and the local Docker engine. Included by the top Makefile:
#
#   include infra/sam.mk
#
#   sam-check    sam validate --lint, cfn-lint and checkov on template.yaml: zero failed checks
#   sam-build    sam build into .aws-sam/build, then check that no TensorFlow got into the bundle
#   docker-up    a Docker engine without a bridge network + the offline Lambda base image
#   docker-down  stop the engine docker-up started (and remove containers left in it)
#   sam-test     sam-build, docker-up, the SAM tests (tests/sam), docker-down even on failure
#
# The tools come from .venv-tools; they are called by path, never put on PATH: `sam build`
# runs the layer's Makefile with the `python3.11` on PATH, which must be one with pip.
# `$(call with-docker,COMMAND)` runs COMMAND between docker-up and docker-down; docker-down
# runs whatever happens (failure, Ctrl-C), and the recipe keeps COMMAND's exit status.

SAM_TOOLS ?= .venv-tools/bin
SAM_BUILD_DIR := .aws-sam/build
# Root for what needs it (dockerd, debootstrap, docker import) when make does not run as root.
SAM_SUDO := $(if $(filter 0,$(shell id -u)),,sudo -n)
export SAM_CLI_TELEMETRY := 0

.PHONY: sam-check sam-build docker-up docker-down sam-test

sam-check: .venv-tools/.ok
	$(SAM_TOOLS)/sam validate --lint
	$(SAM_TOOLS)/cfn-lint template.yaml
	$(SAM_TOOLS)/checkov -f template.yaml --framework cloudformation --skip-download --compact --quiet

# The template's defaults into .aws-sam/build (what `sam deploy` and the SAM tests use), then
# the other corner of the runtime choice into .aws-sam/build-litert-arm64: ServingRuntime=litert
# (python3.13) on arm64. Each build makes both layers (SAM builds a resource whatever its
# Condition), so the two builds cover both runtimes on both architectures; tests/sam/test_build.py
# runs the functions on each layer built for this machine and checks the arm64 wheels.
# `make sam-build ARCH=arm64 SERVING_RUNTIME=litert` builds one chosen pair into .aws-sam/build.
ARCH ?= x86_64
SERVING_RUNTIME ?= tflite-runtime
# sam build looks for the functions' Python on PATH (python3.13 for the litert runtime).
SAM_PATH := $(dir $(PYTHON313)):$(PATH)

sam-build: .venv-tools/.ok
	PATH="$(SAM_PATH)" LAYER_ARCH=$(ARCH) $(SAM_TOOLS)/sam build \
	    --parameter-overrides Architecture=$(ARCH) ServingRuntime=$(SERVING_RUNTIME)
	PATH="$(SAM_PATH)" LAYER_ARCH=arm64 $(SAM_TOOLS)/sam build --build-dir $(SAM_BUILD_DIR)-litert-arm64 \
	    --parameter-overrides Architecture=arm64 ServingRuntime=litert
	@found="$$(find $(SAM_BUILD_DIR) $(SAM_BUILD_DIR)-litert-arm64 -type d \( -iname 'tensorflow' -o -iname 'tensorflow[-_]*' \) -print)"; \
	if [ -n "$$found" ]; then \
	    echo "sam-build: TensorFlow must not be in the Lambda bundle, found:" >&2; echo "$$found" >&2; exit 1; \
	fi; \
	echo "sam-build: no TensorFlow in $(SAM_BUILD_DIR) ($$(du -sh $(SAM_BUILD_DIR) | cut -f1) unzipped)"

docker-up:
	$(SAM_SUDO) infra/docker/start-dockerd.sh
	$(SAM_SUDO) infra/lambda-base/build.sh

docker-down:
	$(SAM_SUDO) infra/docker/stop-dockerd.sh

SAM_MAKE = $(MAKE) --no-print-directory -f $(firstword $(MAKEFILE_LIST))
with-docker = trap '$(SAM_MAKE) docker-down' EXIT; $(SAM_MAKE) docker-up && $(1)

sam-test: .venv/.ok sam-build
	$(call with-docker,MAAS_REQUIRE_SAM=1 .venv/bin/python -m pytest tests/sam)
