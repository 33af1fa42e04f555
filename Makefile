# Surat Desa. `make demo` and `make test` are the two commands a newcomer needs.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PG_TEST_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: demo test test-sqlite test-postgres lint format bench clean

$(BIN)/suratdesa: pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

demo: $(BIN)/suratdesa
	$(BIN)/suratdesa demo --host $(HOST) --port $(PORT)
	$(BIN)/suratdesa serve --host $(HOST) --port $(PORT)

test: test-sqlite test-postgres

test-sqlite: $(BIN)/suratdesa
	$(BIN)/pytest -q

test-postgres: $(BIN)/suratdesa
	SURATDESA_TEST_DATABASE_URL=$(PG_TEST_URL) $(BIN)/pytest -q

lint: $(BIN)/suratdesa
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(BIN)/suratdesa
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(BIN)/suratdesa
	$(BIN)/python bench/sign.py

clean:
	rm -rf var test-artifacts .pytest_cache
