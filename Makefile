# Two commands for a newcomer: `make run` and `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

# The first interpreter >= 3.12 found: the one pyenv picks from .python-version, then common names.
PYTHON := $(shell for p in python3 python3.13 python3.12 python; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null \
	&& { echo $$p; break; }; done)

.PHONY: run test venv lint format bench clean

$(VENV)/.installed: pyproject.toml
	@if [ -z "$(PYTHON)" ]; then \
		echo "error: Totem needs Python 3.12 or newer (Django 6). Install it (e.g. 'pyenv install 3.12') and retry." >&2; \
		exit 1; fi
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

venv: $(VENV)/.installed

run: venv
	$(PY) manage.py migrate --no-input
	$(PY) manage.py compilemessages --ignore=.venv >/dev/null 2>&1 || true
	$(PY) manage.py seed_demo
	@echo ""
	@echo "  Totem is running on http://$(HOST):$(PORT)/"
	@echo "  Kiosk:          http://$(HOST):$(PORT)/t/demo/totem/"
	@echo "  Operator panel: http://$(HOST):$(PORT)/t/demo/painel/   (operator / demo-operator)"
	@echo "  Display (TV):   http://$(HOST):$(PORT)/t/demo/display/"
	@echo "  Admin:          http://$(HOST):$(PORT)/admin/           (admin / demo-admin, manager / demo-manager)"
	@echo ""
	$(VENV)/bin/daphne -b $(HOST) -p $(PORT) config.asgi:application

test: venv
	$(PY) -m pytest $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) db.sqlite3 var .pytest_cache .ruff_cache

# Benchmarks against PostgreSQL (and Redis), started like CI does when they are down.
bench: venv
	.ci/services
	$(PY) bench/run.py
