# finegate: `make run` sets everything up and runs the pipeline on the demo config; `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= configs/demo.yaml
RUN_DIR ?= runs/demo
STAMP := $(VENV)/.finegate-setup
TINY_BASE := .cache/tiny-base

.PHONY: setup run test test-fast test-platform bench lint images images-push images-check kind-up clean-runs

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

# The demo's base model: no hub is reachable, so a tiny Llama is built from the sample data (about a minute).
$(TINY_BASE)/config.json: data/sample/note_titles.jsonl | $(STAMP)
	$(BIN)/finegate make-tiny-base --corpus data/sample/note_titles.jsonl --output $(TINY_BASE) --config $(CONFIG)

test: setup
	$(BIN)/python -m pytest -q

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
