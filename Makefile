# The verbs a newcomer needs. Each target sets up what it needs on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SAM_VENV := .venv-sam
STAMP := $(VENV)/.installed-$(shell cat requirements-dev.txt functions/requirements.txt pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: help venv demo test lint bench bench-imports build deploy clean

help:
	@echo "make demo   - run the whole workflow locally on a generated GPT-OSS-shaped model"
	@echo "make test   - run the test suite"
	@echo "make lint   - ruff (with a complexity gate), mypy, sam validate --lint, cfn-lint, asl-validator, checkov, bandit"
	@echo "make bench  - transfer benchmark against the snapshot_download + upload baseline"
	@echo "make build  - sam build (needs the Lambda runtime's Python on PATH or in pyenv)"
	@echo "make bench-imports - cold-start import time of each Lambda handler, on the sam build artifact"
	@echo "make deploy - sam deploy --guided"

venv: $(STAMP)

$(STAMP):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==24.3.1
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	rm -f $(VENV)/.installed-* && touch $@

demo: venv
	$(VENV)/bin/modelferry run-local

test: venv
	$(PY) -m pytest

clean:
	rm -rf $(VENV) $(SAM_VENV) .aws-sam .pytest_cache node_modules

bench: venv
	$(PY) tests/bench/bench_transfer.py

# --- Lint, build, deploy -----------------------------------------------------------------------------------------------
# SAM CLI and cfn-lint get their own virtualenv (their pins conflict with moto/boto3 in .venv); checkov and bandit a
# third one inside it (checkov pins an older boto3 than SAM CLI), so `make clean` removes it too.
SAM := $(SAM_VENV)/bin/sam
SAM_STAMP := $(SAM_VENV)/.installed-$(shell cat requirements-sam.txt | cksum | cut -d' ' -f1)
SCAN_VENV := $(SAM_VENV)/scan
CHECKOV_VERSION := 3.3.30
BANDIT_VERSION := 1.9.4
SCAN_STAMP := $(SCAN_VENV)/.installed-checkov-$(CHECKOV_VERSION)-bandit-$(BANDIT_VERSION)
ASL_VALIDATOR := asl-validator@4.0.0
# The Lambda runtime's Python version, read from template.yaml (Globals.Function.Runtime) so the two cannot drift.
LAMBDA_PYTHON := $(shell sed -n 's/^ *Runtime: python\([0-9][0-9.]*\).*/\1/p' template.yaml | head -n 1)
ENV ?= default
DEPLOY_FLAGS ?= --guided
export SAM_CLI_TELEMETRY := 0

.PHONY: sam-venv scan-venv lint-python typecheck lint-template lint-asl scan

sam-venv: $(SAM_STAMP)

$(SAM_STAMP):
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --upgrade pip==24.3.1
	$(SAM_VENV)/bin/python -m pip install --quiet -r requirements-sam.txt
	rm -f $(SAM_VENV)/.installed-* && touch $@

scan-venv: $(SCAN_STAMP)

$(SCAN_STAMP):
	$(PYTHON) -m venv $(SCAN_VENV)
	$(SCAN_VENV)/bin/python -m pip install --quiet --upgrade pip==24.3.1
	$(SCAN_VENV)/bin/python -m pip install --quiet checkov==$(CHECKOV_VERSION) bandit==$(BANDIT_VERSION)
	rm -f $(SCAN_VENV)/.installed-* && touch $@

lint: venv sam-venv scan-venv
	@$(MAKE) --no-print-directory lint-python
	@$(MAKE) --no-print-directory typecheck
	@$(MAKE) --no-print-directory lint-template lint-asl scan

lint-python: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: venv
	$(VENV)/bin/mypy functions cli

lint-template: sam-venv
	$(SAM) validate --lint
	$(SAM_VENV)/bin/cfn-lint template.yaml

# sam validate and cfn-lint do not open the DefinitionUri file: the state machine gets its own validator.
lint-asl:
	npx --yes $(ASL_VALIDATOR) --json-path statemachine/modelferry.asl.json

# Zero failed checks: every accepted finding is an inline `# checkov:skip=ID: reason` in template.yaml. bandit scans
# what is deployed or handed to people (functions/, the CLI); the local rig (emulators, fake Hub) is never deployed,
# and ruff's S rules still cover it.
scan: scan-venv
	$(SCAN_VENV)/bin/checkov --file template.yaml --framework cloudformation --skip-download --compact --quiet
	$(SCAN_VENV)/bin/bandit --quiet --recursive functions cli --exclude cli/modelferry_cli/local

# sam build needs the runtime's Python on PATH: use python$(LAMBDA_PYTHON) if it runs, else a pyenv installation.
build: sam-venv
	@py_dir=""; \
	if python$(LAMBDA_PYTHON) -c 'import sys' >/dev/null 2>&1; then \
	  py_dir="$$(dirname "$$(python$(LAMBDA_PYTHON) -c 'import sys; print(sys.executable)')")"; \
	elif command -v pyenv >/dev/null 2>&1; then \
	  for version in $$(pyenv versions --bare 2>/dev/null | grep -E '^$(subst .,\.,$(LAMBDA_PYTHON))(\.[0-9]+)?$$' | sort -r -V); do \
	    if [ -x "$$(pyenv prefix "$$version")/bin/python$(LAMBDA_PYTHON)" ]; then py_dir="$$(pyenv prefix "$$version")/bin"; break; fi; \
	  done; \
	fi; \
	if [ -z "$$py_dir" ]; then \
	  echo "make build: no Python $(LAMBDA_PYTHON) found. The functions run on python$(LAMBDA_PYTHON) (template.yaml) and" >&2; \
	  echo "sam build needs that interpreter: put python$(LAMBDA_PYTHON) on PATH or run 'pyenv install $(LAMBDA_PYTHON)'." >&2; \
	  exit 1; \
	fi; \
	echo "make build: python$(LAMBDA_PYTHON) from $$py_dir"; \
	PATH="$$py_dir:$$PATH" $(SAM) build

# Import time of every handler module on the built artifact, with the runtime's Python (BENCH_IMPORTS_FLAGS: e.g.
# `--repeat 9 --json import-times.json`; `--help` lists them).
BENCH_IMPORTS_FLAGS ?=
bench-imports: build venv
	$(PY) tests/bench/bench_handler_imports.py $(BENCH_IMPORTS_FLAGS)

# `make deploy` asks (sam deploy --guided, defaults from samconfig.toml); `make deploy ENV=prod DEPLOY_FLAGS=` does not.
deploy: build
	$(SAM) deploy --config-env $(ENV) $(DEPLOY_FLAGS)
