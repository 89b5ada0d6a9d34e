# Every target sets itself up: a fresh machine needs only Python 3.11+, pip and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo install test lint format unit bench chaos clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[all,dev]'
	touch $(STAMP)

demo: setup
	$(BIN)/sendoso demo --recipients examples/recipients.csv

# `sendoso` on your PATH outside the venv: pipx when there is one (its own venv), else pip
# for your user (~/.local/bin).
install:
	@if command -v pipx >/dev/null 2>&1; then pipx install --force '.[all]'; \
	else $(PYTHON) -m pip install --user '.[all]'; fi

lint: setup
	$(BIN)/ruff format --check src tests benchmarks chaos scripts
	$(BIN)/ruff check src tests benchmarks chaos scripts
	$(BIN)/mypy --strict src tests benchmarks chaos scripts
	$(BIN)/lint-imports --no-cache

format: setup
	$(BIN)/ruff format src tests benchmarks chaos scripts
	$(BIN)/ruff check --fix src tests benchmarks chaos scripts

unit: setup
	$(BIN)/pytest -q

test: lint unit

# Figures against baselines measured in the same run; writes benchmarks/RESULTS.md.
bench: setup
	$(BIN)/python -m benchmarks

# Kill-and-resume runs under injected faults; prints the seed so a failure can be replayed.
chaos: setup
	$(BIN)/python -m chaos

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
