# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test fuzz lint migrate demo bench bench-query clean

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

# The long runs of the fuzz suite (tests/api/fuzz, marker `fuzz`): many more examples per
# property than the smoke runs in `make test`. Prints how many requests it sent.
fuzz: $(BIN)/.installed
	$(BIN)/python -m pytest -m fuzz tests/api/fuzz

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

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
