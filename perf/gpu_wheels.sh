#!/usr/bin/env bash
# Wheels the GPU check (perf/gpu_check.sh) needs on an offline GPU machine, into .cache/gpu-wheels.
#
# The GPU image (Python 3.12, torch 2.11, transformers 5.17, pandas, pyarrow, scikit-learn,
# sacrebleu, accelerate, jinja2, xxhash, aiohttp, ...) lacks lm-eval and part of its pure-Python
# closure: the packages below, at requirements.lock's versions (what our tests run). Nothing
# of torch / transformers / nvidia / triton travels. gpu_check.sh installs these with
# `pip install --no-index --no-deps --target`. Usage (here, with network):
#     perf/gpu_wheels.sh [DEST]          # DEST defaults to .cache/gpu-wheels (git-ignored)
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=${1:-.cache/gpu-wheels}
PY=${PYTHON:-.venv/bin/python}
MAX_MIB=40
# lm_eval's closure minus what the image holds (computed from the installed metadata), plus
# fsspec pinned as datasets requires (<= 2026.9.0; the image's may be newer).
PKGS=(lm_eval datasets evaluate dill multiprocess fsspec pytablewriter DataProperty mbstrdecoder
  pathvalidate tabledata tcolorpy typepy chardet defusedxml more-itertools nltk rouge_score
  sqlitedict word2number pytz)

version() { # NAME -> its pin in requirements.lock (case- and -/_-insensitive)
  local want
  want=$(echo "$1" | tr 'A-Z_' 'a-z-')
  awk -F'==' -v w="$want" '{n=tolower($1); gsub(/_/, "-", n)} n == w {print $2; exit}' \
    requirements.lock
}

mkdir -p "$DEST"
for name in "${PKGS[@]}"; do
  ver=$(version "$name")
  if [[ -z "$ver" ]]; then
    echo "gpu_wheels: $name is not pinned in requirements.lock" >&2
    exit 1
  fi
  # A wheel for CPython 3.12 on x86-64 Linux (the GPU image); sdist-only packages (pure
  # Python) are built into a wheel here.
  if ! "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d "$DEST" "$name==$ver" 2>/dev/null; then
    "$PY" -m pip wheel -q --no-deps -w "$DEST" "$name==$ver"
  fi
done
# A wheel that is not pure Python must be the cp312 / abi3 one.
bad=$(find "$DEST" -name '*.whl' ! -name '*-none-any.whl' ! -name '*cp312*' ! -name '*abi3*' \
  ! -name '*-py312-*')
if [[ -n "$bad" ]]; then
  echo "gpu_wheels: wheels that will not install on CPython 3.12: $bad" >&2
  exit 1
fi
size=$(du -sm "$DEST" | cut -f1)
echo "gpu_wheels: $(find "$DEST" -name '*.whl' | wc -l) wheels, ${size} MiB in $DEST"
if ((size > MAX_MIB)); then
  echo "gpu_wheels: over ${MAX_MIB} MiB: the device carries at most 64 MiB with the tree" >&2
  exit 1
fi
