# riskbento: one command per chore. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON_BIN ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
USE_CASE ?=
PORT ?= 3000
SERVE_USE_CASE = $(or $(USE_CASE),credit_risk)
export BENTOML_DO_NOT_TRACK := True

.PHONY: help up install data quality train score score-file serve loadtest bench bench-features test lint format clean

help: ## List every target with one line each
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

up: ## Fresh clone to a serving model: install, data, quality, train USE_CASE if missing, serve
	$(MAKE) install data quality
	$(PY) -m riskbento train --if-missing $(SERVE_USE_CASE)
	$(MAKE) serve

install: $(STAMP) ## Create .venv (Python 3.11) with the pinned requirements; fast when nothing changed

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON_BIN) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

data: $(STAMP) ## Write the built-in use cases' data under data/ (USE_CASE=name for one)
	$(PY) -m riskbento data $(USE_CASE)

quality: $(STAMP) ## Data-quality report per use case under reports/<name>/ (USE_CASE=name or spec path)
	$(PY) -m riskbento quality $(USE_CASE)

train: $(STAMP) ## Train, evaluate and store models; report under reports/<name>/ (USE_CASE=name or spec path)
	$(PY) -m riskbento train $(USE_CASE)

score: $(STAMP) ## Batch outputs from the stored model under outputs/<name>/ (USE_CASE=name or spec path)
	$(PY) -m riskbento score $(USE_CASE)

score-file: $(STAMP) ## Score your CSV: USE_CASE=x FILE=in.csv OUT=out.csv [TRANSACTIONS=tx.csv]
	$(PY) -m riskbento score-file $(SERVE_USE_CASE) $(FILE) $(OUT) $(if $(TRANSACTIONS),--transactions $(TRANSACTIONS))

serve: $(STAMP) ## Serve USE_CASE (default credit_risk) on 127.0.0.1:PORT (default 3000), foreground
	RISKBENTO_USE_CASE=$(SERVE_USE_CASE) $(VENV)/bin/bentoml serve service:RiskService --host 127.0.0.1 --port $(PORT)

loadtest: $(STAMP) ## Locust: briefs' traffic, 10x, capacity ramp on a local server -> reports/loadtest/ (SMOKE=1: seconds)
	$(PY) -m loadtest.run --use-case $(SERVE_USE_CASE) $(if $(SMOKE),--smoke)

bench: $(STAMP) ## Serving benchmark: in process, riskbento vs FastAPI peers, settings sweep -> reports/bench/ (SMOKE=1: ~1 min)
	$(PY) -m loadtest.bench $(if $(USE_CASE),--use-case $(USE_CASE)) $(if $(SMOKE),--smoke)

bench-features: $(STAMP) ## Transaction features on 1M and 10M rows: time and peak memory -> reports/bench/ (SMOKE=1)
	$(PY) -m loadtest.bench_features $(if $(SMOKE),--smoke,--sizes 1000000 10000000)

test: $(STAMP) ## Run every test tier (unit, data, slow)
	$(PY) -m pytest

lint: $(STAMP) ## ruff check + ruff format --check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP) ## Apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean: ## Remove generated data, reports and outputs (keeps .venv)
	rm -rf data/*/ reports outputs
