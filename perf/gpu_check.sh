#!/usr/bin/env bash
# The GPU check of issue #9 (perf/gpu_check.py): on one GPU, within ~8 minutes, our training loop
# at the 500M and 1.3B sizes (micro-batch 64 x 2048), the transformers synthesis engine on a
# Mistral-7B-shaped model and our evaluation on a Llama3-8B-shaped model, all random weights;
# writes gpu_check.json ($OUT/ when OUT is set, else results/).
#
# On the offline GPU machine (torch 2.11, transformers 5.17, Python 3.12, no lm-eval):
#   1. here, with network, once:   perf/gpu_wheels.sh        # -> .cache/gpu-wheels (~13 MiB)
#   2. the device tool, from the repository root:
#        run(command="bash perf/gpu_check.sh", carry=[".cache/gpu-wheels"], timeout_s=600)
#      the report comes back as gpu_check.json under the run's files_at.
# This script installs the wheels into /tmp/instruct-pt-site (never into the image's packages)
# and puts src/ on PYTHONPATH: `pip install -e .` would need setuptools from the network.
#
# CPU dry path (tiny dims, < 1 minute, same JSON): perf/gpu_check.sh --cpu-dry-run
# Other options: perf/gpu_check.sh --help (sections, steps, texts, questions).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
WHEELS=${GPU_WHEELS:-.cache/gpu-wheels}
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONUNBUFFERED=1

dry=0
for arg in "$@"; do
  if [[ "$arg" == --cpu-dry-run ]]; then dry=1; fi
done
if ((dry == 0)); then
  if [[ -d "$WHEELS" ]] && compgen -G "$WHEELS/*.whl" >/dev/null; then
    SITE=${GPU_SITE:-/tmp/instruct-pt-site}
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target "$SITE" "$WHEELS"/*.whl
    export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
  elif ! "$PY" -c "import lm_eval" 2>/dev/null; then
    echo "gpu_check.sh: no lm_eval and no wheels in $WHEELS: run perf/gpu_wheels.sh where" \
      "there is network and carry $WHEELS" >&2
    exit 2
  fi
  # Fewer fragmentation failures when a try runs out of memory and the next one starts.
  export PYTORCH_CUDA_ALLOC_CONF=${PYTORCH_CUDA_ALLOC_CONF:-expandable_segments:True}
  if command -v nvidia-smi >/dev/null; then nvidia-smi -L || true; fi
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
exec "$PY" perf/gpu_check.py "$@"
