# The two commands: `make run` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: all run test lint bench clean contract

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
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check survey_service tests bench
	$(BIN)/ruff format --check survey_service tests bench
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m bench

contract: $(STAMP)
	../shared/contract-check

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
