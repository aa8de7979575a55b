# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint migrate demo bench bench-query bench-overload bench-reliability clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# Serves on 0.0.0.0:4318; starts an embedded PostgreSQL when TELEMETRY_DATABASE_URL is unset.
run: $(BIN)/.installed
	$(BIN)/telemetry-collector serve

# The whole suite against TEST_DATABASE_URL, or an embedded PostgreSQL when unset.
test: $(BIN)/.installed
	$(BIN)/python -m pytest

lint: $(BIN)/.installed
	$(BIN)/ruff check app tests bench migrations
	$(BIN)/ruff format --check app tests bench migrations

migrate: $(BIN)/.installed
	$(BIN)/telemetry-collector migrate

demo: $(BIN)/.installed
	$(BIN)/telemetry-collector demo

bench: $(BIN)/.installed
	$(BIN)/python bench/ingest.py

bench-query: $(BIN)/.installed
	$(BIN)/python bench/query.py

# Figures for docs/operations.md: overload (3x senders, large batches) and outages.
bench-overload: $(BIN)/.installed
	$(BIN)/python bench/overload.py

bench-reliability: $(BIN)/.installed
	$(BIN)/python bench/reliability.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
