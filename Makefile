# huntlab developer commands. `make demo` and `make test` are the README quick start.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
EVENTS ?= 300000

.PHONY: setup setup-all demo test lint bench clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

# Extras for the demo (embedded engine) and for the whole test suite (every engine and connector).
DEMO_EXTRAS ?= dev,upstream
TEST_EXTRAS ?= dev,upstream,spark,postgres,cassandra,ml,server

$(VENV)/.installed: pyproject.toml | $(BIN)/activate
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[$(DEMO_EXTRAS)]'
	touch $@

$(VENV)/.installed-all: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[$(TEST_EXTRAS)]'
	touch $@

setup: $(VENV)/.installed  ## create the virtualenv and install huntlab with its test tools

setup-all: $(VENV)/.installed-all  ## also the extras for Spark, PostgreSQL, Cassandra, ML, server
	@set -e; for f in .ci/setup-*.sh; do [ -e "$$f" ] || continue; echo "== $$f"; bash "$$f"; done

demo: setup  ## a fresh workspace with sample telemetry; runs the bundled hunting jobs
	rm -rf demo-ws
	$(BIN)/huntlab demo demo-ws --events $(EVENTS)

test: setup-all  ## the whole test suite (the command CI runs): installs system packages too
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

bench: setup  ## speed and memory against hand-written DuckDB SQL (and PySpark if installed)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) demo-ws .pytest_cache
