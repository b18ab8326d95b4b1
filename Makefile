# Meridian's tasks. Every target creates .venv itself on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUNTIME := $(VENV)/.runtime
STAMP := $(VENV)/.installed

.PHONY: run test test-fast lint bench install lock clean

# The Python dependencies come from two locks at the same pins, every package pinned with its
# hashes (`make lock` writes both from pyproject.toml with uv, itself pinned here):
# requirements.lock, the runtime that `make run` needs, and requirements-dev.lock, which adds the
# test and benchmark tools. Meridian itself is then installed on top without resolving anything.
UV_VERSION := 0.13.8
LOCK := requirements.lock
DEV_LOCK := requirements-dev.lock
COMPILE := $(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes --quiet

# the runtime: Meridian and what it runs on, and the pages' front-end libraries vendored from npm
$(RUNTIME): pyproject.toml $(LOCK) frontend/package-lock.json frontend/vendor.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps -e .
	cd frontend && npm ci --no-audit --no-fund --loglevel=error && ./vendor.sh
	touch $(RUNTIME)

# the runtime plus the tests', the linters' and the benchmarks' tools
$(STAMP): $(RUNTIME) $(DEV_LOCK)
	$(BIN)/pip install --quiet --require-hashes -r $(DEV_LOCK)
	touch $(STAMP)

install: $(STAMP) ## create .venv with Meridian, its runtime and its tests' and benchmarks' tools; vendor the pages' front-end libraries from npm

run: $(RUNTIME) ## serve the API and the pages on 127.0.0.1:8000 with the demo world (SQLite in ./var/); installs the runtime only
	$(BIN)/meridian serve --demo

# Two runs, one exit status: everything that runs in-process on both cores (xdist), then the tests
# that start region-node processes or drive Chromium, one at a time as before: they run real
# timers (grant expiries, health checks, page waits) that a second busy worker only makes noisier.
test: $(STAMP) ## the whole test suite: in-process tests on two workers, then nodes and browser tests one at a time
	@status=0; \
	echo '$(BIN)/pytest -n 2 -m "not nodes and not browser"'; \
	$(BIN)/pytest -n 2 -m "not nodes and not browser" || status=$$?; \
	echo '$(BIN)/pytest -m "nodes or browser"'; \
	$(BIN)/pytest -m "nodes or browser" || status=$$?; \
	exit $$status

test-fast: $(STAMP) ## the inner loop: SQLite only, no browser, no region nodes, nothing slow; two workers
	$(BIN)/pytest -m "not slow and not postgres and not browser and not nodes" -n 2

lint: $(STAMP) ## ruff, mypy (strict) on src/, and the layer contract (lint-imports, docs/architecture.md)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src
	$(BIN)/mypy src
	$(BIN)/lint-imports

bench: $(STAMP) ## the benchmarks, as recorded in BENCHMARKS.md
	$(BIN)/python bench/decisions.py
	$(BIN)/python bench/api.py
	$(BIN)/python bench/relay.py
	$(BIN)/python bench/frames.py
	$(BIN)/python bench/routing.py
	$(BIN)/python bench/audit.py
	$(BIN)/python bench/middleware.py
	$(BIN)/python bench/replay.py
	$(BIN)/python bench/policy_diff.py

lock: ## rewrite both locks from pyproject.toml (keeps current pins; UPGRADE=1 takes the newest allowed)
	[ -x $(BIN)/uv ] || { [ -x $(BIN)/pip ] || $(PYTHON) -m venv $(VENV); $(BIN)/pip install --quiet uv==$(UV_VERSION); }
	$(BIN)/uv --version | grep -qx "uv $(UV_VERSION)" || $(BIN)/pip install --quiet uv==$(UV_VERSION)
	$(COMPILE) --extra dev --extra bench $(if $(UPGRADE),--upgrade) --output-file $(DEV_LOCK)
	$(COMPILE) --constraint $(DEV_LOCK) --output-file $(LOCK)
	@echo "wrote $(DEV_LOCK) ($$(grep -c '^[a-z0-9]' $(DEV_LOCK)) packages) and $(LOCK) ($$(grep -c '^[a-z0-9]' $(LOCK)), the runtime at the same pins), hashed; run \`make install\` to use them"

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .hypothesis frontend/node_modules src/meridian/web/static/vendor
