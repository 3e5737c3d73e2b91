# syndr_lightning: every target creates .venv when it is missing, installs what it needs, then runs.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
PIP := $(VPY) -m pip
PIP_FLAGS := -q --disable-pip-version-check --progress-bar off

.PHONY: help demo train test test-all lint format bench bench-quick clean clean-logs install
.DEFAULT_GOAL := help

help: ## list the targets
	@echo "make TARGET   (every target creates $(VENV) first when it is missing)"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## (.*)/  \1\t\2/' | expand -t 16

$(VENV)/.stamp-%: pyproject.toml
	@test -x $(VPY) || $(PY) -m venv $(VENV)
	@echo "[make] installing syndr-lightning[$*] into $(VENV) (first run takes a few minutes)"
	@set -o pipefail; $(PIP) install $(PIP_FLAGS) -e ".[$*]" 2>&1 | { grep -v "^WARNING: Location" || true; } \
	  || { echo "[make] pip install failed (output above). 'No space left on device' means the disk is full:" \
	       "the environment needs about 8 GB free where $(VENV) lives (df -h .); free space and rerun." >&2; exit 1; }
	@$(VPY) -c "import torch, torchvision, lightning, hydra, faiss, syndr_lightning" \
	  || { echo "[make] $(VENV) is incomplete: the imports above failed; rerun make or delete $(VENV)." >&2; exit 1; }
	@touch $@

install: $(VENV)/.stamp-dev,offline,cluster,export ## create .venv with every extra (dev, offline, cluster, export)

demo: $(VENV)/.stamp-dev,offline,cluster,export ## the demo experiment (+experiment=demo, docs/demo.md)
	$(VENV)/bin/syndr-train +experiment=demo

train: $(VENV)/.stamp-dev,offline,cluster,export ## the default run (syndr-train, a few minutes on a CPU; ARGS='key=value ...')
	$(VENV)/bin/syndr-train $(ARGS)

test: $(VENV)/.stamp-dev,offline,cluster,export ## the test suite (what CI runs)
	$(VPY) -m pytest -q -n 2

test-all: $(VENV)/.stamp-dev,offline,cluster,export ## every test, the slow ones too
	$(VPY) -m pytest -q -m ""

lint: $(VENV)/.stamp-dev,offline,cluster,export ## ruff check and format check
	$(VENV)/bin/ruff check syndr_lightning tests experiments
	$(VENV)/bin/ruff format --check syndr_lightning tests experiments

format: $(VENV)/.stamp-dev,offline,cluster,export ## ruff format and fix
	$(VENV)/bin/ruff format syndr_lightning tests experiments
	$(VENV)/bin/ruff check --fix syndr_lightning tests experiments

bench: $(VENV)/.stamp-dev,offline,cluster,export ## the benchmarks (experiments/bench)
	$(VPY) experiments/bench/run_all.py

bench-quick: $(VENV)/.stamp-dev,offline,cluster,export ## the benchmarks, quick variant
	$(VPY) experiments/bench/run_all.py --quick

clean: ## build and tool caches (keeps logs/: runs and checkpoints)
	rm -rf .pytest_cache .ruff_cache build *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

clean-logs: ## DELETES logs/, outputs/ and multirun/: every run folder and checkpoint
	rm -rf outputs multirun logs
