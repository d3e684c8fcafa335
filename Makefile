# Fresh machine: `make demo` (the whole paper in miniature, ~20-30 min on 2 CPU cores) and
# `make test` (the test suite, including the smoke preset's whole DAG).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
SNAKEMAKE := $(VENV)/bin/snakemake
CORES ?= 2
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export WANDB_MODE ?= offline
export WANDB_DIR := $(CURDIR)/results/wandb
export WANDB_CACHE_DIR := $(CURDIR)/results/wandb/cache
export TOKENIZERS_PARALLELISM := false

.PHONY: demo test lint format dag clean-demo smoke

$(VENV)/.installed: requirements.lock pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -r requirements.lock
	$(PY) -m pip install -q --no-deps -e .
	touch $@

demo: $(VENV)/.installed
	$(SNAKEMAKE) --cores $(CORES) --configfile presets/tiny.yaml
	@echo
	@echo "Tables, figures and the claims scorecard: paper_figures/tiny/"
	@ls paper_figures/tiny/

smoke: $(VENV)/.installed
	$(SNAKEMAKE) --cores $(CORES) --configfile presets/smoke.yaml

test: $(VENV)/.installed
	$(VENV)/bin/pytest -q -p no:cacheprovider

lint: $(VENV)/.installed
	$(SNAKEMAKE) --lint
	$(VENV)/bin/snakefmt --check Snakefile rules
	$(VENV)/bin/ruff check src tests perf workflow/scripts
	$(VENV)/bin/ruff format --check src tests perf workflow/scripts

format: $(VENV)/.installed
	$(VENV)/bin/snakefmt Snakefile rules
	$(VENV)/bin/ruff format src tests perf workflow/scripts

dag: $(VENV)/.installed
	$(SNAKEMAKE) --rulegraph | dot -Tsvg > docs/rulegraph.svg
