# The two commands: `make run` (the product on embedded defaults) and `make test` (the whole suite).
PYTHON ?= python3.11
VENV := .venv
STAMP := $(VENV)/.installed

# xdist workers for `make test` (each has its own servers and ports; databases are per test).
PYTEST_WORKERS ?= auto

.PHONY: run test test-fast test-later test-faults mutation venv clean

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/python -m starter.run

test: $(STAMP)
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/python -m pytest -q -p no:cacheprovider -n $(PYTEST_WORKERS)

# The fault suite (tests/faults): a month-end of 1,000 organizations through worker kills, a dev server restart,
# gateway faults, a database cut and doubled triggers and webhooks; then its figures as a table.
test-faults: $(STAMP)
	rm -f tests/artifacts/faults.json  # the report never shows an earlier run's figures
	BILLING_FAULT_SUITE=1 $(VENV)/bin/python -m pytest -q -p no:cacheprovider -n 0 tests/faults; \
	status=$$?; $(VENV)/bin/python -m tests.faults.report; exit $$status

# The pure domain's tests (no server, no database) in seconds.
test-fast: $(STAMP)
	$(VENV)/bin/python -m pytest -q -p no:cacheprovider tests/billing -k "not simulated"

# The date-sensitive tests (scenarios, time-skipping workflows) as if it were a year later (tests/time_shift.py):
# time-machine moves Python's clock in this process and its Python children, libfaketime (Debian's `libfaketime`)
# each time-skipping test server's. The dev server (`temporal`, a static Go binary) cannot be moved, so the two tests
# on it stay out. `make test` runs a sample of them shifted (tests/test_later.py).
test-later: $(STAMP)
	BILLING_TEST_SHIFT_DAYS=365 $(VENV)/bin/python -m pytest -q -p no:cacheprovider -n $(PYTEST_WORKERS) \
		tests/test_time_shift.py tests/scenarios tests/workflows \
		--ignore=tests/workflows/test_schedule.py --ignore=tests/workflows/test_worker_killed.py

# Mutation testing of the pure domain (billing/) against its own tests; not part of `make test` (about 15 min).
mutation: $(STAMP)
	rm -rf mutants
	$(VENV)/bin/mutmut run --max-children 2
	$(VENV)/bin/mutmut results --all true > mutants/results.txt || true
	$(VENV)/bin/python -m tests.mutation_score mutants/results.txt

clean:
	rm -rf $(VENV) data mutants
