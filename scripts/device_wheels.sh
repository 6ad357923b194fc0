#!/usr/bin/env bash
# Fill .whl/ with the Python 3.12 manylinux wheels that the lent GPU machine's image lacks (it has
# torch, transformers, accelerate, tokenizers, nvidia-ml-py, click, pyyaml, numpy, pandas, scipy,
# pytest, hypothesis, anyio, idna, h11, as the device notes list them) and that
# scripts/device_check.sh installs there, offline, with --no-deps. Run it where the package index
# is reachable:
#
#   bash scripts/device_wheels.sh        # then call the device tool with carry [".whl"]
#
# The wheels (about 45 MiB) travel with the working tree (64 MiB at most a call); .whl/ is ignored.
# One version of each: two of one package stop the whole install there.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
WHEELS=(
    bitsandbytes==0.50.2       # transformers' bnb-int8/nf4/fp4 (needs torch, numpy, packaging: there)
    pydantic==2.14.4           # planner.records (the MeasurementRecord schema)
    pydantic-core==2.50.5      # pinned exactly by pydantic 2.14.4
    annotated-types==0.8.0     # pydantic
    typing-inspection==0.4.5   # pydantic
    typing-extensions==4.16.0  # pydantic needs >=4.16.0; the image's version is not known
    genai-prices==0.2.3        # planner's API prices (core dependency; imported by planner tests)
    httpx2==2.16.2             # genai-prices (anyio, idna: in the image)
    httpcore2==2.16.2          # httpx2 (h11: in the image)
    truststore==0.10.5         # httpx2, httpcore2
)

rm -rf .whl
mkdir -p .whl
"$PYTHON" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
    --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
    -d .whl "${WHEELS[@]}" 2>&1 | grep -v "^WARNING: Location" || true

got=$(find .whl -type f -name '*.whl' | wc -l)
if [ "$got" -ne "${#WHEELS[@]}" ]; then
    echo "error: expected ${#WHEELS[@]} wheels in .whl/, got $got:" >&2
    ls .whl >&2
    exit 1
fi
ls -1 .whl
size=$(du -sm .whl | cut -f1)
echo "==> ${#WHEELS[@]} wheels, ${size} MiB in .whl/ (the working tree that travels must stay under 64 MiB)"
if [ "$size" -gt 55 ]; then
    echo "error: .whl/ is over 55 MiB" >&2
    exit 1
fi
