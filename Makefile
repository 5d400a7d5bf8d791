# The two commands: `make run` (the product on embedded defaults) and `make test` (the whole suite).
PYTHON ?= python3.11
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: run test test-fast venv clean

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
	$(VENV)/bin/python -m pytest -q -p no:cacheprovider

# The pure domain's tests (no server, no database) in seconds.
test-fast: $(STAMP)
	$(VENV)/bin/python -m pytest -q -p no:cacheprovider tests/billing -k "not simulated"

clean:
	rm -rf $(VENV) data
