# The two commands: `make run` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# What running needs (`make run`), and on top of it the dev tools (tests, linters, Playwright):
# separate stamps, so `make run` never downloads the test toolchain. pip shows its progress.
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
# The browser tests drive Debian's Chromium (tests/support/env.py reads the same CHROMIUM_PATH).
CHROMIUM_PATH ?= /usr/bin/chromium

.PHONY: all run test test-quick lint chromium bench bench-smoke chaos fuzz clean contract docker-test

all: $(RUN_STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -e .
	touch $@

$(DEV_STAMP): pyproject.toml $(RUN_STAMP)
	$(BIN)/pip install -e '.[dev]'
	touch $@

run: $(RUN_STAMP)
	$(BIN)/survey-service start

# Everything but benchmarks (they load the machine; `make bench`, `make bench-smoke`).
test: lint chromium
	$(BIN)/python -m pytest -q --durations=15 -m "not bench"

# Chromium for the browser tests: Debian's package, installed when missing and this runs as root with
# apt-get; otherwise say how. Without it those tests skip, counted in the summary (-ra); under CI=true
# they fail (tests/conftest.py, `browser`).
chromium:
	@if [ -x "$(CHROMIUM_PATH)" ]; then :; \
	elif [ "$(CHROMIUM_PATH)" = /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "Chromium is missing at $(CHROMIUM_PATH): installing Debian's package for the browser tests"; \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium \
	    || echo "Could not install Chromium: the browser tests will skip (fail under CI=true)."; \
	else \
	  echo "Chromium is missing at $(CHROMIUM_PATH): the browser tests will skip (fail under CI=true)."; \
	  echo "Install it with: sudo apt-get install chromium   (or set CHROMIUM_PATH to a Chromium binary)"; \
	fi

# The image built on a local Debian base and run as containers (migrate, web, worker; README "Docker").
# Part of `make test` too; skips without Debian's docker.io (apt-get install docker.io debootstrap).
docker-test: $(DEV_STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider -rs tests/ops/test_docker.py

# The inner loop (about 2 minutes): SQLite only, no browser, no processes of their own, nothing slow.
test-quick: $(DEV_STAMP)
	TEST_BACKENDS=sqlite $(BIN)/python -m pytest -q -p no:cacheprovider -m "not browser and not process and not slow"

# ruff (style, imports, complexity C90, timezones DTZ), formatting, then mypy --strict (pyproject's
# [tool.mypy] names what it checks). Layer contracts (lint-imports) belong here too.
lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# The bench harness end to end at a small size (`python -m bench --quick`): every ratio printed, every
# acknowledged write found in the database. No timing is asserted.
bench-smoke: $(DEV_STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider -m bench

# Then the widget's page views in a real Chromium (bench/README.md, "Widget page views").
bench: $(DEV_STAMP) chromium
	$(BIN)/python -m bench
	$(BIN)/python -m bench.widget_session

# Long runs of the reduced suites in `make test` (sizes from the environment; see README).
CHAOS_EVENTS ?= 2000
CHAOS_RESPONSES ?= 1000
CHAOS_KILLS ?= 4
FUZZ_EXAMPLES ?= 200

chaos: $(DEV_STAMP)
	CHAOS_EVENTS=$(CHAOS_EVENTS) CHAOS_RESPONSES=$(CHAOS_RESPONSES) CHAOS_KILLS=$(CHAOS_KILLS) \
	  $(BIN)/python -m pytest -q -s -p no:cacheprovider tests/ops/test_chaos_sends.py

fuzz: $(DEV_STAMP)
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest -q -s -p no:cacheprovider tests/api/test_fuzz_openapi.py

contract: $(DEV_STAMP)
	../shared/contract-check

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
