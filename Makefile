# The two commands: `make run` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: all run test lint bench chaos fuzz clean contract

all: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/survey-service start

test: $(STAMP)
	$(BIN)/ruff check survey_service tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest -q --durations=15

lint: $(STAMP)
	$(BIN)/ruff check survey_service tests bench
	$(BIN)/ruff format --check survey_service tests bench
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
	  $(BIN)/python -m pytest -q -s -p no:cacheprovider tests/test_chaos_sends.py

fuzz: $(STAMP)
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest -q -s -p no:cacheprovider tests/test_fuzz_openapi.py

contract: $(STAMP)
	../shared/contract-check

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
