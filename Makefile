# finegate: `make run` sets everything up and runs the pipeline on the demo config; `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= configs/demo.yaml
RUN_DIR ?= runs/demo
STAMP := $(VENV)/.finegate-setup

.PHONY: setup run test test-fast bench lint clean-runs

setup: $(STAMP)

$(STAMP): pyproject.toml requirements/base.txt requirements/dev.txt scripts/setup_llama_cpp.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements/dev.txt
	$(BIN)/pip install -q --no-deps -e .
	scripts/setup_llama_cpp.sh $(VENV) .cache/llama.cpp
	touch $(STAMP)

run: setup
	$(BIN)/finegate run --config $(CONFIG) --output-dir $(RUN_DIR)

test: setup
	$(BIN)/python -m pytest -q

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow"

bench: setup
	$(BIN)/python -m bench

lint: setup
	$(BIN)/ruff check components pipelines tests bench

clean-runs:
	rm -rf runs
