# syndr_lightning: every target creates .venv when it is missing, installs what it needs, then runs.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
PIP := $(VPY) -m pip
PIP_FLAGS := -q --disable-pip-version-check --progress-bar off

.PHONY: demo test test-all lint format bench bench-quick clean install

$(VENV)/.stamp-%: pyproject.toml
	@test -x $(VPY) || $(PY) -m venv $(VENV)
	@echo "[make] installing syndr-lightning[$*] into $(VENV) (first run takes a few minutes)"
	@set -o pipefail; $(PIP) install $(PIP_FLAGS) -e ".[$*]" 2>&1 | { grep -v "^WARNING: Location" || true; } \
	  || { echo "[make] pip install failed (output above). 'No space left on device' means the disk is full:" \
	       "the environment needs about 8 GB free where $(VENV) lives (df -h .); free space and rerun." >&2; exit 1; }
	@$(VPY) -c "import torch, torchvision, lightning, hydra, faiss, syndr_lightning" \
	  || { echo "[make] $(VENV) is incomplete: the imports above failed; rerun make or delete $(VENV)." >&2; exit 1; }
	@touch $@

install: $(VENV)/.stamp-dev,offline,cluster,export

demo: $(VENV)/.stamp-dev,offline,cluster,export
	$(VENV)/bin/syndr-train +experiment=demo

test: $(VENV)/.stamp-dev,offline,cluster,export
	$(VPY) -m pytest -q -n 2

test-all: $(VENV)/.stamp-dev,offline,cluster,export
	$(VPY) -m pytest -q -m ""

lint: $(VENV)/.stamp-dev,offline,cluster,export
	$(VENV)/bin/ruff check syndr_lightning tests experiments
	$(VENV)/bin/ruff format --check syndr_lightning tests experiments

format: $(VENV)/.stamp-dev,offline,cluster,export
	$(VENV)/bin/ruff format syndr_lightning tests experiments
	$(VENV)/bin/ruff check --fix syndr_lightning tests experiments

bench: $(VENV)/.stamp-dev,offline,cluster,export
	$(VPY) experiments/bench/run_all.py

bench-quick: $(VENV)/.stamp-dev,offline,cluster,export
	$(VPY) experiments/bench/run_all.py --quick

clean:
	rm -rf outputs multirun logs .pytest_cache .ruff_cache build *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
