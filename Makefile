# Meridian's tasks. Every target creates .venv itself on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench install clean

$(STAMP): pyproject.toml frontend/package-lock.json frontend/vendor.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev,bench]"
	cd frontend && npm ci --no-audit --no-fund --loglevel=error && ./vendor.sh
	touch $(STAMP)

install: $(STAMP) ## create .venv with Meridian and its tests' and benchmarks' dependencies; vendor the pages' front-end libraries from npm

run: $(STAMP) ## serve the API on 127.0.0.1:8000 with the demo world (SQLite in ./var/)
	$(BIN)/meridian serve --demo

test: $(STAMP) ## the whole test suite
	$(BIN)/pytest

lint: $(STAMP) ## ruff and mypy (strict) on src/
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src
	$(BIN)/mypy src

bench: $(STAMP) ## the benchmarks, as recorded in BENCHMARKS.md
	$(BIN)/python bench/decisions.py
	$(BIN)/python bench/api.py
	$(BIN)/python bench/relay.py
	$(BIN)/python bench/frames.py
	$(BIN)/python bench/routing.py
	$(BIN)/python bench/audit.py
	$(BIN)/python bench/middleware.py

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .hypothesis frontend/node_modules src/meridian/web/static/vendor
