# B2X Monitoring — developer commands. Everything runs from the project's virtualenv (.venv).
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

STAMP := $(VENV)/.installed

.PHONY: install run demo test test-fast lint format protos protos-check bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## create .venv and install the project with its dev tools (again when pyproject.toml changes)

run: $(STAMP) ## start the whole stack on embedded PostgreSQL and Redis (b2c up)
	$(VENV)/bin/b2c up

demo: $(STAMP) ## the stack plus simulated ERP/PIM/CRM endpoints and sample jobs
	$(VENV)/bin/b2c up --demo

test: $(STAMP) protos-check lint ## what CI runs: generated-code drift, linters, then the whole suite
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP) ## the suite alone
	$(PY) -m pytest -x -q $(PYTEST_ARGS)

lint: $(STAMP) ## ruff (lint + format check) and mypy --strict on hand-written code
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format:
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

protos: $(STAMP) ## regenerate protos/b2x/** from protos/*.proto with the pinned tools
	$(PY) scripts/gen_protos.py

protos-check: $(STAMP) ## fail when the committed generated code differs from a fresh generation
	$(PY) scripts/gen_protos.py --check

bench: $(STAMP) ## run the benchmarks in bench/ and print their figures (see bench/RESULTS.md)
	$(PY) -m bench

clean:
	rm -rf .pytest_cache .mypy_cache .ruff_cache build dist *.egg-info
