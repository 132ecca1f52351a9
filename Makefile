# The one place that knows how to set the project up. Every target installs what it needs.
#   make demo   set up, then run the course's main job on the embedded data
#   make test   set up, then run the whole test suite (what CI runs)
#   make lab    set up, then start JupyterLab on course/
#   make bench  set up, then print the kernel benchmark against torch

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.cvcourse-installed

# Tests under NUMBA_BOUNDSCHECK compile a second copy of every kernel: keep that cache apart.
BOUNDSCHECK_CACHE := $(VENV)/numba-boundscheck-cache

.PHONY: setup demo test lab bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.11 not found: install it or run make PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	@# Compile every numba kernel now (cache=True), so no student waits for it on first use.
	$(PY) -m cvcourse.kernels.warmup
	@touch $(STAMP)

demo: setup
	$(PY) -m cvcourse.demo
	@# The kernel benchmark summary (the full run, with cold-compile timings, is `make bench`).
	$(PY) bench/bench_kernels.py --no-cold

test: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest
	@echo "--- kernel tests again with NUMBA_BOUNDSCHECK=1 (any out-of-bounds access raises) ---"
	NUMBA_BOUNDSCHECK=1 NUMBA_CACHE_DIR=$(BOUNDSCHECK_CACHE) CVCOURSE_HYPOTHESIS_PROFILE=boundscheck \
		$(PY) -m pytest -q -m "not slow" tests/kernels

lab: setup
	$(VENV)/bin/jupyter lab --notebook-dir=course

bench: setup
	$(PY) bench/bench_kernels.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
