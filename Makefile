# Bootstraps everything on a machine that has only Python 3.11+ and make.
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
VENV := .venv
ARGS ?=

.PHONY: help install demo test lint typecheck unit integration bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet uv

# Bytecode is compiled ahead: where PYTHONDONTWRITEBYTECODE is set, every command would
# otherwise recompile every module it imports (seconds per start).
$(VENV)/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked --all-extras --compile-bytecode --python $(PYTHON)
	$(VENV)/bin/python -m compileall -q src
	@touch $@

install: $(VENV)/.installed  ## create .venv with the locked dependencies

demo: install  ## run the product end to end on embedded defaults (ARGS=--no-serve to exit)
	$(VENV)/bin/opencdp demo $(ARGS)

lint: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

typecheck: install
	$(VENV)/bin/mypy

unit: install
	$(VENV)/bin/pytest tests/unit -q $(ARGS)

integration: install
	$(VENV)/bin/pytest tests/integration -q $(ARGS)

test: lint typecheck  ## the whole suite: lint, types, unit and integration tests
	$(VENV)/bin/pytest -q $(ARGS)

bench: install  ## run every benchmark, results under benchmarks/results/
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(VENV)/bin/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .tools cdp-data .pytest_cache .mypy_cache .ruff_cache
