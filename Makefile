# huntlab developer commands. `make demo` and `make test` are the README quick start.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
EVENTS ?= 300000

.PHONY: setup demo test test-all lint bench clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/activate
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,upstream]'
	touch $@

setup: $(VENV)/.installed  ## create the virtualenv and install huntlab with its test tools

demo: setup  ## a fresh workspace with sample telemetry; runs the bundled hunting jobs
	rm -rf demo-ws
	$(BIN)/huntlab demo demo-ws --events $(EVENTS)

test: setup  ## the whole test suite (the command CI runs)
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

bench: setup  ## speed and memory against hand-written DuckDB SQL (and PySpark if installed)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) demo-ws .pytest_cache
