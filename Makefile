# B2X Monitoring — developer commands. Everything runs from the project's virtualenv (.venv).
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

STAMP := $(VENV)/.installed
# The dashboard (frontend/) is built into gateway/webapp/ with the machine's Node.js (docs/adr).
NODE_MODULES := frontend/node_modules/.package-lock.json
DASHBOARD := gateway/webapp/.built
DASHBOARD_SOURCES := $(shell find frontend/src frontend/public -type f 2>/dev/null) frontend/index.html \
	frontend/package-lock.json frontend/vite.config.ts frontend/tsconfig.json

.PHONY: install run demo test test-fast lint format protos protos-check frontend-types frontend-check screenshots bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(NODE_MODULES): frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund

$(DASHBOARD): $(NODE_MODULES) $(DASHBOARD_SOURCES)
	cd frontend && npm run build
	touch $@

install: $(STAMP) $(DASHBOARD) ## create .venv, install the project with its dev tools, build the dashboard

run: $(STAMP) $(DASHBOARD) ## start the whole stack on embedded PostgreSQL and Redis (b2c up)
	$(VENV)/bin/b2c up

demo: $(STAMP) $(DASHBOARD) ## the stack plus simulated ERP/PIM/CRM endpoints and sample jobs
	$(VENV)/bin/b2c up --demo

test: $(STAMP) $(DASHBOARD) protos-check frontend-check lint ## what CI runs: drift checks, linters, the whole suite
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

frontend-types: $(STAMP) $(NODE_MODULES) ## regenerate frontend/schema.graphql and the dashboard's TypeScript types
	$(PY) scripts/gen_frontend_types.py

frontend-check: $(STAMP) $(NODE_MODULES) ## schema/type drift, type check and unit tests of the dashboard
	$(PY) scripts/gen_frontend_types.py --check
	cd frontend && npx vue-tsc --noEmit && npx vitest run

screenshots: $(STAMP) $(DASHBOARD) ## the browser tests, saving a screenshot of each screen to docs/screenshots/
	mkdir -p docs/screenshots
	B2X_SCREENSHOT_DIR=$(CURDIR)/docs/screenshots $(PY) -m pytest -q tests/dashboard

bench: $(STAMP) ## run the benchmarks in bench/ and print their figures (see bench/RESULTS.md)
	$(PY) -m bench

clean:
	rm -rf .pytest_cache .mypy_cache .ruff_cache build dist *.egg-info gateway/webapp
