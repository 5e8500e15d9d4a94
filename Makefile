# SpineWatch -- every target creates .venv when it is missing and installs the pinned dependencies.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR ?= spinewatch-demo

.PHONY: install demo test test-sqlite test-postgres lint format bench bench-registry validate clean lock

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==25.3

$(STAMP): $(BIN)/python pyproject.toml requirements.lock
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/spinewatch demo --dir $(DEMO_DIR)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts
	$(BIN)/mypy src/spinewatch/core src/spinewatch/imaging src/spinewatch/validation

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks scripts
	$(BIN)/ruff check --fix src tests benchmarks scripts

test-sqlite: $(STAMP)
	$(BIN)/pytest -n 2 -q

# Every database test (marked django_db) again against a real PostgreSQL server
# (the one on 127.0.0.1:5432, or a throwaway one started from the PostgreSQL binaries).
test-postgres: $(STAMP)
	$(BIN)/python scripts/with_postgres.py $(BIN)/pytest -n 2 -q -m django_db

test: lint test-sqlite test-postgres

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/pages.py

# The registry at BENCH_PATIENTS (default 100,000) patients in its own PostgreSQL database
# (sw_bench_registry, dropped and re-created): write rates, page/API latencies, cohort table.
bench-registry: $(STAMP)
	$(BIN)/python benchmarks/registry.py

# The imaging methods on the real scans in ../shared/data and on phantoms -> docs/validation.md.
validate: $(STAMP)
	$(BIN)/spinewatch validate --out docs/validation.md

# Re-pin the transitive dependencies after changing pyproject.toml.
lock: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^-e' > requirements.lock

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .mypy_cache .ruff_cache
