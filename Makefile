# Everything a newcomer needs: `make run` and `make test`. Each target sets itself up first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo run test lint typecheck pytest bench bench-advice bench-city bench-load bench-rosters bench-rollcall bench-rollcall-cost clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

DEMO := instance/.demo-seeded

$(DEMO): $(STAMP)
	$(PY) -m flask --app webapp init-db
	$(PY) -m flask --app webapp seed-demo
	touch $(DEMO)

demo: $(DEMO)

run: setup $(DEMO)
	$(PY) -m flask --app webapp demo-logins
	$(PY) -m flask --app webapp run --host 127.0.0.1 --port 5000

lint: setup
	$(PY) -m ruff check scheduler webapp tests bench

typecheck: setup
	$(PY) -m mypy scheduler webapp bench/solver.py

pytest: setup
	$(PY) -m pytest

test: lint typecheck pytest

bench: setup
	$(PY) -m bench.solver

bench-advice: setup
	$(PY) -m bench.advice --demo

bench-city: setup
	$(PY) -m bench.city

# The load scenarios on PostgreSQL: DB_URL (a server; a scratch schema is used and dropped), else TEST_DATABASE_URL,
# else the local `test` database. bench-load runs the parents' deadline rush, then the roll-call rush.
DB_ARG = $(if $(DB_URL),--db-url $(DB_URL),)

bench-load: setup
	$(PY) -m bench.load.rush bench $(DB_ARG)
	$(PY) -m bench.load.rollcall $(DB_ARG)

bench-rosters: setup
	$(PY) -m bench.rosters

bench-rollcall: setup
	$(PY) -m bench.load.rollcall $(DB_ARG)

bench-rollcall-cost: setup
	$(PY) -m bench.load.rollcall_cost $(DB_ARG)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
