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

.PHONY: run test venv lint format bench bench-year bench-sale soak clean

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
	$(PY) manage.py seed_demo
	@KIOSK_CODE=$$($(PY) manage.py pairing_code demo kiosk --minutes 720) && \
	TV_CODE=$$($(PY) manage.py pairing_code demo display --minutes 720) && \
	echo "" && \
	echo "  Totem is running on http://$(HOST):$(PORT)/" && \
	echo "  Kiosk:          http://$(HOST):$(PORT)/t/demo/totem/     pairing code $$KIOSK_CODE" && \
	echo "  Operator panel: http://$(HOST):$(PORT)/t/demo/painel/    operator / demo-operator" && \
	echo "  Display (TV):   http://$(HOST):$(PORT)/t/demo/display/   pairing code $$TV_CODE" && \
	echo "  Dashboard:      http://$(HOST):$(PORT)/t/demo/gestao/    manager / demo-manager" && \
	echo "  From a phone:   http://$(HOST):$(PORT)/t/demo/entrar/    joining the queue (the door's QR poster)" && \
	echo "  Admin:          http://$(HOST):$(PORT)/admin/            admin / demo-admin" && \
	echo "  Printed tickets go to var/printers/demo/printer-demo.bin; payments go to a fake MercadoPago on :8001." && \
	echo "  Daphne also runs the printer spooler and the worker (expiry, alerts, repairs, statistics, webhooks)." && \
	echo "  (Pairing codes last 12 hours; make one later with: .venv/bin/python manage.py pairing_code demo kiosk)" && \
	echo ""
	@# The spooler and the worker run inside Daphne (RUN_WORKERS_IN_WEB, config/background.py):
	@# without Redis that is where their events reach the screens. Ctrl-C or SIGTERM reaches
	@# this shell, which stops both servers (Daphne after the work in hand) and waits for them;
	@# the shell waits with `wait`, not in the foreground, or it would run the trap only after.
	@$(PY) manage.py run_fake_mercadopago --port 8001 --app-url http://$(HOST):$(PORT) --tenant demo & FAKE=$$!; \
	RUN_WORKERS_IN_WEB=true MERCADOPAGO_BASE_URL=http://127.0.0.1:8001 \
		$(VENV)/bin/daphne -b $(HOST) -p $(PORT) config.asgi:application & WEB=$$!; \
	trap 'kill $$WEB $$FAKE 2>/dev/null; wait $$WEB' INT TERM; \
	trap 'kill $$FAKE 2>/dev/null' EXIT; \
	wait $$WEB

# Two workers (pytest-xdist): the suite waits on browsers, Daphne and servers as much as it
# computes, so two share a 2-core machine well. TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 2
test: venv
	$(PY) -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

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
	REDIS_URL=$${REDIS_URL:-redis://127.0.0.1:6379/9} $(PY) bench/run.py

# A year of one branch's data generated in PostgreSQL, then the screens over it and the growth
# per day at the target (bench/year.py; BENCH_REUSE=1 measures again without regenerating).
bench-year: venv
	.ci/services
	REDIS_URL=$${REDIS_URL:-redis://127.0.0.1:6379/9} $(PY) bench/year.py

# One HTTP kiosk sale's Python CPU, request by request (bench/sale_requests.py).
bench-sale: venv
	.ci/services
	REDIS_URL=$${REDIS_URL:-redis://127.0.0.1:6379/9} $(PY) bench/sale_requests.py

# Kiosks, operators and displays together against a real Daphne (SOAK_SECONDS, default 120).
soak: venv
	.ci/services
	REDIS_URL=$${REDIS_URL:-redis://127.0.0.1:6379/9} $(PY) bench/soak.py
