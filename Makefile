# collectflow: `make demo` runs the main job, `make test` the whole test suite.
# Both set everything up first (a .venv beside this file); only Python 3.11+ is needed.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
export PREFECT_SERVER_ANALYTICS_ENABLED := false

.PHONY: setup demo test test-fast bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "collectflow needs Python 3.11 or newer; found " + sys.version.split()[0] + " (set PYTHON=python3.12 ...)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/collectflow demo

test: setup
	@bash scripts/ensure-test-services
	$(BIN)/python -m pytest -q

test-fast: setup
	$(BIN)/python -m pytest -q -m "not e2e"

bench: setup
	$(BIN)/python benchmarks/bench_store.py
	$(BIN)/python benchmarks/bench_close.py

clean:
	rm -rf $(VENV) collectflow-data .pytest_cache .hypothesis
