# finegate: `make run` sets everything up and runs the pipeline on the demo config; `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= configs/demo.yaml
RUN_DIR ?= runs/demo
STAMP := $(VENV)/.finegate-setup
TINY_BASE := .cache/tiny-base

.PHONY: setup setup-postgres run replay test test-fast test-platform bench lint images images-push images-check kind-up clean-runs

setup: $(STAMP)

$(STAMP): pyproject.toml requirements/base.txt requirements/dev.txt requirements/constraints.txt scripts/setup_llama_cpp.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements/dev.txt
	$(BIN)/pip install -q --no-deps -e .
	scripts/setup_llama_cpp.sh $(VENV) .cache/llama.cpp
	touch $(STAMP)

run: setup $(TINY_BASE)/config.json
	$(BIN)/finegate run --config $(CONFIG) --output-dir $(RUN_DIR)

# The failed v1 run's faults, each replayed alone on its data and caught by its own gate (configs/v1-scenarios.yaml).
replay: setup $(TINY_BASE)/config.json
	$(BIN)/finegate replay --output-dir runs/replay

# The demo's base model: no hub is reachable, so a tiny Llama is built from the sample data (a few minutes).
# Always with the demo's settings (its tiny_base section): every config that names .cache/tiny-base means this model.
$(TINY_BASE)/config.json: data/sample/note_titles.jsonl configs/demo.yaml | $(STAMP)
	$(BIN)/finegate make-tiny-base --corpus data/sample/note_titles.jsonl --output-dir $(TINY_BASE) --config configs/demo.yaml

test: setup
	$(BIN)/python -m pytest -q

# tests/platform starts a real PostgreSQL (tests/fixtures/postgres.py) from Debian's package; install it
# once, only when its server binaries are missing.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
setup-postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || \
	  { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq postgresql; }

# Everything that builds, trains or converts no model (tests/conftest.py marks every test using a model fixture slow).
test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow"

test-platform: setup
	$(BIN)/python -m pytest -q tests/platform

bench: setup
	$(BIN)/python -m bench

lint: setup
	$(BIN)/ruff check components pipelines tests bench

# Container images and a local kind cluster (see images/README.md and k8s/README.md).
images:
	images/build.sh

images-push:
	images/build.sh --push

# Builds base, data, gguf and mlflow from nothing and runs them (Docker, PostgreSQL; needs root): see
# scripts/images_check.sh. `scripts/images_check.sh --with-train` adds the multi-GB CUDA train image.
images-check: setup
	scripts/images_check.sh

kind-up:
	k8s/kind/create.sh

clean-runs:
	rm -rf runs
