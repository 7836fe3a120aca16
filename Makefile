# wfm-pipeline: `make run` to try it, `make test` to check it. Everything installs from requirements.lock.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
STAMP := $(VENV)/.installed

.PHONY: help install run test lint typecheck validate bench lock clean

help:
	@echo "make run    - install (if needed), start the Genesys sandbox and dagster dev on http://127.0.0.1:3000"
	@echo "make test   - install (if needed), then lint, type-check, validate definitions and run the whole test suite"
	@echo "make bench  - run the benchmarks and write BENCHMARKS.md"
	@echo "make lock   - re-resolve requirements.lock from pyproject.toml"

install: $(STAMP)

# The venv is rebuilt from the lock whenever the lock or the project metadata changes. Every package is
# pinned with its sha256 hashes, and installed only if the downloaded file matches them.
$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	$(BIN)/uv pip install --quiet --python $(BIN)/python --require-hashes -r requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	@touch $(STAMP)

lock:
	@test -x $(BIN)/uv || { $(PYTHON) -m venv $(VENV) && $(BIN)/python -m pip install --quiet "uv==$(UV_VERSION)"; }
	$(BIN)/uv pip compile --quiet pyproject.toml --extra dev --python-version 3.11 --generate-hashes \
		-o requirements.lock

run: $(STAMP)
	$(BIN)/wfm-pipeline dev

lint: $(STAMP)
	$(BIN)/ruff check wfm_pipeline wfm_pipeline_tests bench harness
	$(BIN)/ruff format --check wfm_pipeline wfm_pipeline_tests bench harness

typecheck: $(STAMP)
	$(BIN)/mypy

validate: $(STAMP)
	$(BIN)/dagster definitions validate -m wfm_pipeline.definitions

test: lint typecheck validate
	$(BIN)/python -m pytest -p no:cacheprovider -q

bench: $(STAMP)
	$(BIN)/python -m bench.run_all --output BENCHMARKS.md

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
