# The one place that knows how to set the project up. Every target installs what it needs.
#   make demo   set up, then run a whole term: release the four assignments, grade a simulated
#               class with nbgrader, write grades.csv, feedback and the report
#   make test   set up, then run the whole test suite (what CI runs)
#   make lab    set up, then start JupyterLab on course/
#   make bench  set up, then print the kernel benchmark against torch
#   make bench-grading   seconds per submission and per class, --jobs 1 vs 2
#   make hub    (as root) build the hub's venvs and proxy under .hub/, then start a local course
#               hub on 127.0.0.1:$(HUB_PORT) with demo users; Ctrl-C stops it
#   make bench-hub   the whole hub cycle timed for 3 and 30 students

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.cvcourse-installed

# Tests under NUMBA_BOUNDSCHECK compile a second copy of every kernel: keep that cache apart.
BOUNDSCHECK_CACHE := $(VENV)/numba-boundscheck-cache

.PHONY: setup demo test lab bench bench-grading hub hub-install bench-hub clean

setup: $(STAMP)

# Two distributions come from this repo (docs/decisions.md, "Packaging"): the student library
# `cvcourse` (pyproject.toml) and the TA's `cvcourse-grader` (grader/pyproject.toml: the grader,
# cvgrade, torch). Developers get both, editable, plus the dev tools.
$(STAMP): pyproject.toml grader/pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.11 not found: install it or run make PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[course,dev]" -e ./grader
	@# Compile every numba kernel now (cache=True), so no student waits for it on first use.
	$(PY) -m cvcourse.kernels.warmup
	@touch $(STAMP)

demo: setup
	@# Student code is graded in a bubblewrap sandbox: install it if it is missing.
	bash scripts/install-sandbox.sh
	$(PY) -m grader.term --jobs 2

test: setup
	@# The browser test drives Debian's chromium: install it if it is missing.
	bash scripts/install-browser.sh
	bash scripts/install-sandbox.sh
	@# The hub tests (tests/hub/) need the hub's venvs and proxy; they skip, saying why, if
	@# this cannot be built here (no npm, not root).
	bash scripts/install-hub.sh || echo "hub software not installed: tests/hub/ will skip"
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	@# Type-checks cvcourse/ as configured in pyproject.toml's [tool.mypy].
	$(VENV)/bin/mypy
	$(PY) -m pytest
	@echo "--- kernel tests again with NUMBA_BOUNDSCHECK=1 (any out-of-bounds access raises) ---"
	NUMBA_BOUNDSCHECK=1 NUMBA_CACHE_DIR=$(BOUNDSCHECK_CACHE) CVCOURSE_HYPOTHESIS_PROFILE=boundscheck \
		$(PY) -m pytest -q -m "not slow" tests/kernels

lab: setup
	@# Started in course/: nbgrader's Validate button reads nbgrader_config.py (validate_all)
	@# from the server's working directory, not from the notebook's folder.
	cd course && $(abspath $(VENV))/bin/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root)

bench: setup
	$(PY) bench/bench_kernels.py

bench-grading: setup
	bash scripts/install-sandbox.sh
	$(PY) bench/bench_grading.py

# The hub's software lives in .hub/ (scripts/install-hub.sh): venvs built from the system's
# Python 3.11 (every user's server must be able to read them) and configurable-http-proxy
# from npm; nothing is installed globally. deploy/jupyterhub/hubctl.py sets up users, the
# course copy, the exchange and the config, and stops the hub and the proxy on Ctrl-C.
HUB_PORT ?= 8000

hub-install:
	bash scripts/install-hub.sh

hub: hub-install
	bash scripts/install-sandbox.sh
	.hub/venv/bin/python deploy/jupyterhub/hubctl.py run --port $(HUB_PORT)

bench-hub: setup hub-install
	bash scripts/install-sandbox.sh
	$(PY) bench/bench_hub.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .mypy_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
