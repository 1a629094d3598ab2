# Everything runs from a local virtualenv built from the pinned, tested set (constraints.txt).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export LITELLM_LOCAL_MODEL_COST_MAP := True

.PHONY: setup demo test lint check-config compat compat-newest clean deploy-tools

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
	$(VENV)/bin/mypy

## The shipped configs, checked for cost mistakes (exit 1 on an error-level finding).
check-config: setup
	$(VENV)/bin/litellm-cost-otel check proxy_config.yaml
	$(VENV)/bin/litellm-cost-otel check litellm_cost_otel/devtools/offline_config.yaml

## deploy/'s tests run a real Collector (built with the Collector Builder from
## deploy/collector/builder.yaml) and kustomize, from pinned Go modules, and Debian's Prometheus;
## the budget guard's tests Debian's Redis server. Cached per machine.
deploy-tools: setup
	$(PY) -m litellm_cost_otel.devtools.deploy_tools build

## The whole test suite: lint, the config check, every test on the pinned litellm, then the
## litellm-facing tests again on the oldest and on the newest supported litellm.
test: lint check-config deploy-tools
	$(PY) -m pytest
	$(MAKE) compat compat-newest

# The tests that run litellm (the proxy or its Router) or depend on its version.
LITELLM_FACING_TESTS := tests/test_proxy_spans.py tests/test_routes.py tests/test_trust_boundary.py \
	tests/test_registration.py tests/test_in_process.py tests/test_faults.py tests/test_logger.py \
	tests/test_versions.py tests/test_budget_proxy.py

## The litellm-facing tests again on the oldest supported litellm (constraints-oldest.txt).
OLDEST_VENV ?= .venv-oldest
$(OLDEST_VENV)/.installed: pyproject.toml constraints-oldest.txt
	$(PYTHON) -m venv $(OLDEST_VENV)
	$(OLDEST_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(OLDEST_VENV)/bin/python -m pip install --quiet -c constraints-oldest.txt -e ".[proxy,test]"
	touch $@

compat: $(OLDEST_VENV)/.installed
	$(OLDEST_VENV)/bin/python -m pytest $(LITELLM_FACING_TESTS)

## ... and on the newest (requirements-newest.txt: litellm 1.110.2 with its proxy extra spelled
## out, since the registry here serves not all of the extra's pins; a complete pinned set,
## installed without dependency resolution, then this project).
NEWEST_VENV ?= .venv-newest
$(NEWEST_VENV)/.installed: pyproject.toml requirements-newest.txt
	$(PYTHON) -m venv $(NEWEST_VENV)
	$(NEWEST_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(NEWEST_VENV)/bin/python -m pip install --quiet --no-deps -r requirements-newest.txt
	$(NEWEST_VENV)/bin/python -m pip install --quiet --no-deps -e .
	touch $@

compat-newest: $(NEWEST_VENV)/.installed
	$(NEWEST_VENV)/bin/python -m pytest $(LITELLM_FACING_TESTS)

clean:
	rm -rf $(VENV) $(OLDEST_VENV) $(NEWEST_VENV) $(MUTATION_VENV) .pytest_cache .ruff_cache .mypy_cache .hypothesis mutants

## Mutation testing of the pure modules (model, readers, lifecycle, tracker, attributes) against
## their unit tests ([tool.mutmut] in pyproject.toml); not part of `make test`.
## Its own virtualenv: mutmut's UI (textual) wants a newer rich than litellm's proxy extra allows.
MUTATION_VENV ?= .venv-mutation
$(MUTATION_VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(MUTATION_VENV)
	$(MUTATION_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(MUTATION_VENV)/bin/python -m pip install --quiet -c constraints.txt -e ".[test]"
	$(MUTATION_VENV)/bin/python -m pip install --quiet mutmut==3.8.1
	touch $@

.PHONY: mutation
mutation: $(MUTATION_VENV)/.installed
	rm -rf mutants
	$(MUTATION_VENV)/bin/mutmut run
	$(MUTATION_VENV)/bin/mutmut results

## Benchmarks: not part of `make test`; run them on a quiet machine (see bench/README.md).
## Flags go in ARGS, e.g. `make bench ARGS=--quick` for a two-minute smoke run.
.PHONY: bench bench-micro soak
bench: setup
	$(PY) -m bench.run $(ARGS)

bench-micro: setup
	$(PY) -m bench.micro $(ARGS)

soak: setup
	$(PY) -m bench.soak $(ARGS)
