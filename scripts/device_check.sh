#!/usr/bin/env bash
# The one prepared check for a lent GPU machine (device tool). It installs the wheels carried in
# wheels/ (bitsandbytes, pydantic, genai-prices, ...; the image has torch and transformers but no
# internet), runs the GPU tests, then a short measurement sweep with random weights at full size,
# and writes everything under $OUT: records with their environment, logs, test output.
#
#   run: bash scripts/device_check.sh        (carry: wheels)   timeout ~ 600 s
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$(pwd)/device-out}
mkdir -p "$OUT"
exec > >(tee "$OUT/device_check.log") 2>&1
start=$(date +%s)

echo "==> machine"
nvidia-smi || true
python3 -V

echo "==> installing carried wheels and the project (no network)"
python3 -m pip install -q --no-index --find-links wheels/ wheels/*.whl 2>&1 | tail -3 || true
python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . 2>&1 | tail -3 \
  || python3 -m pip install -q --no-deps --no-build-isolation -e . 2>&1 | tail -3
export PYTHONPATH=$(pwd)
python3 -m gpu_bench.cli env --format json > "$OUT/env.json"
cat "$OUT/env.json"

echo "==> GPU tests"
timeout 240 python3 -m pytest -q -m gpu tests/gpu_bench/test_gpu.py -p no:cacheprovider 2>&1 | tee "$OUT/pytest-gpu.txt" | tail -15

echo "==> short sweep (random weights, full size)"
timeout 420 python3 -m gpu_bench.cli sweep examples/sweep-device-check.yaml --out "$OUT/records.jsonl" \
  --workdir /tmp/gpu-bench-work --timeout 300
echo "==> records"
python3 - "$OUT/records.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    print(r["model"], r["quant"], r["batch_size"], r["status"], round(r.get("output_tokens_per_s") or 0, 1),
          r.get("peak_vram_gib"), (r.get("error") or "")[:80])
PY
cp -r /tmp/gpu-bench-work/logs "$OUT/worker-logs" 2>/dev/null || true
echo "done in $(( $(date +%s) - start )) s"
