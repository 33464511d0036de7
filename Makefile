# One command to run the service, one to test it; both set up .venv from pyproject.toml.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test browser lint format openapi bench backtest clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(VENV)/.installed-run $@

# The live demo: the simulated carrier inside the service, a simulated day each real minute, demo
# orders seeded into an empty var/demo.db, a back-office key printed, a webhook receiver on
# loopback printing each alert (so this target allows http:// and 127.0.0.1 webhook URLs), and a
# mail server on loopback (plain SMTP on 127.0.0.1:8025) writing the customers' email to
# var/demo-mail/*.eml. Only this target sets TRACKING_DEMO; `tracking-service serve` alone never
# seeds anything.
run: $(VENV)/.installed-run  ## set up and run the live demo on $TRACKING_HOST:$TRACKING_PORT (127.0.0.1:8000)
	TRACKING_DEMO=true \
	TRACKING_WEBHOOK_ALLOW_HTTP=$${TRACKING_WEBHOOK_ALLOW_HTTP:-true} \
	TRACKING_WEBHOOK_ALLOW_HOSTS=$${TRACKING_WEBHOOK_ALLOW_HOSTS:-127.0.0.1} \
	TRACKING_SMTP_HOST=$${TRACKING_SMTP_HOST:-127.0.0.1} \
	TRACKING_SMTP_PORT=$${TRACKING_SMTP_PORT:-8025} \
	TRACKING_SMTP_SECURITY=$${TRACKING_SMTP_SECURITY:-none} \
	TRACKING_MAIL_FROM="$${TRACKING_MAIL_FROM:-Demo Shop <orders@shop.example>}" \
	TRACKING_SHOP_NAME="$${TRACKING_SHOP_NAME:-Demo Shop}" \
	TRACKING_CLOCK_SPEED=$${TRACKING_CLOCK_SPEED:-1440} \
	TRACKING_DATABASE_URL=$${TRACKING_DATABASE_URL:-sqlite:///var/demo.db} \
	$(BIN)/tracking-service serve

# The browser tests drive Debian's Chromium (/usr/bin/chromium; Playwright never downloads
# one). Installed here when missing and this user can (root with apt-get, as in CI); otherwise
# those tests skip and say why (under CI, with CI set, they fail instead).
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian's chromium for the browser tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
	      || echo "warning: could not install chromium: the browser tests will skip"; \
	  else \
	    echo "no /usr/bin/chromium (install Debian's chromium as root): the browser tests will skip"; \
	  fi; \
	fi

test: $(VENV)/.installed-dev browser  ## set up and run lint, types and the whole test suite
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(VENV)/.installed-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

openapi: $(VENV)/.installed-dev  ## regenerate openapi.yaml from the app
	$(BIN)/python -m tracking_service.openapi_export openapi.yaml

bench: $(VENV)/.installed-dev
	$(BIN)/python bench/estimate_load.py

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
