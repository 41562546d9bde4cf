# riskbento: one command per chore. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON_BIN ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SPARK_STAMP := $(VENV)/.installed-spark
ENGINE ?=
USE_CASE ?=
PORT ?= 3000
IMAGE_BASE ?= slim
SERVE_USE_CASE = $(or $(USE_CASE),credit_risk)
SCALEOUT_ARGS = $(if $(TRANSACTIONS),--transactions $(TRANSACTIONS)) $(if $(CUSTOMERS),--customers $(CUSTOMERS)) \
	$(if $(OUT),--out $(OUT)) $(if $(WORKERS),--workers $(WORKERS)) $(if $(SCHEDULER),--scheduler $(SCHEDULER)) \
	$(if $(MASTER),--master $(MASTER))
export BENTOML_DO_NOT_TRACK := True

.PHONY: help up install install-spark install-promtool install-browser data init quality train score features score-file retrain drift traffic outcomes promote document dashboard-data serve image-base image image-smoke loadtest bench bench-train bench-scaleout bench-features soak test lint format clean

help: ## List every target with one line each
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

up: ## Fresh clone to a serving model: install, data, quality, train USE_CASE if missing, serve
	$(MAKE) install data quality
	$(PY) -m riskbento train --if-missing $(SERVE_USE_CASE)
	$(MAKE) serve

install: $(STAMP) ## Create .venv (Python 3.11) with the pinned requirements; fast when nothing changed

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON_BIN) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

install-spark: $(SPARK_STAMP) ## The Spark engine: pyspark (requirements-spark.txt) and Java 17 from Debian where missing

$(SPARK_STAMP): $(STAMP) requirements-spark.txt
	command -v java >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless; }
	$(PY) -m pip install --quiet -r requirements-spark.txt
	touch $(SPARK_STAMP)

install-promtool: $(STAMP) ## promtool for the alert-rule tests: taken out of Debian's prometheus package into .venv/bin (no service started)
	command -v promtool >/dev/null || [ -x .venv/bin/promtool ] || { \
	  work=$$(mktemp -d) && cd $$work && apt-get update -qq && apt-get download prometheus && \
	  dpkg-deb -x prometheus_*.deb root && cp root/usr/bin/promtool $(CURDIR)/.venv/bin/ && rm -rf $$work; }

install-browser: $(STAMP) ## Debian's chromium for the dashboard's browser test (playwright is in requirements.txt)
	command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

data: $(STAMP) ## Write the built-in use cases' data under data/ (USE_CASE=name for one)
	$(PY) -m riskbento data $(USE_CASE)

init: $(STAMP) ## Draft a spec from your CSV, to review: DATA=file.csv TARGET=column POSITIVE=value [ID=column TRANSACTIONS=tx.csv OUT=spec.yaml]
	$(PY) -m riskbento init $(or $(DATA),$(error DATA=file.csv is required)) --target "$(or $(TARGET),$(error TARGET=column is required))" \
		--positive "$(or $(POSITIVE),$(error POSITIVE=value is required))" $(if $(ID),--id "$(ID)") $(if $(TRANSACTIONS),--transactions $(TRANSACTIONS)) $(if $(OUT),--out $(OUT))

quality: $(STAMP) ## Data-quality report per use case under reports/<name>/ (USE_CASE=name or spec path)
	$(PY) -m riskbento quality $(USE_CASE)

train: $(STAMP) ## Train, evaluate and store models; report under reports/<name>/ (USE_CASE=name or spec path)
	$(PY) -m riskbento train $(USE_CASE)

score: $(STAMP) ## Batch outputs under outputs/<name>/; ENGINE=local|dask|spark: one answer per customer at scale
	$(PY) -m riskbento score $(USE_CASE) $(if $(ENGINE),--engine $(ENGINE) $(SCALEOUT_ARGS))

features: $(STAMP) ## Per-customer features at scale: USE_CASE=x ENGINE=local|dask|spark [TRANSACTIONS=p CUSTOMERS=p OUT=dir WORKERS=n]
	$(PY) -m riskbento features $(SERVE_USE_CASE) --engine $(or $(ENGINE),local) $(SCALEOUT_ARGS)

score-file: $(STAMP) ## Score your CSV: USE_CASE=x FILE=in.csv OUT=out.csv [TRANSACTIONS=tx.csv]
	$(PY) -m riskbento score-file $(SERVE_USE_CASE) $(FILE) $(OUT) $(if $(TRANSACTIONS),--transactions $(TRANSACTIONS))

retrain: $(STAMP) ## Challenger on new labeled data, promoted only if better: USE_CASE=x DATA=csv-or-folder [QUICK=1] [DATE_COLUMN=c WINDOW_DAYS=90 AS_OF=YYYY-MM-DD]
	$(PY) -m riskbento retrain $(USE_CASE) --data $(DATA) $(if $(QUICK),--quick) \
		$(if $(DATE_COLUMN),--date-column $(DATE_COLUMN)) $(if $(WINDOW_DAYS),--window-days $(WINDOW_DAYS)) $(if $(AS_OF),--as-of $(AS_OF))

drift: $(STAMP) ## Logged predictions vs the training data -> reports/<name>/drift/, exit 1 on drift; then dashboard-data: USE_CASE=x [LOG=dir]
	$(PY) -m riskbento drift $(SERVE_USE_CASE) $(if $(LOG),--log $(LOG)); status=$$?; \
	$(PY) -m riskbento dashboard-data $(SERVE_USE_CASE) $(if $(LOG),--log $(LOG)) && exit $$status

dashboard-data: $(STAMP) ## The risk dashboard's aggregates from the prediction log -> reports/<name>/dashboard/data.json: USE_CASE=x [LOG=dir]
	$(PY) -m riskbento dashboard-data $(SERVE_USE_CASE) $(if $(LOG),--log $(LOG))

traffic: $(STAMP) ## Log the scored hold-out as traffic for `make drift`: USE_CASE=x LOG=dir [SHIFT=1] [ROWS=n] [OUTCOMES=labels.csv: backdated, with outcomes] [SHADOW=tag]
	$(PY) -m riskbento traffic $(SERVE_USE_CASE) --out $(or $(LOG),$(error LOG=folder is required)) $(if $(SHIFT),--shift) $(if $(ROWS),--rows $(ROWS)) \
		$(if $(OUTCOMES),--outcomes $(OUTCOMES)) $(if $(SHADOW),--shadow $(SHADOW))

outcomes: $(STAMP) ## Matured labels vs logged predictions -> reports/<name>/outcomes/, exit 1 below the floor: USE_CASE=x LABELS=csv [LOG=dir AS_OF=YYYY-MM-DD]
	$(PY) -m riskbento outcomes $(SERVE_USE_CASE) --labels $(or $(LABELS),$(error LABELS=file is required)) $(if $(LOG),--log $(LOG)) $(if $(AS_OF),--as-of $(AS_OF))

promote: $(STAMP) ## Shadow challenger -> champion when the outcomes report says so: USE_CASE=x [FORCE_REASON="why"]
	$(PY) -m riskbento promote $(SERVE_USE_CASE) $(if $(FORCE_REASON),--force --reason "$(FORCE_REASON)")

document: $(STAMP) ## Model document of USE_CASE's latest model -> reports/<name>/model_document.md + .html [MODEL_TAG=tag]
	$(PY) -m riskbento document $(SERVE_USE_CASE) $(if $(MODEL_TAG),--model-tag $(MODEL_TAG))

serve: $(STAMP) ## Serve USE_CASE (default credit_risk) on 127.0.0.1:PORT (default 3000), foreground
	RISKBENTO_USE_CASE=$(SERVE_USE_CASE) $(VENV)/bin/bentoml serve service:RiskService --host 127.0.0.1 --port $(PORT)

image-base: ## Base image from Debian packages (Python 3.11, uv, host CAs) for machines without Docker Hub; FORCE=1 rebuilds
	deploy/image/build-base.sh

image: $(STAMP) ## Bento + container image serving USE_CASE; IMAGE_BASE=slim (python:3.11-slim) | local (image-base) | <image>
	$(if $(filter local,$(IMAGE_BASE)),deploy/image/build-base.sh)
	$(PY) -m deploy.image.bento --use-case $(SERVE_USE_CASE) --base $(IMAGE_BASE)

image-smoke: ## Run USE_CASE's image on 127.0.0.1, send examples/<use case>.json, check the answer, stop it
	$(PY) deploy/image/smoke.py --use-case $(SERVE_USE_CASE)

loadtest: $(STAMP) ## Locust: briefs' traffic, 10x, capacity ramp on a local server -> reports/loadtest/ (SMOKE=1: seconds)
	$(PY) -m loadtest.run --use-case $(SERVE_USE_CASE) $(if $(SMOKE),--smoke)

bench: $(STAMP) ## Serving benchmark vs FastAPI peers: credit_risk + filing_dropoff (USE_CASE=all or a,b; one use case adds the settings sweep) -> reports/bench/serving_all.md [DURATION=s CONCURRENCY=8,32,64 SMOKE=1]
	$(PY) -m loadtest.bench $(if $(USE_CASE),--use-case $(USE_CASE)) $(if $(DURATION),--duration $(DURATION)) $(if $(CONCURRENCY),--concurrency $(CONCURRENCY)) $(if $(SMOKE),--smoke)

bench-train: $(STAMP) ## Training time and quality before/after a git revision (BASELINE=71ad3b7), side by side -> reports/bench/train.md [SMOKE=1]
	$(PY) -m loadtest.bench_train --baseline $(or $(BASELINE),HEAD) $(if $(SMOKE),--smoke)

bench-scaleout: $(STAMP) ## local vs Dask vs Spark at 10M and 50M transactions, stage times, cost model -> reports/bench/ (SMOKE=1: minutes)
	test -f data/credit_risk/labels.csv || $(PY) -m riskbento data credit_risk
	$(PY) -m riskbento train --if-missing credit_risk
	$(PY) -m loadtest.bench_scaleout $(if $(SMOKE),--smoke)

bench-features: $(STAMP) ## Transaction features on 1M and 10M rows: time and peak memory -> reports/bench/ (SMOKE=1)
	$(PY) -m loadtest.bench_features $(if $(SMOKE),--smoke,--sizes 1000000 10000000)

soak: $(STAMP) ## 10x the briefs' traffic + bursts for MINUTES (30): memory, fds, p99 per minute -> reports/soak/ (SMOKE=1: ~1 min)
	$(PY) -m loadtest.soak --use-case $(SERVE_USE_CASE) $(if $(MINUTES),--minutes $(MINUTES)) $(if $(SMOKE),--smoke)

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
