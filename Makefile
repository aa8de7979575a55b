# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test fuzz lint migrate demo bench bench-query bench-ui bench-alerts bench-rule-queries bench-overload bench-reliability lock clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,embedded]'
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

# Sample data for the collector of `make run` (same TELEMETRY_* settings). KEY=tc_... (or
# TELEMETRY_API_KEY) sends with your key; without one, an ingest+read key of project `demo`
# is created, printed, and used.
demo: $(BIN)/.installed
	@key="$${KEY:-$${TELEMETRY_API_KEY:-}}"; \
	if [ -z "$$key" ]; then \
		key=$$($(BIN)/telemetry-collector keys create --project demo --scope ingest \
			--scope read --name make-demo) || exit 1; \
		echo "created a key of project 'demo' (ingest, read); set KEY=$$key to reuse it"; \
	fi; \
	$(BIN)/telemetry-collector demo --key "$$key"

bench: $(BIN)/.installed
	$(BIN)/python bench/ingest.py

bench-query: $(BIN)/.installed
	$(BIN)/python bench/query.py

bench-ui: $(BIN)/.installed
	$(BIN)/python bench/ui.py

# Figures for docs/operations.md: overload (3x senders, large batches) and outages.
bench-overload: $(BIN)/.installed
	$(BIN)/python bench/overload.py

bench-reliability: $(BIN)/.installed
	$(BIN)/python bench/reliability.py

bench-alerts: $(BIN)/.installed
	$(BIN)/python bench/alerts.py

bench-rule-queries: $(BIN)/.installed
	$(BIN)/python bench/rule_queries.py

# requirements.lock: what the container image installs (pyproject's dependencies without
# extras, and the build backend), pinned with hashes. Run after changing dependencies;
# tests/docs/test_deploy_files.py checks that it still satisfies pyproject.toml.
lock: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet 'uv>=0.4'
	echo "setuptools>=77" | $(BIN)/uv pip compile pyproject.toml - --generate-hashes \
		--python-version 3.11 --python-platform linux --custom-compile-command "make lock" \
		--quiet -o requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
