# The two commands: `make run` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: all run test test-quick lint bench chaos fuzz clean contract

all: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/survey-service start

test: lint
	$(BIN)/python -m pytest -q --durations=15

# The inner loop (about 2 minutes): SQLite only, no browser, no processes of their own, nothing slow.
test-quick: $(STAMP)
	TEST_BACKENDS=sqlite $(BIN)/python -m pytest -q -p no:cacheprovider -m "not browser and not process and not slow"

# ruff (style, imports, complexity C90, timezones DTZ), formatting, then mypy --strict (pyproject's
# [tool.mypy] names what it checks). Layer contracts (lint-imports) belong here too.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python -m bench

# Long runs of the reduced suites in `make test` (sizes from the environment; see README).
CHAOS_EVENTS ?= 2000
CHAOS_RESPONSES ?= 1000
CHAOS_KILLS ?= 4
FUZZ_EXAMPLES ?= 200

chaos: $(STAMP)
	CHAOS_EVENTS=$(CHAOS_EVENTS) CHAOS_RESPONSES=$(CHAOS_RESPONSES) CHAOS_KILLS=$(CHAOS_KILLS) \
	  $(BIN)/python -m pytest -q -s -p no:cacheprovider tests/ops/test_chaos_sends.py

fuzz: $(STAMP)
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest -q -s -p no:cacheprovider tests/api/test_fuzz_openapi.py

contract: $(STAMP)
	../shared/contract-check

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
