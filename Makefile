# Two commands on a fresh machine:
#   make demo   - install, bring up the lab Asterisk, run the engine and place real calls
#   make test   - install, provision the lab (and PostgreSQL), run the whole suite
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SYSTEM_STAMP := var/.system-deps

.PHONY: install system-deps lab test unit integration demo lint typecheck bench clean

$(STAMP): setup.cfg pyproject.toml | $(SYSTEM_STAMP)
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (Python 3.11)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

# Debian packages the venv, the lab and the tests use (python3.11-venv, debootstrap, SIPp, PostgreSQL,
# espeak-ng, sox): before the venv, which needs ensurepip (python3.11-venv on Debian).
$(SYSTEM_STAMP): .ci/system-deps
	bash .ci/system-deps
	@mkdir -p var && touch $(SYSTEM_STAMP)

system-deps: $(SYSTEM_STAMP)

# The Debian sid root file system with Asterisk 22 (about a minute the first time, then cached).
lab: install system-deps
	$(BIN)/callcenter lab provision

test: lab
	$(BIN)/python -m pytest -q

unit: install
	$(BIN)/python -m pytest -q tests/unit

integration: lab
	$(BIN)/python -m pytest -q tests/integration

demo: lab
	$(BIN)/callcenter demo

lint: install
	$(BIN)/ruff check callcenter tests bench
	$(BIN)/mypy

typecheck: install
	$(BIN)/mypy

bench: install
	$(BIN)/pip install -q -e '.[bench]'
	$(BIN)/python bench/ami_throughput.py
	$(BIN)/python bench/erlang.py
	$(BIN)/python bench/agi_load.py
	$(BIN)/python bench/lead_import.py
	$(BIN)/python bench/web_sign_in.py
	$(BIN)/python bench/dialer_pacing.py --days 20

clean:
	-$(BIN)/callcenter lab down --all
	rm -rf $(VENV) .pytest_cache .mypy_cache
