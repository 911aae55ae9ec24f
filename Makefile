# Two commands for everything: `make lab` to work, `make test` to check.
# Both create .venv if it is missing and install the pinned dependencies (constraints.txt)
# and fdkit itself in editable mode; the install is redone only when those files change.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.fdkit-installed
# Tests run on one worker per core (pytest-xdist); each file stays on one worker, so a notebook's
# cells run in order in one kernel. WORKERS= runs them in one process.
WORKERS ?= -n auto --dist loadfile
# JupyterLab refuses to run as root unless told; people normally are not root, CI machines are.
ROOT_FLAG := $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)

.PHONY: lab test check bench lock clean-venv

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) tools/check_python.py
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test]"
	@touch $(STAMP)

lab: $(STAMP)
	$(BIN)/jupyter lab $(ROOT_FLAG) notebooks/

# The full suite, as CI runs it: unit, property and calibration tests, and every notebook under nbval.
test: $(STAMP)
	$(BIN)/python -m pytest $(WORKERS)

# The quick loop while you work: everything but the tests marked slow (simulations, notebooks, servers).
check: $(STAMP)
	$(BIN)/python -m pytest $(WORKERS) -m "not slow" tests fdkit tools

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test,bench]"
	$(BIN)/python benchmarks/run_all.py

# Re-pin every dependency to the newest release pyproject.toml allows that installs on the oldest
# supported Python (the floor of requires-python), whichever interpreter runs this.
lock: $(STAMP)
	$(BIN)/python tools/lock.py

clean-venv:
	rm -rf $(VENV)
