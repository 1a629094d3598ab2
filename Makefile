# Everything runs from a local virtualenv built from the pinned, tested set (constraints.txt).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export LITELLM_LOCAL_MODEL_COST_MAP := True

.PHONY: setup demo test lint check-config clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[proxy,test]"
	touch $@

## The main job, offline: the proxy with the plugin, mixed traffic, a table read back from the spans.
demo: setup
	$(PY) -m litellm_cost_otel.devtools.demo

lint: setup
	$(VENV)/bin/ruff check .

## The shipped configs, checked for cost mistakes (exit 1 on an error-level finding).
check-config: setup
	$(VENV)/bin/litellm-cost-otel check proxy_config.yaml
	$(VENV)/bin/litellm-cost-otel check litellm_cost_otel/devtools/offline_config.yaml

## The whole test suite (lint and the config check first).
test: lint check-config
	$(PY) -m pytest

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
