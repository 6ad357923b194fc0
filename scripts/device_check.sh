#!/usr/bin/env bash
# The one prepared check for a lent GPU machine (the device tool): it installs the carried wheels,
# checks the imports and the GPU, runs the GPU tests (tests/gpu_bench/test_gpu.py, ~90 s), then a
# sweep of random weights at full size (examples/sweep-device-check.yaml) for what is left of its
# budget (~250 s), and leaves records, environment and logs in $OUT. About 420 s in all.
#
# How to run it:
#   1. Here (the package index is reachable): bash scripts/device_wheels.sh
#      It fills .whl/ (~45 MiB, ignored by git) with what the machine's image lacks.
#   2. The device tool, from the checkout the session started in (that is the tree that travels):
#        run(command="bash scripts/device_check.sh", carry=[".whl"], timeout_s=480)
#      The whole device budget is 15 minutes with the machine's start (1-2 min), so one run fits
#      with little room for a second: give the machine back after it (give_back).
#   3. What comes back, under files_at: records.jsonl, env.json, summary.txt, device_check.log,
#      pytest-gpu.txt, logs.tar.gz (worker logs, sweep progress). Review the records and commit them
#      as catalogs/measurements/<YYYY-MM-DD>-h200-device-check.jsonl (each record carries its env)
#      with env.json beside them as catalogs/measurements/<YYYY-MM-DD>-h200-device-check.env.json
#      (the catalog reads *.jsonl only). A sweep cut by its budget keeps every finished record;
#      put records.jsonl back as the --out of a later run to resume with the rest.
#
# Stops with a message and a non-zero exit when the wheels are missing, the install or an import
# fails (2), or no CUDA GPU is visible (3). Exit 1 if the GPU tests fail or the sweep breaks.
# For a dry run elsewhere: OUT=/tmp/x bash scripts/device_check.sh (PYTHON=... to pick a Python;
# SKIP_INSTALL=1 to use the packages the Python already has; REQUIRE_CUDA=0 with a CPU SWEEP_FILE
# to go past the GPU check).
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
OUT=${OUT:-$REPO/device-out}
PYTHON=${PYTHON:-python3}
SITE=${SITE:-/tmp/site}
WORK=${WORK:-/tmp/gpu-bench-check}
BUDGET_S=${BUDGET_S:-420}      # the whole script; the device tool's timeout_s should be ~60 s more
GPU_TESTS_S=${GPU_TESTS_S:-120}
SWEEP_S=${SWEEP_S:-250}
SWEEP_FILE=${SWEEP_FILE:-examples/sweep-device-check.yaml}
WRAP_UP_S=15                   # summary and the log archive after the sweep
mkdir -p "$OUT" "$WORK"
START=$(date +%s)

elapsed() { echo $(($(date +%s) - START)); }
die() {
    local code=$1
    shift
    echo "device_check: STOPPED after $(elapsed) s: $*" >&2
    exit "$code"
}

main() {
    echo "==> machine ($(date -u +%FT%TZ))"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 || true
    "$PYTHON" -V || die 2 "no $PYTHON here"

    if [ "${SKIP_INSTALL:-0}" = 1 ]; then
        echo "==> SKIP_INSTALL=1: using the packages $PYTHON already has"
    else
        echo "==> installing the carried wheels into $SITE (no network, no dependencies resolved)"
        compgen -G ".whl/*.whl" >/dev/null \
            || die 2 "no wheels in .whl/: run 'bash scripts/device_wheels.sh' where the package index is reachable, then call the device tool with carry [\".whl\"]"
        "$PYTHON" -m pip install -q --disable-pip-version-check --no-index --no-deps --no-compile \
            --no-cache-dir --upgrade --target "$SITE" .whl/*.whl \
            || die 2 "installing .whl/*.whl failed (see above): a wheel for another Python or platform, or two versions of one package?"
    fi
    # The repository on the path instead of a pip install (no build backend needed there).
    export PYTHONPATH="$SITE:$REPO${PYTHONPATH:+:$PYTHONPATH}"
    export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1

    echo "==> import check"
    "$PYTHON" - <<'PY' || die 2 "an import failed (see above): carry the missing package as a wheel (scripts/device_wheels.sh)"
import importlib, sys
from importlib import metadata
names = ["pydantic", "yaml", "click", "numpy", "torch", "transformers", "accelerate", "tokenizers",
         "bitsandbytes", "pynvml", "genai_prices", "pytest", "planner.records", "gpu_bench.cli"]
failed = []
for name in names:
    try:
        importlib.import_module(name)
    except Exception as exc:  # a missing package, or one built for another Python
        failed.append(name)
        print(f"   cannot import {name}: {type(exc).__name__}: {exc}")
if failed:
    sys.exit(1)
dists = ["pydantic", "torch", "transformers", "accelerate", "bitsandbytes", "nvidia-ml-py", "genai-prices"]
print("  ", ", ".join(f"{d} {metadata.version(d)}" for d in dists))
PY

    echo "==> GPU check"
    "$PYTHON" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" \
        || [ "${REQUIRE_CUDA:-1}" = 0 ] \
        || die 3 "no CUDA GPU: torch.cuda.is_available() is False (torch $("$PYTHON" -c 'import torch; print(torch.__version__)' 2>/dev/null)); nothing measured"
    "$PYTHON" -m gpu_bench.cli env --format json >"$OUT/env.json" || die 1 "gpu-bench env failed"
    "$PYTHON" -m gpu_bench.cli env

    echo "==> GPU tests (at most ${GPU_TESTS_S} s)"
    timeout -k 10 "$GPU_TESTS_S" "$PYTHON" -m pytest -q -p no:cacheprovider tests/gpu_bench/test_gpu.py \
        >"$OUT/pytest-gpu.txt" 2>&1
    tests_rc=$?
    tail -n 25 "$OUT/pytest-gpu.txt"
    [ "$tests_rc" = 124 ] && echo "   the GPU tests ran past ${GPU_TESTS_S} s and were stopped"
    echo "   GPU tests: exit $tests_rc after $(elapsed) s"

    local left=$((BUDGET_S - $(elapsed) - WRAP_UP_S))
    local sweep_s=$((left < SWEEP_S ? left : SWEEP_S))
    sweep_rc=0
    if [ "$sweep_s" -lt 30 ]; then
        echo "==> no time left for the sweep (${left} s)"
        sweep_rc=124
    else
        echo "==> sweep (random weights, full size) for at most ${sweep_s} s; records appended as they finish"
        # SIGTERM at the end: gpu-bench stops its worker and keeps every finished record.
        timeout -s TERM -k 30 "$sweep_s" "$PYTHON" -m gpu_bench.cli sweep "$SWEEP_FILE" \
            --out "$OUT/records.jsonl" --workdir "$WORK/gpu-bench" --timeout 150 2>&1 | tee "$WORK/sweep.txt"
        sweep_rc=${PIPESTATUS[0]}
        [ "$sweep_rc" = 124 ] && echo "   the sweep used its ${sweep_s} s and was stopped; finished records are kept"
    fi

    echo "==> records"
    "$PYTHON" - "$OUT/records.jsonl" <<'PY' | tee "$OUT/summary.txt"
import json, sys
from pathlib import Path
path = Path(sys.argv[1])
rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
print(f"{len(rows)} records in {path.name}")
for r in rows:
    print(f"{r['model']:24} {r['quant']:9} batch {r['batch_size']:>3} {r['status']:5} "
          f"{r.get('output_tokens_per_s') or 0:9.1f} tok/s  peak {r.get('peak_vram_gib') or 0:6.2f} GiB  "
          f"weights {r.get('weights_memory_gib') or 0:6.2f} GiB  {(r.get('error') or '').splitlines()[0][:60] if r.get('error') else ''}")
PY
    tar -czf "$OUT/logs.tar.gz" -C "$WORK" --ignore-failed-read gpu-bench/logs sweep.txt 2>/dev/null || true
    echo "done in $(elapsed) s: GPU tests exit $tests_rc, sweep exit $sweep_rc"
    [ "$tests_rc" = 0 ] || return 1
    case "$sweep_rc" in 0 | 124) return 0 ;; *) return 1 ;; esac
}

main 2>&1 | tee "$OUT/device_check.log"
exit "${PIPESTATUS[0]}"
