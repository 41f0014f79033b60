# Two entry points: `make run` (the city demo on embedded SQLite, then serving it) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run serve test lint typecheck openapi bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,postgres,bench]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/civitas demo --serve

serve: $(STAMP)
	$(BIN)/civitas serve

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/python -m pytest -q

openapi: $(STAMP)
	$(BIN)/civitas openapi

bench: $(STAMP)
	$(BIN)/python -m bench all

clean:
	rm -rf $(VENV) .civitas .pytest_cache .mypy_cache .ruff_cache
