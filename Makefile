# The two commands a new user needs: `make run` (the gateway with demo data at http://127.0.0.1:8080)
# and `make test` (the whole suite, on SQLite and PostgreSQL). Both install what they need first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8080

.PHONY: install run test clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(VENV)/.installed node_modules/.installed

run: $(VENV)/.installed
	$(BIN)/phr-gateway demo
	$(BIN)/phr-gateway serve --host $(HOST) --port $(PORT)

test: install
	scripts/ensure-system-packages
	scripts/ensure-postgres
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) node_modules instance .pytest_cache
