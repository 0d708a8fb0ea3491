# maas — every workflow starts here. `make demo` and `make test` install what they need.
#
# Four environments, because their numpy versions and Pythons cannot meet (README, "Environments"):
#   .venv         serving + CLI + development on Python 3.11: tflite-runtime 2.14, numpy<2,
#                 Powertools, boto3, uvicorn, httpx, pytest, moto, schemathesis, playwright, and
#                 the Open Inference clients (tritonclient, kserve, open-inference-openapi)
#   .venv-litert  the same on Python 3.13 with LiteRT (ai-edge-litert) and numpy 2: the other
#                 serving runtime (template.yaml's ServingRuntime=litert); `make test` runs the
#                 serving tests in it too
#   .venv-train   training: TensorFlow 2.21 (numpy>=2), LiteRT, scikit-learn, matplotlib, and the
#                 bench's peers (ONNX Runtime, tf2onnx)
#   .venv-tools   SAM CLI, cfn-lint, checkov (their pins stay out of the product's environments)
# `.venv/bin/maas train` runs the training job in .venv-train by itself.

SHELL := /bin/bash
PYTHON ?= python3.11
# The newer Lambda Python of the LiteRT runtime: python3.13 on PATH, or pyenv's.
PYTHON313 ?= $(or $(shell command -v python3.13 >/dev/null 2>&1 && python3.13 -c 'import sys; print(sys.executable)' 2>/dev/null),$(firstword $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3.13)),python3.13)
export PYTHON313
UV ?= $(shell command -v uv 2>/dev/null || echo .uv/bin/uv)
export SAM_CLI_TELEMETRY := 0
export POWERTOOLS_TRACE_DISABLED := true
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: install demo test test-litert test-fast lint typecheck bench fuzz cli-reference clean
install: .venv/.ok .venv-litert/.ok .venv-train/.ok .venv-tools/.ok

$(UV):
	$(PYTHON) -m venv .uv && .uv/bin/pip install -q 'uv>=0.5,<1'

.venv/.ok: pyproject.toml | $(UV)
	$(UV) venv -q --allow-existing -p $(PYTHON) .venv
	VIRTUAL_ENV=.venv $(UV) pip install -q --compile-bytecode -e '.[serve,cli,dev,interop]'
	touch $@

.venv-litert/.ok: pyproject.toml | $(UV)
	@$(PYTHON313) -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null || \
	    { echo "install: no Python 3.13 found (PYTHON313=$(PYTHON313)); the LiteRT runtime needs one" >&2; exit 1; }
	$(UV) venv -q --allow-existing -p $(PYTHON313) .venv-litert
	VIRTUAL_ENV=.venv-litert $(UV) pip install -q --compile-bytecode -e '.[serve,cli,dev]'
	touch $@

.venv-train/.ok: pyproject.toml | $(UV)
	$(UV) venv -q --allow-existing -p $(PYTHON) .venv-train
	VIRTUAL_ENV=.venv-train $(UV) pip install -q --compile-bytecode -e '.[train,peers]'
	touch $@

.venv-tools/.ok: pyproject.toml | $(UV)
	$(UV) venv -q --allow-existing -p $(PYTHON) .venv-tools
	VIRTUAL_ENV=.venv-tools $(UV) pip install -q --compile-bytecode '.[tools]'
	touch $@

include infra/sam.mk

demo: install
	.venv/bin/maas demo

lint: .venv/.ok
	.venv/bin/ruff check shared functions tests bench events data
	.venv/bin/ruff format --check shared functions tests bench events data

# The two functions are both `app.py` (Lambda's convention): check each on its own.
typecheck: .venv/.ok
	.venv/bin/mypy
	MYPYPATH=shared .venv/bin/mypy functions/http/app.py
	MYPYPATH=shared .venv/bin/mypy functions/queue/app.py

# Everything CI runs: static checks, the template gates, the Lambda bundle, then every test,
# the SAM ones included (between docker-up and docker-down, which runs even on failure).
# pytest's exit status 5 (nothing collected) fails like any other.
test: install lint typecheck sam-check sam-build test-litert
	$(call with-docker,MAAS_REQUIRE_SAM=1 .venv/bin/python -m pytest)

# The serving tests again on the other runtime (ServingRuntime=litert): Python 3.13, LiteRT,
# numpy 2. (The Open Inference clients' tests stay in .venv: tritonclient and kserve pin
# their own numpy and Python ranges.)
LITERT_TESTS := tests/test_http.py tests/test_queue.py tests/test_tokenizer.py \
    tests/test_integrity.py tests/test_explain.py tests/test_store.py tests/test_faults.py
test-litert: .venv-litert/.ok .venv-train/.ok
	.venv-litert/bin/python -m pytest -p no:cacheprovider -m "not sam" $(LITERT_TESTS)

# Without Docker and SAM: the quick loop while developing.
test-fast: install
	.venv/bin/python -m pytest -m "not sam"

# The serving path against TensorFlow and the bare interpreter, side by side (bench/harness.py):
# trains or reuses a model per preset, sam build, moto on 127.0.0.1; ~2.5 min on 2 cores.
# Table on stdout, JSON + Markdown in bench-results/. `make bench BENCH_ARGS=--quick` is faster.
# Then the peer table (bench/peers.py): maas on both runtimes beside ONNX Runtime, TensorFlow's
# TFLite interpreter and scikit-learn, on the same model and texts (~4 min; --quick ~2 min).
# Then training memory against rows (bench/streaming.py): files of 100 k, 300 k and 1 M rows,
# streamed and held in memory, one epoch each (~30 min on 2 cores; --quick: 20 k-100 k rows).
PEERS_ARGS ?= $(filter --quick,$(BENCH_ARGS))
STREAMING_ARGS ?= $(if $(filter --quick,$(BENCH_ARGS)),--rows 20000$(,)50000$(,)100000)
, := ,
bench: install
	.venv/bin/python bench/harness.py $(BENCH_ARGS)
	.venv/bin/python bench/peers.py $(PEERS_ARGS)
	.venv-train/bin/python bench/streaming.py $(STREAMING_ARGS)

# The fuzz suite at five times its `make test` size (10,000 API Gateway events, ~1,500 schema
# cases, 2,000 queue batches, 300 mutated model files); counts, statuses, p99 and RSS growth
# go to bench-results/fuzz-<time>.json.
FUZZ_SCALE ?= 5
fuzz: install
	MAAS_FUZZ_SCALE=$(FUZZ_SCALE) MAAS_FUZZ_REPORT=bench-results .venv/bin/python -m pytest tests/test_fuzz.py -p no:cacheprovider -q

# The README's CLI reference, rewritten from the parser (tests/test_readme.py checks it).
cli-reference: .venv/.ok
	.venv/bin/python -m maas.cli.reference --write README.md

clean:
	rm -rf .aws-sam .maas bench-results test-artifacts .pytest_cache .mypy_cache .ruff_cache
