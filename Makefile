# LuxOS: `make run` serves the site with its workers, `make test` is what CI runs.
# Everything runs from .venv; requirements are reinstalled only when they change.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MANAGE := $(BIN)/python manage.py
VAR := $(or $(LUXOS_VAR_DIR),var)

.PHONY: install services run test test-fast lint migrate bench stop clean distclean

install: $(STAMP)

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || \
		{ echo "LuxOS needs Python 3.11: install it or run make PYTHON=/path/to/python3.11" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(wildcard requirements*.txt) | $(BIN)/python
	$(BIN)/python -m pip install -r requirements-dev.txt
	touch $@

# Start (or attach to) the embedded PostgreSQL and Redis unless DATABASE_URL / REDIS_URL name others.
services: install
	$(BIN)/python -c 'from luxsite.embedded import ensure_services; ensure_services()'

# Migrate, ensure the admin user and the demo graph (both idempotent), then serve until Ctrl-C.
run: install services
	bin/ensure-system-packages
	$(MANAGE) migrate --noinput
	$(MANAGE) collectstatic --noinput --verbosity 0
	$(MANAGE) createadmin
	$(MANAGE) seed_demo
	$(MANAGE) serve

test: install
	bin/ensure-system-packages
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/pytest $(PYTEST_ARGS)

# Everything but the tests that go through the live server (browser, API fuzzing) or a Celery worker, on two processes.
test-fast: install
	$(BIN)/pytest -n 2 -m "not browser and not worker" $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

migrate: install services
	$(MANAGE) migrate --noinput

bench: install services
	$(BIN)/python -m bench $(BENCH_ARGS)

# Stop a `make run` left behind (its pid file names it), then the embedded servers.
stop:
	@pidfile=$(VAR)/run/serve.pid; \
	if [ -f $$pidfile ]; then \
		pid=$$(cat $$pidfile); \
		if tr '\0' ' ' < /proc/$$pid/cmdline 2>/dev/null | grep -q 'manage.py serve'; then \
			echo "stopping serve (pid $$pid)"; \
			kill -TERM $$pid; \
			while kill -0 $$pid 2>/dev/null; do sleep 0.2; done; \
		fi; \
		rm -f $$pidfile; \
	fi
	@if [ -x $(BIN)/python ]; then $(BIN)/python -m luxsite.embedded stop; fi

clean:
	rm -rf .mypy_cache .ruff_cache .pytest_cache
	find . -path ./$(VENV) -prune -o -path ./var -prune -o -name __pycache__ -type d -exec rm -rf {} +

# Also removes the virtualenv and every embedded database, Redis and static file under var/.
distclean: stop clean
	rm -rf $(VENV) $(VAR)
