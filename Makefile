# Tailor — every command a developer or CI needs. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SAM_VENV := .venv-sam
SAM := $(SAM_VENV)/bin/sam
# checkov pins boto3, botocore and packaging to versions that break moto and pytest: its own venv.
CHECKOV_VENV := .venv-checkov
CHECKOV_VERSION ?= >=3.2,<4
PORT ?= 3000
MOTO_PORT ?= 4566
SHARED_DATA ?= ../shared/data
export SAM_CLI_TELEMETRY := 0
# `tailor` comes from the editable install; the repo root makes `python -m infra...` work from any folder (README examples run in a scratch dir).
export PYTHONPATH := $(CURDIR)

.DEFAULT_GOAL := help
.PHONY: help venv demo test lint unit integration e2e fuzz local size bench bench-ingest load events clean

help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements.txt shared/pyproject.toml shared/requirements.txt layers/parquet/requirements.txt functions/train/requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	@touch $@

venv: $(VENV)/.installed ## Create .venv with everything (runtime, local stack, training, tests)

$(SAM_VENV)/.installed:
	@test -x $(SAM_VENV)/bin/python || $(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet aws-sam-cli
	@touch $@

$(CHECKOV_VENV)/.installed:
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet 'checkov$(CHECKOV_VERSION)'
	@touch $@

demo: venv ## Run the whole job end to end on the local stack with generated data
	$(PY) -m infra.demo

local: venv ## Serve the API on http://127.0.0.1:3000 (PORT=..., MOTO_PORT=... (default 4566; 0 = any free), AUTH=1 for SigV4 + API key as deployed; Ctrl-C stops)
	$(PY) -m infra.local_stack --port $(PORT) --moto-port $(MOTO_PORT) $(if $(AUTH),--auth)

test: lint ## Lint the template and run every test (unit, integration, e2e)
	$(PY) -m pytest tests

lint: venv $(SAM_VENV)/.installed $(CHECKOV_VENV)/.installed ## ruff on the Python tree, mypy on shared/tailor; cfn-lint, `sam validate --lint` and checkov on template.yaml
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/cfn-lint template.yaml
	AWS_ACCESS_KEY_ID=none AWS_SECRET_ACCESS_KEY=none $(SAM) validate --lint --region us-east-1 --template template.yaml
	@# Every finding fails the build unless the resource skips it with a justification (Metadata.checkov.skip).
	$(CHECKOV_VENV)/bin/checkov -f template.yaml --framework cloudformation --quiet --compact --skip-download

unit: venv ## Only the fast tests
	$(PY) -m pytest tests/unit

integration: venv ## Only the moto-backed handler tests
	$(PY) -m pytest tests/integration

e2e: venv ## Only the HTTP tests against a local stack
	$(PY) -m pytest tests/e2e

FUZZ_EXAMPLES ?= 100
fuzz: venv ## Long fuzzing: schemathesis, FUZZ_EXAMPLES per route, on a stack of its own; ingest properties x10
	TAILOR_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) HYPOTHESIS_PROFILE=fuzz $(PY) -m pytest -s tests/e2e/test_fuzz_http.py tests/unit/test_ingest_properties.py

size: venv ## Measure every zip function + layers as built for Lambda (limit 250 MB)
	$(PY) -m infra.size

$(VENV)/.bench-installed: $(VENV)/.installed bench/requirements.txt
	$(PY) -m pip install --quiet -r bench/requirements.txt
	@touch $@

bench: $(VENV)/.bench-installed ## All benchmarks on $(SHARED_DATA), baselines side by side; writes bench/results/
	$(PY) -m infra.size
	$(PY) -m bench.ingest --data $(SHARED_DATA)
	$(PY) -m bench.recommender --data $(SHARED_DATA)
	$(PY) -m bench.recommender_api --data $(SHARED_DATA)
	$(PY) -m bench.freshness --data $(SHARED_DATA)
	$(PY) -m bench.experiments --data $(SHARED_DATA)
	$(PY) -m bench.event_path --parts handler,million
	$(PY) -m bench.event_path --parts local
	$(PY) -m bench.serving
	$(PY) -m bench.sentiment --data $(SHARED_DATA)
	$(PY) -m bench.sentiment_api --data $(SHARED_DATA)
	$(PY) -m bench.customers --data $(SHARED_DATA)
	$(PY) -m bench.segments --data $(SHARED_DATA)
	$(PY) -m bench.segments --real-shops
	$(PY) -m bench.erase_serving
	$(PY) -m bench.real_shops
	$(PY) -m bench.sentiment_prior --data $(SHARED_DATA)

bench-ingest: venv ## Ingest benchmark only (ml-100k + 1M generated interactions through the local stack)
	$(PY) -m bench.ingest --data $(SHARED_DATA)

load: venv ## Load test: 200 clients on recommendations + sentiment for 60 s against the local stack (127.0.0.1)
	$(PY) -m bench.load --clients 200 --duration 60

events: $(SAM_VENV)/.installed ## Regenerate the canonical test events with `sam local generate-event`
	$(SAM) local generate-event apigateway aws-proxy > tests/events/apigateway_rest_proxy.json
	$(SAM) local generate-event s3 put > tests/events/s3_put.json

clean: ## Remove build outputs and caches (keeps the virtualenvs)
	rm -rf .build .aws-sam .pytest_cache demo-data
