# Meridian's tasks. Every target creates .venv itself on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast lint bench install lock clean

# The Python dependencies come from requirements.lock: every package pinned with its hashes
# (`make lock` writes it from pyproject.toml with uv, itself pinned here); Meridian itself is
# then installed on top without resolving anything.
UV_VERSION := 0.13.8
LOCK := requirements.lock

$(STAMP): pyproject.toml $(LOCK) frontend/package-lock.json frontend/vendor.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps -e .
	cd frontend && npm ci --no-audit --no-fund --loglevel=error && ./vendor.sh
	touch $(STAMP)

install: $(STAMP) ## create .venv with Meridian and its tests' and benchmarks' dependencies; vendor the pages' front-end libraries from npm

run: $(STAMP) ## serve the API on 127.0.0.1:8000 with the demo world (SQLite in ./var/)
	$(BIN)/meridian serve --demo

test: $(STAMP) ## the whole test suite
	$(BIN)/pytest

test-fast: $(STAMP) ## the inner loop: SQLite only, no browser, no region nodes, nothing slow; two workers
	$(BIN)/pytest -m "not slow and not postgres and not browser and not nodes" -n 2

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

lock: ## rewrite requirements.lock from pyproject.toml (keeps current pins; UPGRADE=1 takes the newest allowed)
	[ -x $(BIN)/uv ] || { [ -x $(BIN)/pip ] || $(PYTHON) -m venv $(VENV); $(BIN)/pip install --quiet uv==$(UV_VERSION); }
	$(BIN)/uv --version | grep -qx "uv $(UV_VERSION)" || $(BIN)/pip install --quiet uv==$(UV_VERSION)
	$(BIN)/uv pip compile pyproject.toml --extra dev --extra bench --universal --python-version 3.11 \
		--generate-hashes --quiet $(if $(UPGRADE),--upgrade) --output-file $(LOCK)
	@echo "wrote $(LOCK): $$(grep -c '^[a-z0-9]' $(LOCK)) packages, hashed; run \`make install\` to use it"

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .hypothesis frontend/node_modules src/meridian/web/static/vendor
