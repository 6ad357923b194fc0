#!/usr/bin/env python3
"""Cold-process wall time of planner commands (target: `planner breakeven --tokens-per-day 5M`
median under 0.5 s on a 2-core machine; aim 0.3 s). Prints a table.

Each command runs once to warm the catalog snapshot and calibration caches and the bytecode
cache (what every later run of an installed planner finds: pip compiles .pyc files at install),
then N times in fresh processes. Bytecode goes to a temporary PYTHONPYCACHEPREFIX, also when the
environment sets PYTHONDONTWRITEBYTECODE, so the source tree stays clean.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

COMMANDS = [
    ["breakeven", "--tokens-per-day", "5M"],
    ["breakeven", "--tokens-per-day", "500M", "--format", "json"],
    ["capacity", "--tokens-per-day", "50M", "--model", "llama-3.1-8b-instruct"],
    ["cost", "--queries-per-day", "10000", "--api", "gpt-4o,gpt-4o-mini,claude-3-haiku"],
    ["estimate", "--model", "llama-3.1-8b-instruct", "--gpu", "h100-sxm"],
    ["fit", "--model", "llama-3.1-70b-instruct", "--gpu", "all"],
    ["--help"],
]
TARGET_S = 0.5


ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
ENV["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(prefix="bench-cli-pyc-")


def run(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "planner.cli", *args], check=True, capture_output=True, env=ENV)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", "--runs", type=int, default=9)
    opts = parser.parse_args()
    print(f"{'command':<70} {'median s':>9} {'min s':>7} {'max s':>7}")
    print("-" * 96)
    ok = True
    for args in COMMANDS:
        run(args)  # warm the caches
        times = [run(args) for _ in range(opts.runs)]
        median = statistics.median(times)
        print(f"{'planner ' + ' '.join(args):<70} {median:>9.3f} {min(times):>7.3f} {max(times):>7.3f}")
        if args[:3] == ["breakeven", "--tokens-per-day", "5M"]:
            ok = median < TARGET_S
    print(
        f"\ntarget: planner breakeven --tokens-per-day 5M median < {TARGET_S} s: {'met' if ok else 'NOT met'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
