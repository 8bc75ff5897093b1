# The two commands of README.md, plus developer conveniences. Each target sets up what it
# needs: a virtualenv in .venv with the project installed in editable mode.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test test-all lint services services-stop bench clean

run: $(VENV)/.demo  ## start the hub on SQLite + filesystem storage, with the demo catalog
	$(BIN)/zoo serve --demo

test: $(VENV)/.dev  ## run the test suite (PostgreSQL + S3 cases run when services are configured)
	$(BIN)/pytest

test-all: $(VENV)/.dev services  ## the test suite against SQLite + files AND PostgreSQL + S3
	. /tmp/openzoo-services.env && $(BIN)/pytest

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

services:  ## start PostgreSQL and a Swift S3 server on loopback (installs them as root)
	bash scripts/services/start.sh

services-stop:
	bash scripts/services/stop.sh

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.server: pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install -q -e '.[server]'
	touch $@

$(VENV)/.demo: pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install -q -e '.[server,demo]'
	touch $@ $(VENV)/.server

$(VENV)/.dev: pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $@ $(VENV)/.server $(VENV)/.demo

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
