# Two commands for everything: `make lab` to work, `make test` to check.
# Both create .venv if it is missing and install the pinned dependencies (constraints.txt)
# and fdkit itself in editable mode; the install is redone only when those files change.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.fdkit-installed
# JupyterLab refuses to run as root unless told; people normally are not root, CI machines are.
ROOT_FLAG := $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)

.PHONY: lab test bench lock clean-venv

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "fdkit needs Python 3.11 or newer; found " + sys.version.split()[0])'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test]"
	@touch $(STAMP)

lab: $(STAMP)
	$(BIN)/jupyter lab $(ROOT_FLAG) notebooks/

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test,bench]"
	$(BIN)/python benchmarks/run_all.py

# Re-pin every dependency to the newest release pyproject.toml allows.
lock:
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --upgrade pip
	.lock-venv/bin/python -m pip install --quiet ".[test,bench]"
	{ sed -n '1,4p' constraints.txt; .lock-venv/bin/python -m pip freeze --exclude fdkit; } > constraints.new
	mv constraints.new constraints.txt
	rm -rf .lock-venv

clean-venv:
	rm -rf $(VENV)
