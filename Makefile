# The two set-up commands of the README: `make quickstart` and `make test`.
# Both create the virtual environment on first use, from this repository's own files.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: quickstart test test-fast mutation lint venv clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

quickstart: $(STAMP)
	$(BIN)/megastyle quickstart --config configs/quickstart.toml

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks integrations tools
	$(BIN)/ruff format --check src tests benchmarks integrations tools

# Everything, the slow tests included (CI runs this). Plain `pytest` skips the tests marked slow.
test: lint
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -m ""

test-fast: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q

# Mutation score of the core modules (hours on 2 cores, most of them in the dedup group); see docs/testing.md.
mutation: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[mutation]'
	$(BIN)/python tools/mutation.py --docs docs/testing.md

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
