# The two commands of the README: `make run` and `make test`. Both install what
# they need into .venv first.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8501
CHROMIUM := /usr/bin/chromium

.PHONY: run test lint typecheck pytest install install-dev chromium bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(PY)
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt $(VENV)/.installed
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## Start the app on the embedded SQLite database with demo data and demo logins.
run: install
	RETRO_DEMO_MODE=$${RETRO_DEMO_MODE:-true} $(PY) -m core.cli init-db --demo
	RETRO_DEMO_MODE=$${RETRO_DEMO_MODE:-true} $(PY) -m streamlit run app.py \
		--server.port $(PORT) --server.headless true \
		--browser.gatherUsageStats false

## Lint, format check, type check, and every test with coverage (SQLite, and
## PostgreSQL when RETRO_TEST_POSTGRES_URL is set or a server answers locally).
test: install-dev chromium lint typecheck pytest

lint:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck:
	$(VENV)/bin/mypy core

pytest:
	RETRO_SECRETS_FILE=/nonexistent $(VENV)/bin/pytest --cov --cov-report=term $(PYTEST_ARGS)

# Browser tests drive Debian's Chromium; install it when it is missing and apt
# can be used (never `playwright install`, which downloads a browser).
chromium:
	@if [ ! -x $(CHROMIUM) ]; then \
		if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
				apt-get install -y -qq chromium >/dev/null; \
		elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then \
			sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive \
				apt-get install -y -qq chromium >/dev/null; \
		else \
			echo "Chromium is missing and apt is not usable: browser tests will be skipped."; \
		fi; \
	fi

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov
