# The one task runner: README and .ci/run call these targets.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9

.PHONY: demo test check lint typecheck imports pytest schemas contracts-dist docs clean

$(BIN)/.synced: pyproject.toml uv.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check uv==$(UV_VERSION)
	@$(BIN)/uv sync -q --frozen --inexact --python $(BIN)/python
	@touch $@

## demo: boot the embedded stack and push sample calls through the pipelines
demo: $(BIN)/.synced
	$(BIN)/switchboard demo

## test: every check and every test
test: check pytest

check: lint typecheck imports

lint: $(BIN)/.synced
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(BIN)/.synced
	$(BIN)/mypy contracts producers actors scheduler infra tests benchmarks

imports: $(BIN)/.synced
	$(BIN)/lint-imports

pytest: $(BIN)/.synced
	$(BIN)/pytest

## schemas: re-export contracts/schemas after an intended contract change
schemas: $(BIN)/.synced
	$(BIN)/switchboard contracts export contracts/schemas

## contracts-dist: build the switchboard-contracts wheel and sdist into dist/ (pydantic only;
## UV_OFFLINE=1 builds from the uv cache)
contracts-dist: $(BIN)/.synced
	$(BIN)/uv build packages/switchboard-contracts --out-dir dist

## docs: regenerate infra/deploy/example.env and the README's settings table
docs: $(BIN)/.synced
	$(BIN)/python -m infra.settings_reference

clean:
	rm -rf $(VENV) dist .switchboard .mypy_cache .pytest_cache .ruff_cache
