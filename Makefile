# The verbs a newcomer needs. Each target sets up what it needs on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SAM_VENV := .venv-sam
STAMP := $(VENV)/.installed-$(shell cat requirements-dev.txt functions/requirements.txt pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: help venv demo test lint bench build deploy clean

help:
	@echo "make demo   - run the whole workflow locally on a generated GPT-OSS-shaped model"
	@echo "make test   - run the test suite"
	@echo "make lint   - ruff, mypy, sam validate --lint, cfn-lint, asl-validator"
	@echo "make bench  - transfer benchmark against the snapshot_download + upload baseline"
	@echo "make build  - sam build (needs the Lambda runtime's Python on PATH or in pyenv)"
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
